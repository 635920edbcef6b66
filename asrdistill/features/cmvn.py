"""Per-speaker cepstral mean and variance normalization (CMVN).

Statistics (frame count, sum and sum of squares per dimension, in float64) are
accumulated once per speaker over a feature manifest and stored as JSON; they are
applied when features are loaded (:func:`asrdistill.features.loading.load_features`):

    y = (x - mean_s) / std_s        (or y = x - mean_s with ``norm_vars=False``)

where ``mean_s`` and ``std_s`` are speaker ``s``'s. ``std`` is floored at ``1e-5``
so constant dimensions stay finite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional

import numpy as np
from ..utils.progress import progress as tqdm

from ..utils.atomic import atomic_write_text
from ..utils.readers import reading

VAR_FLOOR = 1e-10


@dataclass
class CmvnStats:
    """Accumulated statistics, one entry per key (speaker)."""

    count: Dict[str, float] = field(default_factory=dict)
    sum: Dict[str, np.ndarray] = field(default_factory=dict)
    sumsq: Dict[str, np.ndarray] = field(default_factory=dict)

    def accumulate(self, key: str, feats: np.ndarray) -> None:
        f = np.asarray(feats, dtype=np.float64)
        if key not in self.count:
            self.count[key] = 0.0
            self.sum[key] = np.zeros(f.shape[1])
            self.sumsq[key] = np.zeros(f.shape[1])
        self.count[key] += f.shape[0]
        self.sum[key] += f.sum(axis=0)
        self.sumsq[key] += np.einsum("td,td->d", f, f)

    def mean_std(self, key: str):
        if key not in self.count:
            raise KeyError(f"no CMVN statistics for {key!r}; known: {sorted(self.count)[:10]}...")
        n = self.count[key]
        mean = self.sum[key] / n
        var = np.maximum(self.sumsq[key] / n - mean * mean, VAR_FLOOR)
        return mean, np.sqrt(var)

    def apply(self, feats: np.ndarray, key: str, norm_vars: bool = True) -> np.ndarray:
        mean, std = self.mean_std(key)
        out = feats - mean.astype(feats.dtype)
        if norm_vars:
            out = out / std.astype(feats.dtype)
        return out

    def save(self, path) -> None:
        data = {k: {"count": self.count[k], "sum": self.sum[k].tolist(), "sumsq": self.sumsq[k].tolist()} for k in sorted(self.count)}
        atomic_write_text(path, json.dumps(data))

    @classmethod
    def load(cls, path) -> "CmvnStats":
        with reading(path, "CMVN statistics file"):
            with open(path) as f:
                data = json.load(f)
        stats = cls()
        for k, v in data.items():
            stats.count[k] = float(v["count"])
            stats.sum[k] = np.asarray(v["sum"], dtype=np.float64)
            stats.sumsq[k] = np.asarray(v["sumsq"], dtype=np.float64)
        return stats


def load_cmvn(paths) -> Optional[CmvnStats]:
    """Statistics of one file, or the union of several (e.g. dev and test); ``None`` for none.

    A speaker found in two files with different statistics is an error naming both files.
    """
    if not paths:
        return None
    if isinstance(paths, (str, Path)):
        return CmvnStats.load(paths)
    merged, origin = CmvnStats(), {}
    for path in paths:
        stats = CmvnStats.load(path)
        for k in stats.count:
            if k in merged.count and not (merged.count[k] == stats.count[k] and np.array_equal(merged.sum[k], stats.sum[k])):
                raise ValueError(f"speaker {k!r} has different CMVN statistics in {origin[k]} and {path}")
            merged.count[k], merged.sum[k], merged.sumsq[k] = stats.count[k], stats.sum[k], stats.sumsq[k]
            origin.setdefault(k, path)
    return merged


def compute_cmvn_stats(cuts: Iterable, key: Optional[Callable] = None, progress: bool = True) -> CmvnStats:
    """Accumulate statistics of every cut's features under ``key(cut)`` (default: speaker)."""
    from ..data.cuts import cut_speaker

    key = key or cut_speaker
    stats = CmvnStats()
    for cut in tqdm(cuts, desc="cmvn", unit="cut", disable=not progress):
        stats.accumulate(key(cut), cut.features.load())
    return stats
