
import pytest

from asrdistill.decode.ngram import WittenBellLM
from asrdistill.decode.scoring import score, word_recall, write_results

SENTS = [s.split() for s in ["a b c", "a b", "b c a", "c c", "a"]]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_distributions_sum_to_one(order):
    lm = WittenBellLM(SENTS, order, vocabulary=["a", "b", "c", "d"])
    histories = [(), ("a",), ("<s>",), ("d",), ("a", "b"), ("<s>", "a"), ("c", "c")]
    for h in histories:
        h = h[len(h) - (order - 1):] if order > 1 else ()
        assert sum(lm.prob(h + (w,)) for w in lm.vocab) == pytest.approx(1.0, abs=1e-12)


def test_witten_bell_formula_and_arpa_backoff():
    lm = WittenBellLM(SENTS, 2)
    # unigram: (c(w) + T/V) / (N + T); N = 16 tokens incl. </s>, T = 4 types (a b c </s>), V = 4
    assert lm.prob(("a",)) == pytest.approx((4 + 1) / (16 + 4))
    # bigram "a b": c(a)=4 followed by 3 types (b, </s>, ...) -> (c(a,b) + T(a) P(b)) / (c(a) + T(a))
    t_a = len({g for g in lm.counts[2] if g[0] == "a"})
    assert lm.prob(("a", "b")) == pytest.approx((2 + t_a * lm.prob(("b",))) / (4 + t_a))
    arpa = lm.to_arpa()
    # back-off reproduces the interpolated probability of an unseen bigram
    entries = {}
    for line in arpa.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and not line.startswith("\\") and not line.startswith("ngram"):
            entries[parts[1]] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    p_unseen = 10 ** (entries["c"][1] + entries["b"][0])  # P(b | c) via back-off
    assert ("c", "b") not in lm.counts[2] and p_unseen == pytest.approx(lm.prob(("c", "b")), rel=1e-5)


def test_wer_counts():
    refs = {"u1": "ONE TWO THREE".split(), "u2": "FOUR".split(), "u3": "FIVE SIX".split()}
    hyps = {"u1": "ONE THREE THREE SEVEN".split(), "u2": "FOUR".split()}  # u3: no hypothesis
    total, per = score(refs, hyps)
    assert (total.sub, total.ins, total.dels, total.words) == (1, 1, 2, 6)
    assert total.wer == pytest.approx(100 * 4 / 6) and total.sentence_errors == 2
    assert total.line().startswith("%WER 66.67 [ 4 / 6, 1 ins, 2 del, 1 sub ]")


def test_word_recall_from_the_written_recogs(tmp_path):
    refs = {"u1": "THREE ONE THREE".split(), "u2": "TWO THREE".split(), "u3": "THREE".split()}
    hyps = {"u1": "THREE THREE".split(), "u2": "TWO TREE".split()}  # u1: the second THREE aligns to THREE
    write_results(tmp_path, "x", refs, hyps, [])
    assert word_recall(tmp_path, "x", "THREE") == (2, 4)
    assert word_recall(tmp_path, "x", "TWO") == (1, 1)
