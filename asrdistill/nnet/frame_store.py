"""All frames of a split in one contiguous array, with utterance boundaries and targets.

Training never builds context windows ahead of time: a minibatch is a vector of frame
indices, and its ``(L + 1 + R) * D`` windows are gathered from the store in one
indexing operation on the store's device
(:func:`~asrdistill.features.context_window.gather_context_windows`). CMVN is applied
once, when the store is built.

A split read from files (:meth:`FrameStore.from_alignment`, :meth:`FrameStore.from_cuts`)
is built **by streaming** into an on-disk array and opened memory-mapped, so host memory
does not hold the corpus twice (960 h: 345.6M frames, 55 GB of float32 features):

* ``STORE_DIR/{name}.feats.npy`` (``(N, D)`` float32, preallocated from the alignment's
  (or the manifest's) frame counts and filled cut by cut with sequential writes),
  ``{name}.targets.npy`` (``(N,)`` pdf ids in the smallest integer type holding the pdf
  count: int16 below 32,768 pdfs), ``{name}.offsets.npy`` (``(U + 1,)`` int64) and
  ``{name}.json`` (cut ids, pdf count and the *key*: paths, sizes and modification times of
  the manifest, the alignment, the CMVN file and the feature archives the manifest names).
  ``STORE_DIR`` is ``ALI_DIR/frame_store`` by default (``--store-dir`` elsewhere, where the
  names also carry a hash of the alignment directory; ``memory``: a preallocated array in
  RAM, no files). ``name`` is ``{prefix}_{split}.cmvn`` (or ``.raw`` without CMVN).
* The files are written under temporary names and renamed; the JSON comes last, so a
  store without it is incomplete. A store whose key differs from its inputs' (another
  manifest, alignment, CMVN or feature archive) is rebuilt, never reused. Building holds an exclusive
  lock (``{name}.lock``): of several processes opening the same split (the ranks of a
  ``torchrun`` job) one builds and the others wait, then all map the same files, so a
  node holds one copy in its page cache whatever the number of ranks. A directory that
  cannot be written falls back to building in RAM (logged).
* The features are mapped copy-on-write (``mmap_mode='c'``): read-only sharing of the page
  cache, and a tensor that torch accepts as writable. :meth:`FrameStore.to` copies to a
  device chunk by chunk (no full host copy in another dtype on the way).

Targets are kept compact (:attr:`FrameStore.raw_targets`); :meth:`FrameStore.target_of`
gives a batch's targets as int64 (what ``cross_entropy`` and indexing need), and
:attr:`FrameStore.targets` all of them as int64 (a copy, for whole-split statistics).

Building from files needs lhotse; everything else imports torch and numpy only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ..features.context_window import gather_context_windows

log = logging.getLogger(__name__)

#: Bumped when the on-disk layout changes (older stores are rebuilt).
STORE_VERSION = 1

#: Rows copied at a time when a store moves to a device or changes dtype.
COPY_CHUNK = 1 << 20


def target_dtype(num_classes: int) -> np.dtype:
    """The smallest signed integer type holding pdf ids ``0 .. num_classes - 1``."""
    for dt in (np.int16, np.int32):
        if num_classes <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _copy_chunked(src: Tensor, device, dtype) -> Tensor:
    """``src`` on ``device`` in ``dtype``, copied ``COPY_CHUNK`` rows at a time (a memory-mapped source is
    read once, and only one chunk is ever converted at a time)."""
    if src.device == torch.device(device) and src.dtype == dtype:
        return src
    out = torch.empty(src.shape, dtype=dtype, device=device)
    for s in range(0, src.shape[0], COPY_CHUNK):
        out[s:s + COPY_CHUNK].copy_(src[s:s + COPY_CHUNK], non_blocking=False)
    return out


class FrameStore:
    """Frames ``feats (N, D)``, utterance ``offsets (U + 1,)`` int64, cut ``ids``, optional ``targets (N,)``
    (any integer type; kept as given), ``sample_index`` (the frames minibatches are drawn from; default
    all) and ``num_classes`` (output classes of the targets). ``path``: the on-disk store it maps, if any."""

    def __init__(self, feats: Tensor, offsets: Tensor, ids: List[str], targets: Optional[Tensor] = None,
                 sample_index: Optional[Tensor] = None, num_classes: int = 0, path: Optional[Path] = None):
        self.feats, self.offsets, self.ids = feats, offsets, ids
        self.raw_targets = targets
        self.sample_index = sample_index
        self.num_classes = num_classes
        self.path = path

    @property
    def targets(self) -> Optional[Tensor]:
        """``(N,)`` int64 targets (a copy when they are stored compact; use :meth:`target_of` for batches)."""
        t = self.raw_targets
        return t if t is None or t.dtype == torch.int64 else t.long()

    @targets.setter
    def targets(self, value: Optional[Tensor]) -> None:
        self.raw_targets = value

    def target_of(self, frame_index: Tensor, device=None) -> Tensor:
        """int64 targets of frames ``frame_index`` (any shape), on ``device`` (default: the store's)."""
        y = self.raw_targets[frame_index.to(self.raw_targets.device)]
        return y.to(device=device if device is not None else y.device, dtype=torch.int64)

    @property
    def num_frames(self) -> int:
        return self.feats.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.feats.shape[1]

    @property
    def device(self) -> torch.device:
        return self.feats.device

    @property
    def num_trainable(self) -> int:
        """How many frames minibatches are drawn from."""
        return self.num_frames if self.sample_index is None else len(self.sample_index)

    @property
    def memory_mapped(self) -> bool:
        return self.path is not None and self.feats.device.type == "cpu"

    def _replace(self, **changes) -> "FrameStore":
        args = dict(feats=self.feats, offsets=self.offsets, ids=self.ids, targets=self.raw_targets,
                    sample_index=self.sample_index, num_classes=self.num_classes, path=self.path)
        args.update(changes)
        return FrameStore(**args)

    def trainable(self) -> Tensor:
        """Frame indices minibatches are drawn from."""
        if self.sample_index is not None:
            return self.sample_index
        return torch.arange(self.num_frames, device=self.device)

    def to(self, device, dtype: Optional[torch.dtype] = None) -> "FrameStore":
        """The store on ``device`` (features in ``dtype``), copied chunk by chunk."""
        dev = torch.device(device)
        feats = _copy_chunked(self.feats, dev, dtype or self.feats.dtype)
        move = lambda t: None if t is None else t.to(dev)  # noqa: E731
        return self._replace(feats=feats, offsets=self.offsets.to(dev), targets=move(self.raw_targets),
                             sample_index=move(self.sample_index), path=self.path if feats is self.feats else None)

    def pin_memory(self) -> "FrameStore":
        """Pinned host memory (a memory-mapped store stays mapped: its batches are pinned when gathered)."""
        if self.memory_mapped:
            return self
        pin = lambda t: None if t is None else t.pin_memory()  # noqa: E731
        return self._replace(feats=self.feats.pin_memory(), offsets=self.offsets.pin_memory(),
                             targets=pin(self.raw_targets), sample_index=pin(self.sample_index))

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
        return self._replace(sample_index=idx)

    def frame_utterances(self) -> Tensor:
        """``(N,)`` index of the utterance each frame belongs to."""
        frames = torch.arange(self.num_frames, device=self.device)
        return torch.searchsorted(self.offsets, frames, right=True) - 1

    def without_utterances(self, ids) -> "FrameStore":
        """Draw no frames of the utterances ``ids`` (their frames stay in the store, as context)."""
        dropset = set(ids)
        drop = torch.tensor([u in dropset for u in self.ids], device=self.device)
        base = self.trainable()
        return self._replace(sample_index=base[~drop[self.frame_utterances()[base]]])

    # ------------------------------------------------------------------ building
    @classmethod
    def from_arrays(cls, feats: List[np.ndarray], ids: List[str], targets: Optional[List[np.ndarray]] = None) -> "FrameStore":
        """An in-memory store of per-utterance arrays (tests, small data); targets int64."""
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
    def from_alignment(cls, ali_dir, prefix: str, split: str, cmvn_path=None, store_dir=None) -> "FrameStore":
        """Features (with per-speaker CMVN) and pdf targets of an aligned split, memory-mapped.

        Reads ``{ali_dir}/{prefix}_cuts_{split}.jsonl.gz`` and ``{prefix}_ali_{split}.npz``
        (written by ``asrdistill gmm align``); the store goes to ``store_dir`` (default
        ``{ali_dir}/frame_store``; ``"memory"``: RAM only), built once (module docstring).
        """
        from ..gmm.align import SplitAlignment

        ali_dir = Path(ali_dir)
        ali_path = ali_dir / f"{prefix}_ali_{split}.npz"
        cuts_path = ali_dir / f"{prefix}_cuts_{split}.jsonl.gz"
        cache = {}

        def alignment():
            if "ali" not in cache:
                cache["ali"] = SplitAlignment.load(ali_path)
            return cache["ali"]

        def plan():
            ali = alignment()
            return (ali.ids, np.asarray(ali.offsets, dtype=np.int64), ali.num_pdfs,
                    lambda out: _copy_into(out, ali.pdfs))

        def check(u: int, cut_id: str, frames: int, ali_ids, offsets):
            if cut_id != ali_ids[u]:
                raise ValueError(f"{ali_dir}: cut manifest and alignments list different cuts for {split}")
            if frames != offsets[u + 1] - offsets[u]:
                raise ValueError(f"{ali_dir}: cut {cut_id} has a different number of frames than its alignment")

        inputs = [cuts_path, ali_path] + ([Path(cmvn_path)] if cmvn_path else [])
        where, name = _place(store_dir, ali_dir, f"{prefix}_{split}.{'cmvn' if cmvn_path else 'raw'}")
        return _open_or_build(where, name, inputs, cuts_path, cmvn_path, plan, check,
                              in_memory=str(store_dir) == "memory")

    @classmethod
    def from_cuts(cls, cuts_path, cmvn_path=None, store_dir=None) -> "FrameStore":
        """Features of every cut of a manifest, without targets (an unlabeled transfer set), memory-mapped
        (default ``store_dir``: ``frame_store/`` beside the manifest)."""
        from ..utils.readers import iter_cuts

        cuts_path = Path(cuts_path)

        def plan():
            ids, lengths = [], []
            for c in iter_cuts(cuts_path):
                if c.features is None:
                    raise ValueError(f"{cuts_path}: cut {c.id} has no features; run the features stage first")
                ids.append(c.id)
                lengths.append(c.features.num_frames)
            return ids, np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64), 0, None

        def check(u: int, cut_id: str, frames: int, ids, offsets):
            if frames != offsets[u + 1] - offsets[u]:
                raise ValueError(f"{cuts_path}: cut {cut_id} has {frames} stored frames, its manifest says "
                                 f"{offsets[u + 1] - offsets[u]}")

        inputs = [cuts_path] + ([Path(cmvn_path)] if cmvn_path else [])
        where, name = _place(store_dir, cuts_path.parent, f"{cuts_path.name.split('.')[0]}.{'cmvn' if cmvn_path else 'raw'}")
        return _open_or_build(where, name, inputs, cuts_path, cmvn_path, plan, check,
                              in_memory=str(store_dir) == "memory")


