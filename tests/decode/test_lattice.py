"""State-level lattices on small constructed graphs: best paths over a grid of LM weights and word insertion
penalties, and LM rescoring, against brute force over every enumerated path; the file format."""

import numpy as np
import pytest

from asrdistill.decode.lattice import Lattices, best_paths

WORDS = {1: "A", 2: "B", 3: "C"}


def _random_lattice(rng, n=9, p_arc=0.45, utt="u"):
    """A random acyclic lattice over nodes 0..n-1 (level = index) with word and epsilon arcs."""
    src, dst = [], []
    for i in range(n):
        for j in range(i + 1, n):
            if rng.random() < p_arc:
                src.append(i)
                dst.append(j)
    A = len(src)
    final = np.where(rng.random(n) < 0.35, rng.normal(0, 1, n), np.inf).astype(np.float32)
    final[-1] = 0.5
    return Lattices([utt], np.array([0, n]), np.array([0, A]), np.arange(n, dtype=np.int32), final,
                    np.array(src, np.int32), np.array(dst, np.int32), rng.integers(0, 5, A).astype(np.int32),
                    rng.choice([0, 0, 1, 2, 3], A).astype(np.int32), rng.uniform(0, 3, A).astype(np.float32),
                    rng.uniform(0, 30, A).astype(np.float32), np.array([True]), np.array([n], np.int32))


def _paths(lat):
    """Every complete path of a one-utterance lattice: (arc list, final node)."""
    out = []

    def walk(node, arcs):
        if np.isfinite(lat.final[node]):
            out.append((list(arcs), node))
        for a in np.nonzero(lat.src == node)[0]:
            walk(int(lat.dst[a]), arcs + [a])

    walk(0, [])
    return out


def _brute(lat, w, p, graph_delta=None):
    best = None
    for arcs, end in _paths(lat):
        g = float(np.sum(lat.graph[arcs].astype(np.float64))) + float(lat.final[end])
        if graph_delta is not None:
            g += graph_delta(arcs, end)
        words = [int(x) for x in lat.word[arcs] if x > 0]
        cost = w * (g + p * len(words)) + float(np.sum(lat.acoustic[arcs].astype(np.float64)))
        if best is None or cost < best[0] - 1e-9:
            best = (cost, words)
    return best


def test_word_insertion_penalty_and_lm_weight_follow_brute_force():
    rng = np.random.default_rng(3)
    lats = [_random_lattice(rng, utt=f"u{i}") for i in range(6)]
    weights, penalties = (0.5, 2.0, 8.0), (-3.0, 0.0, 1.5, 6.0)
    batch = Lattices.concat(lats)
    batch.check()
    cost, words = best_paths(batch, weights, penalties)
    moved = 0
    for u, lat in enumerate(lats):
        for i, w in enumerate(weights):
            ref_words = None
            for j, p in enumerate(penalties):
                c, ws = _brute(lat, w, p)
                g = i * len(penalties) + j
                assert cost[u, g] == pytest.approx(c, rel=1e-9, abs=1e-9)
                assert words[g][u] == ws
                moved += ref_words is not None and ws != ref_words
                ref_words = ws
    assert moved > 0  # the penalty changes some best paths (more negative: more words)


def test_save_load_and_corrupt_file(tmp_path):
    from asrdistill.utils.readers import CorruptFileError

    rng = np.random.default_rng(0)
    lat = Lattices.concat([_random_lattice(rng, utt=u) for u in ("a", "b", "c")])
    lat.save(tmp_path / "lat.npz")
    back = Lattices.load(tmp_path / "lat.npz")
    assert back.ids == ["a", "b", "c"]
    for f in ("node_offsets", "arc_offsets", "level", "final", "src", "dst", "tid", "word", "graph", "acoustic"):
        assert np.array_equal(getattr(back, f), getattr(lat, f)), f
    sub = lat.select([2, 0])
    assert sub.ids == ["c", "a"] and best_paths(sub, [1.0])[1][0] == [best_paths(lat, [1.0])[1][0][i] for i in (2, 0)]
    data = (tmp_path / "lat.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="cut.npz"):
        Lattices.load(tmp_path / "cut.npz")
    bad = lat.select([0])
    bad.dst[0] = bad.src[0]  # an arc that does not go forward
    bad.save(tmp_path / "bad.npz")
    with pytest.raises(CorruptFileError, match="bad.npz"):
        Lattices.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="decode them first"):
        Lattices.load(tmp_path / "none.npz")


def test_rescoring_replaces_the_old_lm_cost_of_every_path(tmp_path):
    from asrdistill.decode.ngram import WittenBellLM
    from asrdistill.decode.rescore import ArpaLM, rescore

    text = [["A", "B"], ["A", "C", "B"], ["B"], ["C", "C", "A"], ["A", "B", "B"]]
    WittenBellLM(text, 2).write_arpa(tmp_path / "old.arpa")
    WittenBellLM(text[::-1] + [["C", "A"]] * 3, 3).write_arpa(tmp_path / "new.arpa")
    old, new = ArpaLM(tmp_path / "old.arpa"), ArpaLM(tmp_path / "new.arpa")
    ref = WittenBellLM(text[::-1] + [["C", "A"]] * 3, 3)
    for h, v in ((("<s>", "C"), "A"), (("B", "A"), "C"), (("C",), "</s>")):  # ARPA's back-off = the interpolated model
        assert new.cost(h, v) == pytest.approx(-np.log(ref.prob(h + (v,))), rel=1e-5)

    def greedy_cost(lm, words):  # the old LM: the cheapest G path word by word
        state, total = lm.start(), 0.0
        for v in [WORDS[x] for x in words]:
            state, c = lm.best(state, v)
            total += c
        return total + lm.best(state, "</s>")[1]

    def cheapest_cost(lm, words):  # the new LM: the cheapest G path for the whole sentence
        states = {lm.start(): 0.0}
        for v in [WORDS[x] for x in words]:
            nxt = {}
            for st, c in states.items():
                for ns, oc in lm.options(st, v):
                    nxt[ns] = min(nxt.get(ns, np.inf), c + oc)
            states = nxt
        return min(c + lm.best(st, "</s>")[1] for st, c in states.items())

    rng = np.random.default_rng(5)
    lats = [_random_lattice(rng, utt=f"u{i}") for i in range(5)]
    out = rescore(Lattices.concat(lats), old, new, WORDS)
    out.check()
    weights, penalties = (1.0, 4.0), (0.0, 1.0)
    cost, words = best_paths(out, weights, penalties)
    for u, lat in enumerate(lats):
        def delta(arcs, end, lat=lat):
            ws = [int(x) for x in lat.word[arcs] if x > 0]
            return cheapest_cost(new, ws) - greedy_cost(old, ws)

        for g, (w, p) in enumerate((w, p) for w in weights for p in penalties):
            c, ws = _brute(lat, w, p, delta)
            assert cost[u, g] == pytest.approx(c, rel=1e-5, abs=1e-4)
            assert words[g][u] == ws
