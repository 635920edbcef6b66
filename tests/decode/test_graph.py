"""HCLG as mkgraph.sh builds it: the array FST operations against brute force, and the graph against a
reference built step by step with kaldifst's exact operations."""

import numpy as np
import pytest

kaldifst = pytest.importorskip("kaldifst")
khg = pytest.importorskip("kaldi_hmm_gmm")

from asrdistill.decode.fst_arrays import FstArrays  # noqa: E402
from asrdistill.decode.fst_ops import push_special, remove_eps_local, remove_input_symbols  # noqa: E402


def _random_dag(rng, n=9, m=22, cyclic=False):
    src = rng.integers(0, n - 1, m)
    dst = np.array([rng.integers(0 if cyclic else s + 1, n) for s in src])
    il, ol = rng.choice([0, 0, 1, 2], m), rng.choice([0, 0, 0, 5, 6], m)
    final = np.where(rng.random(n) < 0.3, rng.uniform(0, 1, n).round(3), np.inf)
    final[-1] = 0.5
    return FstArrays(0, final.astype(np.float32), src.astype(np.int32), il.astype(np.int32), ol.astype(np.int32),
                     rng.uniform(0, 2, m).round(3).astype(np.float32), dst.astype(np.int32)).sorted()


def _best_paths(f: FstArrays) -> dict:
    """Brute force over an acyclic FST: (input string, output string) -> lowest path weight."""
    best = {}

    def walk(s, i, o, w):
        if np.isfinite(f.final[s]):
            key = (tuple(i), tuple(o))
            best[key] = min(best.get(key, np.inf), w + float(f.final[s]))
        for k in np.nonzero(f.src == s)[0]:
            walk(int(f.dst[k]), i + [int(f.ilabel[k])] * bool(f.ilabel[k]), o + [int(f.olabel[k])] * bool(f.olabel[k]),
                 w + float(f.weight[k]))

    walk(f.start, [], [], 0.0)
    return best


def _same_relation(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) < 2e-3 for k in a)


def test_fst_arrays_round_trip_through_binary_files():
    rng = np.random.default_rng(1)
    f = _random_dag(rng, cyclic=True)
    fst = f.to_fst()
    assert fst.num_states == f.num_states and sum(fst.num_arcs(s) for s in range(fst.num_states)) == f.num_arcs
    back = FstArrays.from_fst(fst)
    assert fst.to_str() == back.to_fst().to_str()
    for name in ("final", "src", "ilabel", "olabel", "weight", "dst"):
        assert np.array_equal(getattr(back, name), getattr(f, name)), name
    text = {tuple(line.split()) for line in fst.to_str().splitlines()}  # as kaldifst prints it
    assert ("0",) + tuple(str(x) for x in (f.dst[0], f.ilabel[0], f.olabel[0])) in {t[:4] for t in text}


def test_remove_input_symbols():
    f = _random_dag(np.random.default_rng(2))
    g = remove_input_symbols(f, [2])
    assert not (g.ilabel == 2).any() and np.array_equal(g.ilabel == 1, f.ilabel == 1)


def test_local_epsilon_removal_keeps_the_weighted_relation_and_never_adds_arcs():
    rng = np.random.default_rng(0)
    before = after = 0
    for _ in range(150):
        f = _random_dag(rng)
        g = remove_eps_local(f)
        assert _same_relation(_best_paths(f), _best_paths(g))
        assert g.num_arcs <= f.num_arcs
        before += int(((f.ilabel == 0) & (f.olabel == 0)).sum())
        after += int(((g.ilabel == 0) & (g.olabel == 0)).sum())
    assert after < 0.5 * before  # most epsilons go


def test_local_epsilon_removal_of_a_chain_and_a_back_off_state():
    # 0 -a-> 1 -eps-> 2 -b-> 3 (final): the epsilon goes; a back-off state with two ways in keeps its epsilon arc
    chain = kaldifst.compile("0 1 1 1 0.5\n1 2 0 0 0.25\n2 3 2 2 1\n3 0\n")
    g = remove_eps_local(FstArrays.from_fst(chain))
    out = g.to_fst()
    kaldifst.connect(out)
    arcs = [line.split() for line in out.to_str().splitlines() if len(line.split()) > 3]
    assert out.num_states == 3 and all(a[2] != "0" for a in arcs)
    # histories 1 and 2 have a word arc each and back off to 3, which has two words
    backoff = FstArrays.from_fst(kaldifst.compile("0 1 1 1 0\n0 2 2 2 0\n1 4 3 3 0\n1 3 0 0 1\n2 4 4 4 0\n2 3 0 0 2\n"
                                                  "3 4 3 3 0\n3 4 4 4 0.5\n4 0\n"))
    g = remove_eps_local(backoff)
    assert ((g.ilabel == 0) & (g.olabel == 0)).sum() == 2 and g.num_arcs == backoff.num_arcs


