"""Kaldi's graph operations that kaldifst does not expose, vectorized over :class:`FstArrays`.

- :func:`remove_input_symbols` (``fstrmsymbols``): the given input labels become epsilon.
- :func:`remove_eps_local` (``fstrmepslocal``): removes epsilons only where that never adds
  arcs or states, so that the back-off arcs of a large LM are not multiplied out as a full
  epsilon removal would. An arc ``a: s -> n`` is combined with what follows it when their
  labels do not clash (at most one of the two has an input label, at most one an output
  label) and either (Kaldi's pattern 2) ``n`` has a single outgoing transition (an arc or its
  final weight) or (pattern 1) ``a`` is the only arc into ``n`` and combines with every
  transition out of ``n``. Kaldi also applies pattern 1 when only some of ``n``'s arcs
  combine, reweighting the rest to keep the FST stochastic; that partial case is not done
  here (the result may keep a few epsilons Kaldi removes, and is equivalent either way).
  Kaldi works arc by arc; here every round combines, at once, all arcs whose next state has
  no combinable arc of its own (so no two combinations touch the same arc), until none is
  left.
- :func:`push_special` (``fstpushspecial``): reweights so that every state "sums to" the
  same quantity, with the power method on the matrix of transition probabilities
  (Hannemann and Povey, ICASSP 2013); every path keeps its weight.
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np

from .fst_arrays import FstArrays

log = logging.getLogger(__name__)


def remove_input_symbols(fst: FstArrays, labels: Iterable[int]) -> FstArrays:
    """Copy of ``fst`` with the input labels ``labels`` replaced by epsilon (0)."""
    ilabel = np.where(np.isin(fst.ilabel, np.asarray(list(labels), dtype=np.int32)), 0, fst.ilabel).astype(np.int32)
    return FstArrays(fst.start, fst.final, fst.src, ilabel, fst.olabel, fst.weight, fst.dst)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every pair."""
    counts = counts.astype(np.int64)
    return np.repeat(starts.astype(np.int64) - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())


