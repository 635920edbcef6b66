"""Front end of the GMM system: cepstra and deltas computed from the stored fbank.

Diagonal-covariance GMMs model decorrelated features far better than log-mel
filterbanks, so, as Kaldi's GMM recipes use MFCC + deltas, the GMM system applies a
DCT-II to the (mean-normalized) 40-dim fbank, keeps ``num_ceps`` coefficients with
Kaldi's cepstral liftering, and appends deltas and delta-deltas (Kaldi's
``add-deltas``, window 2). Mean normalization commutes with the DCT, so the stored
per-speaker CMVN statistics of the fbank are used (means only). The DNNs use the
fbank itself.

LDA+MLLT systems (``splice_context > 0``, Kaldi's ``train_lda_mllt.sh``) splice the
cepstra (no deltas) over ``+-splice_context`` frames and project them with the model's
affine transform (LDA, then MLLT); SAT systems then apply a per-speaker fMLLR transform
(:class:`GmmFrontEnd`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import numpy as np
import torch


@dataclass
class GmmFeatureConfig:
    num_ceps: int = field(default=13, metadata={"help": "Cepstral coefficients kept (0: use the fbank itself)."})
    cepstral_lifter: float = field(default=22.0, metadata={"help": "Kaldi's cepstral liftering coefficient (0: none)."})
    delta_order: int = field(default=2, metadata={"help": "Append deltas up to this order."})
    delta_window: int = field(default=2, metadata={"help": "Delta window (frames on each side)."})
    splice_context: int = field(
        default=0, metadata={"help": "0: cepstra + deltas; N > 0: cepstra spliced over +-N frames (for LDA+MLLT)."})

    def dim(self, fbank_dim: int) -> int:
        """Dimension of the features before any model transform."""
        base = self.num_ceps if self.num_ceps > 0 else fbank_dim
        if self.splice_context > 0:
            return base * (2 * self.splice_context + 1)
        return base * (self.delta_order + 1)


@lru_cache(maxsize=8)
def _dct_matrix(num_bins: int, num_ceps: int, lifter: float) -> torch.Tensor:
    """Kaldi's DCT (orthonormal DCT-II) with liftering, as a (num_bins, num_ceps) matrix."""
    n = torch.arange(num_bins, dtype=torch.float64)
    k = torch.arange(num_ceps, dtype=torch.float64)
    m = torch.cos(math.pi / num_bins * (n[:, None] + 0.5) * k[None, :]) * math.sqrt(2.0 / num_bins)
    m[:, 0] = math.sqrt(1.0 / num_bins)
    if lifter:
        m = m * (1.0 + 0.5 * lifter * torch.sin(math.pi * k / lifter))[None, :]
    return m.float()


def _deltas(x: torch.Tensor, window: int) -> torch.Tensor:
    t = x.shape[0]
    idx = torch.arange(t)
    num = torch.zeros_like(x)
    for n in range(1, window + 1):  # loop over the window, not frames
        num += n * (x[(idx + n).clamp(max=t - 1)] - x[(idx - n).clamp(min=0)])
    return num / (2 * sum(n * n for n in range(1, window + 1)))


def gmm_features(fbank: np.ndarray, config: GmmFeatureConfig) -> torch.Tensor:
    """``(T, B)`` mean-normalized fbank -> ``(T, config.dim(B))`` float32 GMM features
    (before any model transform: deltas, or spliced cepstra)."""
    x = torch.as_tensor(fbank, dtype=torch.float32)
    if config.num_ceps > 0:
        x = x @ _dct_matrix(x.shape[1], config.num_ceps, config.cepstral_lifter)
    if config.splice_context > 0:
        from .lda import splice_frames

        return splice_frames(x, config.splice_context, config.splice_context)
    out = [x]
    for _ in range(config.delta_order):
        out.append(_deltas(out[-1], config.delta_window))
    return torch.cat(out, dim=1)


@dataclass
class GmmFrontEnd:
    """Features of a GMM system: :func:`gmm_features`, then the model's affine transform
    (LDA+MLLT, ``(D, D_in + 1)``), then a per-speaker fMLLR transform (SAT).

    Args:
        config: the cepstral front end.
        transform: ``(D, D_in)`` or ``(D, D_in + 1)`` matrix applied to the spliced features, or None.

    Example::

        front = GmmFrontEnd(GmmFeatureConfig(splice_context=4), lda_mllt)   # (40, 118)
        x = front(fbank)                       # speaker-independent features, (T, 40)
        x = front(fbank, fmllr=W_speaker)      # adapted, W_speaker (40, 41)
    """

    config: GmmFeatureConfig
    transform: Optional[np.ndarray] = None

    def __call__(self, fbank: np.ndarray, fmllr=None) -> torch.Tensor:
        x = gmm_features(fbank, self.config)
        if self.transform is not None:
            from .lda import apply_affine

            x = apply_affine(x, self.transform)
        if fmllr is not None:
            from .fmllr import apply_fmllr

            x = apply_fmllr(x, fmllr)
        return x