def test_push_special_makes_every_state_sum_alike_and_keeps_path_weights():
    rng = np.random.default_rng(3)
    for cyclic in (False, True):
        for _ in range(20):
            fst = _random_dag(rng, cyclic=cyclic).to_fst()
            kaldifst.connect(fst)
            f = FstArrays.from_fst(fst)
            if f.num_states < 2:
                continue
            g = push_special(f, delta=1e-4)
            # the row sums of P' (transition probabilities, final weight counted as a transition): all equal
            p = np.exp(-g.weight.astype(np.float64))
            sums = np.bincount(g.src, weights=p, minlength=g.num_states) + np.exp(-g.final.astype(np.float64))
            assert np.log(sums.max() / sums.min()) < 1e-3
            if not cyclic:
                assert _same_relation(_best_paths(f), _best_paths(g))


@pytest.fixture(scope="module")
def small_graph(tmp_path_factory):
    """A lexicon with homophones, a back-off bigram over it, a monophone model; HCLG and a reference."""
    from asrdistill.decode.graph import arpa_to_fst, build_hclg
    from asrdistill.decode.ngram import WittenBellLM
    from asrdistill.lang.lang_dir import prepare_lang
    from asrdistill.lang.lexicon import cmudict_lexicon

    root = tmp_path_factory.mktemp("graph")
    words = "TWO TO TOO FOUR FOR ONE WON EIGHT ATE".split()
    lex, _ = cmudict_lexicon(words)
    lang = prepare_lang(lex, root / "lang")
    rng = np.random.default_rng(0)
    sentences = [list(rng.choice(words[:7], rng.integers(1, 4))) for _ in range(40)]
    WittenBellLM(sentences, 2, vocabulary=words).write_arpa(root / "G.arpa")
    topo = lang.topology()
    ctx = khg.monophone_context_dependency_shared(phone_classes=lang.phone_sets(),
                                                  phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)
    G = arpa_to_fst(root / "G.arpa", lang.path / "words.txt")
    HCLG, stats = build_hclg(lang, ctx, tm, G.copy())

    # the reference: the same steps with kaldifst's exact operations (text relabelling, full epsilon removal)
    L = lang.lexicon_fst(disambig=True)
    kaldifst.arcsort(L, sort_type="olabel")
    kaldifst.arcsort(G, sort_type="ilabel")
    LG = kaldifst.compose(L, G)
    kaldifst.determinize_star(LG, use_log=True)
    kaldifst.minimize_encoded(LG)
    kaldifst.arcsort(LG, sort_type="ilabel")
    CLG, ilabels = kaldifst.compose_context(disambig_syms=lang.disambig_phones, context_width=ctx.context_width,
                                            central_position=ctx.central_position, ifst=LG)
    kaldifst.arcsort(CLG, sort_type="ilabel")
    Ha, disambig_tids = khg.get_h_transducer(ilabel_info=ilabels, ctx_dep=ctx, trans_model=tm,
                                             config=khg.HTransducerConfig())
    kaldifst.arcsort(Ha, sort_type="olabel")
    HCLGa = kaldifst.compose(Ha, CLG)
    kaldifst.determinize_star(HCLGa, use_log=True)
    lines = []
    for line in HCLGa.to_str().splitlines():
        parts = line.split()
        if len(parts) >= 4 and int(parts[2]) in set(disambig_tids):
            parts[2] = "0"
        lines.append(" ".join(parts))
    HCLGa = kaldifst.compile("\n".join(lines) + "\n")
    kaldifst.rmepsilon(HCLGa)
    kaldifst.minimize_encoded(HCLGa)
    ref = khg.add_self_loops(self_loop_scale=0.1, disambig_syms=[], reorder=True, trans_model=tm, ifst=HCLGa)
    kaldifst.arcsort(ref, sort_type="ilabel")
    return HCLG, ref, stats, set(disambig_tids), lang


def _linear(labels):
    fst = kaldifst.compile("".join(f"{i} {i + 1} {t} {t}\n" for i, t in enumerate(labels)) + f"{len(labels)}\n")
    kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def _best(graph, tids, words=None):
    """Lowest weight and output words of ``graph`` over the input string ``tids`` (and output ``words``)."""
    paths = kaldifst.compose(_linear(tids), graph)
    if words is not None:
        kaldifst.arcsort(paths, sort_type="olabel")
        paths = kaldifst.compose(paths, _linear(words))
    best = kaldifst.shortest_path(paths)
    if best.num_states == 0:
        return None
    ok, _, words, weight = kaldifst.get_linear_symbol_sequence(best)
    return [w for w in words if w], float(weight.value)


