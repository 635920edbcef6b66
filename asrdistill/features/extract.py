"""Parallel, resumable feature extraction into lhotse feature storage.

:func:`compute_features` splits a cut set into ``num_jobs`` shards; each worker process
computes :class:`~asrdistill.features.fbank.Fbank` features for its shard and writes them
to one lilcom archive (``{prefix}_feats_{split}.{job}.lca``, lhotse's ``LilcomChunkyWriter``)
and a shard manifest. Both are written under temporary names and renamed when complete, so a
killed run leaves only finished shards, and running again redoes only the others.
When every shard is done, the cuts are joined into ``{prefix}_cuts_{split}.jsonl.gz`` (the file
later stages read) and the shard manifests are removed.

Output cuts are ``MonoCut`` objects whose features span the whole cut. Connected-digit
``MixedCut`` inputs are mixed into one waveform first; their output cut has no recording
and records its source takes in ``custom["source_takes"]``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue as queue_mod
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from lhotse import CutSet, Features
from lhotse.cut import Cut, MixedCut, MonoCut
from lhotse.features.io import LilcomChunkyWriter
from lhotse.utils import fastcopy
from ..utils.progress import progress as tqdm

from ..data.audio_check import AudioError, SkipCounter
from ..data.connected_digits import source_takes
from ..utils.atomic import atomic_path
from ..utils.config import config_to_dict, load_config, save_config
from ..utils.processes import process_context
from .fbank import Fbank, FbankConfig, utterance_seed

log = logging.getLogger(__name__)

FEATURE_TYPE = "asrdistill-fbank"


def _audio_source(cut: Cut) -> str:
    """Where a cut's audio comes from, for error messages."""
    if isinstance(cut, MixedCut):
        return "mix of " + ", ".join(source_takes(cut))
    if cut.has_recording:
        return ", ".join(str(s.source) for s in cut.recording.sources)
    return "no recording"


def features_cut(cut: Cut, features: Features) -> MonoCut:
    """The output cut of ``cut`` carrying ``features`` (see module doc)."""
    if isinstance(cut, MixedCut):
        first = next(t.cut for t in cut.tracks)
        custom = dict(first.custom or {})
        custom.update({"kind": "connected", "source_takes": source_takes(cut)})
        return MonoCut(
            id=cut.id,
            start=0.0,
            duration=cut.duration,
            channel=0,
            supervisions=[fastcopy(s, recording_id=cut.id) for s in cut.supervisions],
            features=features,
            recording=None,
            custom=custom,
        )
    return fastcopy(cut, features=features)


def extract_cut(fbank: Fbank, cut: Cut) -> np.ndarray:
    """Features of one cut; AudioError naming the cut and its audio when it cannot be done."""
    try:
        audio = cut.load_audio()
    except Exception as e:
        raise AudioError(_audio_source(cut), f"cut {cut.id}: audio cannot be loaded ({e})") from None
    if audio.ndim == 2:
        if audio.shape[0] != 1:
            raise AudioError(_audio_source(cut), f"cut {cut.id}: expected mono audio, got {audio.shape[0]} channels")
        audio = audio[0]
    feats = fbank.extract(audio, cut.sampling_rate, seed=utterance_seed(cut.id))
    if feats.shape[0] == 0:
        raise AudioError(
            _audio_source(cut), f"cut {cut.id}: {audio.shape[0]} samples is shorter than one analysis window"
        )
    if not np.isfinite(feats).all():
        raise AudioError(_audio_source(cut), f"cut {cut.id}: non-finite features")
    return feats


def _extract_shard(
    cuts: CutSet,
    config: FbankConfig,
    archive: Path,
    manifest: Path,
    skip_bad: bool,
    progress: Optional["mp.Queue"],
) -> List[str]:
    import torch

    torch.set_num_threads(1)
    fbank = Fbank(config)
    frame_shift = config.frame_shift_ms / 1000.0
    out: List[MonoCut] = []
    skipped: List[str] = []
    with atomic_path(archive) as tmp_archive:
        with LilcomChunkyWriter(tmp_archive) as writer:
            for cut in cuts:
                try:
                    feats = extract_cut(fbank, cut)
                except AudioError as e:
                    if not skip_bad:
                        raise
                    skipped.append(str(e))
                    if progress is not None:
                        progress.put(1)
                    continue
                key = writer.write(cut.id, feats)
                features = Features(
                    type=FEATURE_TYPE,
                    num_frames=feats.shape[0],
                    num_features=feats.shape[1],
                    frame_shift=frame_shift,
                    sampling_rate=cut.sampling_rate,
                    start=0.0,
                    duration=cut.duration,
                    storage_type="lilcom_chunky",
                    storage_path=str(archive.resolve()),
                    storage_key=key,
                    recording_id=cut.recording_id if not isinstance(cut, MixedCut) else cut.id,
                    channels=0,
                )
                out.append(features_cut(cut, features))
                if progress is not None:
                    progress.put(1)
    with atomic_path(manifest) as tmp:
        CutSet.from_cuts(out).to_file(tmp)
    return skipped


