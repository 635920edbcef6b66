"""Connected-digit utterances (TIDIGITS style) built from isolated takes.

An utterance concatenates 2 to 7 takes of one speaker with short pauses, plus short
leading and trailing silence. It is a lhotse :class:`~lhotse.cut.MixedCut`: each track
is a source take (a cut with its own supervision, so word times are known) placed at
an offset, and the trailing silence is a :class:`~lhotse.cut.PaddingCut`. The source
takes are therefore recorded in the manifest itself, and loading the cut's audio
reproduces the concatenation exactly.

The construction is seeded per speaker (``seed`` and the speaker name), so it does not
change when speakers are added or removed, and pauses are whole samples.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np
from lhotse.cut import MixedCut, MixTrack, MonoCut, PaddingCut


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


def _speaker_rng(seed: int, speaker: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(speaker.encode("utf-8"))])


def build_connected_digits(
    takes_by_speaker: Dict[str, Sequence[MonoCut]],
    config: ConnectedDigitsConfig,
    seed: int,
    sampling_rate: int,
) -> List[MixedCut]:
    """Build ``config.utterances_per_speaker`` connected utterances for each speaker.

    Takes within one utterance are distinct. Cut ids are
    ``{speaker}-conn{index:04d}-{digits}``, e.g. ``theo-conn0007-4715``.
    """
    if not 1 <= config.min_digits <= config.max_digits:
        raise ValueError(f"bad digit range {config.min_digits}..{config.max_digits}")
    if not 0 <= config.min_pause <= config.max_pause:
        raise ValueError(f"bad pause range {config.min_pause}..{config.max_pause}")
    out: List[MixedCut] = []
    for speaker in sorted(takes_by_speaker):
        takes = sorted(takes_by_speaker[speaker], key=lambda c: c.id)
        if not takes:
            continue
        rng = _speaker_rng(seed, speaker)
        for index in range(config.utterances_per_speaker):
            n = int(rng.integers(config.min_digits, config.max_digits + 1))
            chosen = rng.choice(len(takes), size=min(n, len(takes)), replace=False)
            pauses = rng.integers(
                int(config.min_pause * sampling_rate), int(config.max_pause * sampling_rate) + 1, size=len(chosen)
            )
            edges = rng.integers(0, int(config.edge_silence * sampling_rate) + 1, size=2)
            tracks, position = [], int(edges[0])
            for k, i in enumerate(chosen):
                take = takes[i]
                tracks.append(MixTrack(cut=take, offset=position / sampling_rate))
                position += take.num_samples + (int(pauses[k]) if k + 1 < len(chosen) else 0)
            if edges[1] > 0:
                pad = PaddingCut(
                    id=f"{speaker}-conn{index:04d}-pad",
                    duration=int(edges[1]) / sampling_rate,
                    sampling_rate=sampling_rate,
                    feat_value=0.0,
                    num_samples=int(edges[1]),
                )
                tracks.append(MixTrack(cut=pad, offset=position / sampling_rate))
            digits = "".join(takes[i].id.split("_")[0] for i in chosen)
            out.append(MixedCut(id=f"{speaker}-conn{index:04d}-{digits}", tracks=tracks))
    return out


def source_takes(cut) -> List[str]:
    """Ids of the source takes a connected cut was built from (in order)."""
    if isinstance(cut, MixedCut):
        return [t.cut.id for t in cut.tracks if not isinstance(t.cut, PaddingCut)]
    return list((cut.custom or {}).get("source_takes", [cut.id]))
