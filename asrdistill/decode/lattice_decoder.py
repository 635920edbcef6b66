"""A lattice-generating Viterbi beam search over HCLG, in numpy (Kaldi's LatticeFasterDecoder, simplified).

The installed ``kaldi-hmm-gmm`` binds ``LatticeFasterDecoder`` without access to its
lattice, so this decoder produces the lattices (:mod:`.lattice`) itself. HCLG's arcs are
held in CSR form (emitting and non-emitting arcs apart, by source state). For each frame:

1. every arc leaving an active token that consumes a transition id is expanded at once
   (``np.repeat`` over the tokens' arc ranges); its cost is the token's cost + the graph
   weight + ``acoustic_scale * -loglike``; arcs above ``best + beam`` are dropped;
2. the tokens of the next frame are the arcs' destination states (cheapest arrival);
3. non-emitting arcs are followed by a vectorized relaxation (each round expands the
   tokens that improved in the last one) until no cost improves;
4. tokens are pruned as Kaldi's ``GetCutoff`` does: ``best + beam``, tightened to the
   ``max_active`` cheapest, or no pruning at all while fewer than ``min_active`` are active
   (the next frame's beam follows the cutoff then).

Every arc between surviving tokens is kept, with its graph and (unscaled) acoustic cost
apart; at the end the lattice is pruned to the ``lattice_beam`` by forward-backward
(an arc survives if the best path through it is within the beam of the best path), as
Kaldi's final lattice pruning does. Kaldi additionally prunes the lattice while decoding
(every ``prune_interval`` frames); that only saves memory.

:func:`decode_lattices` decodes a split in worker processes: each utterance is scored once
(its log-likelihood matrix searched at one acoustic scale; the lattice beam then covers
the LM weights scored later, :mod:`.lattice_scoring`) and all lattices go to one file.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import numpy as np

from ..features.cmvn_policy import CMVN_HELP
from .batch_scoring import (MainProcessScorer, cuts_from_dicts, frame_bounded_tasks, pipelined_map, resolve_score_device,
                            score_device_field, worker_context)
from .lattice import Lattices, prune


log = logging.getLogger(__name__)

_BEAM_DELTA = 0.5  # Kaldi's beam_delta
_PRUNE_BATCH = 8  # utterances pruned to the lattice beam together


def _ranges(first: np.ndarray, states: np.ndarray):
    """Arc indices of CSR ranges ``first[s]:first[s + 1]`` for ``states``, and the position of each arc's state."""
    lo = first[states]
    n = first[states + 1] - lo
    tok = np.repeat(np.arange(len(states)), n)
    arcs = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
    return arcs, tok


