"""Helpers on lhotse cuts shared by every corpus: transcript, speaker, split summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable

from lhotse.cut import Cut


def cut_text(cut: Cut) -> str:
    """The cut's transcript: its supervisions' texts in time order, space-joined."""
    return " ".join(s.text for s in sorted(cut.supervisions, key=lambda s: s.start) if s.text)


def cut_speaker(cut: Cut) -> str:
    """The cut's speaker (all supervisions of a cut must share one)."""
    speakers = {s.speaker for s in cut.supervisions}
    if len(speakers) != 1:
        raise ValueError(f"cut {cut.id}: expected one speaker, got {sorted(map(str, speakers))}")
    return speakers.pop()


@dataclass
class SplitSummary:
    name: str
    num_cuts: int
    hours: float
    num_speakers: int
    speakers: str
    num_words: int

    def row(self) -> str:
        return (
            f"{self.name:<8} {self.num_cuts:>7} {self.hours:>8.3f} {self.num_speakers:>9} "
            f"{self.num_words:>7}  {self.speakers}"
        )


SUMMARY_HEADER = f"{'split':<8} {'cuts':>7} {'hours':>8} {'speakers':>9} {'words':>7}  names"


def summarize(name: str, cuts: Iterable[Cut]) -> SplitSummary:
    n, seconds, words, speakers = 0, 0.0, 0, set()
    for c in cuts:
        n += 1
        seconds += c.duration
        words += len(cut_text(c).split())
        speakers.update(s.speaker for s in c.supervisions)
    return SplitSummary(name, n, seconds / 3600, len(speakers), ",".join(sorted(speakers)), words)


def format_summary(summaries: Dict[str, SplitSummary]) -> str:
    return "\n".join([SUMMARY_HEADER] + [s.row() for s in summaries.values()])
