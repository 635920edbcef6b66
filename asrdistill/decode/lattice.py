"""State-level lattices of a split: format, file I/O and shortest paths over them.

A lattice is an acyclic graph over decoding tokens (an HCLG state at a frame). Each
arc carries the transition id it consumed (0 for a non-emitting arc), the word on its
output (0: none), its **graph cost** (HCLG weight: LM, pronunciation and transition
costs, natural log) and its **acoustic cost** (``-log p(frame | pdf)``, *not* scaled by
the decoding acoustic scale, as Kaldi writes lattices). A path's cost at LM weight
``w`` and word insertion penalty ``p`` is, as Kaldi's ``lattice-scale
--inv-acoustic-scale=w | lattice-add-penalty --word-ins-penalty=p`` ranks paths (times
``w``)::

    w * (graph + p * num_words) + acoustic

Node 0 of every utterance is its start; a node's ``final`` is the graph cost of ending
there (``inf``: not final). Every node has a topological ``level`` (frame, then depth
along the frame's non-emitting arcs) and every arc goes to a higher level, so shortest
paths of all utterances of a split run together, one level at a time
(:func:`shortest_distance`), for a whole grid of LM weights at once (:func:`best_paths`),
and so does the forward-backward pruning to a lattice beam (:func:`prune`).

File (``np.savez``, one per split or job, written atomically): ``ids`` (utterance ids),
``node_offsets``/``arc_offsets`` (``(U + 1,)`` int64: utterance ``u`` owns nodes
``node_offsets[u]:node_offsets[u + 1]``), per node ``level`` (int32) and ``final``
(float32), per arc ``src``/``dst`` (int32, node indices *within* the utterance),
``tid``/``word`` (int32), ``graph``/``acoustic`` (float32), per utterance
``reached_final`` (bool; if false every last-frame token was made final at cost 0, as
Kaldi does), ``num_frames`` (int32), and ``acoustic_scale``, ``beam``, ``lattice_beam``
(scalars: the settings of the decoding).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import numpy as np

from ..utils.atomic import atomic_path
from ..utils.readers import reading

_FIELDS = ("ids", "node_offsets", "arc_offsets", "level", "final", "src", "dst", "tid", "word", "graph", "acoustic",
           "reached_final", "num_frames")


@dataclass
class Lattices:
    """The lattices of several utterances, concatenated (see the module doc for the fields)."""

    ids: List[str]
    node_offsets: np.ndarray
    arc_offsets: np.ndarray
    level: np.ndarray
    final: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    tid: np.ndarray
    word: np.ndarray
    graph: np.ndarray
    acoustic: np.ndarray
    reached_final: np.ndarray
    num_frames: np.ndarray
    acoustic_scale: float = 1.0
    beam: float = 0.0
    lattice_beam: float = 0.0

    @property
    def num_nodes(self) -> int:
        return len(self.level)

    @property
    def num_arcs(self) -> int:
        return len(self.src)

    def arc_utt(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.ids)), np.diff(self.arc_offsets))

    def global_src_dst(self) -> Tuple[np.ndarray, np.ndarray]:
        """Arc ends as indices into all nodes."""
        off = self.node_offsets[:-1][self.arc_utt()]
        return self.src + off, self.dst + off

    @classmethod
    def concat(cls, parts: Sequence["Lattices"]) -> "Lattices":
        if not parts:
            raise ValueError("no lattices to concatenate")
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731

        def offsets(name):
            sizes = np.concatenate([np.diff(getattr(p, name)) for p in parts])
            return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

        p0 = parts[0]
        return cls([i for p in parts for i in p.ids], offsets("node_offsets"), offsets("arc_offsets"),
                   *(cat(f) for f in _FIELDS[3:]), acoustic_scale=p0.acoustic_scale, beam=p0.beam,
                   lattice_beam=p0.lattice_beam)

    def select(self, index: Sequence[int]) -> "Lattices":
        """The lattices of utterances ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)

        def gather(offsets):
            lo, n = offsets[:-1][index], np.diff(offsets)[index]
            pos = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
            return pos, np.concatenate([[0], np.cumsum(n)]).astype(np.int64)

        nodes, node_off = gather(self.node_offsets)
        arcs, arc_off = gather(self.arc_offsets)
        return Lattices([self.ids[i] for i in index], node_off, arc_off, self.level[nodes], self.final[nodes],
                        self.src[arcs], self.dst[arcs], self.tid[arcs], self.word[arcs], self.graph[arcs],
                        self.acoustic[arcs], self.reached_final[index], self.num_frames[index], self.acoustic_scale,
                        self.beam, self.lattice_beam)

    def save(self, path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f: getattr(self, f) for f in _FIELDS}
        arrays["ids"] = np.asarray(self.ids, dtype=str)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, acoustic_scale=self.acoustic_scale, beam=self.beam, lattice_beam=self.lattice_beam, **arrays)

    @classmethod
    def load(cls, path) -> "Lattices":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist (lattices: decode them first)")
        with reading(path, "lattice file"), np.load(path) as z:
            lat = cls([str(i) for i in z["ids"]], *(z[f] for f in _FIELDS[1:]), acoustic_scale=float(z["acoustic_scale"]),
                      beam=float(z["beam"]), lattice_beam=float(z["lattice_beam"]))
            lat.check()
        return lat

    def check(self) -> None:
        """Consistency of offsets and arc ends (a file that fails this is corrupt)."""
        U = len(self.ids)
        if len(self.node_offsets) != U + 1 or len(self.arc_offsets) != U + 1 or self.node_offsets[-1] != self.num_nodes \
                or self.arc_offsets[-1] != self.num_arcs:
            raise ValueError("offsets do not match the node and arc arrays")
        n = np.diff(self.node_offsets)[self.arc_utt()]
        if self.num_arcs and (self.src.min() < 0 or self.dst.min() < 0 or np.any(self.src >= n) or np.any(self.dst >= n)):
            raise ValueError("an arc leaves its utterance's nodes")
        s, d = self.global_src_dst()
        if np.any(self.level[s] >= self.level[d]):
            raise ValueError("an arc does not go to a higher level")


