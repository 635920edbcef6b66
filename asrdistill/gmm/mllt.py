"""MLLT, a.k.a. semi-tied covariance (Gales 1999; Kaldi's ``gmm-acc-mllt`` / ``est-mllt``).

A diagonal-covariance GMM fits decorrelated features best. MLLT finds one square
matrix ``A`` for all Gaussians so that, in the transformed space ``y = A x``, the
Gaussians' covariances are as close to diagonal as the likelihood can tell: the model
is ``N(x; mu_g, A^-1 diag(s2_g) A^-T)`` and, for fixed means and variances, the
auxiliary function of ``A`` is

.. math::

    Q(A) = \\beta \\log |\\det A| - \\frac12 \\sum_i a_i G_i a_i^T,
    \\qquad G_i = \\sum_{t,g} \\gamma_{tg} \\frac{(x_t - \\mu_g)(x_t - \\mu_g)^T}{\\sigma^2_{g,i}}

with ``a_i`` the ``i``-th row of ``A``, ``gamma_tg`` the Gaussian posteriors and
``beta = sum gamma_tg`` (:class:`MlltStats`). ``mu_g`` and ``s2_g`` are those of the
current model in the current (untransformed) space. Gales' row-by-row update maximizes
``Q`` over one row with the others fixed, in closed form:

.. math::

    a_i \\leftarrow c_i G_i^{-1} \\sqrt{\\beta / (c_i G_i^{-1} c_i^T)}

where ``c_i`` is the ``i``-th row of ``det(A) A^{-T}`` (the cofactors of row ``i``;
only its direction matters, so ``A^{-T}``'s row is used). Since ``det A`` is linear in
``a_i`` with coefficients ``c_i``, each row update cannot decrease ``Q``
(:func:`mllt_row_update`); :func:`estimate_mllt` sweeps all rows ``num_iters`` times.

The model then moves to the new space by ``mu_g <- A mu_g`` (:func:`transform_gmm_means`,
Kaldi's ``gmm-transform-means``), variances unchanged until the next EM update
re-estimates them, and the feature transform becomes ``A @ previous`` (e.g.
``A_mllt @ [A_lda | b]``, see :func:`asrdistill.gmm.lda.compose_affine`).

Example::

    >>> stats = MlltStats.zeros(gmm.dim)
    >>> for feats, pdfs in utterances:                  # feats in the model's space
    ...     stats.accumulate_gmm(gmm, feats, pdfs)
    >>> A, gain = estimate_mllt(stats)                  # (D, D), objective gain (total)
    >>> gmm = transform_gmm_means(gmm, A)
    >>> transform = compose_affine(A, transform)        # features: apply_affine(spliced, transform)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch

from .diag_gmm import DiagGmmSet

log = logging.getLogger(__name__)

ArrayLike = Union[np.ndarray, torch.Tensor]

#: Elements (pairs x D x D) of the outer-product block built per chunk: bounds memory (32 MiB).
_BLOCK_ELEMENTS = 1 << 22


def _f64(x: ArrayLike) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    return x.detach().to("cpu", torch.float64)


@dataclass
class MlltStats:
    """MLLT statistics: total count ``beta`` and ``G (D, D, D)`` float64 numpy.

    ``G[i] = sum_{t,g} gamma_tg (x_t - mu_g)(x_t - mu_g)^T / var_g[i]``, summed over
    frame-Gaussian pairs with weight ``gamma_tg``; ``beta = sum gamma_tg``. Statistics of
    disjoint data add up (:meth:`add_`).

    Example::

        >>> stats = MlltStats.zeros(3)
        >>> x = torch.randn(100, 3)
        >>> stats.accumulate(x, torch.zeros(100, 3), torch.ones(100, 3), torch.ones(100))
        >>> stats.beta, stats.G.shape
        (100.0, (3, 3, 3))
    """

    beta: float
    G: np.ndarray

    def __post_init__(self):
        self.beta = float(self.beta)
        self.G = np.ascontiguousarray(self.G, dtype=np.float64)

    @classmethod
    def zeros(cls, dim: int) -> "MlltStats":
        return cls(0.0, np.zeros((dim, dim, dim)))

    @property
    def dim(self) -> int:
        return self.G.shape[0]

    def add_(self, other: "MlltStats") -> "MlltStats":
        if other.G.shape != self.G.shape:
            raise ValueError(f"cannot add MLLT stats of dim {other.dim} to dim {self.dim}")
        self.beta += other.beta
        self.G += other.G
        return self

    def accumulate(self, feats: ArrayLike, means: ArrayLike, variances: ArrayLike, weights: ArrayLike) -> "MlltStats":
        """Add frame-Gaussian pairs: ``feats``, ``means``, ``variances`` ``(N, D)``, ``weights (N,)``.

        Row ``n`` is one pair: frame ``feats[n]`` against a Gaussian with mean
        ``means[n]`` and diagonal variance ``variances[n]``, weighted ``weights[n]``.
        """
        x, mu, var, w = _f64(feats), _f64(means), _f64(variances), _f64(weights).reshape(-1)
        d = self.dim
        if x.dim() != 2 or x.shape[1] != d or mu.shape != x.shape or var.shape != x.shape or w.shape != x.shape[:1]:
            raise ValueError(f"expected feats, means, variances (N, {d}) and weights (N,), got {tuple(x.shape)}, "
                             f"{tuple(mu.shape)}, {tuple(var.shape)}, {tuple(w.shape)}")
        self._add_pairs(x - mu, w[:, None] / var, w)
        return self

    def _add_pairs(self, diff: torch.Tensor, scale: torch.Tensor, w: torch.Tensor) -> None:
        """``G[i] += sum_n scale[n, i] diff[n] diff[n]^T``; ``beta += sum w``.

        One matrix product per chunk: ``scale^T (D, n) @ outer (n, D * D)``. (Building only
        the upper triangles by index gathering would halve the product but is slower.)
        """
        d = self.dim
        acc = torch.zeros(d, d * d, dtype=torch.float64)
        step = max(1, _BLOCK_ELEMENTS // (d * d))
        for s in range(0, diff.shape[0], step):  # chunks of pairs: bounded memory
            df = diff[s : s + step]
            acc.addmm_(scale[s : s + step].T, (df[:, :, None] * df[:, None, :]).reshape(df.shape[0], d * d))
        acc = acc.reshape(d, d, d)
        self.G += (0.5 * (acc + acc.transpose(1, 2))).numpy()
        self.beta += float(w.sum())

    def accumulate_gmm(self, gmm: DiagGmmSet, feats: torch.Tensor, pdfs: torch.Tensor,
                       weights: Optional[ArrayLike] = None, min_posterior: float = 0.0,
                       rand_prune: float = 0.0, generator: Optional[torch.Generator] = None,
                       max_pairs: int = 32768) -> float:
        """Add frames ``feats (N, D)`` aligned to ``pdfs (N,)`` of ``gmm`` (Kaldi's ``gmm-acc-mllt``).

        Each frame contributes every Gaussian of its pdf with the posterior of that
        Gaussian within the pdf (:meth:`DiagGmmSet.log_likelihoods_of`), times
        ``weights[n]`` (optional, default 1: e.g. 0 for silence frames). Pairs whose
        weighted posterior is ``<= min_posterior`` are skipped (padding components
        always are). Frames are processed in chunks of about ``max_pairs`` pairs.

        The cost is about ``D^3`` multiply-adds per pair. ``rand_prune > 0`` (Kaldi's
        ``--rand-prune``, 4.0 in ``train_lda_mllt.sh``) prunes randomly without bias: a
        weighted posterior ``p < rand_prune`` becomes ``rand_prune`` with probability
        ``p / rand_prune`` and 0 otherwise (drawn from ``generator``), so that only about
        ``sum p / rand_prune`` such pairs are kept.

        Returns:
            the weighted total log-likelihood of the frames under their pdfs.
        """
        if feats.dim() != 2 or feats.shape[1] != self.dim or gmm.dim != self.dim:
            raise ValueError(f"feats {tuple(feats.shape)} and a {gmm.dim}-dim GMM do not fit {self.dim}-dim stats")
        pdfs = torch.as_tensor(pdfs).long().reshape(-1)
        if pdfs.shape[0] != feats.shape[0]:
            raise ValueError(f"pdfs must be ({feats.shape[0]},), got {tuple(pdfs.shape)}")
        w_all = None if weights is None else _f64(weights).reshape(-1)
        if w_all is not None and w_all.shape[0] != feats.shape[0]:
            raise ValueError(f"weights must be ({feats.shape[0]},), got {tuple(w_all.shape)}")
        chunk = max(1, max_pairs // max(1, gmm.max_gauss))
        total_ll = 0.0
        for s in range(0, feats.shape[0], chunk):
            f, p = feats[s : s + chunk], pdfs[s : s + chunk]
            ll, post = gmm.log_likelihoods_of(f, p)
            post = post.double()
            ll = ll.double()
            if w_all is not None:
                w = w_all[s : s + chunk]
                post = post * w[:, None]
                ll = ll * w
            total_ll += float(ll.sum())
            if rand_prune > 0:
                draw = torch.rand(post.shape, generator=generator, dtype=torch.float64) * rand_prune
                post = torch.where(post < rand_prune, torch.where(draw < post, rand_prune, 0.0), post)
            t_idx, g_idx = torch.nonzero(post > min_posterior, as_tuple=True)
            if t_idx.numel() == 0:
                continue
            pair_pdf = p[t_idx]
            gamma = post[t_idx, g_idx]
            diff = f.double()[t_idx] - gmm.means[pair_pdf, g_idx]
            self._add_pairs(diff, gamma[:, None] / gmm.variances[pair_pdf, g_idx], gamma)
        return total_ll


def mllt_objective(stats: MlltStats, A: ArrayLike) -> float:
    """``Q(A) = beta log|det A| - 0.5 sum_i a_i G_i a_i^T`` (up to a constant independent of ``A``)."""
    a = np.asarray(A, dtype=np.float64)
    sign, logdet = np.linalg.slogdet(a)
    if sign == 0:
        return -np.inf
    return float(stats.beta * logdet - 0.5 * np.einsum("id,ide,ie->", a, stats.G, a))


def _inverse_g(stats: MlltStats) -> np.ndarray:
    try:
        chol = np.linalg.cholesky(stats.G)  # (D, D, D): one factor per row's G_i
    except np.linalg.LinAlgError:
        raise ValueError("MLLT statistics G_i are not positive definite (too little data, or a constant "
                         "feature dimension?)") from None
    eye = np.broadcast_to(np.eye(stats.dim), stats.G.shape)
    l_inv = np.linalg.solve(chol, eye)
    return np.einsum("kji,kjl->kil", l_inv, l_inv)  # G_i^-1 = L^-T L^-1


def mllt_row_update(stats: MlltStats, A: np.ndarray, row: int, g_inv: Optional[np.ndarray] = None) -> float:
    """Replace row ``row`` of ``A`` (float64, in place) by its optimum given the other rows.

    ``g_inv`` is ``(D, D, D)`` with the inverses of ``stats.G[i]`` (computed if not given).
    Returns the change of :func:`mllt_objective`, which is ``>= 0`` up to rounding.
    """
    g = stats.G[row]
    gi = _inverse_g(stats)[row] if g_inv is None else g_inv[row]
    e = np.zeros(A.shape[0])
    e[row] = 1.0
    c = np.linalg.solve(A, e)  # column `row` of A^-1 = row `row` of A^-T: the cofactors up to det(A)
    a_old = A[row].copy()
    a_new = gi @ c * np.sqrt(stats.beta / float(c @ gi @ c))
    # det A is linear in the row with coefficients det(A) c, so log|det| changes by log|a . c| (a_old . c = 1).
    before = stats.beta * np.log(abs(float(a_old @ c))) - 0.5 * float(a_old @ g @ a_old)
    after = stats.beta * np.log(abs(float(a_new @ c))) - 0.5 * float(a_new @ g @ a_new)
    A[row] = a_new
    return after - before


def estimate_mllt(stats: MlltStats, num_iters: int = 100, init: Optional[ArrayLike] = None) -> Tuple[np.ndarray, float]:
    """Maximize :func:`mllt_objective` by Gales' row-by-row updates (Kaldi's ``est-mllt``).

    Args:
        stats: accumulated :class:`MlltStats` (``G_i`` must be positive definite).
        num_iters: sweeps over all rows (Kaldi uses 200; the objective converges fast).
        init: starting ``(D, D)`` matrix (nonsingular); default the identity.

    Returns:
        ``(A, improvement)``: ``A`` float64 ``(D, D)`` and the total (not per-frame)
        objective increase ``Q(A) - Q(init)``, ``>= 0``.

    Raises:
        ValueError: singular ``init`` or ``G_i`` not positive definite.
        RuntimeError: a row update decreased the objective (numerical trouble).
    """
    d = stats.dim
    if stats.beta <= 0:
        raise ValueError("MLLT statistics are empty (beta = 0)")
    if stats.beta < 10 * d:
        log.warning("MLLT: very small count %.1f for dimension %d", stats.beta, d)
    A = np.eye(d) if init is None else np.array(init, dtype=np.float64)
    if A.shape != (d, d):
        raise ValueError(f"init must be ({d}, {d}), got {A.shape}")
    if np.linalg.matrix_rank(A) < d:
        raise ValueError("init must be nonsingular")
    g_inv = _inverse_g(stats)
    start = mllt_objective(stats, A)
    for it in range(num_iters):
        for i in range(d):
            change = mllt_row_update(stats, A, i, g_inv)
            if change < -1e-5 * abs(start) - 1e-8:
                raise RuntimeError(f"MLLT objective decreased by {-change:.4g} (iteration {it}, row {i})")
    improvement = mllt_objective(stats, A) - start
    log.info("MLLT: objective improvement %.4f per frame over %.1f frames", improvement / stats.beta, stats.beta)
    return A, improvement


def transform_gmm_means(gmm: DiagGmmSet, A: ArrayLike) -> DiagGmmSet:
    """A new :class:`DiagGmmSet` with every mean ``mu <- A mu (+ b)`` (Kaldi's ``gmm-transform-means``).

    ``A`` is ``(D, D)`` or affine ``(D, D + 1)``. Weights and variances are copied
    unchanged; the next EM update re-estimates the variances in the new space.
    """
    m = _f64(A)
    d = gmm.dim
    if m.shape not in ((d, d), (d, d + 1)):
        raise ValueError(f"transform must be ({d}, {d}) or ({d}, {d + 1}), got {tuple(m.shape)}")
    means = gmm.means @ m[:, :d].T
    if m.shape[1] == d + 1:
        means = means + m[:, d]
    return DiagGmmSet(gmm.weights.clone(), means, gmm.variances.clone())
