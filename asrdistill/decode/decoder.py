"""Graph search over HCLG: Kaldi's LatticeFasterDecoder and FasterDecoder.

Both read acoustic scores through ``DecodableCtc``: a ``(T, num_transition_ids)``
matrix whose column ``j`` is the (acoustically scaled) log-likelihood of transition id
``j + 1``, i.e. of its pdf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, NamedTuple

import numpy as np


@dataclass
class DecoderConfig:
    decoder: str = field(default="lattice-faster", metadata={"help": "Graph search.", "choices": ["lattice-faster", "faster"]})
    beam: float = field(default=13.0, metadata={"help": "Search beam."})
    max_active: int = field(default=7000, metadata={"help": "Most active states per frame."})
    min_active: int = field(default=200, metadata={"help": "Fewest active states per frame."})
    lattice_beam: float = field(default=6.0, metadata={"help": "Lattice beam (lattice-faster)."})


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
        elif config.decoder == "faster":
            opts = khg.FasterDecoderOptions(beam=config.beam, max_active=config.max_active, min_active=config.min_active)
            self.decoder = khg.FasterDecoder(graph, opts)
        else:
            raise ValueError(f"unknown decoder {config.decoder!r}")

    def decode(self, scores: np.ndarray, utt: str = "") -> DecodeResult:
        """Best path for ``scores`` ``(T, num_transition_ids)`` (already acoustically scaled)."""
        import kaldi_hmm_gmm as khg
        import kaldifst

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
        best = self.decoder.get_best_path()
        ok, tids, words, _ = kaldifst.get_linear_symbol_sequence(best)
        return DecodeResult(list(words) if ok else [], list(tids) if ok else [], bool(final and ok))
