"""Paired bootstrap confidence intervals for WER differences (Bisani & Ney, 2004).

Two systems decode the same utterances. Utterance ``u`` has ``N_u`` reference words and
``e_u`` / ``f_u`` errors (substitutions + deletions + insertions) under systems A and B.
A bootstrap replicate draws ``n`` utterances with replacement (index multiset ``I``) and
computes

    delta* = 100 * (sum_{u in I} e_u - sum_{u in I} f_u) / sum_{u in I} N_u

The same draw is used for both systems (paired), so the interval reflects how the
difference varies over utterances, not each WER's own spread. The interval is the
``[alpha/2, 1 - alpha/2]`` percentile interval of ``delta*``; ``p_better`` is the
fraction of replicates with ``delta* < 0`` (A better). Replicates are computed as one
``(B, n)`` matrix of counts per chunk (no Python loop over replicates).

Example::

    >>> ci = paired_bootstrap_wer([1, 0, 2], [1, 1, 2], [5, 4, 6], replicates=2000, seed=0)
    >>> ci.delta  # (3 - 4) / 15 words
    -6.666...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class BootstrapInterval:
    """``delta`` (WER of A minus WER of B, in %, on all utterances), its ``[low, high]`` interval at
    ``level``, ``p_better`` (share of replicates where A is better) and the number of ``replicates``."""

    delta: float
    low: float
    high: float
    level: float
    p_better: float
    replicates: int


def paired_bootstrap_wer(errors_a: Sequence[int], errors_b: Sequence[int], words: Sequence[int],
                         replicates: int = 10000, level: float = 0.95, seed: int = 0,
                         chunk: int = 1000) -> BootstrapInterval:
    """Percentile interval of the WER difference A - B over utterances resampled with replacement.

    Args:
        errors_a, errors_b: errors per utterance of systems A and B (same utterance order; a mean over
            seeds may be fractional).
        words: reference words per utterance.
        replicates: bootstrap replicates ``B``.
        level: coverage of the interval (0.95: the 2.5th to 97.5th percentile).
        seed: seed of the resampling (the same seed gives the same interval).
        chunk: replicates drawn per matrix (memory ``chunk x n``).
    """
    ea, eb, w = (np.asarray(x, dtype=np.float64).ravel() for x in (errors_a, errors_b, words))
    if not (len(ea) == len(eb) == len(w)) or len(w) == 0:
        raise ValueError(f"need the same, non-zero number of utterances for both systems and the references, "
                         f"got {len(ea)}, {len(eb)}, {len(w)}")
    if w.sum() <= 0 or (w < 0).any() or (ea < 0).any() or (eb < 0).any():
        raise ValueError("word and error counts must be non-negative, with at least one reference word")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    n = len(w)
    diff = ea - eb
    deltas = []
    for start in range(0, replicates, chunk):
        b = min(chunk, replicates - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=b)  # (b, n): times each utterance is drawn
        num, den = counts @ diff, counts @ w
        deltas.append(100.0 * num / np.maximum(den, 1))
    d = np.concatenate(deltas)
    low, high = np.percentile(d, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return BootstrapInterval(float(100.0 * diff.sum() / w.sum()), float(low), float(high), level,
                             float(np.mean(d < 0)), replicates)