def shortest_distance(level: np.ndarray, src: np.ndarray, dst: np.ndarray, arc_cost: Callable[[np.ndarray], np.ndarray],
                      init: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Costs of the cheapest paths into each node of an acyclic graph, for ``G`` cost settings at once.

    ``level``: per node, with ``level[src] < level[dst]`` for every arc; ``arc_cost(idx)``:
    the ``(len(idx), G)`` costs of arcs ``idx``; ``init``: ``(num_nodes, G)`` cost of starting
    at each node (``inf``: not a start). Returns ``dist`` ``(num_nodes, G)`` and the
    best incoming arc per node and setting (``-1``: the path starts there). One
    vectorized step per level (all utterances of a batch together).
    """
    dist = np.array(init, dtype=np.float64, copy=True)
    back = np.full(dist.shape, -1, dtype=np.int64)
    if len(src) == 0:
        return dist, back
    order = np.lexsort((dst, level[dst]))
    lv = level[dst[order]]
    bounds = np.concatenate([[0], np.nonzero(np.diff(lv))[0] + 1, [len(order)]])
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = order[a:b]
        d = dst[idx]
        vals = dist[src[idx]] + arc_cost(idx)
        starts = np.concatenate([[0], np.nonzero(np.diff(d))[0] + 1])
        best = np.minimum.reduceat(vals, starts, axis=0)
        run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(d))))
        pos = np.where(vals == best[run], np.arange(len(idx))[:, None], len(idx))
        arg = np.minimum.reduceat(pos, starts, axis=0)
        nodes = d[starts]
        better = best < dist[nodes]
        dist[nodes] = np.where(better, best, dist[nodes])
        back[nodes] = np.where(better, idx[np.minimum(arg, len(idx) - 1)], back[nodes])
    return dist, back


def prune(lat: Lattices, lattice_beam: float) -> Lattices:
    """Keep the arcs and nodes on a path within ``lattice_beam`` of each utterance's best path, at the
    lattice's acoustic scale (forward-backward; all utterances together). Final nodes beyond the beam
    stop being final."""
    s, d = lat.global_src_dst()
    cost = lat.graph.astype(np.float64) + lat.acoustic_scale * lat.acoustic.astype(np.float64)
    one = lambda idx: cost[idx, None]  # noqa: E731
    init = np.full((lat.num_nodes, 1), np.inf)
    init[lat.node_offsets[:-1]] = 0.0
    final = lat.final.astype(np.float64)
    alpha = shortest_distance(lat.level, s, d, one, init)[0][:, 0]
    beta = shortest_distance(-lat.level.astype(np.int64), d, s, one, final[:, None])[0][:, 0]
    node_utt = np.repeat(np.arange(len(lat.ids)), np.diff(lat.node_offsets))
    start = lat.node_offsets[:-1]
    limit = (alpha[start] + beta[start] + lattice_beam)
    keep_node = alpha + beta <= limit[node_utt]
    keep_node[start] = True
    arc_utt = lat.arc_utt()
    keep_arc = (alpha[s] + cost + beta[d] <= limit[arc_utt]) & keep_node[s] & keep_node[d]
    final = np.where(alpha + final <= limit[node_utt], final, np.inf)
    counts = np.bincount(node_utt[keep_node], minlength=len(lat.ids))
    node_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    local = np.cumsum(keep_node) - 1 - node_off[:-1][node_utt]  # new index within the utterance
    arc_off = np.concatenate([[0], np.cumsum(np.bincount(arc_utt[keep_arc], minlength=len(lat.ids)))]).astype(np.int64)
    return Lattices(list(lat.ids), node_off, arc_off, lat.level[keep_node], final[keep_node].astype(np.float32),
                    local[s[keep_arc]].astype(np.int32), local[d[keep_arc]].astype(np.int32), lat.tid[keep_arc],
                    lat.word[keep_arc], lat.graph[keep_arc], lat.acoustic[keep_arc], lat.reached_final.copy(),
                    lat.num_frames.copy(), lat.acoustic_scale, lat.beam, float(lattice_beam))


def best_paths(lat: Lattices, lm_weights: Sequence[float], penalties: Sequence[float] = (0.0,), chunk: int = 8):
    """Best path of every utterance for every ``(lm_weight, penalty)`` (cost ``w * (graph + p * words) +
    acoustic``). Returns ``(costs (U, G), words)``: ``words[g][u]`` the word ids of utterance ``u`` at
    setting ``g = i * len(penalties) + j``."""
    w = np.repeat(np.asarray(lm_weights, dtype=np.float64), len(penalties))
    p = np.tile(np.asarray(penalties, dtype=np.float64), len(lm_weights))
    costs, words = [], []
    for i in range(0, len(w), chunk):  # a few settings at a time: memory (nodes x settings) stays small
        c, ws = _best_paths(lat, w[i : i + chunk], p[i : i + chunk])
        costs.append(c)
        words += ws
    return np.concatenate(costs, axis=1), words


def _best_paths(lat: Lattices, w: np.ndarray, p: np.ndarray):
    G, U = len(w), len(lat.ids)
    s, d = lat.global_src_dst()
    has_word = (lat.word > 0).astype(np.float64)
    g64, a64 = lat.graph.astype(np.float64), lat.acoustic.astype(np.float64)

    def cost(idx):
        return w * (g64[idx, None] + p * has_word[idx, None]) + a64[idx, None]

    init = np.full((lat.num_nodes, G), np.inf)
    init[lat.node_offsets[:-1]] = 0.0
    dist, back = shortest_distance(lat.level, s, d, cost, init)
    total = dist + w * lat.final.astype(np.float64)[:, None]
    node_utt = np.repeat(np.arange(U), np.diff(lat.node_offsets))
    starts = lat.node_offsets[:-1]
    best_cost = np.minimum.reduceat(total, starts, axis=0)
    pos = np.where(total == best_cost[node_utt], np.arange(lat.num_nodes)[:, None], lat.num_nodes)
    end = np.minimum.reduceat(pos, starts, axis=0)
    # trace back all (utterance, setting) pairs together
    cur = end.copy()
    cols = np.arange(G)[None, :].repeat(U, 0)
    words_rev = []
    alive = np.isfinite(best_cost)
    while alive.any():
        arc = np.where(alive, back[np.minimum(cur, lat.num_nodes - 1), cols], -1)
        alive = arc >= 0
        if not alive.any():
            break
        words_rev.append(np.where(alive, lat.word[np.maximum(arc, 0)], 0))
        cur = np.where(alive, s[np.maximum(arc, 0)], cur)
    seqs = np.stack(words_rev[::-1]) if words_rev else np.zeros((0, U, G), dtype=np.int32)
    return best_cost, [[[int(x) for x in seqs[:, u, g] if x > 0] for u in range(U)] for g in range(G)]
