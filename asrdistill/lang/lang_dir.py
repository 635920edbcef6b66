"""The lang directory (Kaldi's ``data/lang``): symbol tables, topology, lexicon FSTs.

:func:`prepare_lang` writes

* ``phones.txt``: ``<eps>`` 0, silence phones (``SIL``, and ``SPN`` for the OOV word),
  the non-silence phones of the lexicon (with word-position dependent phones, each as
  its four variants ``P_B P_E P_I P_S``, Kaldi's order), then disambiguation symbols
  ``#0``, ``#1``, ...;
* ``words.txt``: ``<eps>`` 0, the words, then ``#0``, ``<s>``, ``</s>``;
* ``lexicon.txt`` (with ``!SIL SIL`` and ``<UNK> SPN``): the *plain* pronunciations, base
  phones without position markers (what :attr:`LangDir.lexicon` reads); with positions
  also ``lexicon_pos.txt``, the same entries with the markers (what ``L.fst`` holds,
  :attr:`LangDir.positional_lexicon`);
* ``topo`` (Kaldi text format): every variant of a non-silence phone has the
  non-silence topology;
* ``L.fst`` (training graphs) and ``L_disambig.fst`` (decoding graphs), built as Kaldi's
  ``make_lexicon_fst.py`` does: optional silence with probability ``sil_prob`` between
  words and at the start, pronunciations that are prefixes of others or shared by
  several words end in ``#1``, ``#2``... in ``L_disambig`` (computed, as Kaldi does, on
  the pronunciations as they appear in ``L``, i.e. with position markers), and a
  ``#0:#0`` self-loop passes the grammar's back-off symbol;
* ``phones/`` as Kaldi's ``prepare_lang.sh`` writes it (each file as ``.txt`` with names
  and ``.int`` with ids): ``sets`` (one line per base phone: its position variants; each
  silence phone alone), ``roots`` (``shared split`` + the phones of one tree root: each
  base phone's variants together, the silence phones ``SIL SPN`` sharing one root),
  ``extra_questions`` (the silence phones, and with positions one question per
  position: all ``_B`` phones, all ``_E``, all ``_I``, all ``_S``), ``context_indep``
  (the silence phones) and, with positions only, ``word_boundary`` (``nonword``,
  ``begin``, ``end``, ``internal`` or ``singleton`` per phone);
* ``lang_config.yaml``.

Word positions (``position_dependent_phones``, default on, as in Kaldi): the phone of a
one-phone word gets ``_S``, otherwise the first ``_B``, the last ``_E`` and the others
``_I``; the tree can then ask whether a context phone starts or ends a word (and
cross-word contexts are told apart from word-internal ones). With it off, phones are
position-independent and the lang directory is what it was before this option existed.

Deviation from Kaldi: Kaldi also gives the silence phones variants (``SIL_B``, ...,
``SPN_S``, besides the plain ``SIL`` of optional silence). Here the silence phones stay
position-independent: optional silence is a separate, word-free phone between words,
``!SIL`` and ``<UNK>`` are one-phone "words" whose variant would only split the same
sound over several models, so ``SIL`` and ``SPN`` appear as they are in ``phones.txt``,
in the FSTs and in ``word_boundary`` (as ``nonword``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.config import load_config, save_config
from .lexicon import Lexicon, Pron
from .topology import make_topology

SIL = "SIL"
SPN = "SPN"
SIL_WORD = "!SIL"
POSITIONS = ("_B", "_E", "_I", "_S")  # begin, end, internal, singleton: Kaldi's order of the variants
WORD_BOUNDARY = {"_B": "begin", "_E": "end", "_I": "internal", "_S": "singleton"}
_POSITION_RE = re.compile(r"^(.+)_[BEIS]$")


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
    position_dependent_phones: bool = field(
        default=True,
        metadata={"help": "Word-position dependent phones, as Kaldi's prepare_lang.sh: each non-silence phone P "
                          "becomes P_B, P_E, P_I, P_S (word begin, end, internal, one-phone word); silence stays "
                          "as it is."},
    )


def base_phone_name(name: str, position_dependent: bool = True) -> str:
    """``name`` without its word-position marker (``AH_B`` -> ``AH``).

    Only strips when ``position_dependent`` (the lang directory has position variants):
    in a position-independent lang a phone named ``X_B`` is a phone of its own.
    Disambiguation symbols and silence phones come back unchanged.
    """
    if not position_dependent:
        return name
    m = _POSITION_RE.match(name)
    return m.group(1) if m else name


def word_position_pron(pron: Sequence[str], silence: Iterable[str] = (SIL, SPN)) -> Pron:
    """Kaldi's word-position markers: one phone -> ``_S``; else first ``_B``, middle ``_I``, last ``_E``.

    Silence phones stay unmarked (see the module doc).
    """
    silence = set(silence)
    n = len(pron)
    out = []
    for k, p in enumerate(pron):
        if p in silence:
            out.append(p)
        else:
            out.append(p + ("_S" if n == 1 else "_B" if k == 0 else "_E" if k == n - 1 else "_I"))
    return tuple(out)


def phone_group_name(names: Iterable[str], position_dependent: bool = True) -> str:
    """A short readable name for a set of phones (the phones of a pdf, a root, a question).

    With positions, a base phone all four of whose variants are in the set is written as
    the base phone (``AH``); otherwise its variants are listed (``AH_B/AH_I``). Sorted, ``/``-joined.
    """
    names = set(names)
    if not position_dependent:
        return "/".join(sorted(names))
    out = set()
    for n in names:
        base = base_phone_name(n)
        if base != n and all(base + s in names for s in POSITIONS):
            out.add(base)
        else:
            out.add(n)
    return "/".join(sorted(out))


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


def _phone_structure(silence: Sequence[str], nonsil_bases: Sequence[str],
                     positions: bool) -> Dict[str, List[List[str]]]:
    """Kaldi's ``phones/`` sets by name: sets, roots, extra questions, context-independent phones."""
    variants = {b: [b + s for s in POSITIONS] if positions else [b] for b in nonsil_bases}
    questions = [list(silence)] if silence else []
    if positions:
        questions += [[b + s for b in nonsil_bases] for s in POSITIONS if nonsil_bases]
    return {
        "sets": [[s] for s in silence] + [variants[b] for b in nonsil_bases],
        "roots": ([list(silence)] if silence else []) + [variants[b] for b in nonsil_bases],
        "extra_questions": questions,
        "context_indep": [[s] for s in silence],
    }