def _check_config(output_dir: Path, config: FbankConfig) -> None:
    path = output_dir / "fbank_config.yaml"
    if path.exists():
        old = load_config(FbankConfig, path)
        if config_to_dict(old) != config_to_dict(config):
            raise ValueError(
                f"{path} holds a different feature config than requested; "
                f"use another output directory or remove {output_dir}"
            )
    else:
        save_config(config, path)


def compute_features(
    cuts: CutSet,
    output_dir,
    prefix: str,
    split: str,
    config: FbankConfig = FbankConfig(),
    num_jobs: int = 1,
    skip_bad: bool = False,
    progress: bool = True,
) -> CutSet:
    """Extract features of ``cuts`` into ``output_dir``; returns the cuts with features.

    Args:
        cuts: input cuts (``MonoCut`` with recordings, or ``MixedCut``).
        output_dir: where ``{prefix}_feats_{split}.{job}.lca`` and ``{prefix}_cuts_{split}.jsonl.gz`` go.
        prefix, split: name the output files, e.g. ``fsdd`` and ``train``.
        config: filterbank options (saved as ``fbank_config.yaml``; a different config in
            an existing directory is an error).
        num_jobs: worker processes (shards).
        skip_bad: log and count cuts whose audio cannot be used instead of stopping.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_config(output_dir, config)
    name = f"{prefix}_{split}"
    final = output_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    if final.exists():
        log.info("%s exists; features of %s already computed", final, name)
        return CutSet.from_file(final)
    cuts = cuts.to_eager()
    num_jobs = max(1, min(num_jobs, len(cuts)))
    shards: List[Tuple[CutSet, Path, Path]] = []
    items = list(cuts)
    # Interleaved shards balance the load when long cuts are grouped in the manifest.
    for job, shard in enumerate(CutSet.from_cuts(items[j::num_jobs]) for j in range(num_jobs)):
        stem = output_dir / f"{prefix}_feats_{split}.{job}"
        shards.append((shard, stem.with_name(stem.name + ".lca"), stem.with_name(stem.name + ".jsonl.gz")))
    todo = [s for s in shards if not s[2].exists()]
    if len(todo) < len(shards):
        log.info("%s: %d of %d shards already done, resuming", name, len(shards) - len(todo), len(shards))
    bad = SkipCounter(skip_bad, what="cut")
    with tqdm(total=sum(len(s[0]) for s in todo), desc=f"fbank {name}", unit="cut", disable=not progress) as bar:
        if len(todo) == 1:
            for msg in _extract_shard(todo[0][0], config, todo[0][1], todo[0][2], skip_bad, None):
                bad.handle(AudioError(msg, "skipped"))
            bar.update(len(todo[0][0]))
        elif todo:
            ctx = process_context()
            with ctx.Manager() as manager, ProcessPoolExecutor(len(todo), mp_context=ctx) as pool:
                ticks = manager.Queue()
                futures = [pool.submit(_extract_shard, s, config, a, m, skip_bad, ticks) for s, a, m in todo]
                while not all(f.done() for f in futures):
                    try:
                        bar.update(ticks.get(timeout=0.2))
                    except queue_mod.Empty:
                        pass
                for f in futures:
                    for msg in f.result():  # re-raises a worker's error
                        bad.handle(AudioError(msg, "skipped"))
                while not ticks.empty():
                    bar.update(ticks.get())
    bad.report()
    joined = CutSet.from_cuts(c for _, _, m in shards for c in CutSet.from_file(m))
    with atomic_path(final) as tmp:
        joined.to_file(tmp)
    for _, _, m in shards:
        m.unlink()
    return joined
