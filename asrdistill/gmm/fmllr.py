"""Per-speaker fMLLR (constrained MLLR, CMLLR) for diagonal-covariance GMMs.

This is Kaldi's global fMLLR (``FmllrDiagGmmAccs`` and ``ComputeFmllrMatrixDiagGmmFull``
in ``src/transform/fmllr-diag-gmm.cc``), written in torch/numpy. A speaker's features
``x`` are mapped by an affine transform

    x' = A x + b = W xi,     W = [A  b]  (D, D+1),     xi = [x; 1]  (D+1,)

chosen to maximize the likelihood of the adapted features under the (speaker
independent or SAT) model, including the Jacobian term ``log |det A|``. For a diagonal
model with Gaussian ``m`` (mean ``mu_m``, variance ``s2_m``) and posteriors
``gamma_m(t)``, the auxiliary function is (up to a constant)

    Q(W) = beta log|det A| + sum_i ( w_i . k_i  -  0.5 w_i G_i w_i^T )

where ``w_i`` is row ``i`` of ``W`` and the sufficient statistics are

    beta = sum_{t,m} gamma_m(t)                                   (total occupancy)
    K    = sum_{t,m} gamma_m(t) (mu_m / s2_m) xi(t)^T              (D, D+1)
    G_i  = sum_{t,m} gamma_m(t) / s2_{m,i} xi(t) xi(t)^T           (D+1, D+1), i < D

The maximization is Gales' row-by-row update (M. J. F. Gales, "Maximum likelihood
linear transformations for HMM-based speech recognition", 1998): with ``p_i`` the row
``i`` of the cofactor matrix of ``A`` extended by a 0, the optimum of ``Q`` in ``w_i``
(other rows fixed) is ``w_i = (alpha p_i + k_i) G_i^{-1}`` where ``alpha`` solves
``e1 alpha^2 + e2 alpha - beta = 0`` with ``e1 = p_i G_i^{-1} p_i^T``,
``e2 = p_i G_i^{-1} k_i^T``; of the two roots the one with the larger auxiliary
function is taken. Each row update maximizes ``Q`` over that row exactly, so ``Q`` never
decreases (it is also checked, and a row update that would lower it is refused).

Typical use (speaker adaptive training, Kaldi's ``steps/train_sat.sh``)::

    stats = FmllrStats.zeros(gmm.dim)
    for feats, pdfs, weights in utterances_of(speaker):     # weights: 0 on silence
        stats.accumulate_gmm(gmm, feats, pdfs, weights)
    W, impr, count = estimate_fmllr(stats)
    adapted = apply_fmllr(feats, W)
"""

from __future__ import annotations

import logging
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from asrdistill.gmm.diag_gmm import DiagGmmSet
from asrdistill.utils.atomic import atomic_path

log = logging.getLogger(__name__)

__all__ = [
    "FmllrStats",
    "fmllr_auxf",
    "fmllr_auxf_gradient",
    "estimate_fmllr",
    "apply_fmllr",
    "compose_fmllr",
    "fmllr_logdet",
    "identity_fmllr",
    "SpeakerTransforms",
    "DEFAULT_MIN_COUNT",
]

#: Kaldi's ``FmllrOptions::min_count`` (``--fmllr-min-count``): speakers with less
#: occupancy than this keep their input (identity) transform.
DEFAULT_MIN_COUNT = 500.0

ArrayLike = Union[np.ndarray, torch.Tensor]


@dataclass
class FmllrOptions:
    """How a SAT system estimates per-speaker fMLLR (training, alignment, decoding).

    ``silence_weight``: weight of silence frames in the statistics (Kaldi: 0);
    ``update_iters``: row-update sweeps; ``min_count``: speakers with fewer (weighted)
    frames keep the identity.
    """

    silence_weight: float = 0.0
    update_iters: int = 40
    min_count: float = DEFAULT_MIN_COUNT