def _write_phone_lists(phones_dir: Path, name: str, groups: List[List[str]], phone_id: Dict[str, int],
                       prefix: str = "") -> None:
    atomic_write_text(phones_dir / f"{name}.txt", "".join(prefix + " ".join(g) + "\n" for g in groups))
    atomic_write_text(phones_dir / f"{name}.int",
                      "".join(prefix + " ".join(str(phone_id[p]) for p in g) + "\n" for g in groups))


def _write_phones_dir(phones_dir: Path, phone_id: Dict[str, int], silence: Sequence[str], nonsil_bases: Sequence[str],
                      positions: bool) -> None:
    phones_dir.mkdir(exist_ok=True)
    structure = _phone_structure(silence, nonsil_bases, positions)
    for name, groups in structure.items():
        _write_phone_lists(phones_dir, name, groups, phone_id, "shared split " if name == "roots" else "")
    if positions:  # Kaldi writes word_boundary only with position-dependent phones
        bounds = [(p, "nonword") for p in silence] + [
            (b + s, WORD_BOUNDARY[s]) for b in nonsil_bases for s in POSITIONS
        ]
        atomic_write_text(phones_dir / "word_boundary.txt", "".join(f"{p} {k}\n" for p, k in bounds))
        atomic_write_text(phones_dir / "word_boundary.int", "".join(f"{phone_id[p]} {k}\n" for p, k in bounds))