# ---------------------------------------------------------------------- the on-disk store
def _place(store_dir, source_dir: Path, name: str) -> Tuple[Path, str]:
    """Directory and name of a store: ``source_dir/frame_store/name`` by default; in a shared ``store_dir``
    the name also carries a hash of the source directory (two alignment directories never share a store)."""
    if not store_dir or str(store_dir) == "memory":
        return Path(source_dir) / "frame_store", name
    tag = hashlib.sha1(str(Path(source_dir).resolve()).encode()).hexdigest()[:8]
    return Path(store_dir), f"{name}.{tag}"


def _copy_into(out: np.ndarray, src: np.ndarray, chunk: int = COPY_CHUNK) -> None:
    """``out[:] = src`` (cast to ``out``'s dtype) a chunk at a time: no full-size temporary."""
    if len(src) != len(out):
        raise ValueError(f"{len(src)} targets for {len(out)} frames")
    for s in range(0, len(src), chunk):
        out[s:s + chunk] = src[s:s + chunk]


def store_key(inputs: Sequence[Path], dtype: str = "float32") -> str:
    """What a store was built from: the resolved path, size and modification time of each input file."""
    parts = [f"v{STORE_VERSION}", dtype]
    for p in inputs:
        st = Path(p).stat()
        parts.append(f"{Path(p).resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _feature_archives(cuts_path) -> List[Path]:
    """The feature archives (files or directories) a manifest's cuts are stored in, so that re-extracted
    features under an unchanged manifest are noticed too."""
    from ..utils.readers import iter_cuts

    seen = dict.fromkeys(c.features.storage_path for c in iter_cuts(cuts_path) if c.features is not None)
    return [Path(p) for p in seen if Path(p).exists()]


def store_files(directory: Path, name: str) -> dict:
    """The files of store ``name`` in ``directory``."""
    return {k: directory / f"{name}.{k}.npy" for k in ("feats", "targets", "offsets")} | {
        "meta": directory / f"{name}.json", "lock": directory / f"{name}.lock"}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _load_meta(meta_path: Path) -> Optional[dict]:
    try:
        return json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None


def _open_store(files: dict, meta: dict) -> FrameStore:
    feats = np.load(files["feats"], mmap_mode="c")
    offsets = np.load(files["offsets"])
    targets = np.load(files["targets"], mmap_mode="c") if meta["has_targets"] else None
    if feats.shape != (meta["frames"], meta["dim"]) or len(offsets) != len(meta["ids"]) + 1:
        raise ValueError(f"{files['feats']}: shape {feats.shape} does not match {files['meta']}")
    return FrameStore(torch.from_numpy(feats), torch.from_numpy(offsets), list(meta["ids"]),
                      None if targets is None else torch.from_numpy(targets), None, int(meta["num_classes"]),
                      path=files["feats"])


def _stream_features(cuts_path: Path, cmvn_path, offsets: np.ndarray, check, write, ids) -> int:
    """Load every cut's features (CMVN applied) in manifest order and hand each to ``write(start, array)``;
    returns the feature dimension."""
    from ..features.cmvn import CmvnStats
    from ..features.loading import load_features
    from ..utils.readers import iter_cuts

    cmvn = CmvnStats.load(cmvn_path) if cmvn_path else None
    dim, count = None, 0
    for u, cut in enumerate(iter_cuts(cuts_path)):
        if u >= len(ids):
            raise ValueError(f"{cuts_path}: cut manifest and alignments list different cuts (more than {len(ids)} cuts)")
        f = load_features(cut, cmvn)
        check(u, cut.id, f.shape[0], ids, offsets)
        if dim is None:
            dim = f.shape[1]
        elif f.shape[1] != dim:
            raise ValueError(f"{cuts_path}: cut {cut.id} has {f.shape[1]}-dim features, the others {dim}")
        write(int(offsets[u]), f)
        count = u + 1
    if count != len(ids):
        raise ValueError(f"{cuts_path}: cut manifest and alignments list different cuts ({count} cuts, {len(ids)} expected)")
    return dim or 0


def _first_dim(cuts_path: Path) -> int:
    from ..features.loading import load_features
    from ..utils.readers import iter_cuts

    for cut in iter_cuts(cuts_path):
        return int(load_features(cut).shape[1])
    return 0


def _build_in_memory(cuts_path, cmvn_path, plan, check) -> FrameStore:
    ids, offsets, num_classes, fill_targets = plan()
    dim = _first_dim(cuts_path)
    feats = np.empty((int(offsets[-1]), dim), dtype=np.float32)

    def write(start, f):
        feats[start:start + len(f)] = f

    _stream_features(cuts_path, cmvn_path, offsets, check, write, ids)
    targets = None
    if fill_targets is not None:
        targets = np.empty(int(offsets[-1]), dtype=target_dtype(num_classes))
        fill_targets(targets)
    return FrameStore(torch.from_numpy(feats), torch.from_numpy(offsets), list(ids),
                      None if targets is None else torch.from_numpy(targets), None, num_classes)


def _build_files(files: dict, key: str, cuts_path, cmvn_path, plan, check) -> dict:
    """Write the store under temporary names, then rename (the JSON last)."""
    ids, offsets, num_classes, fill_targets = plan()
    dim = _first_dim(cuts_path)
    n = int(offsets[-1])
    tag = f".tmp{os.getpid()}"
    tmp = {k: files[k].with_name(files[k].name + tag) for k in ("feats", "targets", "offsets")}
    try:
        # preallocated (sparse) .npy with its header, then filled by sequential writes: the build's memory is
        # one cut's features, not the store
        header = np.lib.format.open_memmap(tmp["feats"], mode="w+", dtype=np.float32, shape=(n, dim))
        data_offset = header.offset
        del header
        with open(tmp["feats"], "r+b") as out:
            def write(start, f):
                out.seek(data_offset + start * dim * 4)
                out.write(np.ascontiguousarray(f, dtype=np.float32).tobytes())

            _stream_features(cuts_path, cmvn_path, offsets, check, write, ids)
        if fill_targets is not None:
            t = np.lib.format.open_memmap(tmp["targets"], mode="w+", dtype=target_dtype(num_classes), shape=(n,))
            fill_targets(t)
            t.flush()
            del t
        with open(tmp["offsets"], "wb") as f:
            np.save(f, offsets.astype(np.int64))
        files["meta"].unlink(missing_ok=True)  # the old store (if any) is invalid from here on
        for k, path in tmp.items():
            if path.exists():
                os.replace(path, files[k])
        if fill_targets is None:
            files["targets"].unlink(missing_ok=True)
        meta = {"version": STORE_VERSION, "key": key, "frames": n, "dim": dim, "num_classes": int(num_classes),
                "has_targets": fill_targets is not None, "targets_dtype": str(target_dtype(num_classes)),
                "cuts": str(cuts_path), "cmvn": str(cmvn_path) if cmvn_path else None, "ids": list(ids)}
        from ..utils.atomic import atomic_write_text

        atomic_write_text(files["meta"], json.dumps(meta))
        return meta
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)


