"""Perturbing context windows of log-mel features, for a transfer set the teacher labels on the fly.

Distilling on perturbed inputs (the online teacher labels exactly what the student sees)
teaches the student the teacher's function on a neighbourhood of the training data, not
only at the training frames. Two perturbations, both vectorized over the batch:

* **Mel-axis warp** (VTLP-like): every window gets a factor :math:`\\alpha` drawn uniformly
  from ``[1 - w, 1 + w]``; channel ``i`` of each of its frames is replaced by the value at
  position :math:`i \\alpha` of the frame's mel spectrum (linear interpolation, clamped to
  the last channel), a stretch of the spectral envelope as a longer or shorter vocal tract
  would give.
* **Gaussian noise** of standard deviation ``sigma`` (features are CMVN-normalized, so in
  units of each channel's standard deviation).

Imports torch only.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def warp_mel_windows(x: Tensor, feature_dim: int, max_warp: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """Warp the mel axis of every window by its own random factor.

    Args:
        x: ``(..., F * feature_dim)`` context windows (frames concatenated).
        feature_dim: mel channels per frame ``D``.
        max_warp: ``w``; factors are uniform in ``[1 - w, 1 + w]`` (0: unchanged).

    Returns:
        ``x``'s shape.

    Example::

        >>> x = torch.arange(8.0).repeat(3, 2)          # 3 windows of 2 frames x 4 channels
        >>> warp_mel_windows(x, 4, 0.0).equal(x)
        True
    """
    if max_warp <= 0:
        return x
    shape = x.shape
    frames = x.reshape(-1, shape[-1] // feature_dim, feature_dim)  # (W, F, D)
    alpha = 1 + max_warp * (2 * torch.rand(frames.shape[0], 1, generator=generator) - 1)  # (W, 1)
    pos = (torch.arange(feature_dim, dtype=torch.float32) * alpha).clamp(max=feature_dim - 1).to(x.device)  # (W, D)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=feature_dim - 1)
    frac = (pos - lo).to(x.dtype)[:, None, :]
    idx = lambda i: i[:, None, :].expand(-1, frames.shape[1], -1)  # noqa: E731
    out = torch.gather(frames, 2, idx(lo)) * (1 - frac) + torch.gather(frames, 2, idx(hi)) * frac
    return out.reshape(shape)


def perturb_windows(x: Tensor, feature_dim: int, max_warp: float = 0.0, noise: float = 0.0,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """Mel-axis warp, then Gaussian noise (see the module doc); ``x``'s shape."""
    x = warp_mel_windows(x, feature_dim, max_warp, generator)
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
    return x