def prepare_lang(lexicon: Lexicon, output_dir, config: LangConfig = LangConfig()) -> "LangDir":
    """Write the lang directory for ``lexicon`` (see module doc) and return it loaded."""
    import kaldifst

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    positions = config.position_dependent_phones
    for special in (SIL, SPN):
        if special in lexicon.phones():
            raise ValueError(f"the lexicon uses the reserved phone {special}")
    if positions:
        marked = [p for p in lexicon.phones() if _POSITION_RE.match(p)]
        if marked:
            raise ValueError(
                f"lexicon phone(s) {', '.join(marked[:10])} end in a word-position marker (_B/_E/_I/_S); with "
                "position-dependent phones these names would be ambiguous (rename them, or turn "
                "position_dependent_phones off for a lexicon that already carries positions)"
            )
    full = Lexicon({w: list(p) for w, p in lexicon.prons.items()})
    full.add(SIL_WORD, [SIL])
    if config.oov_word:
        full.add(config.oov_word, [SPN])
    silence = [SIL] + ([SPN] if config.oov_word else [])
    if positions:
        lex_fst = Lexicon()
        for w, p in full.entries():
            lex_fst.add(w, word_position_pron(p, silence))
    else:
        lex_fst = full
    entries = list(lex_fst.entries())
    disambig_entries = add_disambig(entries)
    max_disambig = max([int(p[-1][1:]) for _, p in disambig_entries if p[-1].startswith("#")] + [0])
    nonsil_bases = lexicon.phones()
    nonsil = [b + s for b in nonsil_bases for s in POSITIONS] if positions else nonsil_bases
    phones = ["<eps>"] + silence + nonsil + [f"#{k}" for k in range(max_disambig + 1)]
    words = ["<eps>"] + sorted(full.prons) + ["#0", "<s>", "</s>"]
    phone_id = {p: i for i, p in enumerate(phones)}
    word_id = {w: i for i, w in enumerate(words)}

    _write_symbols(output_dir / "phones.txt", phones)
    _write_symbols(output_dir / "words.txt", words)
    full.write(output_dir / "lexicon.txt")
    if positions:
        lex_fst.write(output_dir / "lexicon_pos.txt")
    elif (output_dir / "lexicon_pos.txt").exists():  # left over from an earlier run with positions
        (output_dir / "lexicon_pos.txt").unlink()
    stale = output_dir / "phones" / "word_boundary.txt"
    if not positions:
        for path in (stale, stale.with_suffix(".int")):
            if path.exists():
                path.unlink()
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
    _write_phones_dir(output_dir / "phones", phone_id, silence, nonsil_bases, positions)
    save_config(config, output_dir / "lang_config.yaml")
    return LangDir(output_dir)


