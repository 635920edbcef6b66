"""Exact paired tests against brute-force references and published table values."""

import itertools
import math

import numpy as np
import pytest

from asrdistill.stats.bootstrap import paired_bootstrap_wer
from asrdistill.stats.paired_tests import sign_test, signed_ranks, wilcoxon_signed_rank


def _naive_wilcoxon(d, alternative):
    """W+ over every sign assignment, written out with itertools (ranks by counting)."""
    d = [x for x in d if x != 0]
    a = [abs(x) for x in d]
    ranks = [sum(1 for y in a if y < x) + (sum(1 for y in a if y == x) + 1) / 2 for x in a]
    w = sum(r for r, x in zip(ranks, d) if x > 0)
    null = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=len(d))]
    lo = sum(1 for v in null if v <= w + 1e-9) / len(null)
    hi = sum(1 for v in null if v >= w - 1e-9) / len(null)
    return {"less": lo, "greater": hi, "two-sided": min(1, 2 * min(lo, hi))}[alternative], w


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_wilcoxon_equals_brute_force(alternative):
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 9))
        d = np.round(rng.normal(0.3, 1, n), 1)  # rounding makes ties and zeros
        p, w = _naive_wilcoxon(d.tolist(), alternative)
        r = wilcoxon_signed_rank(d, alternative)
        assert r.p_value == pytest.approx(p) and r.statistic == pytest.approx(w), d


def test_wilcoxon_published_table_value():
    """Exact null of W+ for n = 8 (tables of Wilcoxon's T): P(W+ <= 3) = 5/256 = 0.0195, the one-sided
    2.5% critical value; five speakers that all agree give 1/32."""
    d = -np.arange(1, 9, dtype=float)
    d[[0, 1]] *= -1  # ranks 1 and 2 positive: W+ = 3
    assert wilcoxon_signed_rank(d, "less").p_value == pytest.approx(5 / 256)
    r = wilcoxon_signed_rank([-3, -1, -4, -1.5, -9], "less")
    assert r.p_value == pytest.approx(1 / 32) and r.min_p == pytest.approx(1 / 32)
    assert wilcoxon_signed_rank([-3, -1, -4, -1.5, -9]).min_p == pytest.approx(1 / 16)  # two-sided: never < 0.0625


def test_sign_test_is_the_binomial_tail():
    d = [1, 2, -1, 3, 4, 0, 5, 6, -2, 7]  # 7 positive of 9 non-zero
    tail = sum(math.comb(9, k) for k in range(7, 10)) / 2 ** 9
    assert sign_test(d, "greater").p_value == pytest.approx(tail)
    assert sign_test(d).p_value == pytest.approx(2 * tail)
    assert sign_test(d, "less").p_value == pytest.approx(sum(math.comb(9, k) for k in range(0, 8)) / 2 ** 9)
    assert sign_test([0, 0]).p_value == 1.0


def test_ties_share_their_mean_rank():
    np.testing.assert_array_equal(signed_ranks(np.array([2.0, -1.0, 2.0, 3.0])), [2.5, 1.0, 2.5, 4.0])


def test_bad_input_is_an_error():
    with pytest.raises(ValueError, match="alternative"):
        sign_test([1], "bigger")
    with pytest.raises(ValueError, match="finite"):
        wilcoxon_signed_rank([1, float("nan")])
    with pytest.raises(ValueError, match="same, non-zero number"):
        paired_bootstrap_wer([1], [1, 2], [3, 4])


def test_bootstrap_of_identical_systems_is_zero_and_reproducible():
    e, w = [1, 0, 3, 2], [5, 4, 6, 7]
    ci = paired_bootstrap_wer(e, e, w, replicates=500)
    assert (ci.delta, ci.low, ci.high, ci.p_better) == (0.0, 0.0, 0.0, 0.0)
    a = paired_bootstrap_wer([1, 0, 3, 2], [0, 0, 1, 2], w, replicates=500, seed=3)
    assert a == paired_bootstrap_wer([1, 0, 3, 2], [0, 0, 1, 2], w, replicates=500, seed=3)


def test_bootstrap_matches_a_naive_resampling_loop():
    """The vectorized multinomial draw has the distribution of drawing utterance indices one by one."""
    rng = np.random.default_rng(1)
    n = 60
    words = rng.integers(1, 8, n)
    ea = rng.binomial(words, 0.15)
    eb = rng.binomial(words, 0.10)
    ci = paired_bootstrap_wer(ea, eb, words, replicates=20000, seed=0)
    loop = np.random.default_rng(7)
    naive = []
    for _ in range(20000):
        idx = loop.integers(0, n, n)
        naive.append(100.0 * (ea[idx].sum() - eb[idx].sum()) / words[idx].sum())
    lo, hi = np.percentile(naive, [2.5, 97.5])
    assert ci.delta == pytest.approx(100.0 * (ea.sum() - eb.sum()) / words.sum())
    assert abs(ci.low - lo) < 0.35 and abs(ci.high - hi) < 0.35, (ci, lo, hi)
    assert ci.p_better == pytest.approx(np.mean(np.array(naive) < 0), abs=0.01)
