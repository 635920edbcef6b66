"""WER scoring with Kaldi's conventions (kaldialign edit distance).

``%WER 1.23 [ 45 / 3660, 10 ins, 20 del, 15 sub ]``; per-utterance ``recogs-*`` and
``errs-*`` files named after the decoding settings, as icefall writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from ..utils.atomic import atomic_write_text


@dataclass
class WerStats:
    ins: int = 0
    dels: int = 0
    sub: int = 0
    words: int = 0
    sentences: int = 0
    sentence_errors: int = 0

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.sub

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / max(self.words, 1)

    def line(self) -> str:
        return (f"%WER {self.wer:.2f} [ {self.errors} / {self.words}, {self.ins} ins, {self.dels} del, {self.sub} sub ]"
                f"  %SER {100.0 * self.sentence_errors / max(self.sentences, 1):.2f} [ {self.sentence_errors} / {self.sentences} ]")


def score(refs: Dict[str, Sequence[str]], hyps: Dict[str, Sequence[str]]) -> Tuple[WerStats, Dict[str, dict]]:
    """Totals and per-utterance edit statistics; an utterance without hypothesis counts as all deletions."""
    import kaldialign

    total = WerStats()
    per_utt = {}
    for u in sorted(refs):
        ref, hyp = list(refs[u]), list(hyps.get(u, []))
        e = kaldialign.edit_distance(ref, hyp)
        total.ins += e["ins"]
        total.dels += e["del"]
        total.sub += e["sub"]
        total.words += len(ref)
        total.sentences += 1
        total.sentence_errors += int(e["total"] > 0)
        per_utt[u] = e
    return total, per_utt


def write_results(out_dir: Path, name: str, refs, hyps, failed: List[str]) -> WerStats:
    """Write ``recogs-{name}.txt`` and ``errs-{name}.txt``; returns the totals."""
    import kaldialign

    total, per_utt = score(refs, hyps)
    recogs = []
    errs = [total.line(), f"utterances without a final state or hypothesis: {len(failed)} {' '.join(failed)}", "",
            "per-utterance errors (ref -> hyp, *** marks a gap):"]
    for u in sorted(refs):
        ref, hyp = list(refs[u]), list(hyps.get(u, []))
        recogs.append(f"{u}:\tref={ref}\n{u}:\thyp={hyp}")
        if per_utt[u]["total"] > 0:
            ali = kaldialign.align(ref, hyp, "***")
            errs.append(f"{u}: " + " ".join(r if r == h else f"({r}->{h})" for r, h in ali))
    atomic_write_text(out_dir / f"recogs-{name}.txt", "\n".join(recogs) + "\n")
    atomic_write_text(out_dir / f"errs-{name}.txt", "\n".join(errs) + "\n")
    return total


def word_recall(out_dir: Path, name: str, word: str) -> Tuple[int, int]:
    """``(recognized, total)`` reference occurrences of ``word`` in ``recogs-{name}.txt``, counted on
    the edit-distance alignment of each utterance."""
    import ast

    import kaldialign

    refs, hyps = {}, {}
    for line in (Path(out_dir) / f"recogs-{name}.txt").read_text().splitlines():
        utt, _, rest = line.partition(":\t")
        kind, _, words = rest.partition("=")
        (refs if kind == "ref" else hyps)[utt] = ast.literal_eval(words)
    hits = total = 0
    for u, ref in refs.items():
        total += ref.count(word)
        hits += sum(r == h == word for r, h in kaldialign.align(ref, hyps.get(u, []), "***"))
    return hits, total
