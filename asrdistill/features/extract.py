"""Parallel, resumable feature extraction into lhotse feature storage.

:func:`compute_features` splits a cut set into ``num_jobs`` shards; each worker process
computes :class:`~asrdistill.features.fbank.Fbank` features for its shard and writes them
to one lilcom archive (``{prefix}_feats_{split}.{job}.lca``, lhotse's ``LilcomChunkyWriter``),
the list of cuts it skipped (``.skipped.json``) and a shard manifest (``.jsonl.gz``, written
last: it marks the shard done). All are written under temporary names and renamed when
complete, so a killed run leaves only finished shards, and running again redoes only the others.
When every shard is done, the cuts are joined into ``{prefix}_cuts_{split}.jsonl.gz`` (the file
later stages read), after checking that every input cut is in it exactly once (or was skipped),
and the shard manifests are removed.

The job is recorded in ``{prefix}_feats_{split}.job.json``: a fingerprint of the input cuts,
the filterbank config and the number of shards. Finished shards are reused only by the same
job; a run that differs (another ``num_jobs``, other input cuts, another config) discards them
and starts again, with a warning, instead of merging shards of two layouts. A finished
manifest computed from other input cuts or another config is computed again the same way.
Temporary files a killed run left behind (``.{prefix}_feats_{split}.*.tmp*``) are removed
when the next run of the same split starts (one run per split and directory at a time).

Workers never raise across the process boundary: they send back their errors (a bad cut's
file, problem and reason; or an unexpected error's message naming the cut and its audio) as
plain strings, and the parent raises them, every bad cut counted per reason
(:class:`~asrdistill.data.audio_check.SkipCounter`).

Output cuts are ``MonoCut`` objects whose features span the whole cut. Connected-digit
``MixedCut`` inputs are mixed into one waveform first; their output cut has no recording
and records its source takes in ``custom["source_takes"]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import queue as queue_mod
import re
import traceback
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import soundfile as sf
from lhotse import CutSet, Features
from lhotse.cut import Cut, MixedCut, MonoCut
from lhotse.features.io import LilcomChunkyWriter
from lhotse.utils import fastcopy
from ..utils.progress import progress as tqdm

from ..data.audio_check import AudioError, SkipCounter
from ..data.connected_digits import source_takes
from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.config import config_to_dict, load_config, save_config
from ..utils.processes import process_context
from ..utils.readers import read_cuts, write_cuts
from .fbank import Fbank, FbankConfig, utterance_seed

log = logging.getLogger(__name__)

FEATURE_TYPE = "asrdistill-fbank"
JOB_FORMAT = 1
#: A file may hold this many seconds more or fewer samples than its manifest declares (lhotse
#: itself pads or trims up to 0.5 s silently, which would hide a file changed since prepare).
LENGTH_TOLERANCE_S = 0.01


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


def _file_recordings(cut: Cut):
    """The recordings a cut's audio is read from (a mix: those of its tracks)."""
    if isinstance(cut, MixedCut):
        # one per recording: non-speech fillers are many truncated copies of the same takes
        return list({t.cut.recording.id: t.cut.recording for t in cut.tracks
                     if getattr(t.cut, "has_recording", False)}.values())
    return [cut.recording] if cut.has_recording else []


def _check_sources(cut: Cut) -> None:
    """AudioError naming the file when a source file of ``cut`` is gone or changed since prepare.

    Only header reads; a recording with transforms (speed perturbation) is checked for
    existence only, its original length not being in the manifest.
    """
    for rec in _file_recordings(cut):
        for src in rec.sources:
            if src.type != "file":
                continue
            path = Path(src.source)
            if not path.is_file():
                raise AudioError(path, f"cut {cut.id}: audio file does not exist", "missing")
            if rec.transforms:
                continue
            try:
                frames = sf.info(str(path)).frames
            except Exception:
                continue  # not for soundfile: lhotse's other backends say what is wrong on loading
            if abs(frames - rec.num_samples) > LENGTH_TOLERANCE_S * rec.sampling_rate:
                raise AudioError(
                    path,
                    f"cut {cut.id}: file holds {frames} samples, its manifest declares {rec.num_samples} "
                    "(changed since prepare?)",
                    "changed",
                )