def _open_or_build(directory: Path, name: str, inputs, cuts_path, cmvn_path, plan, check,
                   in_memory: bool = False) -> FrameStore:
    """The store ``name`` of ``directory`` if it was built from ``inputs`` as they are now; else build it."""
    for p in inputs:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: no such file")
    if in_memory:
        return _build_in_memory(cuts_path, cmvn_path, plan, check)
    files = store_files(directory, name)
    key = store_key(list(inputs) + _feature_archives(cuts_path))
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = _locked(files["lock"])
        lock.__enter__()
    except OSError as e:
        meta = _load_meta(files["meta"])
        if meta is not None and meta.get("key") == key:  # a read-only store built from these inputs: map it
            return _open_store(files, meta)
        log.warning("cannot write a frame store in %s (%s): building it in memory", directory, e.strerror or e)
        return _build_in_memory(cuts_path, cmvn_path, plan, check)
    try:
        meta = _load_meta(files["meta"])
        if meta is not None and meta.get("key") == key and all(
                files[k].is_file() for k in ("feats", "offsets") + (("targets",) if meta.get("has_targets") else ())):
            log.info("frame store %s (%d frames, memory-mapped)", files["feats"], meta["frames"])
        else:
            if meta is not None:
                log.info("frame store %s was built from other inputs: rebuilding it", files["meta"])
            try:
                meta = _build_files(files, key, cuts_path, cmvn_path, plan, check)
            except OSError as e:
                if e.errno not in (13, 30):  # EACCES, EROFS (a full disk is an error)
                    raise
                log.warning("cannot write the frame store %s (%s): building it in memory", files["feats"],
                            e.strerror or e)
                return _build_in_memory(cuts_path, cmvn_path, plan, check)
            log.info("frame store %s built (%d frames)", files["feats"], meta["frames"])
        return _open_store(files, meta)
    finally:
        lock.__exit__(None, None, None)
