"""Recorded non-speech at the edges of isolated takes: a per-speaker bank of segments.

FSDD takes are silence-trimmed, but most keep a few tens of milliseconds of recorded
room/microphone noise before the digit starts or after it ends. :func:`nonspeech_bank`
finds these low-energy leading and trailing parts of every take of one speaker, so the
pauses of connected-digit utterances (:mod:`asrdistill.data.connected_digits`) can be
filled with that speaker's own recorded non-speech instead of digital zero.

Detection (each take's audio is read once; all of it is vectorized numpy):

* frame energy: mean square of non-overlapping 10 ms frames (80 samples at 8 kHz), in dB;
* the speaker's noise floor: the 5th percentile of the frame energies of all its takes
  (pooled), since every take's quietest frames are its non-speech edges;
* a frame is non-speech when its energy is below **both** ``floor + floor_db`` and
  ``take peak - peak_db``. A threshold relative to the take's peak alone is not robust on
  FSDD: nicolas's takes have only ~20 dB between the loudest frame and the noise floor
  (floor about -41 dB), theo's and yweweler's floors are near -67/-71 dB, so no single
  peak-relative value both finds non-speech and keeps speech tails out;
* the leading segment is the run of non-speech frames from the start of the take, the
  trailing one the run up to its last full frame; the frame next to the speech is dropped
  as a guard against onsets and decays, frames holding a run of more than
  :data:`MAX_ZERO_RUN` exact-zero samples are dropped (digital zero is what the bank must
  replace), and pieces shorter than :data:`MIN_FRAMES` frames are not kept.

Measured on the whole FSDD (500 takes per speaker; defaults ``floor_db=10``, ``peak_db=20``):

=========  =====  ========  ==========  =======  ============  ================
speaker    floor  segments  takes with  total    mean (range)  frame energy
=========  =====  ========  ==========  =======  ============  ================
george     -49.9  598       437         40.4 s   68 (20-520)   -65.7 .. -39.9
jackson    -52.9  238       183         27.4 s   115 (20-490)  -71.3 .. -43.0
nicolas    -40.9  187       125          9.8 s   53 (20-190)   -42.7 .. -34.4
theo       -66.6  189       158         10.2 s   54 (20-350)   -76.8 .. -56.7
yweweler   -71.1  579       418         25.8 s   45 (20-190)   -85.6 .. -61.1
=========  =====  ========  ==========  =======  ============  ================

(dB; segment durations in ms). Their log-mel band means (default fbank) are about 12.7
(george), 12.4 (jackson), 14.2 (nicolas), 9.8 (theo), 8.3 (yweweler), against 4.3 for the
dithered digital zero they replace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

FRAME_SECONDS = 0.010
FLOOR_PERCENTILE = 5.0
GUARD_FRAMES = 1
MIN_FRAMES = 2
MAX_ZERO_RUN = 4
_EPS = 1e-10


@dataclass(frozen=True)
class NonSpeechBank:
    """Non-speech segments of one speaker: ``takes[take_index[k]]`` samples ``start[k]`` to ``start[k] + length[k]``."""

    speaker: str
    take_index: np.ndarray
    start: np.ndarray
    length: np.ndarray
    floor_db: float
    frame_db_min: float
    frame_db_max: float

    def __len__(self) -> int:
        return int(self.length.shape[0])



def frame_energy_db(audio: np.ndarray, frame: int) -> np.ndarray:
    """Energy (dB, mean square) of the non-overlapping ``frame``-sample frames of ``audio`` (a partial last frame is ignored)."""
    n = audio.shape[0] // frame
    x = audio[: n * frame].astype(np.float64).reshape(n, frame)
    return 10.0 * np.log10(np.mean(x * x, axis=1) + _EPS)


def zero_run_frames(audio: np.ndarray, frame: int, max_run: int = MAX_ZERO_RUN) -> np.ndarray:
    """Boolean per full frame: does the frame overlap a run of more than ``max_run`` exact zeros?"""
    n = audio.shape[0] // frame
    z = np.concatenate(([0], (audio[: n * frame] == 0).astype(np.int8), [0]))
    d = np.diff(z)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    long = (ends - starts) > max_run
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, starts[long] // frame, 1)
    np.add.at(marks, (ends[long] - 1) // frame + 1, -1)
    return np.cumsum(marks[:n]) > 0


def _runs(mask: np.ndarray):
    """Start and length of every run of True in ``mask``."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    return starts, np.flatnonzero(d == -1) - starts


def edge_mask(db: np.ndarray, threshold: float) -> np.ndarray:
    """Frames of the leading and trailing below-``threshold`` runs, less :data:`GUARD_FRAMES` next to the speech."""
    low = db < threshold
    n = low.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0 or low.all():  # no speech frame at all: not an edge, leave the take out
        return mask
    lead = int(np.argmax(~low))
    trail = int(np.argmax(~low[::-1]))
    mask[: max(lead - GUARD_FRAMES, 0)] = True
    mask[n - max(trail - GUARD_FRAMES, 0) :] = True
    return mask


def nonspeech_bank(
    speaker: str,
    audios: Sequence[np.ndarray],
    sampling_rate: int,
    floor_db: float = 10.0,
    peak_db: float = 20.0,
) -> NonSpeechBank:
    """The non-speech bank of one speaker from the (mono) audio of its takes, in take order (see module doc)."""
    frame = max(1, int(round(FRAME_SECONDS * sampling_rate)))
    dbs = [frame_energy_db(a, frame) for a in audios]
    pooled = np.concatenate(dbs) if dbs else np.zeros(0)
    floor = float(np.percentile(pooled, FLOOR_PERCENTILE)) if pooled.size else float("nan")
    take_index: List[np.ndarray] = []
    starts: List[np.ndarray] = []
    lengths: List[np.ndarray] = []
    levels: List[np.ndarray] = []
    for i, (audio, db) in enumerate(zip(audios, dbs)):
        if db.size == 0:
            continue
        mask = edge_mask(db, min(floor + floor_db, float(db.max()) - peak_db)) & ~zero_run_frames(audio, frame)
        s, n = _runs(mask)
        keep = n >= MIN_FRAMES
        s, n = s[keep], n[keep]
        if s.size == 0:
            continue
        take_index.append(np.full(s.size, i, dtype=np.int64))
        starts.append(s * frame)
        lengths.append(n * frame)
        kept = np.zeros(db.shape[0] + 1, dtype=np.int64)
        np.add.at(kept, s, 1)
        np.add.at(kept, s + n, -1)
        levels.append(db[np.cumsum(kept[:-1]) > 0])
    cat = lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    lv = np.concatenate(levels) if levels else np.zeros(0)
    return NonSpeechBank(
        speaker=speaker,
        take_index=cat(take_index),
        start=cat(starts),
        length=cat(lengths),
        floor_db=floor,
        frame_db_min=float(lv.min()) if lv.size else float("nan"),
        frame_db_max=float(lv.max()) if lv.size else float("nan"),
    )
