"""The lang directory (Kaldi's ``data/lang``): symbol tables, topology, lexicon FSTs.

:func:`prepare_lang` writes

* ``phones.txt``: ``<eps>`` 0, silence phones (``SIL``, and ``SPN`` for the OOV word),
  the non-silence phones of the lexicon, then disambiguation symbols ``#0``, ``#1``, ...;
* ``words.txt``: ``<eps>`` 0, the words, then ``#0``, ``<s>``, ``</s>``;
* ``lexicon.txt`` (with ``!SIL SIL`` and ``<UNK> SPN``), ``topo`` (Kaldi text format);
* ``L.fst`` (training graphs) and ``L_disambig.fst`` (decoding graphs), built as Kaldi's
  ``make_lexicon_fst.py`` does: optional silence with probability ``sil_prob`` between
  words and at the start, pronunciations that are prefixes of others or shared by
  several words end in ``#1``, ``#2``... in ``L_disambig``, and a ``#0:#0`` self-loop
  passes the grammar's back-off symbol;
* ``lang_config.yaml``.

Word-position handling: phones are position-independent (no ``_B``/``_I``/``_E``/``_S``
variants). Decoding maps to words through the graph, so word boundaries are not needed
to read out words, and the phone set (hence the number of tree roots) stays 4x smaller.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.config import load_config, save_config
from .lexicon import Lexicon, Pron
from .topology import make_topology

SIL = "SIL"
SPN = "SPN"
SIL_WORD = "!SIL"


@dataclass
class LangConfig:
    sil_prob: float = field(default=0.5, metadata={"help": "Probability of optional silence between words."})
    keep_stress: bool = field(default=False, metadata={"help": "Keep ARPAbet stress digits (AH0/AH1) as distinct phones."})
    oov_word: str = field(
        default="<UNK>", metadata={"help": "Declared OOV word (pronounced SPN) that unknown words map to; '' for none."}
    )
    num_nonsil_states: int = field(default=3, metadata={"help": "Emitting states of non-silence phone HMMs."})
    num_sil_states: int = field(default=5, metadata={"help": "Emitting states of silence phone HMMs."})
    max_prons: int = field(default=0, metadata={"help": "Keep at most this many CMU pronunciations per word (0: all)."})


def _symbols(path: Path) -> Dict[str, int]:
    table = {}
    with open(path) as f:
        for line in f:
            sym, idx = line.split()
            table[sym] = int(idx)
    return table


def _write_symbols(path: Path, symbols: Sequence[str]) -> None:
    atomic_write_text(path, "".join(f"{s} {i}\n" for i, s in enumerate(symbols)))


def add_disambig(entries: List[tuple]) -> List[tuple]:
    """Append ``#k`` to pronunciations that are prefixes of others or shared (Kaldi's add_lex_disambig)."""
    counts = Counter(p for _, p in entries)
    prefixes = set()
    for _, p in entries:
        for k in range(1, len(p)):
            prefixes.add(p[:k])
    next_id: Dict[Pron, int] = {}
    out = []
    for w, p in entries:
        if p in prefixes or counts[p] > 1:
            next_id[p] = next_id.get(p, 0) + 1
            out.append((w, p + (f"#{next_id[p]}",)))
        else:
            out.append((w, p))
    return out


def _lexicon_fst_text(entries, phone_id, word_id, sil_prob: float, disambig_loop: Optional[int]) -> str:
    lines = []
    start, loop, sil = 0, 1, 2
    next_state = 3
    if sil_prob > 0:
        nosil_cost, sil_cost = -math.log(1 - sil_prob), -math.log(sil_prob)
        lines.append(f"{start} {loop} 0 0 {nosil_cost}")
        lines.append(f"{start} {loop} {phone_id[SIL]} 0 {sil_cost}")
        lines.append(f"{sil} {loop} {phone_id[SIL]} 0")
    else:
        nosil_cost = sil_cost = 0.0
        lines.append(f"{start} {loop} 0 0")
    for word, pron in entries:
        s, out = loop, word_id[word]
        for ph in pron[:-1]:
            lines.append(f"{s} {next_state} {phone_id[ph]} {out}")
            s, out, next_state = next_state, 0, next_state + 1
        last = phone_id[pron[-1]]  # the last phone, or the disambiguation symbol that ends the word
        if sil_prob > 0:
            lines.append(f"{s} {loop} {last} {out} {nosil_cost}")
            lines.append(f"{s} {sil} {last} {out} {sil_cost}")
        else:
            lines.append(f"{s} {loop} {last} {out}")
    if disambig_loop is not None:
        lines.append(f"{loop} {loop} {disambig_loop[0]} {disambig_loop[1]}")
    lines.append(f"{loop}")
    return "\n".join(lines) + "\n"


