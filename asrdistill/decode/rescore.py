"""LM rescoring of state-level lattices (Kaldi's ``steps/lmrescore.sh``).

Kaldi rescores with ``lattice-lmrescore --lm-scale=-1`` (compose with the old G: its cost
is subtracted) and then ``--lm-scale=1`` with the new G. Composition splits each lattice
node by the G states it can be in; here the same is done directly: every lattice node is
expanded into ``(node, old G state, new G state)`` (a G state is a history of at most
``n - 1`` words, ``<s>`` at the start), and a word arc reading ``v`` gets the graph cost

    graph - cost_old(v | old state) + cost_new(v | new state)

with one arc per path through the new G (the n-gram's arc, or back-off arcs and a lower
order's n-gram, which leads to a shorter history: :meth:`ArpaLM.options`), so that the
best path takes the cheapest, as a decoder searching a graph built from the new LM does.
The old LM's cost is that of the cheapest G path for each word in turn (the one a
Viterbi decoding follows, except where backing off now makes a later word dearer);
final nodes likewise for ``</s>``. The expansion runs over all utterances of a split
together, one topological level at a time; G is consulted once per distinct
``(state, word)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from .arpa_lm import ArpaLM
from .lattice import Lattices

__all__ = ["ArpaLM", "rescore", "rescore_dir"]


def _ranges(first, idx):
    lo = first[idx]
    n = first[idx + 1] - lo
    return np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum())), np.repeat(np.arange(len(idx)), n)


def rescore(lat: Lattices, old: ArpaLM, new: ArpaLM, id_word: Dict[int, str]) -> Lattices:
    """``lat`` with the old LM's cost replaced by the new one's (see the module doc)."""
    # LM state: (old G state, new G state); the old one follows the old LM's cheapest path (the cost
    # a Viterbi decoding put into the lattice), the new one every path through the new G (the search
    # below keeps the cheapest, as decoding with the new graph would)
    hists: List[Tuple[tuple, tuple]] = [(old.start(), new.start())]
    hist_id = {hists[0]: 0}
    step: Dict[Tuple[int, int], List[Tuple[int, float]]] = {}
    end: Dict[int, float] = {}

    def lookup(h: int, w: int) -> List[Tuple[int, float]]:
        if (h, w) not in step:
            (so, sn), v = hists[h], id_word[w]
            o_next, o_cost = old.best(so, v)
            out = []
            for n_next, n_cost in new.options(sn, v):
                key = (o_next, n_next)
                if key not in hist_id:
                    hist_id[key] = len(hists)
                    hists.append(key)
                out.append((hist_id[key], n_cost - o_cost))
            step[(h, w)] = out
        return step[(h, w)]

    s, d = lat.global_src_dst()
    order = np.argsort(s, kind="stable")
    first = np.searchsorted(s[order], np.arange(lat.num_nodes + 1))
    # expanded states: (node, history), created one level at a time
    st_node = [lat.node_offsets[:-1].astype(np.int64)]
    st_hist = [np.zeros(len(lat.ids), np.int64)]
    arcs_out = []  # (src state, dst state, arc, delta)
    pending: Dict[int, list] = {}
    num_states = len(lat.ids)
    cur_node, cur_hist, cur_id = st_node[0], st_hist[0], np.arange(len(lat.ids))
    max_level = int(lat.level.max()) if lat.num_nodes else 0
    for L in range(max_level + 1):
        if L > 0:
            if L not in pending:
                continue
            src_state, dst_node, dst_hist, arc, delta = (np.concatenate(x) for x in zip(*pending.pop(L)))
            key = dst_node * len(hists) + dst_hist  # hists only grows: keys of this level use one modulus
            uniq, inv = np.unique(key, return_inverse=True)
            cur_node, cur_hist = uniq // len(hists), uniq % len(hists)
            cur_id = num_states + np.arange(len(uniq))
            num_states += len(uniq)
            st_node.append(cur_node)
            st_hist.append(cur_hist)
            arcs_out.append((src_state, cur_id[inv], arc, delta))
        a_pos, k = _ranges(first, cur_node)
        arc = order[a_pos]
        h = cur_hist[k]
        w = lat.word[arc]
        rep = np.ones(len(arc), np.int64)  # a word arc becomes one arc per path through the new G
        nh, delta = h.copy(), np.zeros(len(arc))
        m = np.nonzero(w > 0)[0]
        if len(m):
            pairs, pinv = np.unique(np.stack([h[m], w[m]], 1), axis=0, return_inverse=True)
            opts = [lookup(int(a), int(b)) for a, b in pairs]
            n_opt = np.array([len(o) for o in opts])
            flat = np.array([x for o in opts for x in o], dtype=np.float64).reshape(-1, 2)
            first_opt = np.cumsum(n_opt) - n_opt
            rep[m] = n_opt[pinv.ravel()]
            # entries: plain arcs once, word arcs once per option
            e = np.repeat(np.arange(len(arc)), rep)
            rank = np.arange(len(e)) - np.repeat(np.cumsum(rep) - rep, rep)
            is_word = w[e] > 0
            pos = np.full(len(arc), -1)
            pos[m] = first_opt[pinv.ravel()]
            opt = np.where(is_word, pos[e] + rank, 0)
            nh = np.where(is_word, flat[opt, 0].astype(np.int64), h[e])
            delta = np.where(is_word, flat[opt, 1], 0.0)
            arc, k = arc[e], k[e]
        dst_level = lat.level[d[arc]]
        for lv in np.unique(dst_level):
            sel = dst_level == lv
            pending.setdefault(int(lv), []).append((cur_id[k[sel]], d[arc[sel]], nh[sel], arc[sel], delta[sel]))
    node = np.concatenate(st_node)
    hist = np.concatenate(st_hist)
    a_src, a_dst, a_arc, a_delta = (np.concatenate(x) for x in zip(*arcs_out)) if arcs_out else \
        (np.zeros(0, np.int64),) * 3 + (np.zeros(0),)
    # final nodes: + cost_new(</s> | h) - cost_old(</s> | h)
    fin = np.isfinite(lat.final[node])
    for hh in np.unique(hist[fin]):
        if int(hh) not in end:
            (so, sn) = hists[hh]
            end[int(hh)] = new.best(sn, "</s>")[1] - old.best(so, "</s>")[1]
    final = np.where(fin, lat.final[node].astype(np.float64) + np.array([end.get(int(x), 0.0) for x in hist]), np.inf)
    # renumber: utterance, then level (the start state first)
    node_utt = np.repeat(np.arange(len(lat.ids)), np.diff(lat.node_offsets))
    utt = node_utt[node]
    perm = np.lexsort((np.arange(len(node)), lat.level[node], utt))
    rank = np.empty(len(node), np.int64)
    rank[perm] = np.arange(len(node))
    counts = np.bincount(utt, minlength=len(lat.ids))
    node_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    arc_utt = utt[a_src]
    aperm = np.argsort(arc_utt, kind="stable")
    a_src, a_dst, a_arc, a_delta, arc_utt = a_src[aperm], a_dst[aperm], a_arc[aperm], a_delta[aperm], arc_utt[aperm]
    arc_off = np.concatenate([[0], np.cumsum(np.bincount(arc_utt, minlength=len(lat.ids)))]).astype(np.int64)
    base = node_off[:-1][arc_utt]
    return Lattices(list(lat.ids), node_off, arc_off, lat.level[node][perm], final[perm].astype(np.float32),
                    (rank[a_src] - base).astype(np.int32), (rank[a_dst] - base).astype(np.int32), lat.tid[a_arc],
                    lat.word[a_arc], (lat.graph[a_arc] + a_delta).astype(np.float32), lat.acoustic[a_arc],
                    lat.reached_final.copy(), lat.num_frames.copy(), lat.acoustic_scale, lat.beam, lat.lattice_beam)


def rescore_dir(lat_dir, out_dir, old_arpa, new_arpa, words_txt) -> dict:
    """``out_dir/lat.npz``: ``lat_dir/lat.npz`` rescored from ``old_arpa`` to ``new_arpa`` (paths of ARPA files or
    const-ARPA directories, or loaded :class:`ArpaLM`), with its ``lattices.json``, so that scoring reports the
    decoding's real-time factor."""
    import json
    import time

    from ..lang.lang_dir import _symbols
    from ..utils.atomic import atomic_write_text
    from ..utils.config import command_line

    lat_dir, out_dir = Path(lat_dir), Path(out_dir)
    lat = Lattices.load(lat_dir / "lat.npz")
    id_word = {i: w for w, i in _symbols(Path(words_txt)).items()}
    t0 = time.perf_counter()
    old = old_arpa if isinstance(old_arpa, ArpaLM) else ArpaLM(old_arpa)
    new = new_arpa if isinstance(new_arpa, ArpaLM) else ArpaLM(new_arpa)
    out = rescore(lat, old, new, id_word)
    seconds = time.perf_counter() - t0
    out.save(out_dir / "lat.npz")
    info_path = lat_dir / "lattices.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info.update(rescored_from=str(lat_dir / "lat.npz"), old_lm=str(old.path), new_lm=str(new.path),
                rescore_seconds=seconds, rescore_command=command_line(),
                arcs_per_frame=out.num_arcs / max(int(out.num_frames.sum()), 1))
    atomic_write_text(out_dir / "lattices.json", json.dumps(info, indent=1))
    return info
