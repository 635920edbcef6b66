"""Teachers for distillation: an ensemble run online, or its outputs cached per frame.

The teacher's logits for a frame are the log of the ensemble's combined distribution
(arithmetic or geometric mean of the members' posteriors,
:func:`asrdistill.losses.combine_log_probs`): log-probabilities are valid logits, and
soft targets at temperature ``T`` are ``softmax(logits / T)``, so the online and the
cached teacher define the same targets.

* :class:`OnlineTeacher`: the members run forward in the training step (no gradients,
  bf16 on CUDA) on the student's own windows.
* :class:`CachedTeacher`: the logits of every frame of the transfer set, computed once;
  stored in full (float16, ``2 C`` bytes per frame) or as the top ``k`` logits (float16)
  with their classes (int16 below 32,768 classes) plus the log-normalizer (``logsumexp``
  of all logits, float32): ``4 k + 4`` bytes. The mass outside the top k, known from the
  log-normalizer, is spread evenly over the other classes
  (:func:`asrdistill.losses.topk_soft_targets`). Built into preallocated host tensors chunk by
  chunk from the (memory-mapped) frame store, whose windows alone go to the device; loaded
  memory-mapped.

Imports torch only.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..losses import combine_log_probs, topk_cache, topk_soft_targets
from .ensemble import StackedDnn
from .frame_store import FrameStore


class OnlineTeacher:
    def __init__(self, ensemble: StackedDnn, combine: str = "arithmetic", bf16: bool = True):
        self.model = ensemble.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.combine = combine
        self.bf16 = bf16

    def to(self, device) -> "OnlineTeacher":
        self.model.to(device)
        return self

    @torch.no_grad()
    def logits_of_windows(self, x: Tensor) -> Tensor:
        """``(B, input_dim)`` windows -> ``(B, C)`` ensemble logits (log combined posteriors)."""
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.bf16 and x.device.type == "cuda"):
            member_logits = self.model(x).float()
        return combine_log_probs(torch.log_softmax(member_logits, -1), self.combine)

    def soft_targets(self, x: Tensor, frame_index: Tensor, temperature: Tensor) -> Tensor:
        """``x (N, B, in)``, temperatures ``(N,)`` -> soft targets ``(N, B, C)``."""
        n, b, _ = x.shape
        logits = self.logits_of_windows(x.reshape(n * b, -1)).view(n, b, -1)
        return torch.softmax(logits / temperature.view(n, 1, 1).to(logits.device), dim=-1)


class CachedTeacher:
    """Teacher logits of every frame of a store, computed once (``top_k=0``: all classes)."""

    def __init__(self, logits: Optional[Tensor] = None, top_values: Optional[Tensor] = None,
                 top_index: Optional[Tensor] = None, log_norm: Optional[Tensor] = None, num_classes: int = 0):
        self.logits, self.top_values, self.top_index, self.log_norm = logits, top_values, top_index, log_norm
        self.num_classes = num_classes if logits is None else logits.shape[1]

    @classmethod
    @torch.no_grad()
    def build(cls, teacher: OnlineTeacher, store: FrameStore, top_k: int = 0, chunk: int = 8192, device=None) -> "CachedTeacher":
        device = device or next(teacher.model.parameters()).device
        cfg = teacher.model.config
        n, c = store.num_frames, cfg.num_outputs
        # preallocated host tensors, filled chunk by chunk: the build holds the cache once
        if top_k:
            values = torch.empty(n, top_k, dtype=torch.float16)
            index = torch.empty(n, top_k, dtype=torch.int16 if c < 2 ** 15 else torch.int32)
            norms = torch.empty(n, dtype=torch.float32)
        else:
            full = torch.empty(n, c, dtype=torch.float16)
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            frames = torch.arange(s, e, device=store.device)
            logits = teacher.logits_of_windows(store.windows(frames, cfg.left_context, cfg.right_context, device))
            if top_k:
                v, i, lse = topk_cache(logits, top_k)
                values[s:e] = v.half().cpu()
                index[s:e] = i.to(index.dtype).cpu()
                norms[s:e] = lse.cpu()
            else:
                full[s:e] = logits.half().cpu()
        if top_k:
            return cls(top_values=values, top_index=index, log_norm=norms, num_classes=c)
        return cls(logits=full)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.logits, self.top_values, self.top_index, self.log_norm)
                   if t is not None)

    def dropped_mass(self) -> float:
        """Mean teacher probability (T = 1) outside the cached top k (0 for a full cache)."""
        if self.logits is not None:
            return 0.0
        kept = torch.exp(self.top_values.float() - self.log_norm[:, None]).sum(1)
        return float((1 - kept).clamp(min=0).mean())

    def to(self, device) -> "CachedTeacher":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return CachedTeacher(move(self.logits), move(self.top_values), move(self.top_index), move(self.log_norm),
                             self.num_classes)

    def soft_targets(self, x: Optional[Tensor], frame_index: Tensor, temperature: Tensor) -> Tensor:
        n, b = frame_index.shape
        t = temperature.view(n, 1, 1)
        if self.logits is not None:
            logits = self.logits[frame_index.to(self.logits.device)].float()
            return torch.softmax(logits / t.to(logits.device), dim=-1)
        flat = frame_index.reshape(-1).to(self.top_values.device)
        temps = t.to(self.top_values.device).expand(n, b, 1).reshape(n * b, 1)
        return topk_soft_targets(self.top_values[flat], self.top_index[flat], self.num_classes, temps,
                                 self.log_norm[flat]).view(n, b, -1)

    def save(self, path) -> None:
        from ..utils.atomic import atomic_path

        with atomic_path(path) as tmp:
            torch.save({"logits": self.logits, "top_values": self.top_values, "top_index": self.top_index,
                        "log_norm": self.log_norm, "num_classes": self.num_classes}, tmp)

    @classmethod
    def load(cls, path) -> "CachedTeacher":
        """The cache of ``path``, memory-mapped (pages are read as the batches need them)."""
        state = torch.load(path, weights_only=False, mmap=True)
        return cls(state["logits"], state["top_values"], state["top_index"], state["log_norm"], state["num_classes"])