def extract_cut(fbank: Fbank, cut: Cut) -> np.ndarray:
    """Features of one cut; AudioError naming the cut and its audio when it cannot be done."""
    _check_sources(cut)
    try:
        audio = cut.load_audio()
    except Exception as e:
        detail = " ".join(str(e).split())  # lhotse's loading errors span lines
        raise AudioError(_audio_source(cut), f"cut {cut.id}: audio cannot be loaded ({detail})", "load_failed") from None
    if audio.ndim == 2:
        if audio.shape[0] != 1:
            raise AudioError(
                _audio_source(cut), f"cut {cut.id}: expected mono audio, got {audio.shape[0]} channels", "channels"
            )
        audio = audio[0]
    feats = fbank.extract(audio, cut.sampling_rate, seed=utterance_seed(cut.id))
    if feats.shape[0] == 0:
        raise AudioError(
            _audio_source(cut), f"cut {cut.id}: {audio.shape[0]} samples is shorter than one analysis window", "too_short"
        )
    if not np.isfinite(feats).all():
        raise AudioError(_audio_source(cut), f"cut {cut.id}: non-finite features", "non_finite")
    return feats


def _error_record(cut_id: str, e: AudioError) -> List[str]:
    return [cut_id, str(e.path), e.problem, e.reason]


def _write_shard(cuts, config, archive: Path, manifest: Path, skipped_path: Path, skip_bad: bool, progress):
    fbank = Fbank(config)
    frame_shift = config.frame_shift_ms / 1000.0
    out: List[MonoCut] = []
    skipped: List[List[str]] = []
    with atomic_path(archive) as tmp_archive:
        with LilcomChunkyWriter(tmp_archive) as writer:
            for cut in cuts:
                try:
                    feats = extract_cut(fbank, cut)
                    key = writer.write(cut.id, feats)
                except AudioError as e:
                    if not skip_bad:
                        raise
                    skipped.append(_error_record(cut.id, e))
                    if progress is not None:
                        progress.put(1)
                    continue
                except Exception as e:
                    raise _CutFailure(f"cut {cut.id} ({_audio_source(cut)}): {type(e).__name__}: {e}") from e
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
    atomic_write_text(skipped_path, json.dumps(skipped))
    write_cuts(out, manifest)  # last: its existence marks the shard done
    return skipped


class _CutFailure(RuntimeError):
    """An unexpected error while computing one cut; the message names the cut and its audio."""


def _extract_shard(
    cuts: CutSet,
    config: FbankConfig,
    archive: Path,
    manifest: Path,
    skipped_path: Path,
    skip_bad: bool,
    progress: Optional["mp.Queue"],
) -> Dict[str, Any]:
    """Compute one shard; never raises (errors cross process boundaries as plain strings).

    Returns ``{"skipped": [[cut_id, path, problem, reason], ...], "error": None}`` or, when the
    shard failed (its temporary files removed), ``"error"``: ``{"audio": [cut_id, path, problem,
    reason]}`` for a bad cut, ``{"message": ..., "traceback": ...}`` for anything else.
    """
    import torch

    torch.set_num_threads(1)
    current = {"cut": None}

    def tracked():
        for cut in cuts:
            current["cut"] = cut.id
            yield cut

    try:
        return {"skipped": _write_shard(tracked(), config, archive, manifest, skipped_path, skip_bad, progress), "error": None}
    except AudioError as e:
        return {"skipped": [], "error": {"audio": _error_record(current["cut"], e)}}
    except Exception as e:
        message = str(e) if isinstance(e, _CutFailure) else f"shard {archive.name}: {type(e).__name__}: {e}"
        return {"skipped": [], "error": {"message": message, "traceback": traceback.format_exc()}}


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


def duplicate_ids(ids: Iterable[str]) -> List[str]:
    """The ids that occur more than once, sorted."""
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def _examples(ids: List[str], limit: int = 8) -> str:
    return ", ".join(ids[:limit]) + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def check_unique_cut_ids(cuts: Iterable[Cut], where: str) -> None:
    """ValueError naming the duplicated cut ids of ``cuts`` (``where`` names the manifest)."""
    dup = duplicate_ids(c.id for c in cuts)
    if dup:
        raise ValueError(f"{where}: {len(dup)} duplicate cut id(s): {_examples(dup)}")