def _np64(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def identity_fmllr(dim: int) -> torch.Tensor:
    """The unit transform ``[I | 0]``, ``(dim, dim+1)`` float64."""
    w = torch.zeros(dim, dim + 1, dtype=torch.float64)
    w[:, :dim] = torch.eye(dim, dtype=torch.float64)
    return w


# ============================================================================ stats
@dataclass
class FmllrStats:
    """Sufficient statistics for estimating one fMLLR transform (Kaldi's ``AffineXformStats``).

    Attributes:
        beta: total occupancy ``sum gamma`` (float).
        K: ``(D, D+1)`` float64, ``sum gamma (mu / s2) xi^T``.
        G: ``(D, D+1, D+1)`` float64, ``G[i] = sum gamma / s2_i xi xi^T`` (symmetric).

    ``xi = [x; 1]`` is the extended feature vector of the features the transform will be
    applied to. Statistics of disjoint data add up (:meth:`add_`), so they can be
    accumulated per utterance, per shard or per worker and summed per speaker.

    Example::

        >>> stats = FmllrStats.zeros(13)
        >>> stats.accumulate_gmm(gmm, feats, pdfs)            # feats (N, 13), pdfs (N,)
        >>> W, impr_per_frame, count = estimate_fmllr(stats)
    """

    beta: float
    K: torch.Tensor
    G: torch.Tensor

    @classmethod
    def zeros(cls, dim: int) -> "FmllrStats":
        """Empty statistics for ``dim``-dimensional features."""
        return cls(0.0, torch.zeros(dim, dim + 1, dtype=torch.float64),
                   torch.zeros(dim, dim + 1, dim + 1, dtype=torch.float64))

    @property
    def dim(self) -> int:
        return self.K.shape[0]

    def add_(self, other: "FmllrStats") -> "FmllrStats":
        """In-place sum with the statistics of other data; returns ``self``."""
        if other.K.shape != self.K.shape:
            raise ValueError(f"fMLLR stats of dimension {other.dim} added to stats of dimension {self.dim}")
        self.beta += float(other.beta)
        self.K += other.K
        self.G += other.G
        return self

    # ------------------------------------------------------------------ core
    def _accumulate_frames(self, feats: torch.Tensor, a: torch.Tensor, b: torch.Tensor, count: torch.Tensor,
                           chunk: int) -> None:
        """Add per-frame terms: ``K += a xi^T``, ``G_i += b_i xi xi^T``, ``beta += sum count``.

        ``a = sum_m gamma_m mu_m / s2_m``, ``b = sum_m gamma_m / s2_m`` (both ``(N, D)``,
        float64) summarize all Gaussians of a frame, as Kaldi's ``SingleFrameStats``.
        ``G`` is one batched matrix product per chunk, ``G_i += (b_i * xi)^T xi``; chunks
        are capped at about 4M elements of temporary storage (32 MB).
        """
        d = self.dim
        if feats.ndim != 2 or feats.shape[1] != d:
            raise ValueError(f"features of shape {tuple(feats.shape)} for fMLLR stats of dimension {d}")
        chunk = max(16, min(chunk, 4_000_000 // (d * (d + 1))))
        g = torch.zeros(d, d + 1, d + 1, dtype=torch.float64)
        for s in range(0, feats.shape[0], chunk):
            x = feats[s : s + chunk].double()
            xi = torch.cat([x, x.new_ones(x.shape[0], 1)], 1)  # (B, D+1)
            self.K += a[s : s + chunk].T @ xi
            g += torch.matmul(b[s : s + chunk].T[:, None, :] * xi.T[None], xi)  # (D, D+1, D+1)
        self.G += 0.5 * (g + g.transpose(1, 2))
        self.beta += float(count.sum())

    # ------------------------------------------------------------------ public
    def accumulate(self, feats: torch.Tensor, means: torch.Tensor, variances: torch.Tensor,
                   weights: Optional[torch.Tensor] = None, chunk: int = 4096) -> None:
        """Add statistics of frame-Gaussian pairs with given occupancies.

        Row ``n`` pairs frame ``feats[n]`` with the Gaussian ``N(means[n], diag(variances[n]))``
        with occupancy ``weights[n]`` (a frame occupying several Gaussians appears on
        several rows). Use this when Gaussian posteriors are known (Kaldi's
        ``gmm-est-fmllr-gpost``) or, with weight 1, for hard assignments.

        Args:
            feats: ``(N, D)`` features in the space the transform is applied to.
            means: ``(N, D)`` Gaussian means.
            variances: ``(N, D)`` Gaussian variances (positive).
            weights: ``(N,)`` occupancies ``gamma``; default all ones.
            chunk: frames per matrix product (memory ``~ chunk * D^2 / 2`` doubles).
        """
        n = feats.shape[0]
        if means.shape != feats.shape or variances.shape != feats.shape:
            raise ValueError(f"feats {tuple(feats.shape)}, means {tuple(means.shape)} and variances "
                             f"{tuple(variances.shape)} must have the same shape")
        w = torch.ones(n, dtype=torch.float64) if weights is None else weights.double().reshape(n)
        inv_var = 1.0 / variances.double()
        b = w[:, None] * inv_var
        self._accumulate_frames(feats, b * means.double(), b, w, chunk)

    def accumulate_gmm(self, gmm: DiagGmmSet, feats: torch.Tensor, pdfs: torch.Tensor,
                       weights: Optional[torch.Tensor] = None, post_feats: Optional[torch.Tensor] = None,
                       post_gmm: Optional[DiagGmmSet] = None, chunk: int = 4096) -> float:
        """Add statistics of frames aligned to pdfs (Kaldi's ``AccumulateForGmm``).

        For frame ``t`` with pdf ``pdfs[t]`` the Gaussian posteriors ``gamma_m(t)`` within
        that pdf are computed (on ``post_feats`` under ``post_gmm``, by default on
        ``feats`` under ``gmm``), scaled by ``weights[t]``, and statistics are added with
        ``gmm``'s means and variances and the features ``feats``.

        Which features to pass:

        * ``feats`` are always the features the *estimated* transform will be applied to
          (the speaker-independent features when estimating a transform from scratch;
          the currently adapted features when estimating an incremental transform that
          is then composed with the current one, as ``train_sat.sh`` does).
        * Kaldi's ``gmm-est-fmllr`` computes the posteriors on those same features; that is
          the default. ``post_feats`` (same frames, possibly another space, e.g. features
          adapted with a previous transform) and ``post_gmm`` (a model matching ``gmm``
          Gaussian for Gaussian, e.g. the speaker-independent alignment model
          ``final.alimdl`` on speaker-independent features, as ``align_fmllr.sh`` does
          through ``gmm-post-to-gpost`` + ``gmm-est-fmllr-gpost``) change only where the
          posteriors come from.

        Args:
            gmm: the model whose Gaussians define the statistics.
            feats: ``(N, D)`` features (any float dtype).
            pdfs: ``(N,)`` pdf id of every frame (e.g. from a Viterbi alignment).
            weights: ``(N,)`` frame weights (e.g. 0 for silence, ``weight-silence-post``);
                default 1. Frames of weight 0 are skipped.
            post_feats: ``(N, D')`` features on which posteriors are computed.
            post_gmm: model for the posteriors; must have ``gmm``'s Gaussian layout.
            chunk: frames per batch.

        Returns:
            The weighted total log-likelihood ``sum_t weights[t] log p(post_feats[t] | pdfs[t])``
            of the posterior model (a diagnostic).
        """
        n = feats.shape[0]
        if pdfs.shape[0] != n:
            raise ValueError(f"{n} frames but {pdfs.shape[0]} pdf ids")
        if gmm.dim != self.dim:
            raise ValueError(f"GMM of dimension {gmm.dim} for fMLLR stats of dimension {self.dim}")
        pgmm = gmm if post_gmm is None else post_gmm
        if pgmm.weights.shape != gmm.weights.shape:
            raise ValueError(f"post_gmm has Gaussian layout {tuple(pgmm.weights.shape)}, "
                             f"gmm has {tuple(gmm.weights.shape)}; they must match Gaussian for Gaussian")
        pfeats = feats if post_feats is None else post_feats
        if pfeats.shape[0] != n:
            raise ValueError(f"{n} frames but post_feats has {pfeats.shape[0]}")
        pdfs = pdfs.long()
        w = torch.ones(n, dtype=torch.float64) if weights is None else weights.double().reshape(n)
        keep = w != 0
        if not bool(keep.all()):
            feats, pfeats, pdfs, w = feats[keep], pfeats[keep], pdfs[keep], w[keep]
        inv_var = 1.0 / gmm.variances  # (P, G, D) float64
        mean_iv = gmm.means * inv_var
        total_ll = 0.0
        for s in range(0, feats.shape[0], chunk):
            p = pdfs[s : s + chunk]
            ll, post = pgmm.log_likelihoods_of(pfeats[s : s + chunk], p)
            gamma = post.double() * w[s : s + chunk, None]  # (B, G); padded components have 0
            a = torch.einsum("bg,bgd->bd", gamma, mean_iv[p])
            b = torch.einsum("bg,bgd->bd", gamma, inv_var[p])
            self._accumulate_frames(feats[s : s + chunk], a, b, gamma.sum(1), chunk)
            total_ll += float((ll.double() * w[s : s + chunk]).sum())
        return total_ll

    # ------------------------------------------------------------------ I/O
    def state_dict(self) -> dict:
        return {"beta": self.beta, "K": self.K, "G": self.G}

    @classmethod
    def from_state_dict(cls, state: Mapping) -> "FmllrStats":
        return cls(float(state["beta"]), torch.as_tensor(state["K"]).double(), torch.as_tensor(state["G"]).double())


# ============================================================================ auxf
def _auxf_np(beta: float, K: np.ndarray, G: np.ndarray, W: np.ndarray) -> float:
    d = K.shape[0]
    sign, logdet = np.linalg.slogdet(W[:, :d])
    if sign == 0:
        return -math.inf
    quad = np.einsum("ij,ijk,ik->", W, G, W)
    return float(beta * logdet + np.sum(W * K) - 0.5 * quad)


def fmllr_auxf(stats: FmllrStats, W: ArrayLike) -> float:
    """fMLLR auxiliary function of transform ``W`` (Kaldi's ``FmllrAuxFuncDiagGmm``).

    .. math::
        Q(W) = \\beta \\log|\\det A| + \\sum_i \\left(w_i k_i^T - \\tfrac12 w_i G_i w_i^T\\right),
        \\qquad W = [A\\ b]

    This is the log-likelihood of the adapted data, up to a term that does not depend
    on ``W``. Returns ``-inf`` for a singular ``A``.

    Args:
        stats: accumulated :class:`FmllrStats` (dimension ``D``).
        W: ``(D, D+1)`` transform.
    """
    return _auxf_np(stats.beta, _np64(stats.K), _np64(stats.G), _np64(W))


def fmllr_auxf_gradient(stats: FmllrStats, W: ArrayLike) -> np.ndarray:
    """``dQ/dW = beta [A^{-T} | 0] + K - [w_i G_i]_i``, ``(D, D+1)`` (Kaldi's ``FmllrAuxfGradient``)."""
    W = _np64(W)
    d = W.shape[0]
    grad = _np64(stats.K) - np.einsum("ijk,ik->ij", _np64(stats.G), W)
    grad[:, :d] += stats.beta * np.linalg.inv(W[:, :d]).T
    return grad


# ============================================================================ update
def _update_row(W: np.ndarray, inv_G: np.ndarray, k: np.ndarray, beta: float, row: int,
                inv_a_col: Optional[np.ndarray] = None) -> np.ndarray:
    """Gales' optimal update of row ``row`` of ``W`` with the other rows fixed.

    Args:
        W: ``(D, D+1)`` float64 current transform (not modified).
        inv_G: ``(D+1, D+1)`` inverse of ``G[row]``.
        k: ``(D+1,)`` row ``row`` of ``K``.
        beta: total occupancy.
        row: the row to update.
        inv_a_col: column ``row`` of ``A^{-1}`` if already computed.

    Returns:
        The new row ``(D+1,)``. The cofactor row is taken as column ``row`` of
        ``A^{-1}`` (the cofactors divided by ``det A``; the scale does not change the
        optimum), extended with 0 for the offset.
    """
    d = W.shape[0]
    if inv_a_col is None:
        inv_a_col = np.linalg.solve(W[:, :d], np.eye(d)[:, row])
    p = np.zeros(d + 1)
    p[:d] = inv_a_col  # row `row` of A^{-T}
    p_ig = inv_G @ p
    e1 = float(p_ig @ p)
    e2 = float(p_ig @ k)
    discr = math.sqrt(e2 * e2 + 4.0 * e1 * beta)
    best, best_auxf = None, -math.inf
    for alpha in ((-e2 + discr) / (2.0 * e1), (-e2 - discr) / (2.0 * e1)):
        lin = abs(alpha * e1 + e2)
        auxf = beta * math.log(lin) - 0.5 * alpha * alpha * e1 if lin > 0 else -math.inf
        if best is None or auxf > best_auxf:
            best, best_auxf = alpha, auxf
    return inv_G @ (best * p + k)


def _row_auxf_terms(w: np.ndarray, k: np.ndarray, G: np.ndarray) -> float:
    return float(w @ k - 0.5 * (w @ G @ w))


def estimate_fmllr(
    stats: FmllrStats,
    num_iters: int = 40,
    init: Optional[ArrayLike] = None,
    min_count: float = DEFAULT_MIN_COUNT,
    callback: Optional[Callable[[int, int, float], None]] = None,
) -> Tuple[torch.Tensor, float, float]:
    """Estimate a full fMLLR transform by Gales' row-by-row update (Kaldi's ``--fmllr-update-type=full``).

    Starting from ``init`` (default ``[I | 0]``), every iteration updates rows
    ``0 .. D-1`` in turn, each to its exact optimum given the others; the auxiliary
    function :func:`fmllr_auxf` therefore never decreases (a row update that would
    lower it numerically is refused, and if the final value is below the initial one
    ``init`` is returned with improvement 0, as Kaldi does).

    With ``stats.beta < min_count`` (too little data for ``D * (D+1)`` parameters) the
    transform is not estimated: ``init`` (the identity by default) is returned with
    improvement 0, like Kaldi's ``FmllrDiagGmmAccs::Update`` (it warns; we don't).

    Args:
        stats: accumulated statistics of one speaker.
        num_iters: passes over all rows (Kaldi ``--fmllr-num-iters``, default 40).
        init: ``(D, D+1)`` starting transform with non-singular ``A``.
        min_count: minimum occupancy (Kaldi ``--fmllr-min-count``, default 500).
        callback: called as ``callback(iteration, row, auxf)`` after every row
            update (``auxf`` = :func:`fmllr_auxf` of the current transform); for
            diagnostics and tests, it costs an extra ``O(D^3)`` per row.

    Returns:
        ``(W, auxf_improvement_per_frame, count)``: ``W`` ``(D, D+1)`` float64 tensor,
        the auxiliary-function improvement over ``init`` divided by ``beta`` (0 when not
        estimated), and ``count = beta``.

    Example::

        >>> W, impr, count = estimate_fmllr(stats)
        >>> print(f"fMLLR auxf improvement {impr:.3f} per frame over {count:.0f} frames")
    """
    d = stats.dim
    beta = float(stats.beta)
    W0 = identity_fmllr(d).numpy() if init is None else _np64(init).copy()
    if W0.shape != (d, d + 1):
        raise ValueError(f"init has shape {W0.shape}, expected {(d, d + 1)}")
    if beta < min_count or beta <= 0:
        return torch.from_numpy(W0), 0.0, beta
    if np.linalg.matrix_rank(W0[:, :d]) < d:
        raise ValueError("fMLLR init must have a non-singular square part A (e.g. the identity)")
    K, G = _np64(stats.K), _np64(stats.G)
    try:
        inv_G = np.linalg.inv(G)
    except np.linalg.LinAlgError:  # a degenerate dimension (e.g. constant feature): best effort
        inv_G = np.linalg.pinv(G, hermitian=True)
    old_auxf = _auxf_np(beta, K, G, W0)
    W = W0.copy()
    for it in range(num_iters):
        for i in range(d):
            try:
                col = np.linalg.solve(W[:, :d], np.eye(d)[:, i])
                new_row = _update_row(W, inv_G[i], K[i], beta, i, col)
            except (np.linalg.LinAlgError, ValueError, ZeroDivisionError):
                new_row = None
            if new_row is not None and np.all(np.isfinite(new_row)):
                # change of Q: beta log|det A'/det A| + row terms; det A'/det A = w_i' . (A^{-1})[:, i]
                ratio = float(new_row[:d] @ col)
                if ratio != 0.0:
                    delta = (beta * math.log(abs(ratio)) + _row_auxf_terms(new_row, K[i], G[i])
                             - _row_auxf_terms(W[i], K[i], G[i]))
                    if delta >= 0.0:
                        W[i] = new_row
            if callback is not None:
                callback(it, i, _auxf_np(beta, K, G, W))
    new_auxf = _auxf_np(beta, K, G, W)
    impr = new_auxf - old_auxf
    if impr < 0.0 and not math.isclose(new_auxf, old_auxf, rel_tol=1e-6):
        return torch.from_numpy(W0), 0.0, beta
    return torch.from_numpy(W), impr / beta, beta


def estimate_transforms(stats: Mapping[str, FmllrStats], options: FmllrOptions,
                        init: Optional["SpeakerTransforms"] = None):
    """Every speaker's transform from its statistics (:func:`estimate_fmllr` with ``options``).

    ``init``: transforms to start from (e.g. the previous SAT iteration's). Returns
    ``(SpeakerTransforms, auxf improvement per frame over all speakers, frames)``.
    """
    trans = SpeakerTransforms()
    impr_total, frames = 0.0, 0.0
    for spk in sorted(stats):
        w0 = init[spk] if init is not None and spk in init else None
        w, impr, count = estimate_fmllr(stats[spk], num_iters=options.update_iters, init=w0, min_count=options.min_count)
        trans[spk] = w
        impr_total += impr * count
        frames += count
        log.debug("fMLLR for speaker %s: auxf +%.4f per frame over %.0f frames", spk, impr, count)
    return trans, impr_total / max(frames, 1e-10), frames


# ============================================================================ apply
def apply_fmllr(feats: torch.Tensor, W: ArrayLike) -> torch.Tensor:
    """Adapted features ``x' = A x + b`` for ``W = [A b]`` (Kaldi's ``transform-feats``).

    Args:
        feats: ``(N, D)`` features.
        W: ``(D, D+1)`` transform (tensor or array).

    Returns:
        ``(N, D)`` float32. Computed in float64.

    Note: a model scored on adapted features should add ``log|det A|``
    (:func:`fmllr_logdet`) per frame to compare likelihoods across speakers/transforms;
    Viterbi alignment within one speaker does not need it.
    """
    W = torch.as_tensor(W, dtype=torch.float64)
    d = W.shape[0]
    if feats.ndim != 2 or feats.shape[1] != d or W.shape[1] != d + 1:
        raise ValueError(f"cannot apply a {tuple(W.shape)} fMLLR transform to features of shape {tuple(feats.shape)}")
    return torch.addmm(W[:, d], feats.double(), W[:, :d].T).float()


def compose_fmllr(outer: ArrayLike, inner: ArrayLike) -> torch.Tensor:
    """The transform that applies ``inner`` then ``outer`` (Kaldi's ``compose-transforms --b-is-affine``).

    ``[A_o b_o] o [A_i b_i] = [A_o A_i | A_o b_i + b_o]``; so
    ``apply_fmllr(x, compose_fmllr(W2, W1)) == apply_fmllr(apply_fmllr(x, W1), W2)``.
    Both ``(D, D+1)``; returns ``(D, D+1)`` float64.
    """
    o = torch.as_tensor(outer, dtype=torch.float64)
    i = torch.as_tensor(inner, dtype=torch.float64)
    d = o.shape[0]
    if o.shape != (d, d + 1) or i.shape != (d, d + 1):
        raise ValueError(f"cannot compose fMLLR transforms of shapes {tuple(o.shape)} and {tuple(i.shape)}")
    return torch.cat([o[:, :d] @ i[:, :d], (o[:, :d] @ i[:, d] + o[:, d])[:, None]], 1)


def fmllr_logdet(W: ArrayLike) -> float:
    """``log |det A|`` of ``W = [A b]``: the per-frame Jacobian term of the adapted likelihood."""
    W = _np64(W)
    return float(np.linalg.slogdet(W[:, : W.shape[0]])[1])


# ============================================================================ container
class SpeakerTransforms:
    """Per-speaker fMLLR transforms (Kaldi's ``trans.JOB`` tables), with atomic ``.npz`` I/O.

    A mapping ``speaker -> W (D, D+1)`` (float64 tensors, all of one dimension).
    :meth:`apply` raises :class:`KeyError` for a speaker without a transform instead of
    silently using the identity: adapted and unadapted features must not be mixed.

    Example::

        >>> trans = SpeakerTransforms()
        >>> trans["spk1"], impr, count = estimate_fmllr(stats_of["spk1"])
        >>> trans.save("exp/tri3/trans.npz")
        >>> feats_adapted = SpeakerTransforms.load("exp/tri3/trans.npz").apply(feats, "spk1")
    """

    FORMAT_VERSION = 1

    def __init__(self, transforms: Optional[Mapping[str, ArrayLike]] = None, source: Optional[str] = None):
        self._t: Dict[str, torch.Tensor] = {}
        self.source = source  # file it was loaded from (for error messages)
        for spk, w in (transforms or {}).items():
            self[spk] = w

    # ------------------------------------------------------------------ mapping
    @property
    def dim(self) -> Optional[int]:
        return next(iter(self._t.values())).shape[0] if self._t else None

    def __setitem__(self, speaker: str, W: ArrayLike) -> None:
        w = torch.as_tensor(W, dtype=torch.float64).clone()
        d = w.shape[0] if w.ndim == 2 else -1
        if w.ndim != 2 or w.shape[1] != d + 1:
            raise ValueError(f"fMLLR transform for speaker {speaker!r} has shape {tuple(w.shape)}, expected (D, D+1)")
        if self.dim is not None and d != self.dim and not (len(self._t) == 1 and speaker in self._t):
            raise ValueError(f"fMLLR transform for speaker {speaker!r} has dimension {d}, others have {self.dim}")
        self._t[str(speaker)] = w

    def __getitem__(self, speaker: str) -> torch.Tensor:
        try:
            return self._t[speaker]
        except KeyError:
            where = f" in {self.source}" if self.source else ""
            raise KeyError(f"no fMLLR transform for speaker {speaker!r}{where}") from None

    def __contains__(self, speaker: object) -> bool:
        return speaker in self._t

    def __len__(self) -> int:
        return len(self._t)

    def __iter__(self) -> Iterator[str]:
        return iter(self._t)

    def items(self):
        return self._t.items()

    def speakers(self) -> list:
        return list(self._t)

    def apply(self, feats: torch.Tensor, speaker: str) -> torch.Tensor:
        """``(N, D)`` features of ``speaker`` -> adapted ``(N, D)`` float32; ``KeyError`` if absent."""
        return apply_fmllr(feats, self[speaker])

    def compose_(self, outer: "SpeakerTransforms") -> "SpeakerTransforms":
        """Replace every ``W`` by ``outer[spk] o W`` (SAT's incremental transforms); returns ``self``.

        Every speaker here must be in ``outer`` (``KeyError`` otherwise).
        """
        for spk in list(self._t):
            self._t[spk] = compose_fmllr(outer[spk], self._t[spk])
        return self

    # ------------------------------------------------------------------ I/O
    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Write all transforms to ``path`` (``.npz``) atomically (temporary file + rename)."""
        spks = list(self._t)
        d = self.dim or 0
        mats = np.stack([self._t[s].numpy() for s in spks]) if spks else np.zeros((0, d, d + 1))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:  # a file object: numpy must not append ".npz" to the name
                np.savez(f, version=np.int64(self.FORMAT_VERSION), speakers=np.array(spks, dtype=np.str_),
                         transforms=mats.astype(np.float64))

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "SpeakerTransforms":
        """Read a file written by :meth:`save`.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            ValueError: ``path`` is not a valid transforms file (message names it).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"fMLLR transforms file {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                version = int(z["version"])
                spks = [str(s) for s in z["speakers"]]
                mats = np.asarray(z["transforms"], dtype=np.float64)
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError, TypeError) as e:
            raise ValueError(f"{path} is not a valid fMLLR transforms file: {type(e).__name__}: {e}") from e
        if version != cls.FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported fMLLR transforms format version {version}")
        if mats.ndim != 3 or mats.shape[0] != len(spks) or mats.shape[2] != mats.shape[1] + 1:
            raise ValueError(f"{path}: {len(spks)} speakers but transforms of shape {mats.shape}")
        if len(set(spks)) != len(spks):
            raise ValueError(f"{path}: duplicate speaker ids")
        if not np.all(np.isfinite(mats)):
            raise ValueError(f"{path}: non-finite values in fMLLR transforms")
        out = cls(source=str(path))
        for s, m in zip(spks, mats):
            out._t[s] = torch.from_numpy(m.copy())
        return out