def remove_eps_local(fst: FstArrays, max_rounds: int = 1000) -> FstArrays:
    """Local epsilon removal (see module doc); returns arcs sorted by source state (not trimmed:
    states left without arcs in are removed by ``kaldifst.connect`` afterwards)."""
    if fst.start < 0 or fst.num_arcs == 0:
        return fst
    a = fst.sorted()
    n = a.num_states
    src, il, ol, w, dst = a.src.copy(), a.ilabel.copy(), a.olabel.copy(), a.weight.copy(), a.dst.copy()
    final = a.final.copy()
    for rnd in range(max_rounds):
        order = np.argsort(src, kind="stable")
        src, il, ol, w, dst = src[order], il[order], ol[order], w[order], dst[order]
        m = len(src)
        is_final = np.isfinite(final)
        nout_arcs = np.bincount(src, minlength=n)
        first = np.cumsum(nout_arcs) - nout_arcs  # index of each state's first arc
        num_in = np.bincount(dst, minlength=n)
        num_in[a.start] += 1
        num_out = nout_arcs + is_final
        self_loop_state = np.zeros(n, bool)
        self_loop_state[src[src == dst]] = True
        any_il = np.zeros(n, bool)
        any_il[src[il != 0]] = True
        any_ol = np.zeros(n, bool)
        any_ol[src[ol != 0]] = True
        eps = (il == 0) & (ol == 0)
        nxt = dst.copy()  # next states at the start of the round
        ok = (src != nxt) & ~self_loop_state[nxt]
        # pattern 2: the next state has one transition out: its only arc b, or its final weight
        single = ok & (num_out[nxt] == 1)
        b = np.where(nout_arcs[nxt] == 1, first[nxt], -1)
        has_b = single & (b >= 0)
        bb = np.where(has_b, b, 0)
        p2_arc = has_b & ((il == 0) | (il[bb] == 0)) & ((ol == 0) | (ol[bb] == 0)) & (dst[bb] != nxt)
        p2_final = single & (b < 0) & eps
        # pattern 1 (full): the only arc into a state with several transitions out, all combinable
        p1 = (ok & (num_in[nxt] == 1) & (num_out[nxt] > 1) & ((il == 0) | ~any_il[nxt]) & ((ol == 0) | ~any_ol[nxt])
              & (~is_final[nxt] | eps))
        cand = p2_arc | p2_final | p1
        has_cand_out = np.zeros(n, bool)
        has_cand_out[src[cand]] = True
        sel = cand & ~has_cand_out[nxt]
        if not sel.any():
            break
        delete = np.zeros(m, bool)
        new_final = final.copy()
        # pattern 2 with an arc: a becomes a*b; b goes when a was its state's only way in
        i2 = np.nonzero(sel & p2_arc)[0]
        j2 = b[i2]
        il[i2] = np.where(il[i2] != 0, il[i2], il[j2])
        ol[i2] = np.where(ol[i2] != 0, ol[i2], ol[j2])
        w[i2] = w[i2] + w[j2]
        delete[j2[num_in[nxt[i2]] == 1]] = True
        dst[i2] = dst[j2]
        # pattern 2 with a final weight: s gets final weight a * final(n); a goes
        i2f = np.nonzero(sel & p2_final)[0]
        np.minimum.at(new_final, src[i2f], w[i2f] + final[nxt[i2f]])
        delete[i2f] = True
        gone = nxt[i2f][num_in[nxt[i2f]] == 1]
        # pattern 1: every transition out of n moves to s (times a); a and n's arcs go
        i1 = np.nonzero(sel & p1)[0]
        n1 = nxt[i1]
        moved = _ranges(first[n1], nout_arcs[n1])
        owner = np.repeat(i1, nout_arcs[n1])
        f1 = i1[is_final[n1]]
        np.minimum.at(new_final, src[f1], w[f1] + final[nxt[f1]])
        gone = np.concatenate([gone, n1])
        delete[i1] = True
        delete[moved] = True
        new_final[gone] = np.inf
        final = new_final
        add = (src[owner], np.where(il[owner] != 0, il[owner], il[moved]), np.where(ol[owner] != 0, ol[owner], ol[moved]),
               w[owner] + w[moved], dst[moved])
        keep = ~delete
        src, il, ol, w, dst = (np.concatenate([x[keep], y.astype(x.dtype)]) for x, y in zip((src, il, ol, w, dst), add))
    else:
        log.warning("remove_eps_local: stopped after %d rounds", max_rounds)
    return FstArrays(a.start, final.astype(np.float32), src.astype(np.int32), il.astype(np.int32), ol.astype(np.int32),
                     w.astype(np.float32), dst.astype(np.int32)).sorted()


def push_special(fst: FstArrays, delta: float = 1.0 / 1024, max_iters: int = 2000) -> FstArrays:
    """``fstpushspecial``: weights pushed so that every state sums to the same total (see module doc)."""
    if fst.start < 0:
        return fst
    n, start = fst.num_states, fst.start
    p = np.exp(-fst.weight.astype(np.float64))
    pf = np.exp(-fst.final.astype(np.float64))  # 0 where not final
    src, dst = fst.src.astype(np.int64), fst.dst.astype(np.int64)
    occ = np.full(n, 1.0 / np.sqrt(n))

    def row_sums(v):  # sum_t p(s -> t) v_t + final(s) v_start, per state s
        return np.bincount(src, weights=p * v[dst], minlength=n) + pf * v[start]

    for it in range(max_iters):
        new = 0.1 * occ + row_sums(occ)  # the power method on (P + 0.1 I): linear FSTs converge too
        occ = new / np.sqrt(np.dot(new, new))
        if it % 5 == 0 and it > 0:
            with np.errstate(divide="ignore", invalid="ignore"):
                sums = row_sums(occ) / occ
            if np.log(sums.max() / sums.min()) <= delta:
                break
    else:
        log.warning("push_special: %d iterations without converging", max_iters)
    with np.errstate(divide="ignore"):
        pot = -np.log(occ)
    weight = (fst.weight + pot[dst] - pot[src]).astype(np.float32)
    final = np.where(np.isfinite(fst.final), fst.final + pot[start] - pot, np.inf).astype(np.float32)
    return FstArrays(fst.start, final, fst.src, fst.ilabel, fst.olabel, weight, fst.dst)
