"""An FST as numpy arrays, exchanged with kaldifst through OpenFst's binary files.

kaldifst 1.7.17 has no array access to an FST (only per-arc iterators) and its build
reads only ``vector`` FSTs. :class:`FstArrays` therefore reads an FST from the binary
``const`` form (``StdConstFst(fst).write``: a header, then fixed-size state and arc
records, parsed with ``np.frombuffer``) and writes it back in the binary ``vector`` form
(per state: final weight ``float32``, arc count ``int64``, then its arcs; laid out with
numpy and read with ``StdVectorFst.read``). Both are OpenFst's own file formats (the
``standard`` arc: ``int32`` labels and next state, ``float32`` tropical weight, ``inf``
for zero), so no step goes through text and none loops over arcs in Python.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MAGIC = 2125659606
_IS_ALIGNED = 4  # FstHeader flag; symbol-table flags: 1, 2
_ARC = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("nextstate", "<i4")])
_CONST_STATE = np.dtype([("final", "<f4"), ("pos", "<u4"), ("narcs", "<u4"), ("niepsilons", "<u4"), ("noepsilons", "<u4")])


def _read_string(buf: bytes, pos: int):
    (n,) = struct.unpack_from("<i", buf, pos)
    return buf[pos + 4 : pos + 4 + n].decode(), pos + 4 + n


def _write_string(s: str) -> bytes:
    return struct.pack("<i", len(s)) + s.encode()


@dataclass
class FstArrays:
    """Arcs ``src -> dst`` with labels and tropical weights (sorted by ``src``, stable), final weights
    per state (``inf``: not final) and the start state (-1: empty FST)."""

    start: int
    final: np.ndarray  # (num_states,) float32
    src: np.ndarray  # (num_arcs,) int32
    ilabel: np.ndarray
    olabel: np.ndarray
    weight: np.ndarray  # float32
    dst: np.ndarray

    @property
    def num_states(self) -> int:
        return len(self.final)

    @property
    def num_arcs(self) -> int:
        return len(self.src)

    @classmethod
    def from_fst(cls, fst) -> "FstArrays":
        """The arrays of a kaldifst ``StdVectorFst`` (or any ``StdFst``)."""
        import kaldifst

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "fst.const"
            if not kaldifst.StdConstFst(fst).write(str(path)):
                raise OSError(f"could not write {path}")
            return cls.read_const(path)

    @classmethod
    def read_const(cls, path) -> "FstArrays":
        """Parse an OpenFst binary ``const`` FST file (standard arcs, 32-bit state indices)."""
        buf = Path(path).read_bytes()
        (magic,) = struct.unpack_from("<i", buf, 0)
        if magic != _MAGIC:
            raise ValueError(f"{path} is not a binary OpenFst file")
        fst_type, pos = _read_string(buf, 4)
        arc_type, pos = _read_string(buf, pos)
        if fst_type != "const" or arc_type != "standard":
            raise ValueError(f"{path}: expected a const FST of standard arcs, got {fst_type}/{arc_type}")
        _version, flags, _props, start, num_states, num_arcs = struct.unpack_from("<iiQqqq", buf, pos)
        pos += 40
        if flags & 3:
            raise ValueError(f"{path}: FSTs with stored symbol tables are not supported")
        if flags & _IS_ALIGNED:
            pos = -(-pos // 16) * 16
        states = np.frombuffer(buf, _CONST_STATE, num_states, pos)
        pos += num_states * _CONST_STATE.itemsize
        if flags & _IS_ALIGNED:
            pos = -(-pos // 16) * 16
        arcs = np.frombuffer(buf, _ARC, num_arcs, pos)
        narcs = states["narcs"].astype(np.int64)
        src = np.repeat(np.arange(num_states, dtype=np.int32), narcs)
        first = np.cumsum(narcs) - narcs
        if not np.array_equal(states["pos"].astype(np.int64), first):  # arcs not stored in state order
            arcs = arcs[np.repeat(states["pos"].astype(np.int64) - first, narcs) + np.arange(len(src))]
        return cls(int(start), states["final"].copy(), src, arcs["ilabel"].copy(), arcs["olabel"].copy(),
                   arcs["weight"].copy(), arcs["nextstate"].copy())

    def sorted(self) -> "FstArrays":
        """Arcs sorted by source state (stable), as the file formats need."""
        if self.num_arcs and np.all(self.src[:-1] <= self.src[1:]):
            return self
        o = np.argsort(self.src, kind="stable")
        return FstArrays(self.start, self.final, self.src[o], self.ilabel[o], self.olabel[o], self.weight[o], self.dst[o])

    def write_vector(self, path) -> None:
        """Write as an OpenFst binary ``vector`` FST (readable by ``kaldifst.StdVectorFst.read``)."""
        a = self.sorted()
        n, m = a.num_states, a.num_arcs
        narcs = np.bincount(a.src, minlength=n).astype(np.int64) if m else np.zeros(n, np.int64)
        header = (struct.pack("<i", _MAGIC) + _write_string("vector") + _write_string("standard")
                  + struct.pack("<iiQqqq", 2, 0, 3, a.start, n, m))  # properties: kExpanded | kMutable only
        # per state 3 words (final, narcs as int64), then 4 words per arc; every field is 4-byte aligned
        words = np.zeros(3 * n + 4 * m, dtype="<i4")
        state_off = 3 * np.arange(n, dtype=np.int64) + 4 * (np.cumsum(narcs) - narcs)
        words.view("<f4")[state_off] = a.final
        words[state_off + 1] = narcs.astype(np.int32)  # low word; the high word stays 0
        rank = np.arange(m, dtype=np.int64) - np.repeat(np.cumsum(narcs) - narcs, narcs)
        arc_off = state_off[a.src] + 3 + 4 * rank
        words[arc_off] = a.ilabel
        words[arc_off + 1] = a.olabel
        words.view("<f4")[arc_off + 2] = a.weight
        words[arc_off + 3] = a.dst
        with open(path, "wb") as f:
            f.write(header)
            f.write(words.tobytes())

    def to_fst(self):
        """A kaldifst ``StdVectorFst`` with these arcs."""
        import kaldifst

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "fst.vector")
            self.write_vector(path)
            return kaldifst.StdVectorFst.read(path)

    def keep_arcs(self, mask: np.ndarray) -> "FstArrays":
        return FstArrays(self.start, self.final, self.src[mask], self.ilabel[mask], self.olabel[mask],
                         self.weight[mask], self.dst[mask])