class LatticeDecoder:
    """Lattices from HCLG (a kaldifst FST or :class:`~.fst_arrays.FstArrays`), one utterance per call;
    ``config``: a :class:`LatticeDecodeConfig` or :class:`~.decoder.DecoderConfig` (its beams)."""

    def __init__(self, graph, config=None):
        from .fst_arrays import FstArrays

        a = graph if isinstance(graph, FstArrays) else FstArrays.from_fst(graph)
        a = a.sorted()
        if a.start < 0:
            raise ValueError("the decoding graph is empty")
        self.config, self.start, self.final = config or LatticeDecodeConfig(), a.start, a.final.astype(np.float64)
        n = a.num_states
        self.num_states = n
        for name, mask in (("e", a.ilabel > 0), ("n", a.ilabel == 0)):
            setattr(self, f"{name}_arc", np.nonzero(mask)[0])  # index into the graph's arcs
            setattr(self, f"{name}_first", np.searchsorted(a.src[mask], np.arange(n + 1)))
            setattr(self, f"{name}_dst", a.dst[mask].astype(np.int64))
            setattr(self, f"{name}_w", a.weight[mask].astype(np.float64))
            setattr(self, f"{name}_il", a.ilabel[mask].astype(np.int64))
            setattr(self, f"{name}_ol", a.olabel[mask].astype(np.int32))
        self.has_eps = np.diff(self.n_first) > 0
        self._cost = np.full(n, np.inf)
        self._index = np.full(n, -1, dtype=np.int64)

    # --- one frame ---------------------------------------------------------------------------------
    def _closure(self, states: np.ndarray, costs: np.ndarray, cutoff: float):
        """Tokens after following non-emitting arcs from ``(states, costs)`` (unique states)."""
        d = self._cost
        d[states] = costs
        touched = [states]
        frontier = states
        for _ in range(10000):
            frontier = frontier[self.has_eps[frontier]]
            if len(frontier) == 0:
                break
            arcs, tok = _ranges(self.n_first, frontier)
            if len(arcs) == 0:
                break
            vals = d[frontier[tok]] + self.n_w[arcs]
            dst = self.n_dst[arcs]
            m = (vals < d[dst]) & (vals <= cutoff)
            if not m.any():
                break
            np.minimum.at(d, dst[m], vals[m])
            frontier = np.unique(dst[m])
            touched.append(frontier)
        out = np.unique(np.concatenate(touched))
        c = d[out].copy()
        d[out] = np.inf
        return out, c

    def _prune(self, states, costs):
        """Tokens below the cutoff, and the beam for the next frame's arcs, as Kaldi's ``GetCutoff``:
        ``best + beam``, tightened to keep at most ``max_active`` tokens or loosened to keep at least
        ``min_active`` (the next beam then follows that cutoff, plus ``_BEAM_DELTA``)."""
        c = self.config
        best = costs.min()
        cutoff, beam = best + c.beam, c.beam
        n = len(costs)
        if n > c.max_active and (k := np.partition(costs, c.max_active)[c.max_active]) < cutoff:
            cutoff, beam = k, k - best + _BEAM_DELTA
        elif n <= c.min_active:  # as Kaldi: no pruning while there are fewer than min_active tokens
            cutoff = beam = np.inf
        elif c.min_active and (k := np.partition(costs, c.min_active)[c.min_active]) > cutoff:
            cutoff, beam = k, k - best + _BEAM_DELTA
        keep = costs < cutoff
        return states[keep], costs[keep], beam

    def _eps_arcs(self, states: np.ndarray):
        """Non-emitting arcs between the tokens ``states`` (their index in it)."""
        src = np.flatnonzero(self.has_eps[states])
        if len(src) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        self._index[states] = np.arange(len(states))
        arcs, tok = _ranges(self.n_first, states[src])
        j = self._index[self.n_dst[arcs]]
        self._index[states] = -1
        m = j >= 0
        return src[tok[m]], j[m], arcs[m]

    # --- one utterance -----------------------------------------------------------------------------
    def decode(self, loglikes: np.ndarray, acoustic_scale: float, utt: str = "u", lattice_prune: bool = True) -> Lattices:
        """Lattice for ``loglikes`` ``(T, num_transition_ids)`` (column ``j``: transition id ``j + 1``,
        not scaled) searched at ``acoustic_scale``; ``lattice_prune=False``: not yet pruned to the
        lattice beam (:func:`.lattice.prune` then prunes a batch of them at once, faster)."""
        cfg = self.config
        ll = np.asarray(loglikes, dtype=np.float64)
        T = ll.shape[0]
        states, costs = self._closure(np.array([self.start]), np.zeros(1), cfg.beam)
        states, costs, beam = self._prune(states, costs)
        frames = [(states, costs)]
        emit, eps = [], [self._eps_arcs(states)]
        for t in range(T):
            arcs, tok = _ranges(self.e_first, states)
            if len(arcs) == 0:
                break
            ac = -ll[t, self.e_il[arcs] - 1]
            new = costs[tok] + self.e_w[arcs] + acoustic_scale * ac
            cutoff = new.min() + beam
            m = new < cutoff if np.isfinite(cutoff) else np.ones(len(new), bool)
            arcs, tok, ac, new = arcs[m], tok[m], ac[m], new[m]
            dst = self.e_dst[arcs]
            nxt = np.unique(dst)
            d = self._cost
            np.minimum.at(d, dst, new)
            c = d[nxt].copy()
            d[nxt] = np.inf
            nxt, c = self._closure(nxt, c, cutoff)
            nxt, c, beam = self._prune(nxt, c)
            self._index[nxt] = np.arange(len(nxt))
            j = self._index[dst]
            self._index[nxt] = -1
            k = j >= 0
            emit.append((tok[k], j[k], arcs[k], ac[k]))
            eps.append(self._eps_arcs(nxt))
            frames.append((nxt, c))
            states, costs = nxt, c
        return self._lattice(frames, emit, eps, T, acoustic_scale, utt, lattice_prune)

    def _lattice(self, frames, emit, eps, T, acoustic_scale, utt, lattice_prune) -> Lattices:
        cfg = self.config
        sizes = np.array([len(s) for s, _ in frames])
        off = np.concatenate([[0], np.cumsum(sizes)])
        node_state = np.concatenate([s for s, _ in frames])
        node_frame = np.repeat(np.arange(len(frames)), sizes)
        e_src = np.concatenate([off[t] + a for t, (a, _, _, _) in enumerate(emit)] or [np.zeros(0, np.int64)])
        e_dst = np.concatenate([off[t + 1] + b for t, (_, b, _, _) in enumerate(emit)] or [np.zeros(0, np.int64)])
        e_arc = np.concatenate([x for _, _, x, _ in emit] or [np.zeros(0, np.int64)])
        e_ac = np.concatenate([x for _, _, _, x in emit] or [np.zeros(0)])
        n_src = np.concatenate([off[t] + a for t, (a, _, _) in enumerate(eps)])
        n_dst = np.concatenate([off[t] + b for t, (_, b, _) in enumerate(eps)])
        n_arc = np.concatenate([x for _, _, x in eps])
        src = np.concatenate([e_src, n_src]).astype(np.int64)
        dst = np.concatenate([e_dst, n_dst]).astype(np.int64)
        tid = np.concatenate([self.e_il[e_arc], np.zeros(len(n_arc), np.int64)]).astype(np.int32)
        word = np.concatenate([self.e_ol[e_arc], self.n_ol[n_arc]]).astype(np.int32)
        graph = np.concatenate([self.e_w[e_arc], self.n_w[n_arc]])
        acoustic = np.concatenate([e_ac, np.zeros(len(n_arc))])
        # topological level: frame, then depth along the frame's non-emitting arcs
        depth = np.zeros(len(node_state), np.int64)
        for _ in range(10000):
            nd = depth.copy()
            np.maximum.at(nd, n_dst, depth[n_src] + 1)
            if np.array_equal(nd, depth):
                break
            depth = nd
        else:
            raise RuntimeError(f"{utt}: a cycle of non-emitting arcs in the decoding graph")
        _, level = np.unique(node_frame * (depth.max() + 1) + depth, return_inverse=True)
        last = node_frame == len(frames) - 1
        final = np.where(last, self.final[node_state], np.inf)
        reached = len(frames) == T + 1 and bool(np.isfinite(final).any())
        if not reached:  # as Kaldi: every token of the last frame decoded ends the utterance
            final = np.where(last, 0.0, np.inf)
        raw = Lattices([utt], np.array([0, len(level)], np.int64), np.array([0, len(src)], np.int64),
                       level.astype(np.int32), final.astype(np.float32), src.astype(np.int32), dst.astype(np.int32),
                       tid, word, graph.astype(np.float32), acoustic.astype(np.float32), np.array([reached]),
                       np.array([T], np.int32), float(acoustic_scale), float(cfg.beam), float(cfg.lattice_beam))
        return prune(raw, cfg.lattice_beam) if lattice_prune else raw