def _random_input(graph, rng, max_len=60):
    """Input labels of a random walk from the start state to a final state (epsilons skipped)."""
    f = FstArrays.from_fst(graph)
    for _ in range(100):
        s, labels = f.start, []
        while len(labels) < max_len:
            arcs = np.nonzero(f.src == s)[0]
            if np.isfinite(f.final[s]) and (len(arcs) == 0 or rng.random() < 0.15):
                return labels
            if len(arcs) == 0:
                break
            k = rng.choice(arcs)
            labels += [int(f.ilabel[k])] * bool(f.ilabel[k])
            s = int(f.dst[k])
    raise AssertionError("no random path reached a final state")


def test_hclg_equals_the_step_by_step_reference(small_graph):
    HCLG, ref, stats, disambig_tids, lang = small_graph
    f = FstArrays.from_fst(HCLG)
    assert not np.isin(f.ilabel, list(disambig_tids)).any()
    assert stats["HCLG"] == {"states": f.num_states, "arcs": f.num_arcs}
    assert set(stats["seconds"]) == {"LG", "CLG", "Ha", "HCLGa", "HCLG"}
    rng = np.random.default_rng(0)
    homophones = {lang.word_id[w] for w in ("TWO", "TO", "TOO")}
    seen, same = set(), 0
    for graph_to_walk in (ref, HCLG):
        for _ in range(25):
            tids = _random_input(graph_to_walk, rng)
            a, b = _best(HCLG, tids), _best(ref, tids)
            assert a is not None and b is not None
            assert abs(a[1] - b[1]) < 1e-2, (tids, a, b)
            if a[0] != b[0]:  # a tie (homophones of unseen words): the reference gives HCLG's words the same weight
                assert abs(_best(ref, tids, a[0])[1] - b[1]) < 1e-2, (tids, a, b)
            same += a[0] == b[0]
            seen |= set(a[0])
    assert seen & homophones and same >= 40  # the walks crossed the disambiguated words


def test_lg_is_stochastic_after_push_special(small_graph):
    """Kaldi's fstisstochastic on LG: after pushspecial every state sums to the same (log) total."""
    from asrdistill.decode.graph import arpa_to_fst, make_lg

    _, _, _, _, lang = small_graph
    LG = FstArrays.from_fst(make_lg(lang.lexicon_fst(disambig=True),
                                    arpa_to_fst(lang.path.parent / "G.arpa", lang.path / "words.txt")))
    p = np.exp(-LG.weight.astype(np.float64))
    sums = np.bincount(LG.src, weights=p, minlength=LG.num_states) + np.exp(-LG.final.astype(np.float64))
    assert np.log(sums.max() / sums.min()) < 2e-3


def test_decoders_read_the_words_of_a_path_the_scores_favour(small_graph):
    """Scores that favour one random path of HCLG: Kaldi's decoders and k2 give that path's words
    (k2: read from the graph's output labels over its best path, repeated words included)."""
    pytest.importorskip("k2py")
    from asrdistill.decode.decoder import DecoderConfig, GraphDecoder

    HCLG, _, _, _, lang = small_graph
    topo = lang.topology()
    ctx = khg.monophone_context_dependency_shared(phone_classes=lang.phone_sets(),
                                                  phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)
    decoders = {name: GraphDecoder(HCLG, tm, DecoderConfig(decoder=name, beam=16.0))
                for name in ("lattice-faster", "faster", "k2")}
    assert decoders["k2"].decoder.num_transition_ids == tm.num_transition_ids  # score columns: transition ids only
    rng = np.random.default_rng(5)
    repeated = 0
    for _ in range(12):
        tids = _random_input(HCLG, rng, max_len=120)
        if not tids:
            continue
        scores = np.full((len(tids), tm.num_transition_ids), -30.0, dtype=np.float32)
        scores[np.arange(len(tids)), np.asarray(tids) - 1] = 0.0
        expected = _best(HCLG, tids)[0]
        for name, dec in decoders.items():
            res = dec.decode(scores, "u")
            assert res.reached_final and len(res.tids) == len(tids), name
            assert res.words == expected or _best(HCLG, tids, res.words)[1] <= _best(HCLG, tids)[1] + 1e-3, name
        repeated += any(a == b for a, b in zip(expected, expected[1:]))
    assert repeated >= 1  # some path repeats a word ("ZERO ZERO"), which k2py's own token ids merge
