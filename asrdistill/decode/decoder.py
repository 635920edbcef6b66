"""Graph search over HCLG: Kaldi's LatticeFasterDecoder and FasterDecoder, and k2.

The Kaldi decoders read acoustic scores through ``DecodableCtc``: a
``(T, num_transition_ids)`` matrix whose column ``j`` is the (acoustically scaled)
log-likelihood of transition id ``j + 1``, i.e. of its pdf.

The ``k2`` backend runs k2's pruned intersection (``k2py.AlignSegments``, the C++ of
upstream k2) on the same graph, built once per process from the HCLG object (read from
its binary file) through numpy arrays: an acceptor over transition ids, so the score
matrix is ``(T, num_transition_ids + 1)`` whatever the vocabulary. k2 treats label 0 as a
real symbol, so the acceptor is HCLG's input side with its epsilons removed. k2py
reports words with consecutive repeats merged ("ZERO ZERO" as one token), so the words
are the output labels of the best path instead, as icefall reads them: the best path's
transition ids (one per frame) are composed with HCLG and the output labels of the
cheapest matching path are read (the same path: equal input, equal acoustic
score; only exact ties between homophones could differ). k2py takes graphs only as text
(``CreateFsaVecFromStr``), formatted from the arrays in C.
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

        from .fst_arrays import FstArrays

        # words: the graph's output labels on the best path over the frames' transition ids (words_of composes
        # with the graph itself, no copy: the linear frame FST on the left is sorted, HCLG need not be)
        self.fst = graph
        # the acceptor k2 searches: HCLG's input side, epsilons removed (k2 has none); each intermediate freed
        # before the next is made (at LibriSpeech's size each is about a gigabyte)
        a = FstArrays.from_fst(graph)
        if np.any(a.ilabel == 0):
            acceptor = FstArrays(a.start, a.final, a.src, a.ilabel, a.ilabel, a.weight, a.dst).to_fst()
            del a
            kaldifst.rmepsilon(acceptor)
            a = FstArrays.from_fst(acceptor)
            del acceptor
        if a.start < 0:
            raise ValueError("the decoding graph is empty")
        # k2: start state 0, arcs sorted by source state, one final state (the last) reached by label -1
        renum = np.arange(a.num_states)
        renum[[0, a.start]] = renum[[a.start, 0]]
        finals = np.nonzero(np.isfinite(a.final))[0]
        n = a.num_states
        src = np.concatenate([renum[a.src], renum[finals]])
        dst = np.concatenate([renum[a.dst], np.full(len(finals), n)])
        label = np.concatenate([a.ilabel, np.full(len(finals), -1)])
        score = np.concatenate([-a.weight, -a.final[finals]]).astype(np.float64)
        del a, renum
        order = np.argsort(src, kind="stable")
        text = _acceptor_text(src[order], dst[order], label[order], score[order], n)
        del src, dst, label, score, order
        self.graph = k2py.CreateFsaVecFromStr(text, n, True)
        self.num_transition_ids = num_transition_ids
        self.config = config

    def decode(self, scores: np.ndarray) -> DecodeResult:
        import k2py

        c = self.config
        full = np.empty((scores.shape[0], scores.shape[1] + 1), dtype=np.float32)  # column = transition id
        full[:, 0] = -1e10
        full[:, 1:] = scores
        _, labels = k2py.AlignSegments(self.graph, full, c.beam, c.lattice_beam, c.min_active, c.max_active, True, False)
        path = [int(x) for x in labels[0]]
        ok = len(path) == scores.shape[0]
        if not ok:  # no final state reached within the beams
            _, labels = k2py.AlignSegments(self.graph, full, c.beam, c.lattice_beam, c.min_active, c.max_active, True, True)
            path = [int(x) for x in labels[0]]
        return DecodeResult(self.words_of(path) if ok else [], path, ok)

    def words_of(self, tids: List[int]) -> List[int]:
        """Output labels of the graph's best path over the input ``tids`` (one per frame)."""
        import kaldifst

        if not tids:
            return []
        text = "".join(f"{i} {i + 1} {t} {t}\n" for i, t in enumerate(tids)) + f"{len(tids)}\n"
        frames = kaldifst.compile(text)
        kaldifst.arcsort(frames, sort_type="olabel")  # one arc per state: sorted; the flag lets compose match on it
        best = kaldifst.shortest_path(kaldifst.compose(frames, self.fst))
        if best.num_states == 0:
            return []
        ok, _, words, _ = kaldifst.get_linear_symbol_sequence(best)
        return [w for w in words if w] if ok else []


def _acceptor_text(src, dst, label, score, final_state: int, chunk: int = 1 << 20) -> str:
    """k2's text form of an acceptor, ``src dst label score`` per arc and the final state, formatted by
    chunks of arcs in C (``%``-formatting), not by a Python loop over arcs."""
    parts = []
    for i in range(0, len(src), chunk):
        rows = np.empty((min(chunk, len(src) - i), 4), dtype=object)
        rows[:, 0], rows[:, 1], rows[:, 2] = src[i : i + chunk], dst[i : i + chunk], label[i : i + chunk]
        rows[:, 3] = score[i : i + chunk]
        parts.append(("%d %d %d %.7g\n" * len(rows)) % tuple(rows.ravel().tolist()))
    return "".join(parts) + f"{final_state}"