@dataclass
class LatticeDecodeConfig:
    beam: float = field(default=13.0, metadata={"help": "Search beam.", "min_exclusive": 0})
    max_active: int = field(default=7000, metadata={"help": "Most active states per frame.", "min": 2})
    min_active: int = field(default=200, metadata={"help": "Fewest active states per frame (below it: no pruning).",
                                                   "min": 0, "max": "max_active"})
    lattice_beam: float = field(default=6.0, metadata={"help": "Lattice beam (at the search's acoustic scale).",
                                                       "min_exclusive": 0})
    cmvn: bool = field(default=True, metadata={"help": CMVN_HELP})
    acoustic_scale: float = field(default=0.1, metadata={
        "help": "Acoustic scale of the search (the lattice beam then covers LM weights around 1/scale).",
        "min_exclusive": 0})
    score_device: str = score_device_field()


_state: dict = {}


def _init_worker(scorer_spec: dict, graph_path: str, config: LatticeDecodeConfig) -> None:
    from .runner import load_worker_model

    scorer, _, graph, pdf_of = load_worker_model(scorer_spec, graph_path, with_scorer=not config.score_device)
    _state.update(scorer=scorer, decoder=LatticeDecoder(graph, config), pdf_of=pdf_of, config=config)


def _decode_task(cut_dicts: List[dict], precomputed: "List[np.ndarray] | None" = None) -> dict:
    """Lattices of the cuts; ``precomputed``: their acoustic scores from the main process (else scored here)."""
    import torch
    from lhotse import CutSet

    s = _state
    lats, raw, score_time, search_time, audio = [], [], 0.0, 0.0, 0.0

    def prune_raw():  # a few utterances at once: one vectorized forward-backward pass for them
        lats.append(prune(Lattices.concat(raw), s["config"].lattice_beam))
        raw.clear()

    for i, cut in enumerate(CutSet.from_dicts(cut_dicts)):
        t0 = time.perf_counter()
        ll = torch.from_numpy(precomputed[i]) if precomputed is not None else s["scorer"](cut)
        if ll.dim() == 3:
            raise ValueError("decode lattices takes one system (no --each-member)")
        ll = ll[:, s["pdf_of"]].numpy()
        t1 = time.perf_counter()
        raw.append(s["decoder"].decode(ll, s["config"].acoustic_scale, cut.id, lattice_prune=False))
        if len(raw) == _PRUNE_BATCH:
            prune_raw()
        search_time += time.perf_counter() - t1
        score_time += t1 - t0
        audio += cut.duration
    t0 = time.perf_counter()
    if raw:
        prune_raw()
    lat = Lattices.concat(lats) if lats else None
    search_time += time.perf_counter() - t0
    return {"lattices": lat, "score_time": score_time, "search_time": search_time,
            "audio": audio}


