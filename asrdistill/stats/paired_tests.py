"""Exact paired tests over a handful of units (speakers, folds): the sign test and Wilcoxon's signed rank.

With the five speakers of FSDD there are only ``2**5 = 32`` ways to give the five paired
differences their signs, so both tests are computed exactly by enumerating them (no normal
approximation, no SciPy). A consequence every report must state: over 5 speakers the
smallest possible two-sided p-value is ``2/32 = 0.0625`` and the smallest one-sided one
``1/32 = 0.031``; a claim about the direction the paper predicts is therefore tested
one-sided, and "all five speakers agree" is the strongest evidence five speakers can give.

Both tests take the differences ``d_i = a_i - b_i`` of paired measurements (e.g. WER of
the student minus WER of the baseline, one per speaker). Zero differences carry no sign
and are dropped (Wilcoxon's original treatment; the sign test's usual one), so ``n`` is
the number of non-zero differences.

Sign test: under H0 each non-zero difference is positive with probability 1/2, the
number of positives ``S+ ~ Binomial(n, 1/2)``.

Wilcoxon signed-rank: rank ``|d_i|`` (ties get their mean rank), ``W+ = sum of ranks of
positive d_i``; under H0 every assignment of signs to the ranks is equally likely, and
the exact null distribution of ``W+`` is obtained by enumerating all ``2**n`` of them
(``n <= 20``).

Example::

    >>> r = wilcoxon_signed_rank([-1.2, -0.4, -0.9, -2.0, -0.1], alternative="less")
    >>> round(r.p_value, 4)   # all five below zero: 1/32
    0.0312
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

ALTERNATIVES = ("two-sided", "less", "greater")


@dataclass(frozen=True)
class PairedTest:
    """Result of a paired test: ``statistic`` (S+ or W+), ``p_value``, ``n`` (non-zero differences),
    ``alternative`` and ``min_p`` (the smallest p-value the test can give with this ``n``)."""

    name: str
    statistic: float
    p_value: float
    n: int
    alternative: str
    min_p: float


def _differences(differences: Sequence[float]) -> np.ndarray:
    d = np.asarray(differences, dtype=np.float64).ravel()
    if not np.all(np.isfinite(d)):
        raise ValueError(f"paired differences must be finite, got {d.tolist()}")
    return d[d != 0]


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _p_from_null(null: np.ndarray, observed: float, alternative: str) -> float:
    """p-value of ``observed`` against an exact null sample (every outcome equally likely)."""
    eps = 1e-9  # rank sums are multiples of 1/2: compare with a tolerance
    lower = float(np.mean(null <= observed + eps))
    upper = float(np.mean(null >= observed - eps))
    if alternative == "less":
        return lower
    if alternative == "greater":
        return upper
    return min(1.0, 2.0 * min(lower, upper))


def _all_signs(n: int) -> np.ndarray:
    """``(2**n, n)`` 0/1 matrix: every assignment of signs (1: positive)."""
    if n > 20:
        raise ValueError(f"exact enumeration is for at most 20 paired units, got {n}")
    codes = np.arange(2 ** n, dtype=np.int64)[:, None]
    return (codes >> np.arange(n, dtype=np.int64)[None, :]) & 1


def sign_test(differences: Sequence[float], alternative: str = "two-sided") -> PairedTest:
    """Exact sign test of H0 "positive and negative differences equally likely".

    Args:
        differences: ``a_i - b_i`` per paired unit; zeros are dropped.
        alternative: ``two-sided``, ``less`` (a tends to be below b) or ``greater``.
    """
    _check_alternative(alternative)
    d = _differences(differences)
    n = len(d)
    if n == 0:
        return PairedTest("sign", 0.0, 1.0, 0, alternative, 1.0)
    positives = int(np.sum(d > 0))
    pmf = np.array([math.comb(n, k) for k in range(n + 1)], dtype=np.float64) / 2.0 ** n
    lower, upper = float(pmf[: positives + 1].sum()), float(pmf[positives:].sum())
    p = {"less": lower, "greater": upper, "two-sided": min(1.0, 2 * min(lower, upper))}[alternative]
    min_p = 0.5 ** n * (2 if alternative == "two-sided" else 1)
    return PairedTest("sign", float(positives), p, n, alternative, min(1.0, min_p))


def signed_ranks(d: np.ndarray) -> np.ndarray:
    """Ranks of ``|d|`` from 1, ties sharing their mean rank."""
    a = np.abs(d)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a), dtype=np.float64)
    ranks[order] = np.arange(1, len(a) + 1)
    for value in np.unique(a):
        tied = a == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def wilcoxon_signed_rank(differences: Sequence[float], alternative: str = "two-sided") -> PairedTest:
    """Exact Wilcoxon signed-rank test of H0 "the differences are symmetric about 0".

    Args:
        differences: ``a_i - b_i`` per paired unit; zeros are dropped, at most 20 remain.
        alternative: ``two-sided``, ``less`` (a tends to be below b) or ``greater``.

    Returns:
        :class:`PairedTest` with ``statistic`` = W+ (sum of the ranks of positive differences).
    """
    _check_alternative(alternative)
    d = _differences(differences)
    n = len(d)
    if n == 0:
        return PairedTest("wilcoxon", 0.0, 1.0, 0, alternative, 1.0)
    ranks = signed_ranks(d)
    observed = float(ranks[d > 0].sum())
    null = _all_signs(n) @ ranks  # W+ of every sign assignment
    p = _p_from_null(null, observed, alternative)
    extreme = min(_p_from_null(null, 0.0, "less"), _p_from_null(null, float(ranks.sum()), "greater"))
    min_p = min(1.0, extreme * (2 if alternative == "two-sided" else 1))
    return PairedTest("wilcoxon", observed, p, n, alternative, min_p)