def prepare_lang(lexicon: Lexicon, output_dir, config: LangConfig = LangConfig()) -> "LangDir":
    """Write the lang directory for ``lexicon`` (see module doc) and return it loaded."""
    import kaldifst

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for special in (SIL, SPN):
        if special in lexicon.phones():
            raise ValueError(f"the lexicon uses the reserved phone {special}")
    full = Lexicon({w: list(p) for w, p in lexicon.prons.items()})
    full.add(SIL_WORD, [SIL])
    if config.oov_word:
        full.add(config.oov_word, [SPN])
    entries = list(full.entries())
    disambig_entries = add_disambig(entries)
    max_disambig = max([int(p[-1][1:]) for _, p in disambig_entries if p[-1].startswith("#")] + [0])
    silence = [SIL] + ([SPN] if config.oov_word else [])
    nonsil = lexicon.phones()
    phones = ["<eps>"] + silence + nonsil + [f"#{k}" for k in range(max_disambig + 1)]
    words = ["<eps>"] + sorted(full.prons) + ["#0", "<s>", "</s>"]
    phone_id = {p: i for i, p in enumerate(phones)}
    word_id = {w: i for i, w in enumerate(words)}

    _write_symbols(output_dir / "phones.txt", phones)
    _write_symbols(output_dir / "words.txt", words)
    full.write(output_dir / "lexicon.txt")
    atomic_write_text(
        output_dir / "topo",
        make_topology(
            [phone_id[p] for p in nonsil],
            [phone_id[p] for p in silence],
            config.num_nonsil_states,
            config.num_sil_states,
        ),
    )
    for name, ents, loop in (
        ("L.fst", entries, None),
        ("L_disambig.fst", disambig_entries, (phone_id["#0"], word_id["#0"])),
    ):
        fst = kaldifst.compile(_lexicon_fst_text(ents, phone_id, word_id, config.sil_prob, loop))
        kaldifst.arcsort(fst, sort_type="olabel")
        with atomic_path(output_dir / name) as tmp:
            fst.write(str(tmp))
    save_config(config, output_dir / "lang_config.yaml")
    return LangDir(output_dir)


class LangDir:
    """A lang directory written by :func:`prepare_lang`."""

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "phones.txt").exists():
            raise FileNotFoundError(f"{self.path} is not a lang directory (no phones.txt); run the lang stage")
        self.phone_id = _symbols(self.path / "phones.txt")
        self.word_id = _symbols(self.path / "words.txt")
        self.id_phone = {i: p for p, i in self.phone_id.items()}
        self.id_word = {i: w for w, i in self.word_id.items()}
        self.config = load_config(LangConfig, self.path / "lang_config.yaml")
        self.lexicon = Lexicon.read(self.path / "lexicon.txt")

    @property
    def disambig_phones(self) -> List[int]:
        return [i for p, i in self.phone_id.items() if p.startswith("#")]

    @property
    def silence_phones(self) -> List[int]:
        return [self.phone_id[p] for p in (SIL, SPN) if p in self.phone_id]

    @property
    def phones(self) -> List[int]:
        """Real phones (no ``<eps>``, no disambiguation symbols), ascending."""
        return sorted(i for p, i in self.phone_id.items() if i > 0 and not p.startswith("#"))

    @property
    def oov_word(self) -> Optional[str]:
        return self.config.oov_word or None

    def topology(self):
        import kaldi_hmm_gmm as khg

        topo = khg.HmmTopology()
        topo.read((self.path / "topo").read_text())
        return topo

    def lexicon_fst(self, disambig: bool = False):
        import kaldifst

        return kaldifst.StdVectorFst.read(str(self.path / ("L_disambig.fst" if disambig else "L.fst")))

    def word_ids(self, text: str, where: str = "") -> List[int]:
        """Word ids of a transcript (OOVs mapped to the declared OOV word, else an error)."""
        out = []
        for w in text.split():
            i = self.word_id.get(w)
            if i is None:
                if self.oov_word is None:
                    raise KeyError(f"{where}: word {w!r} is not in {self.path}/words.txt and no OOV word is declared")
                i = self.word_id[self.oov_word]
            out.append(i)
        return out
