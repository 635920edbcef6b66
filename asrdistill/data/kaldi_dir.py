"""Kaldi data directories in and out: ``wav.scp``, ``segments``, ``text``, ``utt2spk``, ``spk2utt``, ``reco2dur``.

Import (:func:`import_kaldi_dir`) turns a data directory into this toolkit's manifests for one
split, ``{prefix}_{recordings,supervisions,cuts}_{split}.jsonl.gz`` (one cut per utterance, the
cut id the utterance id). ``wav.scp`` lines are ``RECO PATH`` or ``RECO COMMAND |`` (a shell
command writing a WAV file to stdout, Kaldi's "extended filename"); without ``segments`` every
recording is one utterance of the same id. Durations come from ``reco2dur`` when present, else
from the audio files' headers (a piped command is run once to read its header and length).

The directory is checked first, as Kaldi's ``utils/validate_data_dir.sh`` does, and every
problem is reported at once, naming the ids (the first ones and a count): duplicate ids in a
file, utterances in ``text`` but not in ``utt2spk`` or the reverse, ``spk2utt`` disagreeing with
``utt2spk``, empty transcripts, segments of unknown recordings, empty or inverted segments or
segments past the recording's end, missing audio files, audio that cannot be read. With
``skip_bad`` the bad utterances (and recordings) are dropped instead, each one logged, and the
count reported.

Export (:func:`export_kaldi_dir`) writes the reverse from a recordings and a supervisions
manifest (the files of ``prepare``): ``segments`` only where utterances do not span whole
recordings. :func:`export_cuts_kaldi_dir` exports a cuts manifest instead, one utterance per cut, and
writes the audio of cuts no ``wav.scp`` line can name (mixtures such as FSDD's connected digits,
speed-perturbed cuts) to WAV files.
"""

from __future__ import annotations

import io
import logging
import shlex
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.errors import UserError

log = logging.getLogger(__name__)

SEGMENT_TOLERANCE = 0.02  # seconds a segment may extend past its recording's end (Kaldi's rounding)


class KaldiDirError(UserError):
    """Problems of a Kaldi data directory, all listed (file and ids)."""


@dataclass
class KaldiImportConfig:
    """Options of ``asrdistill prepare kaldi``."""

    skip_bad: bool = field(default=False, metadata={"help": "Drop bad utterances/recordings (each logged, counted) "
                                                    "instead of stopping with the list."})
    require_text: bool = field(default=True, metadata={"help": "A 'text' file is required (training and scoring "
                                                       "need transcripts)."})


def _names(ids, limit: int = 10) -> str:
    ids = sorted(ids)
    more = f" (and {len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def read_table(path: Path, min_fields: int = 2) -> Tuple[Dict[str, str], List[str]]:
    """``{id: rest of line}`` of a Kaldi table file and the ids that occur more than once."""
    table, seen = {}, Counter()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            key = parts[0]
            rest = parts[1].strip() if len(parts) > 1 else ""
            if not rest and min_fields > 1 and path.name != "text":
                raise KaldiDirError(f"{path}:{n}: expected '{key} VALUE', got {line!r}")
            seen[key] += 1
            table[key] = rest
    return table, [k for k, c in seen.items() if c > 1]


def read_wav_scp(path) -> Dict[str, str]:
    """``{recording id: path or 'command |'}`` of a ``wav.scp`` (duplicates are an error naming them)."""
    path = Path(path)
    table, dups = read_table(path)
    if dups:
        raise KaldiDirError(f"{path}: duplicate recording ids {_names(dups)}")
    return table


def is_command(entry: str) -> bool:
    return entry.rstrip().endswith("|")


def _run_command(reco: str, entry: str, where) -> bytes:
    cmd = entry.rstrip()[:-1]
    r = subprocess.run(cmd, shell=True, capture_output=True)
    if r.returncode != 0 or not r.stdout:
        raise KaldiDirError(f"{where}: recording {reco}: command {cmd!r} failed (status {r.returncode}): "
                            f"{r.stderr.decode(errors='replace').strip()[-300:]}")
    return r.stdout


