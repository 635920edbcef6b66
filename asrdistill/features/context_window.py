"""Context windows ("splicing"): the input of every frame classifier.

Frame ``t`` of an utterance with features ``x`` of shape ``(T, D)`` becomes the
concatenation

    [x[c(t - L)], ..., x[c(t)], ..., x[c(t + R)]]      (length (L + 1 + R) * D)

with ``c(i) = min(max(i, 0), T - 1)``: frames beyond the utterance's ends replicate the
first or last frame, as Kaldi's ``splice-feats`` does. The paper's networks use
``L = 20``, ``R = 5`` (26 frames; the target is the 21st frame of the window).

The operator works on a *frame store*: the frames of many utterances in one contiguous
``(N, D)`` tensor, with utterance ``u`` occupying rows ``offsets[u]:offsets[u + 1]``.
A minibatch is a vector of global frame indices; its windows are gathered in one
indexing operation on whatever device the store lives on (CPU or CUDA), with no Python
loop over frames. This module imports torch only.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

DEFAULT_LEFT = 20
DEFAULT_RIGHT = 5


def utterance_bounds(offsets: Tensor, frame_index: Tensor) -> Tuple[Tensor, Tensor]:
    """Start and end (exclusive) rows of the utterance holding each frame.

    Args:
        offsets: ``(U + 1,)`` int64, ``offsets[0] = 0``, ``offsets[U] = N``, non-decreasing.
        frame_index: ``(B,)`` int64 global frame indices in ``[0, N)``.

    Returns:
        ``(start, end)``, each ``(B,)`` int64.
    """
    utt = torch.searchsorted(offsets, frame_index, right=True) - 1
    return offsets[utt], offsets[utt + 1]


def context_window_indices(
    frame_index: Tensor, start: Tensor, end: Tensor, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT
) -> Tensor:
    """``(B, L + 1 + R)`` row indices of each frame's window, clamped to its utterance."""
    if left < 0 or right < 0:
        raise ValueError(f"left and right context must be >= 0, got {left}, {right}")
    shifts = torch.arange(-left, right + 1, device=frame_index.device, dtype=frame_index.dtype)
    idx = frame_index[:, None] + shifts[None, :]
    return torch.maximum(torch.minimum(idx, (end - 1)[:, None]), start[:, None])


def gather_context_windows(
    store: Tensor,
    frame_index: Tensor,
    offsets: Tensor,
    left: int = DEFAULT_LEFT,
    right: int = DEFAULT_RIGHT,
) -> Tensor:
    """Windows of frames drawn from many utterances of a frame store.

    Args:
        store: ``(N, D)`` frames of all utterances, any dtype, on any device.
        frame_index: ``(B,)`` int64 global frame indices (same device as ``store``).
        offsets: ``(U + 1,)`` int64 utterance boundaries (see :func:`utterance_bounds`).
        left, right: context frames on each side.

    Returns:
        ``(B, (left + 1 + right) * D)`` tensor of ``store``'s dtype.

    Example::

        >>> store = torch.arange(10.0).reshape(5, 2)        # two utterances: 3 + 2 frames
        >>> offsets = torch.tensor([0, 3, 5])
        >>> gather_context_windows(store, torch.tensor([0, 4]), offsets, left=1, right=1)
        tensor([[0., 1., 0., 1., 2., 3.],
                [6., 7., 8., 9., 8., 9.]])
    """
    if store.dim() != 2:
        raise ValueError(f"store must be (N, D), got {tuple(store.shape)}")
    start, end = utterance_bounds(offsets, frame_index)
    idx = context_window_indices(frame_index, start, end, left, right)
    return store[idx].reshape(frame_index.shape[0], -1)


def splice(feats: Tensor, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT) -> Tensor:
    """Windows of every frame of one utterance: ``(T, D)`` -> ``(T, (left + 1 + right) * D)``."""
    t = feats.shape[0]
    if t == 0:
        return feats.new_zeros(0, (left + 1 + right) * feats.shape[1])
    frames = torch.arange(t, device=feats.device)
    start = torch.zeros_like(frames)
    end = torch.full_like(frames, t)
    idx = context_window_indices(frames, start, end, left, right)
    return feats[idx].reshape(t, -1)


class ContextWindow(nn.Module):
    """Module form of :func:`gather_context_windows` / :func:`splice`.

    Args:
        left: frames of left context (default 20).
        right: frames of right context (default 5).

    Shape:
        - ``forward(feats)``: ``(T, D)`` -> ``(T, W * D)`` with ``W = left + 1 + right``.
        - ``forward(store, frame_index, offsets)``: ``(N, D)``, ``(B,)``, ``(U + 1,)``
          -> ``(B, W * D)``.

    Example::

        >>> cw = ContextWindow(left=20, right=5)
        >>> cw(torch.randn(100, 40)).shape
        torch.Size([100, 1040])
    """

    def __init__(self, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT):
        super().__init__()
        if left < 0 or right < 0:
            raise ValueError(f"left and right context must be >= 0, got {left}, {right}")
        self.left = left
        self.right = right

    @property
    def width(self) -> int:
        return self.left + 1 + self.right

    def output_dim(self, feature_dim: int) -> int:
        return self.width * feature_dim

    def forward(self, feats: Tensor, frame_index: Tensor | None = None, offsets: Tensor | None = None) -> Tensor:
        if frame_index is None:
            return splice(feats, self.left, self.right)
        if offsets is None:
            raise ValueError("offsets are required with frame_index")
        return gather_context_windows(feats, frame_index, offsets, self.left, self.right)

    def extra_repr(self) -> str:
        return f"left={self.left}, right={self.right}"
