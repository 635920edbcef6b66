"""Lattices on real FSDD utterances (fixtures: tests/real_system.py): the lattice decoder against Kaldi's
FasterDecoder, LM-weight scoring against re-decoding, rescoring against decoding with the new LM."""

import numpy as np
import pytest

pytest.importorskip("kaldi_hmm_gmm")


@pytest.fixture(scope="module")
def scored(system, tri_graph):
    """Test-split log-likelihoods ``{cut id: (T, num_transition_ids)}`` of the triphone system, and its graph."""
    import kaldifst

    from asrdistill.decode.acoustic import GmmScorer
    from asrdistill.utils.readers import read_cuts

    root, _, tri = system
    graph_dir, _ = tri_graph
    scorer = GmmScorer(root / "tri", root / "f" / "fsdd_cmvn_test.json")
    pdf_of = np.asarray(tri.tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]
    lls = {c.id: scorer(c)[:, pdf_of].numpy() for c in read_cuts(root / "f" / "fsdd_cuts_test.jsonl.gz")}
    return lls, kaldifst.StdVectorFst.read(str(graph_dir / "HCLG.fst")), tri.tm


def _faster(graph, tm, lls, scale, beam=13.0):
    """FasterDecoder's words and total cost (graph + scaled acoustic) per utterance."""
    import kaldifst

    from asrdistill.decode.decoder import DecoderConfig, GraphDecoder

    dec = GraphDecoder(graph, tm, DecoderConfig(decoder="faster", beam=beam))
    out = {}
    for u, ll in lls.items():
        res = dec.decode(scale * ll, u)
        _, best = dec.decoder.get_best_path()
        _, _, _, w = kaldifst.get_linear_symbol_sequence(best)
        out[u] = (res.words, w.value1 + w.value2, res.reached_final)
    return out


def _lattices(graph, lls, scale, beam=13.0, lattice_beam=8.0):
    from asrdistill.decode.decoder import DecoderConfig
    from asrdistill.decode.lattice import Lattices
    from asrdistill.decode.lattice_decoder import LatticeDecoder

    dec = LatticeDecoder(graph, DecoderConfig(beam=beam, lattice_beam=lattice_beam))
    return Lattices.concat([dec.decode(ll, scale, u) for u, ll in lls.items()])


def test_lattice_best_path_equals_faster_decoder(scored):
    from asrdistill.decode.lattice import best_paths

    lls, graph, tm = scored
    for scale in (0.08, 0.12):
        ref = _faster(graph, tm, lls, scale)
        lat = _lattices(graph, lls, scale)
        lat.check()
        cost, words = best_paths(lat, [1.0 / scale])
        for i, u in enumerate(lat.ids):
            assert words[0][i] == ref[u][0], (u, scale)
            assert abs(scale * cost[i, 0] - ref[u][1]) <= 1e-4 * max(1.0, abs(ref[u][1])), (u, scale)
            assert bool(lat.reached_final[i]) == ref[u][2]
        assert lat.num_arcs > 2 * int(lat.num_frames.sum())  # a lattice, not only the best path


def test_lm_weight_scoring_equals_decoding_at_the_inverse_scale(scored):
    """One lattice (at 0.1), scored at LM weight w: the words of re-decoding at acoustic scale 1 / w."""
    from asrdistill.decode.lattice import best_paths

    lls, graph, tm = scored
    lat = _lattices(graph, lls, 0.1, lattice_beam=10.0)
    weights = (7.0, 10.0, 14.0)
    _, words = best_paths(lat, weights, (0.0, 2.0))
    changed = 0
    for g, w in enumerate(weights):
        ref = _faster(graph, tm, lls, 1.0 / w)
        assert [words[2 * g][i] for i in range(len(lat.ids))] == [ref[u][0] for u in lat.ids], w
        changed += sum(a != b for a, b in zip(words[2 * g], words[2 * g + 1]))
    assert changed > 0  # a penalty of 2 per word changes some hypotheses


def test_rescoring_equals_decoding_with_the_new_lm(system, tri_graph, scored, tmp_path):
    """A lattice of the bigram graph rescored with another LM: the words of decoding with that LM's graph.

    The new LM is a trigram over the training transcripts plus seeded digit strings (a different
    LM: multi-word hypotheses and the digits' priors change)."""
    from asrdistill.data.cuts import cut_text
    from asrdistill.decode.graph import make_graph
    from asrdistill.decode.lattice import best_paths
    from asrdistill.decode.ngram import WittenBellLM
    from asrdistill.decode.rescore import ArpaLM, rescore
    from asrdistill.lang.lang_dir import _symbols
    from asrdistill.utils.readers import read_cuts

    root, _, _ = system
    graph_dir, _ = tri_graph
    lls, graph2, tm = scored
    rng = np.random.default_rng(0)
    digits = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
    text = [cut_text(c).split() for c in read_cuts(root / "f" / "fsdd_cuts_train.jsonl.gz")]
    text += [list(rng.choice(digits[:4], size=rng.integers(1, 4))) for _ in range(300)]
    WittenBellLM(text, 3).write_arpa(tmp_path / "G3.arpa")
    make_graph(root / "lang", root / "tri", tmp_path / "G3.arpa", tmp_path / "graph3")
    import kaldifst

    graph3 = kaldifst.StdVectorFst.read(str(tmp_path / "graph3" / "HCLG.fst"))
    scale = 0.1
    id_word = {i: w for w, i in _symbols(graph_dir / "words.txt").items()}
    lat = _lattices(graph2, lls, scale, lattice_beam=10.0)
    new = rescore(lat, ArpaLM(root / "G.arpa"), ArpaLM(tmp_path / "G3.arpa"), id_word)
    new.check()
    _, before = best_paths(lat, [1 / scale])
    cost, after = best_paths(new, [1 / scale])
    ref = _faster(graph3, tm, lls, scale)
    assert after[0] == [ref[u][0] for u in new.ids]
    assert sum(a != b for a, b in zip(before[0], after[0])) > 0  # the LM changed some hypotheses
    # the rescored best path mostly costs what decoding with the new graph costs (not always: G's
    # determinization in the log semiring sums the back-off paths into a word's cost)
    diff = np.array([scale * cost[i, 0] - ref[u][1] for i, u in enumerate(new.ids)])
    assert np.mean(np.abs(diff) < 0.01) >= 0.9, diff