def load_wav_scp_entry(reco: str, entry: str, where="wav.scp") -> Tuple[np.ndarray, int]:
    """Mono float32 samples and sampling rate of one ``wav.scp`` entry (a file, or a piped command's output)."""
    import soundfile as sf

    try:
        if is_command(entry):
            data, rate = sf.read(io.BytesIO(_run_command(reco, entry, where)), dtype="float32", always_2d=True)
        else:
            data, rate = sf.read(entry, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise KaldiDirError(f"{where}: recording {reco}: cannot read audio {entry!r}: {e}") from e
    return np.ascontiguousarray(data[:, 0]), int(rate)


def _recording(reco: str, entry: str, where, duration: Optional[float]):
    """A lhotse Recording of a wav.scp entry (reads the header, or runs the command once)."""
    import soundfile as sf
    from lhotse import Recording
    from lhotse.audio import AudioSource

    if is_command(entry):
        raw = _run_command(reco, entry, where)
        try:
            info = sf.info(io.BytesIO(raw))
        except RuntimeError as e:
            raise KaldiDirError(f"{where}: recording {reco}: the output of {entry!r} is not audio: {e}") from e
        source = AudioSource(type="command", channels=[0], source=entry.rstrip()[:-1].strip())
        rate, frames, channels = info.samplerate, info.frames, info.channels
    else:
        if not Path(entry).is_file():
            raise KaldiDirError(f"{where}: recording {reco}: {entry} does not exist")
        try:
            info = sf.info(entry)
        except RuntimeError as e:
            raise KaldiDirError(f"{where}: recording {reco}: cannot read audio {entry}: {e}") from e
        source = AudioSource(type="file", channels=list(range(info.channels)), source=str(Path(entry).resolve()))
        rate, frames, channels = info.samplerate, info.frames, info.channels
    if is_command(entry):
        source.channels = list(range(channels))
    num_samples = frames
    return Recording(id=reco, sources=[source], sampling_rate=rate, num_samples=num_samples,
                     duration=num_samples / rate, channel_ids=list(range(channels)))


def import_kaldi_dir(data_dir, output_dir, prefix: str, split: str, config: KaldiImportConfig = KaldiImportConfig()):
    """Check and import a Kaldi data directory as the split's manifests; returns the CutSet.

    Raises :class:`KaldiDirError` listing every problem (unless ``config.skip_bad``).
    """
    from lhotse import CutSet, RecordingSet, SupervisionSegment, SupervisionSet
    from lhotse.cut import MonoCut

    d = Path(data_dir)
    if not (d / "wav.scp").is_file():
        raise KaldiDirError(f"{d / 'wav.scp'} does not exist: not a Kaldi data directory")
    problems: List[str] = []
    bad_utts: Dict[str, str] = {}
    bad_recos: Dict[str, str] = {}

    def load(name: str, required: bool):
        path = d / name
        if not path.is_file():
            if required:
                problems.append(f"{path} does not exist")
            return None
        table, dups = read_table(path)
        if dups:
            problems.append(f"{path}: duplicate ids {_names(dups)}")
        return table

    wav = load("wav.scp", True) or {}
    text = load("text", config.require_text)
    utt2spk = load("utt2spk", False)
    spk2utt = load("spk2utt", False)
    segments_raw = load("segments", False)
    reco2dur = load("reco2dur", False)
    # utterances and their recording spans
    segments: Dict[str, Tuple[str, float, Optional[float]]] = {}
    if segments_raw is not None:
        for utt, rest in segments_raw.items():
            parts = rest.split()
            try:
                reco, start, end = parts[0], float(parts[1]), float(parts[2])
            except (IndexError, ValueError):
                problems.append(f"{d / 'segments'}: utterance {utt}: expected 'UTT RECO START END', got {rest!r}")
                continue
            if reco not in wav:
                bad_utts[utt] = f"segment of recording {reco}, which is not in wav.scp"
            elif not end > start >= 0:
                bad_utts[utt] = f"empty or inverted segment {start}-{end}"
            segments[utt] = (reco, start, end)
    else:
        segments = {reco: (reco, 0.0, None) for reco in wav}
    utts = set(segments)
    if utt2spk is None:
        log.warning("%s has no utt2spk: each utterance is its own speaker (as Kaldi's utt2spk for unknown speakers)", d)
        utt2spk = {u: u for u in utts}
    if text is not None:
        for name, ids in (("utt2spk", set(utt2spk) - set(text)), ("text", set(text) - set(utt2spk))):
            if ids:
                other = "text" if name == "utt2spk" else "utt2spk"
                problems.append(f"{d}: utterances in {name} but not in {other}: {_names(ids)}")
        for u in [u for u, t in text.items() if not t.strip()]:
            bad_utts[u] = "empty transcript in text"
    src_name = "segments" if segments_raw is not None else "wav.scp"
    if set(utt2spk) - utts:
        problems.append(f"{d}: utterances in utt2spk but not in {src_name}: {_names(set(utt2spk) - utts)}")
    if utts - set(utt2spk):
        problems.append(f"{d}: utterances in {src_name} but not in utt2spk: {_names(utts - set(utt2spk))}")
    if spk2utt is not None:
        derived = defaultdict(set)
        for u, s in utt2spk.items():
            derived[s].add(u)
        given = {s: set(v.split()) for s, v in spk2utt.items()}
        differ = {s for s in set(derived) | set(given) if derived.get(s) != given.get(s)}
        if differ:
            problems.append(f"{d / 'spk2utt'} disagrees with utt2spk for speakers {_names(differ)}")
    if problems and not config.skip_bad:
        raise KaldiDirError(f"{d} is not a valid data directory:\n  " + "\n  ".join(problems + [
            f"utterance {u}: {why}" for u, why in sorted(bad_utts.items())][:50]))
    if problems:  # with skip_bad: utterances not in all of text/utt2spk/segments are dropped
        keep = utts & set(utt2spk) & (set(text) if text is not None else utts)
        for u in (utts | set(utt2spk)) - keep:
            bad_utts.setdefault(u, "not in all of text, utt2spk and segments/wav.scp")
    # recordings (audio headers; only those with a usable utterance)
    used = {segments[u][0] for u in utts if u not in bad_utts and u in segments}
    recordings = {}
    for reco in sorted(used):
        try:
            recordings[reco] = _recording(reco, wav[reco], d / "wav.scp", None)
        except KaldiDirError as e:
            bad_recos[reco] = str(e)
    if reco2dur is not None:
        for reco, rec in recordings.items():
            if reco in reco2dur and abs(float(reco2dur[reco]) - rec.duration) > SEGMENT_TOLERANCE:
                log.warning("%s: recording %s lasts %.3f s, reco2dur says %s", d, reco, rec.duration, reco2dur[reco])
    sups, cuts = [], []
    for utt in sorted(utts):
        if utt in bad_utts:
            continue
        reco, start, end = segments[utt]
        if reco in bad_recos:
            bad_utts[utt] = bad_recos[reco].split(": ", 1)[-1]
            continue
        rec = recordings[reco]
        end = rec.duration if end is None else end
        if end > rec.duration + SEGMENT_TOLERANCE:
            bad_utts[utt] = f"segment ends at {end} s, after the end of recording {reco} ({rec.duration:.3f} s)"
            continue
        end = min(end, rec.duration)
        sup = SupervisionSegment(id=utt, recording_id=reco, start=start, duration=round(end - start, 6), channel=0,
                                 text=(text or {}).get(utt, ""), speaker=utt2spk[utt])
        sups.append(sup)
        cuts.append(MonoCut(id=utt, start=start, duration=sup.duration, channel=0, recording=rec, supervisions=[
            sup.with_offset(-start)]))
    if bad_utts and not config.skip_bad:
        raise KaldiDirError(f"{d} is not a valid data directory:\n  " + "\n  ".join(
            f"utterance {u}: {why}" for u, why in sorted(bad_utts.items())[:50])
            + (f"\n  ... {len(bad_utts)} bad utterances in all" if len(bad_utts) > 50 else ""))
    for u, why in sorted(bad_utts.items()):
        log.warning("%s: skipping utterance %s: %s", d, u, why)
    if bad_utts:
        log.warning("%s: skipped %d bad utterances (--skip-bad), kept %d", d, len(bad_utts), len(cuts))
    if not cuts:
        raise KaldiDirError(f"{d}: no usable utterance")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    recs = RecordingSet.from_recordings(recordings[r] for r in sorted({c.recording_id for c in cuts}))
    cutset = CutSet.from_cuts(cuts)
    for kind, manifest in (("recordings", recs), ("supervisions", SupervisionSet.from_segments(sups)),
                           ("cuts", cutset)):
        with atomic_path(out / f"{prefix}_{kind}_{split}.jsonl.gz") as tmp:
            manifest.to_file(tmp)
    return cutset


def import_manifests(recordings_path, supervisions_path, output_dir, prefix: str, split: str):
    """Existing lhotse recordings + supervisions manifests as the split's manifests (one cut per supervision)."""
    from lhotse import CutSet, load_manifest

    from ..utils.readers import reading

    with reading(recordings_path, "recordings manifest"):
        recs = load_manifest(recordings_path)
    with reading(supervisions_path, "supervisions manifest"):
        sups = load_manifest(supervisions_path)
    unknown = {s.recording_id for s in sups} - set(recs.ids)
    if unknown:
        raise UserError(f"{supervisions_path}: supervisions of recordings not in {recordings_path}: {_names(unknown)}")
    dups = [k for k, c in Counter(s.id for s in sups).items() if c > 1]
    if dups:
        raise UserError(f"{supervisions_path}: duplicate supervision ids {_names(dups)}")
    empty = [s.id for s in sups if not (s.text or "").strip()]
    if empty:
        raise UserError(f"{supervisions_path}: empty transcripts: {_names(empty)}")
    full = CutSet.from_manifests(recordings=recs, supervisions=sups)
    cuts = CutSet.from_cuts(c.with_id(c.supervisions[0].id) for c in full.trim_to_supervisions(keep_overlapping=False))
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for kind, manifest in (("recordings", recs), ("supervisions", sups), ("cuts", cuts)):
        with atomic_path(out / f"{prefix}_{kind}_{split}.jsonl.gz") as tmp:
            manifest.to_file(tmp)
    return cuts


def export_kaldi_dir(recordings_path, supervisions_path, data_dir) -> Path:
    """A Kaldi data directory from a recordings and a supervisions manifest (``segments`` only if needed)."""
    from lhotse import load_manifest

    recs = load_manifest(recordings_path)
    sups = sorted(load_manifest(supervisions_path), key=lambda s: s.id)
    wav = {}
    for rec in recs:
        wav[rec.id] = _wav_entry(rec)
        if wav[rec.id] is None:
            raise UserError(f"{recordings_path}: recording {rec.id} is not one file or command; Kaldi's wav.scp cannot "
                            "hold it")
    utts = [_Utt(s.id, s.recording_id, s.start, s.end, s.text, s.speaker) for s in sups]
    return _write_data_dir(data_dir, wav, {r.id: r.duration for r in recs}, utts)


def export_cuts_kaldi_dir(cuts_path, data_dir, audio_dir=None) -> Path:
    """A Kaldi data directory with one utterance per cut of a cuts manifest (id, text and speaker of the cut).

    A cut that is a span of one recording read as it is (one file or command, no transform) refers to that
    recording (``segments`` where it is not all of it); any other (a ``MixedCut`` such as FSDD's connected
    digits, a speed-perturbed or resampled cut) is written to ``audio_dir/{cut id}.wav`` (16-bit PCM at the
    cut's sampling rate) and becomes a recording of its own."""
    import soundfile as sf
    from lhotse import CutSet
    from lhotse.cut import MonoCut

    from ..utils.progress import progress
    from .cuts import cut_speaker, cut_text

    cuts = sorted(CutSet.from_file(cuts_path), key=lambda c: c.id)
    wav, durations, utts = {}, {}, []
    written = 0
    for cut in progress(cuts, desc=f"exporting {Path(cuts_path).name}", unit="cut"):
        rec = cut.recording if isinstance(cut, MonoCut) else None
        entry = _wav_entry(rec) if rec is not None and not rec.transforms and rec.num_channels == 1 else None
        if entry is not None:
            wav[rec.id], durations[rec.id] = entry, rec.duration
            utts.append(_Utt(cut.id, rec.id, cut.start, cut.end, cut_text(cut), cut_speaker(cut)))
            continue
        if audio_dir is None:
            raise UserError(f"{cuts_path}: cut {cut.id} is not a span of one audio file (a mixed or transformed cut); "
                            "give an audio directory (--audio-dir) to write its audio to")
        audio = cut.load_audio()
        if audio.shape[0] != 1:
            raise UserError(f"{cuts_path}: cut {cut.id} has {audio.shape[0]} channels; a Kaldi recording here has one")
        pcm = np.round(np.clip(audio[0], -1.0, 32767 / 32768) * 32768).astype(np.int16)
        path = Path(audio_dir).resolve() / f"{cut.id}.wav"
        with atomic_path(path) as tmp:
            sf.write(tmp, pcm, cut.sampling_rate, subtype="PCM_16", format="WAV")
        written += 1
        wav[cut.id], durations[cut.id] = str(path), len(pcm) / cut.sampling_rate
        utts.append(_Utt(cut.id, cut.id, 0.0, durations[cut.id], cut_text(cut), cut_speaker(cut)))
    log.info("%s: %d cuts, %d of them written as audio to %s", cuts_path, len(cuts), written, audio_dir)
    return _write_data_dir(data_dir, wav, durations, utts)


class _Utt(NamedTuple):
    id: str
    reco: str
    start: float
    end: float
    text: str
    speaker: str


def _wav_entry(rec) -> Optional[str]:
    """The ``wav.scp`` entry of a recording (its file, or its command piped), or None if it has another form."""
    if len(rec.sources) != 1 or rec.sources[0].type not in ("file", "command"):
        return None
    src = rec.sources[0]
    return src.source if src.type == "file" else f"{src.source} |"


def _write_data_dir(data_dir, wav: Dict[str, str], durations: Dict[str, float], utts: List[_Utt]) -> Path:
    """wav.scp, text, utt2spk, spk2utt, reco2dur, and ``segments`` unless every utterance is a whole recording
    of its own id (each file written atomically)."""
    utts = sorted(utts, key=lambda u: u.id)
    whole = all(u.id == u.reco and u.start == 0 and abs(u.end - durations[u.reco]) < 1e-3 for u in utts)
    d = Path(data_dir)
    d.mkdir(parents=True, exist_ok=True)
    spk2utt = defaultdict(list)
    for u in utts:
        spk2utt[u.speaker].append(u.id)
    files = {
        "wav.scp": "".join(f"{r} {wav[r]}\n" for r in sorted(wav)),
        "text": "".join(f"{u.id} {u.text}\n" for u in utts),
        "utt2spk": "".join(f"{u.id} {u.speaker}\n" for u in utts),
        "spk2utt": "".join(f"{k} {' '.join(sorted(v))}\n" for k, v in sorted(spk2utt.items())),
        "reco2dur": "".join(f"{r} {durations[r]:.4f}\n" for r in sorted(durations)),
    }
    if not whole:
        files["segments"] = "".join(f"{u.id} {u.reco} {u.start:.4f} {u.end:.4f}\n" for u in utts)
    elif (d / "segments").exists():
        (d / "segments").unlink()
    for name, content in files.items():
        atomic_write_text(d / name, content)
    return d


def quote_command(args: List[str]) -> str:
    """A shell command line for a ``wav.scp`` piped entry."""
    return " ".join(shlex.quote(a) for a in args) + " |"
