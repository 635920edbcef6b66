"""Confusable class subsets for specialist models (Hinton et al., 2015, section 5.3).

The generalist's predicted distributions over a held-out set give the covariance of
its class posteriors,

    S = E[(p - E p)(p - E p)^T]   (C x C),

whose column ``c`` says which classes rise and fall together with class ``c``: classes
predicted together (confusable ones) have similar columns. K-means on the columns
(normalized to unit length, so that frequent and rare classes cluster by the *shape*
of their co-prediction, not its size) gives the subsets a specialist each will
separate. With ``overlap_margin > 0`` a class also joins every other cluster whose
centroid is at most ``(1 + margin)`` times as far as its nearest one, so that some
classes are covered by several specialists; ``max_size`` keeps a subset's classes
nearest its centroid, and subsets smaller than ``min_size`` get no specialist.

Imports torch only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import Tensor

from .configs import ClusterConfig


def prediction_covariance(probs: Tensor) -> Tensor:
    """``(F, C)`` predicted distributions -> ``(C, C)`` covariance matrix (float64).

    Example::

        >>> p = torch.softmax(torch.randn(100, 4), -1)
        >>> prediction_covariance(p).shape
        torch.Size([4, 4])
    """
    p = probs.double()
    centered = p - p.mean(0, keepdim=True)
    return centered.T @ centered / max(p.shape[0] - 1, 1)


def kmeans(points: Tensor, k: int, iters: int = 100, restarts: int = 5, seed: int = 0) -> tuple:
    """Batch k-means (Lloyd) with k-means++ initialization, best of ``restarts`` by inertia.

    Args:
        points: ``(P, D)``.
        k: number of clusters (``<= P``).

    Returns:
        ``(centroids (k, D), assignment (P,), distances (P, k))`` with squared Euclidean distances.
    """
    if not 0 < k <= points.shape[0]:
        raise ValueError(f"k = {k} clusters for {points.shape[0]} points")
    x = points.double()
    gen = torch.Generator().manual_seed(seed)
    best = None
    for _ in range(max(1, restarts)):
        centroids = x[torch.randint(len(x), (1,), generator=gen)]
        for _ in range(1, k):  # k-means++: next centroid with probability proportional to d^2
            d2 = torch.cdist(x, centroids).pow(2).min(1).values
            if float(d2.sum()) <= 0:
                pick = torch.randint(len(x), (1,), generator=gen)
            else:
                pick = torch.multinomial(d2 / d2.sum(), 1, generator=gen)
            centroids = torch.cat([centroids, x[pick]])
        for _ in range(iters):
            dist = torch.cdist(x, centroids).pow(2)
            assign = dist.argmin(1)
            counts = torch.bincount(assign, minlength=k).double()
            sums = torch.zeros_like(centroids).index_add_(0, assign, x)
            new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
            if torch.allclose(new, centroids):
                break
            centroids = new
        dist = torch.cdist(x, centroids).pow(2)
        assign = dist.argmin(1)
        inertia = float(dist.gather(1, assign[:, None]).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centroids, assign, dist)
    return best[1], best[2], best[3]


@dataclass
class ClassClusters:
    """Class subsets of the specialists, with what was seen when they were formed."""

    subsets: List[List[int]]  # classes of each specialist, nearest to its centroid first
    num_classes: int
    info: Dict[str, object] = field(default_factory=dict)

    def membership(self) -> Tensor:
        """``(K, C)`` bool: class ``c`` is in subset ``m``."""
        m = torch.zeros(len(self.subsets), self.num_classes, dtype=torch.bool)
        for i, s in enumerate(self.subsets):
            m[i, s] = True
        return m

    def coverage(self) -> Tensor:
        """``(C,)`` number of subsets each class is in."""
        return self.membership().sum(0)

    def save(self, path) -> None:
        from ..utils.atomic import atomic_write_text

        atomic_write_text(path, json.dumps({"num_classes": self.num_classes, "subsets": self.subsets, **self.info}, indent=1))

    @classmethod
    def load(cls, path) -> "ClassClusters":
        data = json.loads(Path(path).read_text())
        subsets, num_classes = data.pop("subsets"), data.pop("num_classes")
        return cls(subsets, num_classes, data)


def cluster_classes(probs: Tensor, config: ClusterConfig = ClusterConfig(), targets: Optional[Tensor] = None) -> ClassClusters:
    """Subsets of classes the generalist confuses, from its ``(F, C)`` predictions on held-out frames.

    With ``targets`` (the true classes of the frames), each subset's most confused pairs
    (true class predicted as the other, both ways) are recorded; the largest covariances
    are recorded in any case.
    """
    f, c = probs.shape
    cov = prediction_covariance(probs)
    seen = torch.diagonal(cov) > 0  # classes the generalist never varies on cannot be placed
    cols = cov[:, seen].T
    cols = cols / cols.norm(dim=1, keepdim=True).clamp(min=1e-30)
    k = min(config.num_clusters, int(seen.sum()))
    _, assign, dist = kmeans(cols, k, config.kmeans_iters, config.kmeans_restarts, config.seed)
    classes = torch.nonzero(seen).flatten()
    nearest = dist.gather(1, assign[:, None])
    member = dist <= (1 + config.overlap_margin) * nearest
    member[torch.arange(len(assign)), assign] = True
    confusion = None
    if targets is not None:
        confusion = torch.zeros(c, c, dtype=torch.long)
        confusion.index_put_((targets.cpu(), probs.argmax(1).cpu()), torch.ones(f, dtype=torch.long), accumulate=True)
    subsets, details = [], []
    for m in range(k):
        idx = torch.nonzero(member[:, m]).flatten()
        idx = idx[dist[idx, m].argsort()][: config.max_size]
        if len(idx) < config.min_size:
            continue
        subset = classes[idx].tolist()
        subsets.append(subset)
        details.append(_confused_pairs(subset, cov, confusion, config.pairs_per_cluster))
    if not subsets:
        raise ValueError(f"no cluster has {config.min_size} or more classes; lower --min-size or --num-clusters")
    clusters = ClassClusters(subsets, c)
    clusters.info = {"held_out_frames": f, "classes_seen": int(seen.sum()), "clusters": k, "config": asdict(config),
                     "coverage_histogram": torch.bincount(clusters.coverage()).tolist(), "pairs": details}
    return clusters


def _confused_pairs(subset: List[int], cov: Tensor, confusion: Optional[Tensor], n: int) -> dict:
    s = torch.tensor(subset)
    sub = cov[s][:, s].clone()
    iu = torch.triu_indices(len(s), len(s), 1)
    vals = sub[iu[0], iu[1]]
    top = vals.argsort(descending=True)[:n]
    out = {"covariance": [[subset[int(iu[0, t])], subset[int(iu[1, t])], float(vals[t])] for t in top]}
    if confusion is not None:
        conf = confusion[s][:, s]
        both = (conf + conf.T)[iu[0], iu[1]]
        top = both.argsort(descending=True)[:n]
        out["confusions"] = [[subset[int(iu[0, t])], subset[int(iu[1, t])], int(both[t])] for t in top if both[t] > 0]
    return out