def _fingerprint(cuts: List[Cut]) -> str:
    """SHA-256 of the cuts' manifest entries, in order (the order fixes the shard layout)."""
    h = hashlib.sha256()
    for c in cuts:
        h.update(json.dumps(c.to_dict(), sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass
class _Files:
    output_dir: Path
    prefix: str
    split: str

    @property
    def name(self) -> str:
        return f"{self.prefix}_{self.split}"

    @property
    def final(self) -> Path:
        return self.output_dir / f"{self.prefix}_cuts_{self.split}.jsonl.gz"

    @property
    def job(self) -> Path:
        return self.output_dir / f"{self.prefix}_feats_{self.split}.job.json"

    def shard(self, job: int, kind: str) -> Path:
        """``kind``: ``lca`` (archive), ``jsonl.gz`` (manifest) or ``skipped.json``."""
        return self.output_dir / f"{self.prefix}_feats_{self.split}.{job}.{kind}"

    def shard_files(self) -> List[Path]:
        pat = re.compile(rf"{re.escape(self.prefix)}_feats_{re.escape(self.split)}\.\d+\.(lca|jsonl\.gz|skipped\.json)")
        return sorted(p for p in self.output_dir.iterdir() if pat.fullmatch(p.name))

    def stale_tmp_files(self) -> List[Path]:
        """Temporary files of :func:`~asrdistill.utils.atomic.atomic_path` a killed run of this split left."""
        pat = re.compile(rf"\.{re.escape(self.prefix)}_(feats|cuts)_{re.escape(self.split)}\.[^.]+\.tmp(\..*)?")
        return sorted(p for p in self.output_dir.iterdir() if pat.fullmatch(p.name))


def _read_job(path: Path) -> Optional[Dict[str, Any]]:
    try:
        job = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return job if isinstance(job, dict) and job.get("format") == JOB_FORMAT else None


def _job_differences(old: Optional[Dict[str, Any]], new: Dict[str, Any], keys) -> List[str]:
    """How ``old`` (the recorded job) differs from ``new`` in ``keys``, in words."""
    if old is None:
        return ["it has no job record"]
    out = []
    if "num_jobs" in keys and old.get("num_jobs") != new["num_jobs"]:
        out.append(f"num_jobs {old.get('num_jobs')} -> {new['num_jobs']}")
    if "input" in keys and old.get("input") != new["input"]:
        n_old, n_new = old.get("num_cuts"), new["num_cuts"]
        out.append(f"other input cuts ({n_old} -> {n_new} cuts)" if n_old != n_new else f"other input cuts ({n_new} cuts, other content)")
    if "config" in keys and old.get("config") != new["config"]:
        changed = sorted(k for k in set(old.get("config") or {}) | set(new["config"]) if (old.get("config") or {}).get(k) != new["config"].get(k))
        out.append(f"other fbank config ({', '.join(changed)})")
    return out


def _remove(paths: Iterable[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def _join_shards(files: _Files, manifests: List[Path], expected: List[str], skipped: Iterable[str]) -> CutSet:
    """The shards' cuts; ValueError naming them unless every expected cut is there exactly once (or skipped)."""
    joined = [c for m in manifests for c in read_cuts(m)]
    counts = Counter(c.id for c in joined)
    skipped = set(skipped)
    expected_set = set(expected)
    dup = duplicate_ids(c.id for c in joined)
    missing = [i for i in expected if i not in counts and i not in skipped]
    extra = sorted(i for i in counts if i not in expected_set)
    if dup or missing or extra:
        parts = [f"{len(ids)} {what} ({_examples(ids)})" for what, ids in
                 (("duplicated", dup), ("missing", missing), ("not in the input", extra)) if ids]
        raise ValueError(
            f"{files.name}: the shard manifests in {files.output_dir} do not hold every input cut exactly once: "
            f"{', '.join(parts)}; remove {files.output_dir}/{files.prefix}_feats_{files.split}.* and run again"
        )
    return CutSet.from_cuts(joined)


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
        cuts: input cuts (``MonoCut`` with recordings, or ``MixedCut``); ids must be unique.
        output_dir: where ``{prefix}_feats_{split}.{job}.lca`` and ``{prefix}_cuts_{split}.jsonl.gz`` go.
        prefix, split: name the output files, e.g. ``fsdd`` and ``train``.
        config: filterbank options (saved as ``fbank_config.yaml``; a different config in
            an existing directory is an error).
        num_jobs: worker processes (shards). Resuming with another number starts again.
        skip_bad: log and count (per reason) cuts whose audio cannot be used instead of
            stopping. Without it, the bad cuts found are raised as one
            :class:`~asrdistill.data.audio_check.AudioError` (each worker stops at its first).

    Raises:
        AudioError: bad cuts (naming cut and file), without ``skip_bad``.
        RuntimeError: a worker failed otherwise (naming the cut and its audio) or died.
        ValueError: duplicate input ids; shard manifests that do not hold every cut once.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _check_config(output_dir, config)
    files = _Files(output_dir, prefix, split)
    name, final = files.name, files.final
    stale = files.stale_tmp_files()
    if stale:
        log.info("%s: removing %d stale temporary file(s) of an interrupted run: %s",
                 name, len(stale), ", ".join(p.name for p in stale))
        _remove(stale)
    items = list(cuts.to_eager())
    check_unique_cut_ids(items, f"input cuts of {name}")
    num_jobs = max(1, min(num_jobs, len(items)))
    job = {"format": JOB_FORMAT, "input": _fingerprint(items), "num_cuts": len(items),
           "config": json.loads(json.dumps(config_to_dict(config))), "num_jobs": num_jobs}
    old = _read_job(files.job)
    bad = SkipCounter(skip_bad, what="cut")
    if final.exists():
        if old is None:
            log.info("%s exists; features of %s already computed", final, name)
            return read_cuts(final)
        changed = _job_differences(old, job, ("input", "config"))
        if not changed:
            log.info("%s exists; features of %s already computed", final, name)
            for rec in old.get("skipped", []):
                bad.handle(AudioError(*rec[1:]))
            bad.report()
            return read_cuts(final)
        log.warning("%s was computed by a different job (%s); computing it again", final, "; ".join(changed))
        final.unlink()
    existing = files.shard_files()
    if existing:
        changed = _job_differences(old, job, ("input", "config", "num_jobs"))
        if changed:
            done = sum(p.name.endswith(".jsonl.gz") for p in existing)
            if done:
                log.warning(
                    "%s: discarding %d finished shard(s) in %s of an interrupted run that differs from this one "
                    "(%s); starting again", name, done, output_dir, "; ".join(changed),
                )
            else:
                log.info("%s: removing %d file(s) of an earlier job: %s", name, len(existing),
                         ", ".join(p.name for p in existing))
            _remove(existing)
    if old != job:
        atomic_write_text(files.job, json.dumps(job, indent=1))

    # Interleaved shards balance the load when long cuts are grouped in the manifest.
    shards = [(CutSet.from_cuts(items[j::num_jobs]), files.shard(j, "lca"), files.shard(j, "jsonl.gz"),
               files.shard(j, "skipped.json")) for j in range(num_jobs)]
    todo = [s for s in shards if not s[2].exists()]
    if len(todo) < len(shards):
        log.info("%s: %d of %d shards already done, resuming", name, len(shards) - len(todo), len(shards))
    skipped: List[List[str]] = []
    for _, _, m, sk in shards:
        if m.exists() and sk.exists():
            skipped.extend(json.loads(sk.read_text()))
    results: List[Dict[str, Any]] = []
    with tqdm(total=sum(len(s[0]) for s in todo), desc=f"fbank {name}", unit="cut", disable=not progress) as bar:
        if len(todo) == 1:
            cuts0, *paths = todo[0]
            results.append(_extract_shard(cuts0, config, *paths, skip_bad, None))
            bar.update(len(todo[0][0]))
        elif todo:
            ctx = process_context()
            try:
                with ctx.Manager() as manager, ProcessPoolExecutor(len(todo), mp_context=ctx) as pool:
                    ticks = manager.Queue()
                    futures = [pool.submit(_extract_shard, c, config, *paths, skip_bad, ticks) for c, *paths in todo]
                    while not all(f.done() for f in futures):
                        try:
                            bar.update(ticks.get(timeout=0.2))
                        except queue_mod.Empty:
                            pass
                    results = [f.result() for f in futures]
                    while not ticks.empty():
                        bar.update(ticks.get())
            except BrokenProcessPool as e:
                raise RuntimeError(
                    f"{name}: a feature-extraction worker process died (killed, or out of memory?); "
                    "its shard is unfinished, the finished ones are kept: run again to resume"
                ) from e
    failures = []
    for r in results:
        skipped.extend(r["skipped"])
        if r["error"] is not None:
            failures.append(r["error"])
    others = [f for f in failures if "message" in f]
    for f in others:
        log.error("%s: worker error: %s\n%s", name, f["message"], f["traceback"].rstrip())
    if others:
        more = f" (and {len(others) - 1} more, logged above)" if len(others) > 1 else ""
        raise RuntimeError(f"{name}: feature extraction failed: {others[0]['message']}{more}")
    for rec in skipped + [f["audio"] for f in failures]:
        bad.handle(AudioError(*rec[1:]))
    if failures:
        log.warning("%s: each worker stops at its first bad cut, so more may follow (--skip-bad skips and lists "
                    "them all); finished shards are kept", name)
    bad.report()  # without skip_bad: raises, naming every bad cut found
    joined = _join_shards(files, [m for _, _, m, _ in shards], [c.id for c in items], [r[0] for r in skipped])
    # the record of the finished job (with its skips) first: a kill before the manifest is in place resumes
    atomic_write_text(files.job, json.dumps(dict(job, skipped=skipped), indent=1))
    write_cuts(joined, final)
    _remove(p for _, _, m, sk in shards for p in (m, sk))
    return joined
