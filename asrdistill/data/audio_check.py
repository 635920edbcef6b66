"""Validation of audio files before they enter a manifest.

Each check raises :class:`AudioError` naming the file, so a bad corpus fails early and
clearly instead of deep inside feature extraction. Corpus preparers catch it and, when
the user asked for ``--skip-bad``, log the file and count it (:class:`SkipCounter`).
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import soundfile as sf

log = logging.getLogger(__name__)


class AudioError(ValueError):
    """A bad audio (or corpus) file; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


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
        raise AudioError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises its own error types and RuntimeError
        raise AudioError(path, f"unreadable audio ({e})") from None
    sizes = _wav_data_sizes(path)
    if sizes is not None:
        declared, available = sizes
        if available < declared:
            raise AudioError(path, f"truncated: header declares {declared} bytes of samples, file holds {available}")
    if info.frames <= 0:
        raise AudioError(path, "no samples (empty audio)")
    if mono and info.channels != 1:
        raise AudioError(path, f"expected mono audio, got {info.channels} channels")
    if expected_sampling_rate is not None and info.samplerate != expected_sampling_rate:
        raise AudioError(path, f"sampling rate {info.samplerate} Hz, expected {expected_sampling_rate} Hz")
    return AudioInfo(path=path, sampling_rate=info.samplerate, num_samples=info.frames, num_channels=info.channels)


class SkipCounter:
    """Collects bad inputs: raises at once unless ``skip_bad``; else logs and counts."""

    def __init__(self, skip_bad: bool, what: str = "file"):
        self.skip_bad = skip_bad
        self.what = what
        self.skipped: List[AudioError] = []

    def handle(self, error: AudioError) -> None:
        if not self.skip_bad:
            raise error
        log.warning("skipping bad %s: %s", self.what, error)
        self.skipped.append(error)

    def report(self) -> None:
        if self.skipped:
            kinds = Counter(e.problem.split(" ")[0].rstrip(":") for e in self.skipped)
            log.warning(
                "skipped %d bad %s(s) (--skip-bad): %s",
                len(self.skipped),
                self.what,
                ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())),
            )