def decode_lattices(scorer_spec: dict, graph_dir, cuts_path, out_dir, config: LatticeDecodeConfig = LatticeDecodeConfig(),
                    num_jobs: int = 2, tasks_per_job: int = 8) -> dict:
    """Lattices of every cut of ``cuts_path`` in ``out_dir/lat.npz`` (ordered as the cuts), with
    ``lattices.json`` (settings, sizes, real-time factor) and ``config.yaml``; returns the summary."""
    from ..utils.atomic import atomic_write_text
    from ..utils.config import command_line, save_config
    from ..utils.processes import process_context
    from ..utils.readers import read_cuts

    graph_dir, out_dir = Path(graph_dir), Path(out_dir)
    cuts = read_cuts(cuts_path).to_eager()
    dicts = [c.to_dict() for c in sorted(cuts, key=lambda c: -c.duration)]  # longest first
    args = (scorer_spec, str(graph_dir / "HCLG.fst"), config)
    t0 = time.perf_counter()
    device = resolve_score_device(config.score_device)
    if device is not None:  # scored here in batches of cuts (GPU or all CPU threads), searched in the workers
        scorer = MainProcessScorer(scorer_spec, device)
        tasks = frame_bounded_tasks(dicts, scorer.max_frames)
        pool = None
        if num_jobs <= 1:
            _init_worker(*args)
        else:
            pool = ProcessPoolExecutor(num_jobs, mp_context=worker_context(device), initializer=_init_worker,
                                       initargs=args)
        try:
            parts = pipelined_map(pool, _decode_task, tasks, scorer, 2 * max(1, num_jobs), cuts_from_dicts)
        finally:
            if pool is not None:
                pool.shutdown()
    elif num_jobs <= 1:
        _init_worker(*args)
        parts = [_decode_task(dicts)]
    else:
        n = max(1, min(num_jobs * tasks_per_job, len(dicts)))
        size = -(-len(dicts) // n)
        with ProcessPoolExecutor(num_jobs, mp_context=process_context(), initializer=_init_worker, initargs=args) as pool:
            parts = list(pool.map(_decode_task, [dicts[i : i + size] for i in range(0, len(dicts), size)]))
    wall = time.perf_counter() - t0
    lat = Lattices.concat([p["lattices"] for p in parts if p["lattices"] is not None])
    order = {u: i for i, u in enumerate(lat.ids)}
    lat = lat.select([order[c.id] for c in cuts])
    out_dir.mkdir(parents=True, exist_ok=True)
    lat.save(out_dir / "lat.npz")
    save_config(config, out_dir / "config.yaml")
    audio = sum(p["audio"] for p in parts)
    summary = {"cuts": str(cuts_path), "graph": str(graph_dir), "acoustic_model": scorer_spec, "audio_seconds": audio,
               "utterances": len(lat.ids), "arcs_per_frame": lat.num_arcs / max(int(lat.num_frames.sum()), 1),
               "not_final": [u for u, ok in zip(lat.ids, lat.reached_final) if not ok],
               "score_rtf": sum(p["score_time"] for p in parts) / max(audio, 1e-9),
               "search_rtf": sum(p["search_time"] for p in parts) / max(audio, 1e-9), "wall_seconds": wall,
               "command": command_line()}
    atomic_write_text(out_dir / "lattices.json", json.dumps(summary, indent=1))
    log.info("%s: %d lattices, %.1f arcs/frame, RTF scoring %.4f + search %.4f", out_dir, len(lat.ids),
             summary["arcs_per_frame"], summary["score_rtf"], summary["search_rtf"])
    return summary