def test_cli_decodes_lattices_once_and_tunes_lm_weight_and_penalty_on_dev(system, tri_graph, scored):
    """decode lattices + score-lattices: best.json as decode run writes it; the LM weight 10 row is the
    best path of decoding at acoustic scale 0.1."""
    import json

    from click.testing import CliRunner

    from asrdistill.cli import cli

    root, _, _ = system
    graph_dir, _ = tri_graph
    lls, graph, tm = scored
    out = str(root / "lat_{split}")
    r = CliRunner().invoke(cli, ["decode", "lattices", "--feature-dir", str(root / "f"), "--split", "dev,test",
                                 "--model-dir", str(root / "tri"), "--graph-dir", str(graph_dir), "--out-dir", out,
                                 "--acoustic-scale", "0.1", "-j", "2"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["decode", "score-lattices", "--feature-dir", str(root / "f"), "--split", "dev,test",
                                 "--lat-dir", out, "--words", str(graph_dir / "words.txt"), "--lm-weights", "8,10,12",
                                 "--word-ins-penalties", "0,1"])
    assert r.exit_code == 0, r.output
    best = json.loads((root / "lat_test" / "best.json").read_text())
    dev = json.loads((root / "lat_dev" / "results.json").read_text())["results"]
    assert best["dev"]["wer"] == min(x["wer"] for x in dev.values()) and best["acoustic_scale"] == 1 / best["lm_weight"]
    assert best["test"]["name"].split("-ac")[0] == "test" and best["test"]["rtf"] > 0  # as asrdistill report reads it
    assert (root / "lat_test" / f"errs-{best['test']['name']}.txt").read_text().startswith("%WER")
    ref = _faster(graph, tm, lls, 0.1)
    recogs = (root / "lat_test" / "recogs-test-ac0.1-lmwt10-wip0-lattice.txt").read_text()
    from asrdistill.lang.lang_dir import _symbols

    id_word = {i: w for w, i in _symbols(graph_dir / "words.txt").items()}
    for u, (words, _, _) in ref.items():
        assert f"{u}:\thyp={[id_word[w] for w in words]}" in recogs


def test_lm_paths_are_the_paths_through_arpa2fst_g(system, tri_graph, tmp_path):
    """ArpaLM.options: the cheapest path over its G states for a word sequence costs what the shortest
    path through kaldilm's G (back-off arcs on #0 made epsilons) costs."""
    import kaldifst

    from asrdistill.data.cuts import cut_text
    from asrdistill.decode.fst_arrays import FstArrays
    from asrdistill.decode.graph import arpa_to_fst
    from asrdistill.decode.ngram import WittenBellLM
    from asrdistill.decode.rescore import ArpaLM
    from asrdistill.lang.lang_dir import _symbols
    from asrdistill.utils.readers import read_cuts

    root, _, _ = system
    words_txt = root / "lang" / "words.txt"
    sym = _symbols(words_txt)
    rng = np.random.default_rng(1)
    digits = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
    text = [cut_text(c).split() for c in read_cuts(root / "f" / "fsdd_cuts_train.jsonl.gz")]
    text += [list(rng.choice(digits[:5], size=rng.integers(1, 5))) for _ in range(200)]
    WittenBellLM(text, 3).write_arpa(tmp_path / "G3.arpa")
    for arpa in (root / "G.arpa", tmp_path / "G3.arpa"):
        lm = ArpaLM(arpa)
        g = FstArrays.from_fst(arpa_to_fst(arpa, words_txt))
        ilabel = np.where(g.ilabel == sym["#0"], 0, g.ilabel)
        G = FstArrays(g.start, g.final, g.src, ilabel, ilabel, g.weight, g.dst).to_fst()
        kaldifst.arcsort(G, sort_type="ilabel")
        for _ in range(30):
            ws = list(rng.choice(digits, size=rng.integers(1, 6)))
            A = kaldifst.compile("".join(f"{i} {i + 1} {sym[w]} {sym[w]}\n" for i, w in enumerate(ws)) + f"{len(ws)}\n")
            best = kaldifst.shortest_path(kaldifst.compose(A, G))
            ref = sum(a.weight.value for s in range(best.num_states)
                      for a in kaldifst.ArcIterator(best, s)) + sum(
                best.final(s).value for s in range(best.num_states) if np.isfinite(best.final(s).value))
            states = {lm.start(): 0.0}
            for v in ws:
                nxt = {}
                for st, c in states.items():
                    for ns, oc in lm.options(st, v):
                        nxt[ns] = min(nxt.get(ns, np.inf), c + oc)
                states = nxt
            ours = min(c + lm.best(st, "</s>")[1] for st, c in states.items())
            assert ours == pytest.approx(ref, abs=1e-3), (arpa.name, ws)
