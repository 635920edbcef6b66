"""All frames of a split in one contiguous tensor, with utterance boundaries and targets.

Training never builds context windows ahead of time: a minibatch is a vector of frame
indices, and its ``(L + 1 + R) * D`` windows are gathered from the store in one
indexing operation on the store's device
(:func:`~asrdistill.features.context_window.gather_context_windows`). CMVN is applied
once, when the store is built. A store kept on the CPU for a GPU run is pinned, and
batches are copied asynchronously.

Building from files (:meth:`FrameStore.from_alignment`) needs lhotse; everything else
imports torch only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from torch import Tensor

from ..features.context_window import gather_context_windows
from ..utils.readers import read_cuts


@dataclass
class FrameStore:
    feats: Tensor  # (N, D)
    offsets: Tensor  # (U + 1,) int64
    ids: List[str]
    targets: Optional[Tensor] = None  # (N,) int64 pdf ids
    sample_index: Optional[Tensor] = None  # frames minibatches are drawn from (default: all)
    num_classes: int = 0  # output classes of the targets (pdfs of the alignment model)

    @property
    def num_frames(self) -> int:
        return self.feats.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.feats.shape[1]

    @property
    def device(self) -> torch.device:
        return self.feats.device

    def trainable(self) -> Tensor:
        """Frame indices minibatches are drawn from."""
        if self.sample_index is not None:
            return self.sample_index
        return torch.arange(self.num_frames, device=self.device)

    def to(self, device, dtype: Optional[torch.dtype] = None) -> "FrameStore":
        dev = torch.device(device)
        feats = self.feats.to(device=dev, dtype=dtype or self.feats.dtype)
        move = lambda t: None if t is None else t.to(dev)  # noqa: E731
        return FrameStore(feats, self.offsets.to(dev), self.ids, move(self.targets), move(self.sample_index), self.num_classes)

    def pin_memory(self) -> "FrameStore":
        return FrameStore(self.feats.pin_memory(), self.offsets.pin_memory(), self.ids,
                          None if self.targets is None else self.targets.pin_memory(),
                          None if self.sample_index is None else self.sample_index.pin_memory(), self.num_classes)

    def windows(self, frame_index: Tensor, left: int, right: int, device=None) -> Tensor:
        """``(B, (left + 1 + right) * D)`` windows of frames ``frame_index`` (on ``device``)."""
        idx = frame_index.to(self.device)
        out = gather_context_windows(self.feats, idx, self.offsets, left, right)
        if device is not None and torch.device(device) != self.device:
            out = out.pin_memory().to(device, non_blocking=True) if self.device.type == "cpu" else out.to(device)
        return out

    def subset_frames(self, fraction: float, seed: int = 0) -> "FrameStore":
        """The same store, drawing minibatches from a random ``fraction`` of its frames
        (context windows still see the neighbouring frames)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        gen = torch.Generator().manual_seed(seed)
        n = max(1, int(round(fraction * self.num_frames)))
        idx = torch.randperm(self.num_frames, generator=gen)[:n].sort().values.to(self.device)
        return FrameStore(self.feats, self.offsets, self.ids, self.targets, idx, self.num_classes)

    def frame_utterances(self) -> Tensor:
        """``(N,)`` index of the utterance each frame belongs to."""
        frames = torch.arange(self.num_frames, device=self.device)
        return torch.searchsorted(self.offsets, frames, right=True) - 1

    def without_utterances(self, ids) -> "FrameStore":
        """Draw no frames of the utterances ``ids`` (their frames stay in the store, as context)."""
        dropset = set(ids)
        drop = torch.tensor([u in dropset for u in self.ids], device=self.device)
        base = self.trainable()
        return FrameStore(self.feats, self.offsets, self.ids, self.targets, base[~drop[self.frame_utterances()[base]]],
                          self.num_classes)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_arrays(cls, feats: List[np.ndarray], ids: List[str], targets: Optional[List[np.ndarray]] = None) -> "FrameStore":
        lengths = [f.shape[0] for f in feats]
        offsets = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.long)
        store = torch.from_numpy(np.concatenate(feats).astype(np.float32))
        tgt = None
        if targets is not None:
            for i, (f, t) in enumerate(zip(feats, targets)):
                if len(t) != f.shape[0]:
                    raise ValueError(f"{ids[i]}: {f.shape[0]} frames but {len(t)} targets")
            tgt = torch.from_numpy(np.concatenate(targets).astype(np.int64))
        return cls(store, offsets, list(ids), tgt)

    @classmethod
    def from_alignment(cls, ali_dir, prefix: str, split: str, cmvn_path=None) -> "FrameStore":
        """Features (with per-speaker CMVN) and pdf targets of an aligned split.

        Reads ``{ali_dir}/{prefix}_cuts_{split}.jsonl.gz`` and ``{prefix}_ali_{split}.npz``
        (written by ``asrdistill gmm align``).
        """

        from ..features.cmvn import CmvnStats
        from ..features.loading import load_features
        from ..gmm.align import SplitAlignment

        ali_dir = Path(ali_dir)
        ali = SplitAlignment.load(ali_dir / f"{prefix}_ali_{split}.npz")
        cuts = read_cuts(ali_dir / f"{prefix}_cuts_{split}.jsonl.gz")
        cmvn = CmvnStats.load(cmvn_path) if cmvn_path else None
        feats = [load_features(c, cmvn) for c in cuts]
        ids = [c.id for c in cuts]
        if ids != ali.ids:
            raise ValueError(f"{ali_dir}: cut manifest and alignments list different cuts for {split}")
        store = cls.from_arrays(feats, ids)
        if not torch.equal(store.offsets, torch.from_numpy(ali.offsets.astype(np.int64))):
            bad = next(u for i, u in enumerate(ids) if feats[i].shape[0] != ali.offsets[i + 1] - ali.offsets[i])
            raise ValueError(f"{ali_dir}: cut {bad} has a different number of frames than its alignment")
        store.targets = torch.from_numpy(ali.pdfs.astype(np.int64))
        store.num_classes = ali.num_pdfs
        return store

    @classmethod
    def from_cuts(cls, cuts_path, cmvn_path=None) -> "FrameStore":
        """Features of every cut of a manifest, without targets (an unlabeled transfer set)."""
        from ..features.cmvn import CmvnStats
        from ..features.loading import load_features

        cmvn = CmvnStats.load(cmvn_path) if cmvn_path else None
        cuts = list(read_cuts(cuts_path))
        return cls.from_arrays([load_features(c, cmvn) for c in cuts], [c.id for c in cuts])
