"""Linear discriminant analysis of spliced frames (Kaldi's ``acc-lda`` / ``est-lda``).

Kaldi's LDA+MLLT systems (``steps/train_lda_mllt.sh``) splice a few frames of
mean-normalized cepstra (e.g. ``left = right = 3``: 7 x 13 = 91 dims), project them to
``dim`` (typically 40) dimensions with LDA, classes being the pdfs of an alignment, and
then refine the projection with MLLT (:mod:`asrdistill.gmm.mllt`).

Maths. With per-class counts :math:`n_c`, sums :math:`s_c` and the total scatter
:math:`S = \\sum_t w_t x_t x_t^T` (:class:`LdaStats`), :math:`N = \\sum_c n_c`,
class means :math:`m_c = s_c / n_c` and global mean :math:`m = \\sum_c s_c / N`:

.. math::

    T = S / N - m m^T                                  (total covariance)
    B = \\sum_c (n_c / N) m_c m_c^T - m m^T            (between-class covariance)
    W = T - B                                          (within-class covariance)

:math:`W = L L^T` (Cholesky), :math:`L^{-1} B L^{-T} = U \\Lambda U^T` with the
eigenvalues in descending order, and the LDA matrix is the first ``dim`` rows of
:math:`U^T L^{-1}`. Its rows :math:`a` solve the generalized eigenproblem
:math:`B a = \\lambda W a` with :math:`a^T W a = 1`, so in the projected space the
within-class covariance is the identity and the between-class covariance is
:math:`\\mathrm{diag}(\\lambda_1 \\ge \\lambda_2 \\ge \\dots)`.

Matrices are affine ``[A | b]`` of shape ``(dim, D + 1)``, applied as ``y = A x + b``
(Kaldi's ``transform-feats``); ``b = 0`` unless ``remove_offset``. Composing transforms
is a matrix product (:func:`compose_affine`); after MLLT the feature transform is
``A_mllt @ [A_lda | b]``.

Example::

    >>> stats = LdaStats.zeros(num_classes=num_pdfs, dim=91)
    >>> for feats, pdfs in utterances:                  # feats (T, 13), pdfs (T,)
    ...     stats.accumulate(splice_frames(feats, 3, 3), pdfs)
    >>> lda = estimate_lda(stats, dim=40)              # (40, 92)
    >>> y = apply_affine(splice_frames(feats, 3, 3), lda)   # (T, 40) float32
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch

from ..features.context_window import splice

log = logging.getLogger(__name__)

ArrayLike = Union[np.ndarray, torch.Tensor]

#: Relative size (times the mean diagonal of ``W``) of the ridge added to a within-class
#: covariance that is not numerically positive definite.
WITHIN_RIDGE = 1e-8


def _as_f64(x: ArrayLike) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().to("cpu", torch.float64)


@dataclass
class LdaStats:
    """Statistics for LDA: per-class zeroth and first order sums and the total scatter.

    Attributes (float64 numpy):
        count: ``(C,)`` weighted frame count per class.
        sum: ``(C, D)`` weighted sum of the frames of each class.
        scatter: ``(D, D)`` weighted sum of ``x x^T`` over all frames (all classes together).

    Statistics of disjoint parts of the data add up (:meth:`add_`), so they can be
    accumulated per job and summed, as Kaldi sums ``lda.*.acc``.

    Example::

        >>> stats = LdaStats.zeros(num_classes=3, dim=2)
        >>> stats.accumulate(torch.randn(100, 2), torch.randint(0, 3, (100,)))
        >>> stats.count.sum()
        100.0
    """

    count: np.ndarray
    sum: np.ndarray
    scatter: np.ndarray

    def __post_init__(self):
        self.count = np.ascontiguousarray(self.count, dtype=np.float64)
        self.sum = np.ascontiguousarray(self.sum, dtype=np.float64)
        self.scatter = np.ascontiguousarray(self.scatter, dtype=np.float64)

    @classmethod
    def zeros(cls, num_classes: int, dim: int) -> "LdaStats":
        return cls(np.zeros(num_classes), np.zeros((num_classes, dim)), np.zeros((dim, dim)))

    @property
    def num_classes(self) -> int:
        return self.count.shape[0]

    @property
    def dim(self) -> int:
        return self.sum.shape[1]

    def accumulate(self, feats: ArrayLike, classes: ArrayLike, weights: Optional[ArrayLike] = None) -> "LdaStats":
        """Add frames ``feats (N, D)`` of classes ``classes (N,)`` (ints in ``[0, C)``).

        ``weights (N,)`` (optional, default 1) weight each frame, e.g. 0 for silence
        frames (Kaldi's ``weight-silence-post 0.0``) or alignment posteriors.
        """
        x = _as_f64(feats)
        c = torch.as_tensor(np.asarray(classes) if not isinstance(classes, torch.Tensor) else classes).to("cpu").long()
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"feats must be (N, {self.dim}), got {tuple(x.shape)}")
        if c.shape != (x.shape[0],):
            raise ValueError(f"classes must be ({x.shape[0]},), got {tuple(c.shape)}")
        if c.numel() and (int(c.min()) < 0 or int(c.max()) >= self.num_classes):
            raise ValueError(f"class ids must be in [0, {self.num_classes}), got [{int(c.min())}, {int(c.max())}]")
        w = torch.ones(x.shape[0], dtype=torch.float64) if weights is None else _as_f64(weights).reshape(-1)
        if w.shape[0] != x.shape[0]:
            raise ValueError(f"weights must be ({x.shape[0]},), got {tuple(w.shape)}")
        wx = w[:, None] * x
        torch.from_numpy(self.count).index_add_(0, c, w)
        torch.from_numpy(self.sum).index_add_(0, c, wx)
        self.scatter += (x.T @ wx).numpy()
        return self

    def add_(self, other: "LdaStats") -> "LdaStats":
        if other.count.shape != self.count.shape or other.sum.shape != self.sum.shape:
            raise ValueError(f"cannot add LDA stats of {other.num_classes} classes x {other.dim} dims "
                             f"to {self.num_classes} x {self.dim}")
        self.count += other.count
        self.sum += other.sum
        self.scatter += other.scatter
        return self

    def covariances(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(mean (D,), total (D, D), between (D, D), within (D, D))``; classes without data are ignored."""
        total_count = float(self.count.sum())
        if total_count <= 0:
            raise ValueError("LDA statistics are empty (total count 0)")
        mean = self.sum.sum(0) / total_count
        total = self.scatter / total_count - np.outer(mean, mean)
        active = self.count > 0
        class_means = self.sum[active] / self.count[active, None]
        between = (class_means.T * (self.count[active] / total_count)) @ class_means - np.outer(mean, mean)
        total = 0.5 * (total + total.T)
        between = 0.5 * (between + between.T)
        return mean, total, between, total - between


def _cholesky_within(within: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(within)
    except np.linalg.LinAlgError:
        pass
    scale = float(np.trace(within)) / within.shape[0]
    if not scale > 0:
        raise ValueError("within-class covariance is zero: every class holds a single point (or no data)")
    ridge = WITHIN_RIDGE * scale
    log.warning("LDA: within-class covariance is not positive definite; adding a ridge of %.3g", ridge)
    try:
        return np.linalg.cholesky(within + ridge * np.eye(within.shape[0]))
    except np.linalg.LinAlgError:
        raise ValueError("within-class covariance is singular even with a ridge "
                         "(constant or linearly dependent feature dimensions?)") from None


def estimate_lda(stats: LdaStats, dim: int, remove_offset: bool = False, allow_large_dim: bool = False) -> np.ndarray:
    """LDA projection ``[A | b]`` of shape ``(dim, D + 1)`` from :class:`LdaStats` (Kaldi's ``est-lda``).

    Args:
        stats: accumulated statistics (``D`` = ``stats.dim``).
        dim: output dimension, ``1 <= dim <= D``.
        remove_offset: if true, ``b = -A m`` so that the projected data have zero mean;
            otherwise ``b = 0``.
        allow_large_dim: the between-class covariance has rank at most ``K - 1`` for
            ``K`` classes with data; ``dim > K - 1`` is an error unless this is set (the
            extra rows are then directions of zero between-class variance, still with
            unit within-class variance).

    Returns:
        float64 ``(dim, D + 1)``; rows ordered by decreasing between-class variance
        (the eigenvalues ``diag(A B A^T)``). ``A W A^T = I``.

    If ``W`` is not numerically positive definite (e.g. a constant feature dimension),
    a ridge of ``WITHIN_RIDGE`` (1e-8) times its mean diagonal is added, with a warning;
    if that does not help, ``ValueError``.
    """
    d = stats.dim
    if not 1 <= dim <= d:
        raise ValueError(f"LDA dim must be in [1, {d}] (the input dimension), got {dim}")
    active = int((stats.count > 0).sum())
    if active < 2:
        raise ValueError(f"LDA needs at least 2 classes with data, got {active}")
    if dim > active - 1 and not allow_large_dim:
        raise ValueError(f"LDA dim {dim} exceeds the rank of the between-class covariance "
                         f"({active} classes with data -> at most {active - 1}); pass allow_large_dim=True to allow it")
    mean, _, between, within = stats.covariances()
    chol = _cholesky_within(within)
    l_inv = np.linalg.solve(chol, np.eye(d))  # L^-1 (lower triangular)
    whitened_between = l_inv @ between @ l_inv.T
    eigvals, eigvecs = np.linalg.eigh(0.5 * (whitened_between + whitened_between.T))
    order = np.argsort(eigvals)[::-1][:dim]
    a = eigvecs[:, order].T @ l_inv
    log.info("LDA: count %.1f, eigenvalues %s; kept %.4g of %.4g", float(stats.count.sum()),
             np.array2string(eigvals[::-1][: min(d, 10)], precision=3), float(eigvals[order].sum()),
             float(eigvals.sum()))
    b = -a @ mean if remove_offset else np.zeros(dim)
    return np.concatenate([a, b[:, None]], axis=1)


def splice_frames(feats: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """``(T, D)`` -> ``(T, D * (left + 1 + right))``: frames ``t - left .. t + right``, concatenated.

    Frames before the first or after the last are copies of the first / last frame
    (Kaldi's ``splice-feats``). This is :func:`asrdistill.features.context_window.splice`.
    """
    if feats.dim() != 2:
        raise ValueError(f"feats must be (T, D), got {tuple(feats.shape)}")
    return splice(feats, left, right)


def apply_affine(feats: torch.Tensor, matrix: ArrayLike) -> torch.Tensor:
    """``y = A x (+ b)`` for every row: ``(N, D)`` -> ``(N, D_out)`` float32 (Kaldi's ``transform-feats``).

    ``matrix`` is ``(D_out, D)`` (linear) or ``(D_out, D + 1)`` (affine, last column ``b``),
    numpy or torch. The result lies on ``feats``' device.
    """
    x = torch.as_tensor(feats)
    m = torch.as_tensor(np.asarray(matrix) if not isinstance(matrix, torch.Tensor) else matrix)
    m = m.to(x.device, torch.float32)
    if x.dim() != 2 or m.dim() != 2:
        raise ValueError(f"feats and matrix must be 2-d, got {tuple(x.shape)} and {tuple(m.shape)}")
    d = x.shape[1]
    x = x.to(torch.float32)
    if m.shape[1] == d:
        return x @ m.T
    if m.shape[1] == d + 1:
        return torch.addmm(m[:, d], x, m[:, :d].T)
    raise ValueError(f"matrix {tuple(m.shape)} does not fit {d}-dim features (needs {d} or {d + 1} columns)")


def compose_affine(outer: ArrayLike, inner: ArrayLike, inner_is_affine: bool = True) -> np.ndarray:
    """The transform ``x -> outer(inner(x))`` (Kaldi's ``compose-transforms``), float64 numpy.

    ``outer`` is linear ``(D_out, D_mid)`` or affine ``(D_out, D_mid + 1)``; ``inner`` is
    ``(D_mid, D_in + 1)`` if ``inner_is_affine`` (default) else ``(D_mid, D_in)``. The
    result is affine ``(D_out, D_in + 1)`` unless both are linear. E.g. MLLT after LDA:
    ``compose_affine(A_mllt, lda)`` equals ``A_mllt @ lda``, shape ``(40, D + 1)``.
    """
    a = np.asarray(outer, dtype=np.float64)
    b = np.asarray(inner, dtype=np.float64)
    d_mid = b.shape[0]
    if a.shape[1] == d_mid:  # linear outer: a plain product keeps inner's offset column
        return a @ b
    if a.shape[1] != d_mid + 1:
        raise ValueError(f"outer {a.shape} does not fit inner {b.shape} (needs {d_mid} or {d_mid + 1} columns)")
    out = a[:, :d_mid] @ b
    if inner_is_affine:
        out[:, -1] += a[:, d_mid]
        return out
    return np.concatenate([out, a[:, d_mid:]], axis=1)
