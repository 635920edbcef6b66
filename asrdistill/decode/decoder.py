"""Graph search over HCLG: Kaldi's LatticeFasterDecoder and FasterDecoder, and k2.

The Kaldi decoders read acoustic scores through ``DecodableCtc``: a
``(T, num_transition_ids)`` matrix whose column ``j`` is the (acoustically scaled)
log-likelihood of transition id ``j + 1``, i.e. of its pdf.

The ``k2`` backend runs k2's pruned intersection (``k2py.AlignSegments``, the C++ of
upstream k2) on the same graph. k2 treats label 0 as a real symbol, so the graph's
epsilon arcs (which carry no words in HCLG) are removed first. k2py reports words with
consecutive repeats merged ("ZERO ZERO" as one token), so words are read from the
per-frame best path instead: every arc that carries a word gets a label of its own
(scored like its transition id), and the frames that take such labels spell the words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, NamedTuple

import numpy as np


@dataclass
class DecoderConfig:
    decoder: str = field(default="lattice-faster",
                         metadata={"help": "Graph search.", "choices": ["lattice-faster", "faster", "k2"]})
    beam: float = field(default=13.0, metadata={"help": "Search beam.", "min_exclusive": 0})
    max_active: int = field(default=7000, metadata={"help": "Most active states per frame.", "min": 2})
    min_active: int = field(default=200, metadata={"help": "Fewest active states per frame.", "min": 0, "max": "max_active"})
    lattice_beam: float = field(default=6.0, metadata={"help": "Lattice beam (lattice-faster).", "min_exclusive": 0})


class DecodeResult(NamedTuple):
    words: List[int]
    tids: List[int]  # best-path transition ids, one per frame
    reached_final: bool


class GraphDecoder:
    """One decoder object over a graph, reused for every utterance of a worker."""

    def __init__(self, graph, tm, config: DecoderConfig = DecoderConfig()):
        import kaldi_hmm_gmm as khg

        self.graph, self.tm, self.config = graph, tm, config
        if config.decoder == "lattice-faster":
            opts = khg.LatticeFasterDecoderConfig(beam=config.beam, max_active=config.max_active,
                                                  min_active=config.min_active, lattice_beam=config.lattice_beam)
            self.decoder = khg.LatticeFasterDecoder(graph, opts)
        elif config.decoder == "k2":
            self.decoder = K2Search(graph, tm.num_transition_ids, config)
        elif config.decoder == "faster":
            opts = khg.FasterDecoderOptions(beam=config.beam, max_active=config.max_active, min_active=config.min_active)
            self.decoder = khg.FasterDecoder(graph, opts)
        else:
            raise ValueError(f"unknown decoder {config.decoder!r}")

    def decode(self, scores: np.ndarray, utt: str = "") -> DecodeResult:
        """Best path for ``scores`` ``(T, num_transition_ids)`` (already acoustically scaled)."""
        import kaldi_hmm_gmm as khg
        import kaldifst

        if self.config.decoder == "k2":
            return self.decoder.decode(scores)
        decodable = khg.DecodableCtc(np.ascontiguousarray(scores, dtype=np.float32))
        if self.config.decoder == "lattice-faster":
            ok, tids, words, _ = khg.decode_utterance_lattice_faster(self.decoder, decodable, self.tm, utt, False)
            if ok:
                return DecodeResult(list(words), list(tids), True)
            decodable = khg.DecodableCtc(np.ascontiguousarray(scores, dtype=np.float32))
            ok, tids, words, _ = khg.decode_utterance_lattice_faster(self.decoder, decodable, self.tm, utt, True)
            return DecodeResult(list(words) if ok else [], list(tids) if ok else [], False)
        self.decoder.decode(decodable)
        final = self.decoder.reached_final()
        got, best = self.decoder.get_best_path()
        ok, tids, words, _ = kaldifst.get_linear_symbol_sequence(best) if got else (False, [], [], None)
        return DecodeResult(list(words) if ok else [], list(tids) if ok else [], bool(final and ok))


class K2Search:
    """k2's pruned intersection over an HCLG (see module doc)."""

    def __init__(self, graph, num_transition_ids: int, config: DecoderConfig):
        import k2py
        import kaldifst

        g = graph.copy()
        kaldifst.rmepsilon(g)
        arcs, finals = [], []
        for line in g.to_str().splitlines():
            parts = line.split()
            if len(parts) >= 4:
                src, dst, ilabel, olabel = (int(x) for x in parts[:4])
                arcs.append((src, dst, ilabel, olabel, float(parts[4]) if len(parts) > 4 else 0.0))
            elif parts:
                finals.append((int(parts[0]), float(parts[1]) if len(parts) > 1 else 0.0))
        if any(a[2] == 0 for a in arcs):
            raise ValueError("the graph has input-epsilon arcs carrying words; k2 needs them removed")
        # k2: start state 0, arcs sorted by source state, one final state (the last) reached by label -1
        start = g.start
        renum = lambda q: 0 if q == start else (start if q == 0 else q)  # noqa: E731
        num_states = max([max(a[0], a[1]) for a in arcs] + [f[0] for f in finals]) + 1
        # word arcs get labels num_transition_ids + 1, + 2, ...; column_of maps a label to its score column
        column_of = list(range(num_transition_ids + 1))
        self.word_of_label = {}
        rows = []
        for src, dst, ilabel, olabel, w in arcs:
            label = ilabel
            if olabel != 0:
                label = len(column_of)
                column_of.append(ilabel)
                self.word_of_label[label] = olabel
            rows.append((renum(src), renum(dst), label, olabel, -w))
        rows += [(renum(q), num_states, -1, -1, -w) for q, w in finals]
        rows.sort(key=lambda r: r[0])
        text = "\n".join(f"{a} {b} {c} {d} {e}" for a, b, c, d, e in rows) + f"\n{num_states}"
        self.graph = k2py.CreateFsaVecFromStr(text, num_states, False)
        self.column_of = np.asarray(column_of, dtype=np.int64)
        self.config = config

    def decode(self, scores: np.ndarray) -> DecodeResult:
        import k2py

        full = np.concatenate([np.full((scores.shape[0], 1), -1e10, dtype=np.float32), scores.astype(np.float32)], 1)
        ext = np.ascontiguousarray(full[:, self.column_of])
        c = self.config
        _, labels = k2py.AlignSegments(self.graph, ext, c.beam, c.lattice_beam, c.min_active, c.max_active, True, False)
        path = [int(x) for x in labels[0]]
        if len(path) != scores.shape[0]:  # no final state reached within the beams
            _, labels = k2py.AlignSegments(self.graph, ext, c.beam, c.lattice_beam, c.min_active, c.max_active, True, True)
            path = [int(x) for x in labels[0]]
            ok = False
        else:
            ok = True
        words = [self.word_of_label[l] for l in path if l in self.word_of_label]
        tids = [int(self.column_of[l]) for l in path]
        return DecodeResult(words, tids, ok)
