"""Validation of audio files before they enter a manifest.

Each check raises :class:`AudioError` naming the file, so a bad corpus fails early and
clearly instead of deep inside feature extraction. Every error carries an explicit
``reason`` (one of :data:`REASONS`, e.g. ``sampling_rate``) for counting. Corpus preparers
and feature extraction hand each error to a :class:`SkipCounter`: it collects them all, and
at the end either raises one error listing every bad input with its problem, or (with
``--skip-bad``) logs a summary counted per reason.

``AudioError`` pickles (it crosses process boundaries from feature-extraction workers).
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import soundfile as sf

log = logging.getLogger(__name__)

#: Why an input is bad: identifier -> readable name (used in skip summaries).
REASONS = {
    "missing": "file does not exist",
    "empty": "empty file",
    "unreadable": "unreadable audio",
    "truncated": "truncated",
    "no_samples": "no samples",
    "channels": "not mono",
    "sampling_rate": "wrong sampling rate",
    "no_label": "no label",
    "changed": "changed since prepare",
    "load_failed": "audio cannot be loaded",
    "too_short": "shorter than one analysis window",
    "non_finite": "non-finite features",
    "other": "other problem",
}


class AudioError(ValueError):
    """A bad audio (or corpus) file; the message names the file and the problem.

    ``reason`` is one of :data:`REASONS` (the category a skip is counted under).
    """

    def __init__(self, path, problem: str, reason: str = "other"):
        if reason not in REASONS:
            raise ValueError(f"unknown AudioError reason {reason!r}; known: {', '.join(REASONS)}")
        self.path = Path(path)
        self.problem = problem
        self.reason = reason
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):
        # the default (cls(*self.args)) would call __init__ with the message alone
        return (type(self), (str(self.path), self.problem, self.reason))


class BadInputsError(AudioError):
    """Several bad inputs at once: the message lists every one, one line each."""

    def __init__(self, errors: Sequence[AudioError], what: str = "file"):
        self.errors = list(errors)
        self.what = what
        lines = [f"{len(self.errors)} bad {what}s (fix or remove them, or rerun with --skip-bad to skip them):"]
        lines += [f"  {e}" for e in self.errors]
        ValueError.__init__(self, "\n".join(lines))
        self.path = self.errors[0].path
        self.problem = lines[0]
        self.reason = "other"

    def __reduce__(self):
        return (type(self), (self.errors, self.what))


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sampling_rate: int
    num_samples: int
    num_channels: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sampling_rate


def _wav_data_sizes(path: Path) -> Optional[Tuple[int, int]]:
    """(declared, available) bytes of a RIFF/WAVE file's ``data`` chunk; None if not RIFF."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                return chunk_size, size - pos - 8
            pos += 8 + chunk_size + (chunk_size & 1)
    return (1, 0)  # RIFF without a data chunk: treat as truncated


def check_audio_file(
    path, expected_sampling_rate: Optional[int] = None, mono: bool = True
) -> AudioInfo:
    """Check that ``path`` is a readable, non-empty, complete audio file.

    Raises:
        AudioError: missing, empty, unreadable, truncated (a WAV whose data chunk is
            shorter than its header declares), not mono, or of the wrong sampling rate.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file does not exist", "missing")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)", "empty")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises its own error types and RuntimeError
        raise AudioError(path, f"unreadable audio ({e})", "unreadable") from None
    sizes = _wav_data_sizes(path)
    if sizes is not None:
        declared, available = sizes
        if available < declared:
            raise AudioError(
                path, f"truncated: header declares {declared} bytes of samples, file holds {available}", "truncated"
            )
    if info.frames <= 0:
        raise AudioError(path, "no samples (empty audio)", "no_samples")
    if mono and info.channels != 1:
        raise AudioError(path, f"expected mono audio, got {info.channels} channels", "channels")
    if expected_sampling_rate is not None and info.samplerate != expected_sampling_rate:
        raise AudioError(
            path, f"sampling rate {info.samplerate} Hz, expected {expected_sampling_rate} Hz", "sampling_rate"
        )
    return AudioInfo(path=path, sampling_rate=info.samplerate, num_samples=info.frames, num_channels=info.channels)


class SkipCounter:
    """Collects bad inputs; :meth:`report` ends the collection.

    Without ``skip_bad``, :meth:`report` raises: the single error itself, or one
    :class:`BadInputsError` listing every bad input (so a corpus with six bad files needs one
    run to find them all, not six). With ``skip_bad``, each is logged when handed in and
    :meth:`report` logs how many were skipped, counted per reason.
    """

    def __init__(self, skip_bad: bool, what: str = "file"):
        self.skip_bad = skip_bad
        self.what = what
        self.skipped: List[AudioError] = []

    def handle(self, error: AudioError) -> None:
        if self.skip_bad:
            log.warning("skipping bad %s: %s", self.what, error)
        self.skipped.append(error)

    def counts(self) -> Counter:
        """Number of bad inputs per readable reason."""
        return Counter(REASONS[e.reason] for e in self.skipped)

    def report(self) -> None:
        if not self.skipped:
            return
        if not self.skip_bad:
            if len(self.skipped) == 1:
                raise self.skipped[0]
            raise BadInputsError(self.skipped, self.what)
        kinds = sorted(self.counts().items(), key=lambda kv: (-kv[1], kv[0]))
        log.warning(
            "skipped %d bad %s(s) (--skip-bad): %s",
            len(self.skipped),
            self.what,
            ", ".join(f"{k}: {v}" for k, v in kinds),
        )
