"""A back-off n-gram LM read from ARPA, stored compactly, or memory-mapped from its const form.

Kaldi rescores lattices with a large 4-gram through ``ConstArpaLm`` (``arpa-to-const-arpa``: the
n-grams in flat arrays, because an FST or a hash map of LibriSpeech's ``fglarge``, over 200 million
n-grams, would not fit). :class:`ArpaLM` stores an ARPA model the same way, as a trie in sorted
arrays:

* words get ids in the order of the unigram section; order 1 is indexed by word id;
* an n-gram of order ``k >= 2`` is the key ``index of its (k-1)-word prefix << 24 | word id`` in
  the sorted ``uint64`` array of order ``k`` (its index there is its position), beside its
  ``log10`` probability and back-off weight (``float32``; absent back-off: 0).

That is 16 bytes per n-gram (12 for the highest order) instead of a Python dictionary's ~300, and a
lookup is one binary search per word of the n-gram. :meth:`ArpaLM.save` writes the arrays as ``.npy``
files in a directory (the const form, ``asrdistill decode const-arpa``); ``ArpaLM(directory)``
memory-maps them, so a rescoring process reads only the pages its lookups touch and several
processes share one copy in the page cache. Parsing the text is the slow part (about 18 us per
n-gram here, BENCHMARKS.md): convert a large model once, rescore with the directory.

    >>> lm = ArpaLM("G.arpa")                       # doctest: +SKIP
    >>> lm.cost(["<s>", "ONE"], "TWO")              # -ln P(TWO | <s> ONE), backing off as ARPA does
    >>> lm.save("G.carpa"); ArpaLM("G.carpa")       # the const form, memory-mapped
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.readers import CorruptFileError, reading

_LN10 = math.log(10.0)
WORD_BITS = 24  # up to 16.7M words; prefixes up to 2^40 n-grams per order
_BATCH = 1 << 18  # lines per batch
_FORMAT = "asrdistill-const-arpa-1"


class ArpaFormatError(CorruptFileError):
    """A malformed ARPA file or const-ARPA directory (names the file and line)."""


class ArpaLM:
    """An ARPA back-off n-gram model: a plain or gzipped ARPA file, or a directory written by :meth:`save`.
    ``cost(history, word)`` is ``-ln P``; :meth:`options` lists the paths through G that read a word."""

    def __init__(self, path):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist (ARPA language model)")
        self.path = path
        if path.is_dir():
            self._load(path)
        else:
            with reading(path, "ARPA language model"):
                self._parse(path)
        self._cache: Dict[Tuple[Tuple[str, ...], str], list] = {}

    # ---- construction
    def _parse(self, path: Path) -> None:
        """Read the sections in order; each section's lines are converted in batches (fields split per line,
        numbers and word ids converted per column in C), so no Python object per n-gram outlives its batch."""
        opener = gzip.open if path.suffix == ".gz" else open
        self.words: List[str] = []
        self.word_id: Dict[str, int] = {}
        self.logp: List[np.ndarray] = []  # per order (index 0: unigrams), log10 P
        self.bow: List[Optional[np.ndarray]] = []  # log10 back-off weight (0 where the file has none)
        self.keys: List[Optional[np.ndarray]] = [None]  # per order >= 2: the sorted trie keys
        counts: Dict[int, int] = {}
        section, order, lines, first_line, batches = None, 0, [], 0, []

        def flush() -> None:
            if lines:
                batches.append(self._convert(order, lines, first_line))
                lines.clear()

        def end_section() -> None:
            flush()
            if order:
                self._add_order(order, batches)
            batches.clear()

        with opener(path, "rt") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                if line[0] == "\\":
                    end_section()
                    section, order = line, 0
                    if line.endswith("-grams:"):
                        order = int(line[1:].split("-")[0])
                        if order != len(self.logp) + 1:
                            raise ArpaFormatError(f"{path}:{lineno}: section {line} out of order")
                    continue
                if order:
                    if not lines:
                        first_line = lineno
                    lines.append(line)
                    if len(lines) >= _BATCH:
                        flush()
                elif section == "\\data\\" and line.startswith("ngram "):
                    k, n = line[6:].split("=")
                    counts[int(k)] = int(n)
            end_section()
        if not self.logp or not len(self.logp[0]):
            raise ArpaFormatError(f"{path}: no n-grams")
        self.order = len(self.logp)
        self.bow[-1] = None  # the highest order has no back-off weights
        for k, n in counts.items():
            if k <= self.order and n != len(self.logp[k - 1]):
                raise ArpaFormatError(f"{path}: \\data\\ says ngram {k}={n}, the file holds {len(self.logp[k - 1])}")

    def _convert(self, order: int, lines: List[str], first_line: int):
        """One batch of a section: ``(keys or word ids, log10 P, log10 back-off)``."""
        parts = [x.split() for x in lines]
        for x in parts:
            if len(x) == order + 1:
                x.append("0")
        widths = np.fromiter(map(len, parts), np.int64, len(parts))
        if np.any(widths != order + 2):
            k = int(np.nonzero(widths != order + 2)[0][0])
            raise ArpaFormatError(f"{self.path}: malformed {order}-gram line {lines[k]!r} (line {first_line + k} or "
                                  "after: blank lines are not counted)")
        cols = list(zip(*parts))
        del parts
        try:
            lp = np.array(cols[0], dtype=np.float32)
            bw = np.array(cols[-1], dtype=np.float32)
        except ValueError:
            raise ArpaFormatError(f"{self.path}: a {order}-gram line near line {first_line} has a malformed number") from None
        if order == 1:
            for w in cols[1]:
                if w in self.word_id:
                    raise ArpaFormatError(f"{self.path}: unigram {w!r} listed twice")
                self.word_id[w] = len(self.words)
                self.words.append(w)
            if len(self.words) >= 1 << WORD_BITS:
                raise ArpaFormatError(f"{self.path}: over {1 << WORD_BITS} words")
            return np.zeros(0, np.uint64), lp, bw
        try:
            ids = [np.fromiter(map(self.word_id.__getitem__, c), np.int64, len(c)) for c in cols[1 : 1 + order]]
        except KeyError as e:
            raise ArpaFormatError(f"{self.path}: word {e.args[0]!r} of a {order}-gram (near line {first_line}) is not "
                                  "a unigram") from None
        idx = ids[0]
        for j in range(1, order - 1):  # the prefix's index, order by order
            idx = _find(self.keys[j], (idx << WORD_BITS) | ids[j])
            if np.any(idx < 0):
                r = int(np.nonzero(idx < 0)[0][0])
                raise ArpaFormatError(f"{self.path}: the {order}-gram {lines[r]!r} has no {j + 1}-gram prefix in the file")
        key = (idx.astype(np.uint64) << np.uint64(WORD_BITS)) | ids[order - 1].astype(np.uint64)
        return key, lp, bw

    def _add_order(self, order: int, batches: list) -> None:
        key, lp, bw = (np.concatenate(x) for x in zip(*batches)) if batches else \
            (np.zeros(0, np.uint64), np.zeros(0, np.float32), np.zeros(0, np.float32))
        if order > 1:
            o = np.argsort(key, kind="stable")
            key, lp, bw = key[o], lp[o], bw[o]
            if len(key) > 1 and np.any(key[1:] == key[:-1]):
                raise ArpaFormatError(f"{self.path}: a {order}-gram is listed twice")
            self.keys.append(key)
        self.logp.append(lp)
        self.bow.append(bw)

    # ---- const form
    def save(self, out_dir) -> Path:
        """Write the const form: ``words.txt``, ``logp{k}.npy``, ``bow{k}.npy``, ``keys{k}.npy`` (k >= 2) and
        ``meta.json`` last (a directory without it is incomplete)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "meta.json").unlink(missing_ok=True)
        atomic_write_text(out / "words.txt", "".join(w + "\n" for w in self.words))
        arrays = {f"logp{k + 1}": self.logp[k] for k in range(self.order)}
        arrays.update({f"bow{k + 1}": self.bow[k] for k in range(self.order - 1)})
        arrays.update({f"keys{k + 1}": self.keys[k] for k in range(1, self.order)})
        for name, arr in arrays.items():
            with atomic_path(out / f"{name}.npy") as tmp:
                np.save(tmp, np.ascontiguousarray(arr))
        meta = {"format": _FORMAT, "order": self.order, "ngrams": [int(len(x)) for x in self.logp],
                "source": str(self.path), "word_bits": WORD_BITS}
        atomic_write_text(out / "meta.json", json.dumps(meta, indent=1))
        return out

    def _load(self, d: Path) -> None:
        meta_path = d / "meta.json"
        if not meta_path.exists():
            raise ArpaFormatError(f"{d}: no meta.json: not a const ARPA directory (asrdistill decode const-arpa), "
                                  "or an incomplete one")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != _FORMAT or meta.get("word_bits") != WORD_BITS:
            raise ArpaFormatError(f"{meta_path}: format {meta.get('format')!r}, expected {_FORMAT!r}")
        self.order = int(meta["order"])
        self.words = (d / "words.txt").read_text().split("\n")[:-1]
        self.word_id = {w: i for i, w in enumerate(self.words)}

        def load(name):  # a plain ndarray over the mapping (np.memmap's subclass overhead costs per lookup)
            return np.load(d / f"{name}.npy", mmap_mode="r").view(np.ndarray)

        self.logp = [load(f"logp{k + 1}") for k in range(self.order)]
        self.bow = [load(f"bow{k + 1}") for k in range(self.order - 1)] + [None]
        self.keys = [None] + [load(f"keys{k + 1}") for k in range(1, self.order)]
        if [len(x) for x in self.logp] != meta["ngrams"] or len(self.words) != meta["ngrams"][0]:
            raise ArpaFormatError(f"{d}: arrays do not match meta.json's n-gram counts {meta['ngrams']}")

    # ---- lookups
    def _index(self, ids: Sequence[int]) -> int:
        """Position of the n-gram ``ids`` in its order's arrays, or -1."""
        idx = ids[0]
        for j in range(1, len(ids)):
            keys = self.keys[j]
            key = np.uint64((idx << WORD_BITS) | ids[j])
            pos = int(keys.searchsorted(key))
            if pos == len(keys) or keys[pos] != key:
                return -1
            idx = pos
        return idx

    def _ids(self, words: Sequence[str], what: str) -> List[int]:
        try:
            return [self.word_id[w] for w in words]
        except KeyError as e:
            raise ValueError(f"{self.path}: word {e.args[0]!r} has no probability (not in the LM's vocabulary; {what})") from None

    def _prob(self, ids: Sequence[int]) -> Optional[float]:
        """``-ln P`` of the n-gram if the model lists it, else None."""
        if len(ids) > self.order:
            return None
        i = self._index(ids)
        return None if i < 0 else -float(self.logp[len(ids) - 1][i]) * _LN10

    def _backoff(self, ids: Sequence[int]) -> float:
        """``-ln`` back-off weight of the history ``ids`` (0 if absent)."""
        if not ids or len(ids) >= self.order:
            return 0.0
        i = self._index(ids)
        return 0.0 if i < 0 else -float(self.bow[len(ids) - 1][i]) * _LN10

    def options(self, state: Tuple[str, ...], word: str) -> List[Tuple[Tuple[str, ...], float]]:
        """The paths through G (as ``arpa2fst`` builds it) that read ``word`` from the LM state ``state`` (a
        history of at most ``order - 1`` words): for each back-off depth ``k`` whose n-gram
        ``state[k:] + (word,)`` exists, ``(next state, cost)`` with cost the ``k`` back-off weights plus the
        n-gram's ``-ln P``. The next state is that n-gram's last ``order - 1`` words, so a path that backs
        off loses history. ``word`` may be ``</s>`` (then the state does not matter)."""
        key = (state, word)
        got = self._cache.get(key)
        if got is None:
            ids = self._ids(state + (word,), "in options")
            got, bo = [], 0.0
            for k in range(len(state) + 1):
                h = ids[k:-1]
                c = self._prob(h + [ids[-1]])
                if c is not None:
                    gram = state[k:] + (word,)
                    got.append((gram[max(0, len(gram) + 1 - self.order) :] if self.order > 1 else (), bo + c))
                bo += self._backoff(h)
            if not got:
                raise ValueError(f"{self.path}: word {word!r} has no probability (not in the LM's vocabulary)")
            self._cache[key] = got
        return got

    def best(self, state: Tuple[str, ...], word: str) -> Tuple[Tuple[str, ...], float]:
        """The cheapest of :meth:`options` (what a Viterbi search through G takes)."""
        return min(self.options(state, word), key=lambda o: o[1])

    def start(self) -> Tuple[str, ...]:
        return ("<s>",) if self.order > 1 else ()

    def cost(self, history: Sequence[str], word: str) -> float:
        """ARPA's ``-ln P(word | history)`` (the n-gram if it exists, else back-off weight + lower order)."""
        h = list(self._ids(tuple(history)[-(self.order - 1) :] if self.order > 1 else (), "in the history"))
        (w,) = self._ids((word,), "the predicted word")
        total = 0.0
        while True:
            c = self._prob(h + [w])
            if c is not None:
                return total + c
            if not h:
                raise ValueError(f"{self.path}: word {word!r} has no probability")
            total += self._backoff(h)
            h = h[1:]

    @property
    def num_ngrams(self) -> List[int]:
        return [int(len(x)) for x in self.logp]


def _find(keys: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Positions of ``key`` (int64 or uint64) in the sorted ``keys``; -1 where absent."""
    key = key.astype(np.uint64)
    pos = np.searchsorted(keys, key)
    ok = pos < len(keys)
    ok[ok] = keys[pos[ok]] == key[ok]
    return np.where(ok, pos, -1)
