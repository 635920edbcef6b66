"""Connected-digit utterances (TIDIGITS style) built from isolated takes.

An utterance concatenates 2 to 7 takes of one speaker with short pauses, plus short
leading and trailing silence. It is a lhotse :class:`~lhotse.cut.MixedCut`: its first
tracks are the source takes (cuts with their own supervisions, so word times are known),
each placed at an offset, in spoken order. The source takes are therefore recorded in the
manifest itself, and loading the cut's audio reproduces the concatenation exactly.

What lies between the words depends on ``pause_fill``:

* ``nonspeech`` (default): every pause and both edges are filled, back to back, with
  segments of the same speaker's *recorded* non-speech (the low-energy leading and
  trailing parts of its own takes, see :mod:`asrdistill.data.nonspeech`), at their
  recorded level; a gap longer than the segment drawn is tiled with further segments (never
  the same one twice in a row), the last one cut to fit. Each filler is an extra track after the source takes: a truncated
  take :class:`~lhotse.cut.MonoCut` with no supervisions (no words are added), id
  ``nonspeech-{take}-{start}-{samples}`` and ``custom["kind"] == "nonspeech"``. The
  loaded audio is then real recording everywhere: acoustic models see the speaker's
  breath and room noise between words, never digital zero.
* ``zeros``: the earlier construction, kept for comparison: pauses and the leading edge are
  the digital zero between tracks, and the trailing edge is a
  :class:`~lhotse.cut.PaddingCut` (``feat_value`` 0).

The layout (which takes, pause and edge lengths) is the same in both modes; the filler
draws use a random stream of their own. Everything is seeded per speaker (``seed`` and the
speaker name), so it does not change when speakers are added or removed, and pauses are
whole samples. :func:`source_takes` returns the digit takes only, in either mode.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np
from lhotse.cut import Cut, MixedCut, MixTrack, MonoCut, PaddingCut
from lhotse.utils import fastcopy

from .nonspeech import NonSpeechBank, nonspeech_bank

PAUSE_FILLS = ("nonspeech", "zeros")
NONSPEECH_KIND = "nonspeech"


@dataclass
class ConnectedDigitsConfig:
    utterances_per_speaker: int = field(
        default=200, metadata={"help": "Connected-digit utterances built per speaker (0 disables)."}
    )
    min_digits: int = field(default=2, metadata={"help": "Fewest digits in a connected utterance."})
    max_digits: int = field(default=7, metadata={"help": "Most digits in a connected utterance."})
    min_pause: float = field(default=0.05, metadata={"help": "Shortest pause between digits (s)."})
    max_pause: float = field(default=0.30, metadata={"help": "Longest pause between digits (s)."})
    edge_silence: float = field(default=0.15, metadata={"help": "Longest leading/trailing silence (s)."})
    pause_fill: str = field(
        default="nonspeech",
        metadata={
            "help": "What fills pauses and edges: 'nonspeech' = the speaker's own recorded non-speech "
            "(edges of its takes), 'zeros' = digital zero (the old construction, for comparison).",
            "choices": list(PAUSE_FILLS),
        },
    )
    nonspeech_floor_db: float = field(
        default=10.0,
        metadata={
            "help": "Non-speech frames (10 ms) are below the speaker's noise floor (5th percentile of its "
            "frame energies) plus this many dB ..."
        },
    )
    nonspeech_peak_db: float = field(
        default=20.0, metadata={"help": "... and at least this many dB below the take's loudest frame."}
    )


def _speaker_rng(seed: int, speaker: str, stream: int = 0) -> np.random.Generator:
    key = [seed, zlib.crc32(speaker.encode("utf-8"))]
    return np.random.default_rng(key if stream == 0 else key + [stream])


def is_filler(cut: Cut) -> bool:
    """Is this track cut a filler (padding or recorded non-speech) rather than a digit take?"""
    return isinstance(cut, PaddingCut) or (cut.custom or {}).get("kind") == NONSPEECH_KIND


def speaker_bank(speaker: str, takes: Sequence[MonoCut], config: ConnectedDigitsConfig) -> NonSpeechBank:
    """Non-speech bank of ``speaker`` from ``takes`` (each take's audio is loaded once)."""
    audios = []
    for take in takes:
        audio = take.load_audio()
        audios.append(audio[0] if audio.ndim == 2 else audio)
    rates = {t.sampling_rate for t in takes}
    if len(rates) != 1:
        raise ValueError(f"speaker {speaker!r}: takes have several sampling rates {sorted(rates)}")
    return nonspeech_bank(
        speaker, audios, rates.pop(), floor_db=config.nonspeech_floor_db, peak_db=config.nonspeech_peak_db
    )


def _filler(take: MonoCut, start: int, num: int, sampling_rate: int) -> MonoCut:
    """``num`` samples of ``take`` from sample ``start``, as a supervision-free non-speech cut."""
    piece = take.truncate(
        offset=start / sampling_rate, duration=num / sampling_rate, keep_excessive_supervisions=False, preserve_id=True
    )
    custom = dict(take.custom or {})
    custom["kind"] = NONSPEECH_KIND
    return fastcopy(piece, id=f"nonspeech-{take.id}-{start}-{num}", supervisions=[], custom=custom)


def _fill_gap(
    position: int, num: int, takes: Sequence[MonoCut], bank: NonSpeechBank, rng: np.random.Generator, sampling_rate: int
) -> List[MixTrack]:
    """Tracks covering samples ``position`` .. ``position + num`` with bank segments drawn back to back.

    A segment is never drawn twice in a row (a repeated piece of noise would be periodic).
    """
    tracks = []
    end, k = position + num, -1
    while position < end:
        if k < 0 or len(bank) == 1:
            k = int(rng.integers(len(bank)))
        else:
            k = (k + 1 + int(rng.integers(len(bank) - 1))) % len(bank)
        length = min(int(bank.length[k]), end - position)
        piece = _filler(takes[int(bank.take_index[k])], int(bank.start[k]), length, sampling_rate)
        tracks.append(MixTrack(cut=piece, offset=position / sampling_rate))
        position += length
    return tracks


def build_connected_digits(
    takes_by_speaker: Dict[str, Sequence[MonoCut]],
    config: ConnectedDigitsConfig,
    seed: int,
    sampling_rate: int,
) -> List[MixedCut]:
    """Build ``config.utterances_per_speaker`` connected utterances for each speaker.

    Takes within one utterance are distinct. Cut ids are
    ``{speaker}-conn{index:04d}-{digits}``, e.g. ``theo-conn0007-4715``. With
    ``pause_fill="nonspeech"``, a speaker without any usable recorded non-speech is an error.
    """
    if not 1 <= config.min_digits <= config.max_digits:
        raise ValueError(f"bad digit range {config.min_digits}..{config.max_digits}")
    if not 0 <= config.min_pause <= config.max_pause:
        raise ValueError(f"bad pause range {config.min_pause}..{config.max_pause}")
    if config.pause_fill not in PAUSE_FILLS:
        raise ValueError(f"pause_fill must be one of {list(PAUSE_FILLS)}, not {config.pause_fill!r}")
    fill = config.pause_fill == "nonspeech"
    out: List[MixedCut] = []
    for speaker in sorted(takes_by_speaker):
        takes = sorted(takes_by_speaker[speaker], key=lambda c: c.id)
        if not takes or config.utterances_per_speaker <= 0:
            continue
        rng = _speaker_rng(seed, speaker)
        if fill:
            bank = speaker_bank(speaker, takes, config)
            if len(bank) == 0:
                raise ValueError(
                    f"speaker {speaker!r}: no usable recorded non-speech at the edges of its {len(takes)} takes "
                    f"(nonspeech_floor_db={config.nonspeech_floor_db}, nonspeech_peak_db={config.nonspeech_peak_db}); "
                    "relax these thresholds or use pause_fill='zeros'"
                )
            fill_rng = _speaker_rng(seed, speaker, stream=1)
        for index in range(config.utterances_per_speaker):
            n = int(rng.integers(config.min_digits, config.max_digits + 1))
            chosen = rng.choice(len(takes), size=min(n, len(takes)), replace=False)
            pauses = rng.integers(
                int(config.min_pause * sampling_rate), int(config.max_pause * sampling_rate) + 1, size=len(chosen)
            )
            edges = rng.integers(0, int(config.edge_silence * sampling_rate) + 1, size=2)
            tracks, gaps, position = [], [(0, int(edges[0]))], int(edges[0])
            for k, i in enumerate(chosen):
                take = takes[i]
                tracks.append(MixTrack(cut=take, offset=position / sampling_rate))
                position += take.num_samples
                gap = int(pauses[k]) if k + 1 < len(chosen) else int(edges[1])
                gaps.append((position, gap))
                position += gap
            if fill:
                for start, num in gaps:
                    tracks.extend(_fill_gap(start, num, takes, bank, fill_rng, sampling_rate))
            elif edges[1] > 0:
                pad = PaddingCut(
                    id=f"{speaker}-conn{index:04d}-pad",
                    duration=int(edges[1]) / sampling_rate,
                    sampling_rate=sampling_rate,
                    feat_value=0.0,
                    num_samples=int(edges[1]),
                )
                tracks.append(MixTrack(cut=pad, offset=gaps[-1][0] / sampling_rate))
            digits = "".join(takes[i].id.split("_")[0] for i in chosen)
            out.append(MixedCut(id=f"{speaker}-conn{index:04d}-{digits}", tracks=tracks))
    return out


def source_takes(cut) -> List[str]:
    """Ids of the source takes a connected cut was built from (in order; fillers left out)."""
    if isinstance(cut, MixedCut):
        return [t.cut.id for t in cut.tracks if not is_filler(t.cut)]
    return list((cut.custom or {}).get("source_takes", [cut.id]))