class LangDir:
    """A lang directory written by :func:`prepare_lang`.

    ``position_dependent`` is read from the directory itself (Kaldi's sign:
    ``phones/word_boundary.txt`` exists), so lang directories written before the option
    existed load as position-independent; their ``phones/`` lists, missing, are derived
    from ``phones.txt``.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not (self.path / "phones.txt").exists():
            raise FileNotFoundError(f"{self.path} is not a lang directory (no phones.txt); run the lang stage")
        self.phone_id = _symbols(self.path / "phones.txt")
        self.word_id = _symbols(self.path / "words.txt")
        self.id_phone = {i: p for p, i in self.phone_id.items()}
        self.id_word = {i: w for w, i in self.word_id.items()}
        self.config = load_config(LangConfig, self.path / "lang_config.yaml")
        self.position_dependent = (self.path / "phones" / "word_boundary.txt").exists()
        self.config.position_dependent_phones = self.position_dependent  # old configs lack the key (default: on)
        self.lexicon = Lexicon.read(self.path / "lexicon.txt")  # plain pronunciations (base phones)
        self._positional_lexicon: Optional[Lexicon] = None

    @property
    def positional_lexicon(self) -> Lexicon:
        """The pronunciations as ``L.fst`` holds them: with ``_B``/``_E``/``_I``/``_S`` (the plain lexicon
        without positions)."""
        if not self.position_dependent:
            return self.lexicon
        if self._positional_lexicon is None:
            self._positional_lexicon = Lexicon.read(self.path / "lexicon_pos.txt")
        return self._positional_lexicon

    @property
    def disambig_phones(self) -> List[int]:
        return [i for p, i in self.phone_id.items() if p.startswith("#")]

    @property
    def silence_phones(self) -> List[int]:
        return [self.phone_id[p] for p in (SIL, SPN) if p in self.phone_id]

    @property
    def phones(self) -> List[int]:
        """Real phones (no ``<eps>``, no disambiguation symbols), ascending; with positions, every variant."""
        return sorted(i for p, i in self.phone_id.items() if i > 0 and not p.startswith("#"))

    @property
    def oov_word(self) -> Optional[str]:
        return self.config.oov_word or None

    # ------------------------------------------------------------- phone sets (Kaldi's phones/)
    def base_phone(self, phone_id: int) -> str:
        """The base phone name of a phone id (``AH_B`` -> ``AH`` with positions; the name itself otherwise)."""
        return base_phone_name(self.id_phone[phone_id], self.position_dependent)

    def phone_ids(self, names: Iterable[str], missing_ok: bool = False) -> List[int]:
        """Ids of phone names, a base phone standing for all its variants (``AH`` -> ``AH_B AH_E AH_I AH_S``;
        ``AH_B`` alone stays itself). For config lists written with base phones (shared roots, ci phones,
        question files). Unknown names raise KeyError unless ``missing_ok``."""
        by_base: Dict[str, List[int]] = {}
        for s in self.phone_sets():
            for p in s:
                by_base.setdefault(base_phone_name(self.id_phone[p], self.position_dependent), []).append(p)
        out: List[int] = []
        for n in names:
            if n in self.phone_id and not n.startswith("#") and n != "<eps>":
                ids = [self.phone_id[n]]
            elif n in by_base:
                ids = by_base[n]
            elif missing_ok:
                continue
            else:
                raise KeyError(f"phone {n!r} is not in {self.path}/phones.txt (neither a phone nor a base phone)")
            out += [i for i in ids if i not in out]
        return out

    def base_phones(self) -> List[str]:
        """Base phone names: silence phones, then the lexicon's phones (as in ``phones/sets.txt``)."""
        return [base_phone_name(self.id_phone[s[0]], self.position_dependent) for s in self.phone_sets()]

    def _derived(self, name: str) -> List[List[int]]:
        silence = [self.id_phone[i] for i in self.silence_phones]
        bases = sorted({base_phone_name(self.id_phone[i], self.position_dependent)
                        for i in self.phones if self.id_phone[i] not in silence})
        groups = _phone_structure(silence, bases, self.position_dependent)[name]
        return [[self.phone_id[p] for p in g] for g in groups]

    def _phone_lists(self, name: str, skip: int = 0) -> List[List[int]]:
        path = self.path / "phones" / f"{name}.int"
        if not path.exists():
            return self._derived(name)
        with open(path) as f:
            return [[int(x) for x in line.split()[skip:]] for line in f if line.split()[skip:]]

    def phone_sets(self) -> List[List[int]]:
        """Kaldi's ``phones/sets``: per base phone, its phone ids (the four position variants, or the phone
        alone); each silence phone its own set. The units of phone clustering and of monophone pdf sharing."""
        return self._phone_lists("sets")

    def tree_roots(self) -> List[List[int]]:
        """Kaldi's ``phones/roots`` (without ``shared split``): the phones sharing one decision-tree root.
        Each base phone's variants together; the silence phones (``SIL SPN``) share one root."""
        return self._phone_lists("roots", skip=2)

    def extra_questions(self) -> List[List[int]]:
        """Kaldi's ``phones/extra_questions``: the silence phones, and with positions one question per
        position (all ``_B`` phones, all ``_E``, all ``_I``, all ``_S``)."""
        return self._phone_lists("extra_questions")

    @property
    def context_independent_phones(self) -> List[int]:
        """Phones without context questions (the tree's ``--ci-phones``): the silence phones."""
        return [p for s in self._phone_lists("context_indep") for p in s]

    def word_position(self, phone_id: int) -> str:
        """Kaldi's word_boundary class of a phone: ``begin``/``end``/``internal``/``singleton``, ``nonword``
        for silence; without positions, ``nonword`` for silence and ``""`` (unknown) for the rest."""
        name = self.id_phone[phone_id]
        if phone_id in self.silence_phones:
            return "nonword"
        if not self.position_dependent or phone_id not in self.phones:
            return ""
        return WORD_BOUNDARY[name[-2:]]

    # ------------------------------------------------------------- files
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
