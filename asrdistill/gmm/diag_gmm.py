"""A set of diagonal-covariance GMMs (one per pdf), vectorized in torch.

Kaldi's ``AmDiagGmm`` evaluates one frame and one pdf per call; here all frames of an
utterance (or a batch) are scored against all Gaussians with one matrix product:

    log N(x; mu, diag(s2)) + log w = g + x . (mu / s2) - 0.5 (x * x) . (1 / s2),
    g = log w - 0.5 (D log 2 pi + sum log s2 + sum mu^2 / s2)

and the pdf log-likelihood is a log-sum-exp over its Gaussians. Parameters are padded
tensors ``(P, G, D)`` (``G`` = most Gaussians of any pdf; padded entries have weight 0
and log-weight -inf). Statistics for Viterbi (alignment-based) training are zeroth,
first and second order sums per Gaussian, accumulated in float64 with ``index_add_``;
the M-step and mixing up follow Kaldi's ``gmm-est`` (minimum occupancy, variance floor,
``split_by_count`` with an occupancy power).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

LOG_2PI = math.log(2 * math.pi)


@dataclass
class GmmStats:
    """Sufficient statistics per Gaussian: ``occ (P, G)``, ``x (P, G, D)``, ``x2 (P, G, D)``, float64."""

    occ: torch.Tensor
    x: torch.Tensor
    x2: torch.Tensor
    log_like: float = 0.0
    frames: int = 0

    @classmethod
    def zeros(cls, num_pdfs: int, num_gauss: int, dim: int) -> "GmmStats":
        z = torch.zeros
        return cls(z(num_pdfs, num_gauss, dtype=torch.float64), z(num_pdfs, num_gauss, dim, dtype=torch.float64),
                   z(num_pdfs, num_gauss, dim, dtype=torch.float64))

    def add_(self, other: "GmmStats") -> "GmmStats":
        self.occ += other.occ
        self.x += other.x
        self.x2 += other.x2
        self.log_like += other.log_like
        self.frames += other.frames
        return self

    def pdf_occupancy(self) -> torch.Tensor:
        return self.occ.sum(1)


class DiagGmmSet:
    """Diagonal GMMs for ``P`` pdfs over ``D``-dimensional features.

    Args:
        weights: ``(P, G)``, rows sum to one over the valid components (0 for padding).
        means: ``(P, G, D)``.
        variances: ``(P, G, D)`` (positive).
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, variances: torch.Tensor):
        if means.shape != variances.shape or weights.shape != means.shape[:2]:
            raise ValueError(f"inconsistent shapes {tuple(weights.shape)}, {tuple(means.shape)}, {tuple(variances.shape)}")
        self.weights = weights.double()
        self.means = means.double()
        self.variances = variances.double()
        self._cache = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def single_gaussian(cls, num_pdfs: int, mean: torch.Tensor, var: torch.Tensor) -> "DiagGmmSet":
        """``num_pdfs`` copies of one Gaussian (a flat start)."""
        d = mean.shape[-1]
        return cls(torch.ones(num_pdfs, 1), mean.reshape(1, 1, d).repeat(num_pdfs, 1, 1),
                   var.reshape(1, 1, d).repeat(num_pdfs, 1, 1))

    @classmethod
    def from_stats(cls, count: torch.Tensor, x: torch.Tensor, x2: torch.Tensor, var_floor: torch.Tensor) -> "DiagGmmSet":
        """One Gaussian per pdf from pooled statistics ``count (P,)``, ``x (P, D)``, ``x2 (P, D)``."""
        count = count.double().clamp(min=1e-10)[:, None]
        mean = x.double() / count
        var = torch.maximum(x2.double() / count - mean * mean, var_floor.double())
        return cls(torch.ones(mean.shape[0], 1), mean[:, None, :], var[:, None, :])

    @property
    def num_pdfs(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[2]

    @property
    def max_gauss(self) -> int:
        return self.means.shape[1]

    def num_gauss(self) -> torch.Tensor:
        """``(P,)`` valid components per pdf."""
        return (self.weights > 0).sum(1)

    def total_gauss(self) -> int:
        return int(self.num_gauss().sum())

    # ----------------------------------------------------------------- likelihoods
    def _params(self):
        if self._cache is None:
            valid = self.weights > 0
            inv_var = 1.0 / self.variances
            logw = torch.where(valid, self.weights.clamp(min=1e-300).log(), torch.full_like(self.weights, -math.inf))
            gconst = logw - 0.5 * (self.dim * LOG_2PI + self.variances.log().sum(2) + (self.means ** 2 * inv_var).sum(2))
            # Flat list of the valid Gaussians: [x, x^2] @ proj + gconst scores all of them at once.
            pdf_of, comp_of = torch.nonzero(valid, as_tuple=True)
            proj = torch.cat([(self.means * inv_var)[pdf_of, comp_of].T, (-0.5 * inv_var)[pdf_of, comp_of].T], 0)
            self._cache = (proj.float(), gconst[pdf_of, comp_of].float(), pdf_of, (self.means * inv_var).float(),
                           (-0.5 * inv_var).float(), gconst.float())
        return self._cache

    def log_likelihoods(self, feats: torch.Tensor, chunk: int = 8192, pdfs: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(T, D)`` -> ``(T, P)`` log-likelihood of every frame under every pdf.

        With ``pdfs`` (pdf ids), only those pdfs' Gaussians are evaluated and every other
        column is ``-inf``: the cost then grows with the pdfs an utterance can use (its
        training graph's), not with the size of the model.
        """
        proj, gconst, pdf_of, _, _, _ = self._params()
        if pdfs is not None:
            keep = torch.zeros(self.num_pdfs, dtype=torch.bool)
            keep[pdfs] = True
            sel = keep[pdf_of]
            proj, gconst, pdf_of = proj[:, sel], gconst[sel], pdf_of[sel]
        out = []
        for s in range(0, feats.shape[0], chunk):
            f = feats[s : s + chunk].float()
            comp = torch.cat([f, f * f], 1) @ proj + gconst  # (B, Gaussians)
            idx = pdf_of[None, :].expand_as(comp)
            top = torch.full((f.shape[0], self.num_pdfs), -math.inf).scatter_reduce_(1, idx, comp, "amax")
            total = torch.zeros(f.shape[0], self.num_pdfs).index_add_(1, pdf_of, (comp - top.gather(1, idx)).exp_())
            out.append(top + total.log_())
        return torch.cat(out) if out else feats.new_zeros(0, self.num_pdfs)

    def log_likelihoods_of(self, feats: torch.Tensor, pdfs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-frame pdfs ``(T,)``: returns (``(T,)`` log-likelihoods, ``(T, G)`` component posteriors)."""
        _, _, _, mean_iv, neg_half_iv, gconst = self._params()
        f = feats.float()
        comp = gconst[pdfs] + torch.einsum("td,tgd->tg", f, mean_iv[pdfs]) + torch.einsum("td,tgd->tg", f * f, neg_half_iv[pdfs])
        ll = torch.logsumexp(comp, dim=1)
        return ll, torch.exp(comp - ll[:, None])

    # ----------------------------------------------------------------- statistics
    def accumulate(self, feats: torch.Tensor, pdfs: torch.Tensor, stats: GmmStats, chunk: int = 16384,
                   stats_feats: Optional[torch.Tensor] = None) -> None:
        """Add Viterbi statistics of frames ``feats (T, D)`` aligned to ``pdfs (T,)``.

        ``stats_feats`` (same frames): accumulate these features with the Gaussian posteriors
        computed on ``feats`` (Kaldi's ``gmm-acc-stats-twofeats``); default ``feats``.
        """
        g, d = self.max_gauss, self.dim
        for s in range(0, feats.shape[0], chunk):
            f, p = feats[s : s + chunk], pdfs[s : s + chunk].long()
            ll, post = self.log_likelihoods_of(f, p)
            post = post.double()
            f64 = (f if stats_feats is None else stats_feats[s : s + chunk]).double()
            flat = (p[:, None] * g + torch.arange(g)[None, :]).reshape(-1)
            stats.occ.view(-1).index_add_(0, flat, post.reshape(-1))
            stats.x.view(-1, d).index_add_(0, flat, (post[:, :, None] * f64[:, None, :]).reshape(-1, d))
            stats.x2.view(-1, d).index_add_(0, flat, (post[:, :, None] * (f64 * f64)[:, None, :]).reshape(-1, d))
            stats.log_like += float(ll.double().sum())
            stats.frames += f.shape[0]

    # ----------------------------------------------------------------- update
    def update(
        self,
        stats: GmmStats,
        min_gaussian_occupancy: float = 10.0,
        min_gaussian_weight: float = 1e-5,
        var_floor: Optional[torch.Tensor] = None,
    ) -> dict:
        """Maximum-likelihood update (Kaldi's ``MleDiagGmmUpdate``); returns counts of what happened.

        Gaussians with occupancy below ``min_gaussian_occupancy`` keep their mean and
        variance; those whose weight falls below ``min_gaussian_weight`` are removed
        (never the last one of a pdf). Pdfs with no data are left unchanged.
        Variances are floored at ``var_floor`` (``(D,)``; default 0.001).
        """
        occ = stats.occ
        pdf_occ = occ.sum(1, keepdim=True)
        valid = self.weights > 0
        has_data = pdf_occ[:, 0] > 0
        new_w = torch.where(has_data[:, None], occ / pdf_occ.clamp(min=1e-300), self.weights)
        new_w = torch.where(valid, new_w, torch.zeros_like(new_w))
        enough = (occ >= min_gaussian_occupancy) & valid
        safe = occ.clamp(min=1e-300)[:, :, None]
        mean = stats.x / safe
        var = stats.x2 / safe - mean * mean
        floor = (var_floor if var_floor is not None else torch.full((self.dim,), 1e-3)).double()
        var = torch.maximum(var, floor)
        self.means = torch.where(enough[:, :, None], mean, self.means)
        self.variances = torch.where(enough[:, :, None], var, self.variances)
        # remove low-weight Gaussians (keep at least the heaviest of each pdf)
        heaviest = torch.nn.functional.one_hot(new_w.argmax(1), self.max_gauss).bool()
        remove = valid & (new_w < min_gaussian_weight) & has_data[:, None] & ~heaviest
        new_w = torch.where(remove, torch.zeros_like(new_w), new_w)
        new_w = new_w / new_w.sum(1, keepdim=True)
        self.weights = new_w
        self._cache = None
        self._compact()
        return {"removed": int(remove.sum()), "not_updated": int((valid & ~enough & has_data[:, None]).sum()),
                "pdfs_without_data": int((~has_data).sum())}

    def _compact(self) -> None:
        """Move valid components first and drop all-padding columns."""
        order = torch.argsort((self.weights > 0).to(torch.int8), dim=1, descending=True, stable=True)
        self.weights = torch.gather(self.weights, 1, order)
        idx = order[:, :, None].expand_as(self.means)
        self.means = torch.gather(self.means, 1, idx)
        self.variances = torch.gather(self.variances, 1, idx)
        g = int(self.num_gauss().max())
        self.weights, self.means, self.variances = self.weights[:, :g], self.means[:, :g], self.variances[:, :g]
        self._cache = None

    def split_targets(self, pdf_occ: torch.Tensor, target_total: int, power: float, min_count: float) -> np.ndarray:
        """Components per pdf after mixing up (Kaldi's ``GetSplitTargets``).

        Each pdf gets a share growing with ``occupancy ** power``; no pdf gets more
        components than ``occupancy / min_count``, none fewer than it has.
        """
        occ = pdf_occ.double().numpy()
        targets = self.num_gauss().numpy().copy()
        total = int(targets.sum())
        heap = [(-(occ[i] ** power) / (targets[i] + 1), i) for i in range(len(occ)) if occ[i] / (targets[i] + 1) >= min_count]
        heapq.heapify(heap)
        while total < target_total and heap:
            _, i = heapq.heappop(heap)
            targets[i] += 1
            total += 1
            if occ[i] / (targets[i] + 1) >= min_count:
                heapq.heappush(heap, (-(occ[i] ** power) / (targets[i] + 1), i))
        return targets

    def mix_up(self, pdf_occ: torch.Tensor, target_total: int, power: float = 0.2, min_count: float = 20.0,
               perturb: float = 0.01) -> int:
        """Split Gaussians until about ``target_total`` in all; returns the new total.

        The heaviest component of a pdf is split in two with half its weight each and
        means moved by ``+/- perturb`` standard deviations (deterministic).
        """
        targets = self.split_targets(pdf_occ, target_total, power, min_count)
        current = self.num_gauss().numpy()
        g_new = int(max(targets.max(), self.max_gauss))
        p, d = self.num_pdfs, self.dim
        w = torch.zeros(p, g_new, dtype=torch.float64)
        m = torch.zeros(p, g_new, d, dtype=torch.float64)
        v = torch.ones(p, g_new, d, dtype=torch.float64)
        w[:, : self.max_gauss], m[:, : self.max_gauss], v[:, : self.max_gauss] = self.weights, self.means, self.variances
        for i in np.nonzero(targets > current)[0]:  # loop over pdfs that grow, not frames
            n = int(current[i])
            while n < targets[i]:
                k = int(torch.argmax(w[i, :n]))
                std = v[i, k].sqrt()
                w[i, k] *= 0.5
                w[i, n], v[i, n] = w[i, k], v[i, k]
                m[i, n] = m[i, k] - perturb * std
                m[i, k] = m[i, k] + perturb * std
                n += 1
        self.weights, self.means, self.variances = w, m, v
        self._cache = None
        return self.total_gauss()

    # ----------------------------------------------------------------- I/O
    def state_dict(self) -> dict:
        return {"weights": self.weights, "means": self.means, "variances": self.variances}

    @classmethod
    def from_state_dict(cls, state: dict) -> "DiagGmmSet":
        return cls(state["weights"], state["means"], state["variances"])

    def to_kaldi(self):
        """The same model as a kaldi-hmm-gmm ``AmDiagGmm`` (for cross-checks and Kaldi tools)."""
        import kaldi_hmm_gmm as khg

        am = khg.AmDiagGmm()
        for p in range(self.num_pdfs):
            valid = self.weights[p] > 0
            n = int(valid.sum())
            gmm = khg.DiagGmm(nmix=n, dim=self.dim)
            gmm.set_weights(self.weights[p, valid].float().numpy())
            gmm.set_invvars_and_means((1.0 / self.variances[p, valid]).float().numpy(), self.means[p, valid].float().numpy())
            gmm.compute_gconsts()
            am.add_pdf(gmm)
        return am
