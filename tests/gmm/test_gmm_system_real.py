"""A small GMM-HMM system trained, aligned and decoded on real FSDD recordings (fixtures: tests/real_system.py)."""

import numpy as np
import pytest
import torch
from asrdistill.utils.readers import read_cuts

pytest.importorskip("kaldi_hmm_gmm")

from asrdistill.gmm.align import SplitAlignment, align_split  # noqa: E402
from asrdistill.gmm.model import GmmModel  # noqa: E402
from asrdistill.gmm.shards import AlignOptions  # noqa: E402
from asrdistill.gmm.trainer import LdaMlltConfig, SatConfig, train_lda_mllt, train_sat  # noqa: E402
from asrdistill.gmm.transitions import TransitionTables  # noqa: E402
from asrdistill.lang.lang_dir import LangDir  # noqa: E402


def test_training_improves_likelihood(system):
    root, mono, tri = system
    lines = (root / "mono" / "log.txt").read_text().splitlines()
    ll = [float(l.split("log-like/frame ")[1].split()[0]) for l in lines if l.startswith("iter") and "log-like/frame -" in l
          and "realigned" not in l]
    assert ll[-1] > ll[0] + 3  # EM with realignment climbs
    assert tri.num_pdfs > mono.num_pdfs and (root / "tri" / "tree").exists()
    # silence and noise are context-independent: at most one leaf per HMM state of the shared SIL/SPN root
    tree_line = next(l for l in (root / "tri" / "log.txt").read_text().splitlines() if l.startswith("tree:"))
    assert "(5 silence," in tree_line, tree_line
    loaded = GmmModel.load(root / "tri")
    assert loaded.num_pdfs == tri.num_pdfs and loaded.ctx.num_pdfs == tri.num_pdfs


def test_alignment_gives_one_target_per_frame_and_sensible_durations(system):
    root, _, tri = system
    report = align_split(root / "tri", root / "f" / "fsdd_cuts_train.jsonl.gz", root / "f" / "fsdd_cmvn_train.json",
                         root / "ali", "fsdd", "train", AlignOptions(), num_jobs=2)
    ali = SplitAlignment.load(root / "ali" / "fsdd_ali_train.npz")
    cuts = read_cuts(root / "ali" / "fsdd_cuts_train.jsonl.gz")
    assert list(cuts.ids) == ali.ids and "failed: 0" in report
    for i, cut in enumerate(cuts):
        assert ali.offsets[i + 1] - ali.offsets[i] == cut.features.num_frames
    lang = LangDir(root / "lang")
    tables = TransitionTables.from_model(tri.tm, lang.topology())
    assert np.array_equal(tables.pdf[ali.tids], ali.pdfs) and ali.pdfs.max() < tri.num_pdfs
    # phone durations: every non-silence phone takes at least its 3 states, and typical phones last 50-250 ms
    from asrdistill.gmm.align import _phone_durations

    durations = _phone_durations(ali.tids, ali.offsets, tables)
    starts = np.nonzero(tables.is_phone_start[ali.tids] | np.isin(np.arange(len(ali.tids)), ali.offsets[:-1]))[0]
    phones = tables.phone[ali.tids[starts]]
    nonsil = ~np.isin(phones, lang.silence_phones)
    assert durations[nonsil].min() >= 3 and 5 <= np.median(durations[nonsil]) <= 25
    # an isolated digit is silence? + its phones + silence?: the word's phones appear in order
    i = ali.ids.index("7_jackson_0")
    seq = [lang.id_phone[p] for p in tables.phone[ali.tids[ali.offsets[i]:ali.offsets[i + 1]]]]
    collapsed = [p for k, p in enumerate(seq) if k == 0 or p != seq[k - 1]]
    assert [p for p in collapsed if p != "SIL"] == ["S_B", "EH_I", "V_I", "AH_I", "N_E"]  # word-position phones
    # scoring only the pdfs of each utterance's graph gives exactly the alignment of scoring all of them
    align_split(root / "tri", root / "f" / "fsdd_cuts_train.jsonl.gz", root / "f" / "fsdd_cmvn_train.json",
                root / "ali_full", "fsdd", "train", AlignOptions(graph_pdfs_only=False), num_jobs=2)
    full = SplitAlignment.load(root / "ali_full" / "fsdd_ali_train.npz")
    assert full.ids == ali.ids and np.array_equal(full.tids, ali.tids)


def test_graph_restricted_likelihoods_equal_the_full_ones(system):
    _, _, tri = system
    feats = torch.randn(50, tri.gmm.dim)
    pdfs = torch.tensor([3, 7, 11, 40])
    full = tri.gmm.log_likelihoods(feats)
    part = tri.gmm.log_likelihoods(feats, pdfs=pdfs)
    torch.testing.assert_close(part[:, pdfs], full[:, pdfs])
    others = torch.ones(tri.num_pdfs, dtype=torch.bool)
    others[pdfs] = False
    assert torch.isinf(part[:, others]).all()


def test_decoding_with_hclg(system, tri_graph):
    from asrdistill.decode.runner import DecodeConfig, decode_split

    root, _, _ = system
    _, stats = tri_graph
    assert stats["HCLG"]["states"] > 0
    import gzip

    from asrdistill.decode.graph import arpa_to_fst_text

    with gzip.open(root / "G.arpa.gz", "wt") as f:  # LibriSpeech's LMs come gzipped
        f.write((root / "G.arpa").read_text())
    words = root / "lang" / "words.txt"
    assert arpa_to_fst_text(root / "G.arpa.gz", words) == arpa_to_fst_text(root / "G.arpa", words)
    spec = {"kind": "gmm", "model_dir": str(root / "tri"), "cmvn": str(root / "f" / "fsdd_cmvn_test.json")}
    (results,) = decode_split(spec, root / "graph", root / "f" / "fsdd_cuts_test.jsonl.gz", root / "decode", "test",
                              DecodeConfig(acoustic_scales=(0.05, 0.1)), num_jobs=2)
    best = min(r["wer"] for r in results.values())
    assert best < 25.0, results  # 3 training speakers, 6 takes per digit: far from chance (~90%)
    assert (root / "decode" / f"errs-{results[0.1]['name']}.txt").read_text().startswith("%WER")
    assert all(0 < r["rtf"] < 1 for r in results.values())

    # the CLI: tune on the first split, decode every other one at the tuned scale in one pool, score each
    import json
    import shutil

    from click.testing import CliRunner

    from asrdistill.cli import cli

    for kind in ("cuts", "cmvn"):  # a second evaluation split: a copy of test under another name
        ext = "jsonl.gz" if kind == "cuts" else "json"
        shutil.copyfile(root / "f" / f"fsdd_{kind}_test.{ext}", root / "f" / f"fsdd_{kind}_test2.{ext}")
    r = CliRunner().invoke(cli, ["decode", "run", "--feature-dir", str(root / "f"), "--split", "dev,test,test2",
                                 "--model-dir", str(root / "tri"), "--graph-dir", str(root / "graph"),
                                 "--out-dir", str(root / "cli_{split}"), "--acoustic-scales", "0.05,0.1", "-j", "2"])
    assert r.exit_code == 0, r.output
    best = [json.loads((root / f"cli_{sp}" / "best.json").read_text()) for sp in ("test", "test2")]
    assert best[0]["acoustic_scale"] == best[1]["acoustic_scale"] and best[0]["test"]["wer"] == best[1]["test"]["wer"]
    assert best[0]["test"]["wer"] == results[best[0]["acoustic_scale"]]["wer"]  # as decoding test alone
    assert list(json.loads((root / "cli_test2" / "results.json").read_text())["results"]) == [str(best[0]["acoustic_scale"])]
    assert "test2-ac" in (root / "cli_dev" / "log.txt").read_text()  # the call's log, in its tuning split's directory


def test_kaldi_and_k2_backends_agree(system, tri_graph):
    """Same graph, same scores, equal beams: the same words everywhere, the same frame paths almost everywhere."""
    import kaldifst

    from asrdistill.decode.acoustic import GmmScorer
    from asrdistill.decode.decoder import DecoderConfig, GraphDecoder

    root, _, tri = system
    graph = kaldifst.StdVectorFst.read(str(root / "graph" / "HCLG.fst"))
    scorer = GmmScorer(root / "tri", root / "f" / "fsdd_cmvn_test.json")
    pdf_of = np.asarray(tri.tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]
    kaldi = GraphDecoder(graph, tri.tm, DecoderConfig(decoder="lattice-faster", beam=13.0))
    faster = GraphDecoder(graph, tri.tm, DecoderConfig(decoder="faster", beam=13.0))
    k2 = GraphDecoder(graph, tri.tm, DecoderConfig(decoder="k2", beam=13.0))
    same_path = n = 0
    for cut in read_cuts(root / "f" / "fsdd_cuts_test.jsonl.gz"):
        scores = (0.08 * scorer(cut)[:, pdf_of]).numpy()
        a, b, c = kaldi.decode(scores, cut.id), k2.decode(scores, cut.id), faster.decode(scores, cut.id)
        assert a.words == b.words == c.words, cut.id
        assert len(b.tids) == scores.shape[0] and b.reached_final
        same_path += a.tids == b.tids
        n += 1
    assert same_path >= 0.9 * n  # ties and near-ties between optional-silence placements may differ



def test_ensemble_and_distillation_pipeline_on_real_alignments(ensemble):
    """Train a tiny ensemble on the tied-state targets, distil it (cached top-k teacher, unlabeled
    transfer set, omitted word) and check that every stage learns and writes its outputs."""
    import json

    from asrdistill.nnet.distillation import DistillConfig, distill, tune_bias
    from asrdistill.nnet.ensemble_training import evaluate_members

    root, ali, dnn, majority = ensemble
    fa = evaluate_members(root / "ens", ali, root / "f", "fsdd")
    # silence is context-independent, so its states are the majority classes (~29% of test frames)
    assert min(fa["test"]["members"]) > majority and fa["test"]["mean_member"] > majority + 0.05 and (root / "ens" / "log_priors.pt").exists()
    common = dict(num_members=1, max_steps=200, eval_every=100, warmup_steps=20, lr=2e-3, batch_size=128, seed=50)
    res = distill(root / "ens", ali, root / "f", "fsdd", root / "stu_top5", dnn,
                  DistillConfig(teacher="cached", top_k=5, temperatures=(2.0,), **common))
    info = json.loads((root / "stu_top5" / "distill_info.json").read_text())
    assert info["cache_bytes_per_frame"] == 4 * 5 + 4 and 0 <= info["dropped_mass"] < 1
    assert res["best_dev_acc"][0] > majority
    unl = distill(root / "ens", ali, root / "f", "fsdd", root / "stu_unlabeled", dnn,
                  DistillConfig(teacher="cached", hard_weight=0.0, transfer_cuts=str(root / "f" / "fsdd_cuts_test.jsonl.gz"),
                                transfer_cmvn=str(root / "f" / "fsdd_cmvn_test.json"), **common))
    test_frames = sum(c.features.num_frames for c in read_cuts(root / "f" / "fsdd_cuts_test.jsonl.gz"))
    assert unl["transfer_frames"] == test_frames and unl["best_dev_acc"][0] > majority
    with pytest.raises(ValueError, match="hard-weight 0"):
        distill(root / "ens", ali, root / "f", "fsdd", root / "bad", dnn,
                DistillConfig(hard_weight=0.5, transfer_cuts=str(root / "f" / "fsdd_cuts_test.jsonl.gz"), **common))
    aug = distill(root / "ens", ali, root / "f", "fsdd", root / "stu_aug", dnn,
                  DistillConfig(teacher="online", augment_warp=0.1, augment_noise=0.1, **common))
    assert aug["best_dev_acc"][0] > majority
    with pytest.raises(ValueError, match="teacher online"):
        distill(root / "ens", ali, root / "f", "fsdd", root / "bad", dnn,
                DistillConfig(teacher="cached", augment_warp=0.1, **common))
    no3 = distill(root / "ens", ali, root / "f", "fsdd", root / "stu_no3", dnn,
                  DistillConfig(teacher="cached", omit_words=("THREE",), **common))
    assert no3["transfer_frames"] < no3["train_frames"]
    bias = tune_bias(root / "stu_no3", ali, root / "f", "fsdd", "THREE")
    assert bias["classes"] and bias["best_delta"] >= 0 and len(bias["test"]) == len(bias["dev"])


def test_cli_training_evaluates_in_the_same_process(ensemble, tmp_path):
    """``--evaluate-splits`` writes the frame accuracies that 'train evaluate' computes separately."""
    import json

    from click.testing import CliRunner

    from asrdistill.cli import cli
    from asrdistill.nnet.ensemble_training import evaluate_members

    root, ali, _, _ = ensemble
    args = ["distill", "student", "--ali-dir", str(ali), "--feature-dir", str(root / "f"), "--prefix", "fsdd",
            "--teacher-dir", str(root / "ens"), "--exp-dir", str(tmp_path / "s"), "--hidden-layers", "2",
            "--hidden-dim", "32", "--left-context", "5", "--right-context", "2", "--num-members", "1",
            "--max-steps", "20", "--warmup-steps", "5", "--evaluate-splits", "dev,test"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    written = json.loads((tmp_path / "s" / "frame_accuracy.json").read_text())
    again = evaluate_members(tmp_path / "s", ali, root / "f", "fsdd", ("dev", "test"))
    for split in ("dev", "test"):
        assert written[split] == again[split] and f"{split}: members" in r.output


def test_specialists_on_real_alignments_and_decoding_with_them(ensemble, tri_graph):
    """Cluster the generalist's confusions, train specialists, evaluate the KL combination and
    decode with it; decode each member of a stacked model as its own system in one call."""
    import json

    from asrdistill.decode.runner import DecodeConfig, best_scale, decode_split, tune_and_score
    from asrdistill.nnet.class_clusters import ClusterConfig
    from asrdistill.nnet.specialists import (SpecialistConfig, cluster_generalist_classes, evaluate_specialists,
                                             train_specialists)

    root, ali, _, _ = ensemble
    clusters = cluster_generalist_classes(root / "ens", 0, ali, root / "f", "fsdd", "dev", root / "spec" / "clusters.json",
                                          ClusterConfig(num_clusters=4, min_size=2, overlap_margin=0.5), root / "tri")
    assert (clusters.coverage() >= 1).sum() > 10 and (root / "spec" / "clusters.txt").read_text().count("subset") >= 1
    cfg = dict(max_steps=60, eval_every=30, warmup_steps=10, batch_size=64)
    k = len(clusters.subsets)
    # two slices, as two processes would train them, into one directory (same settings but the slice)
    train_specialists(root / "ens", root / "spec" / "clusters.json", ali, root / "f", "fsdd", root / "spec",
                      SpecialistConfig(num_members=1, soft_weight=1.0, **cfg))
    train_specialists(root / "ens", root / "spec" / "clusters.json", ali, root / "f", "fsdd", root / "spec",
                      SpecialistConfig(member_offset=1, soft_weight=1.0, **cfg))
    from asrdistill.nnet.ensemble_training import ExperimentMismatch

    with pytest.raises(ExperimentMismatch, match=r"specialists.soft_weight 1.0 -> 0.0"):  # a slice of another run
        train_specialists(root / "ens", root / "spec" / "clusters.json", ali, root / "f", "fsdd", root / "spec",
                          SpecialistConfig(member_offset=1, soft_weight=0.0, **cfg))
    info = json.loads((root / "spec" / "specialists.json").read_text())
    assert sorted(info["specialists"]) == [str(m) for m in range(k)]
    train_pdfs = SplitAlignment.load(ali / "fsdd_ali_train.npz").pdfs
    for m, sp in info["specialists"].items():  # Bayes' log-odds shift from a 50/50 batch to the natural prior
        pi = 1 - np.isin(train_pdfs, clusters.subsets[int(m)]).mean()
        assert sp["classes"] == clusters.subsets[int(m)] and abs(sp["natural_dustbin_fraction"] - pi) < 1e-9
        assert abs(sp["dustbin_correction"] - np.log(pi / (1 - pi))) < 1e-5
    out = evaluate_specialists(root / "spec", ali, root / "f", "fsdd", ("test",))
    t = out["test"]
    assert sum(r["frames"] for r in t["by_coverage"]) == t["frames"]
    assert sum(r["change"] for r in t["by_coverage"]) == round((t["accuracy_combined"] - t["accuracy_generalist"]) * t["frames"])
    # top-1 activation: a frame the generalist gets right on a class no specialist covers has no active specialist
    assert all(r["correct_after"] >= r["correct_before"] for r in t["by_coverage"] if r["covering"] == 0)
    cfg = DecodeConfig(decoder="faster", beam=8.0, acoustic_scales=(0.05, 0.1))
    base = {"tree_dir": str(root / "tri"), "cmvn": str(root / "f" / "fsdd_cmvn_test.json")}
    cuts = root / "f" / "fsdd_cuts_test.jsonl.gz"
    (spec_res,) = decode_split({"kind": "specialists", "model_dir": str(root / "spec"), **base}, root / "graph", cuts,
                               root / "dec_spec", "test", cfg, num_jobs=1)
    assert min(r["wer"] for r in spec_res.values()) < 40
    each = decode_split({"kind": "nnet", "model_dir": str(root / "ens"), "members": [0, 1], "each_member": True, **base},
                        root / "graph", cuts, root / "dec_m{member}", "test", cfg, num_jobs=2)
    (one,) = decode_split({"kind": "nnet", "model_dir": str(root / "ens"), "members": [1], **base}, root / "graph", cuts,
                          root / "dec_one", "test", cfg, num_jobs=1)
    assert [r["wer"] for r in each[1].values()] == [r["wer"] for r in one.values()]  # same as decoding member 1 alone
    # one pool with the CMVN statistics of dev and test (as 'decode run --split dev,test') decodes test alike
    from asrdistill.decode.runner import DecodingPool

    two = {**base, "cmvn": [str(root / "f" / "fsdd_cmvn_dev.json"), base["cmvn"]], "kind": "nnet",
           "model_dir": str(root / "ens"), "members": [1]}
    with DecodingPool(two, root / "graph" / "HCLG.fst", cfg, 2) as pool:
        (pooled,) = decode_split(two, root / "graph", cuts, root / "dec_pool", "test", cfg, pool=pool)
    assert [r["wer"] for r in pooled.values()] == [r["wer"] for r in one.values()]
    # each member at the scale that is best in its own earlier decoding directory
    tuned = decode_split({"kind": "nnet", "model_dir": str(root / "ens"), "members": [0, 1], "each_member": True, **base},
                         root / "graph", cuts, root / "dec_t{member}", "test", cfg, 1, root / "dec_m{member}")
    for m in (0, 1):
        assert list(tuned[m]) == [float(best_scale(root / f"dec_m{m}"))]
        assert tune_and_score(root / f"dec_m{m}", root / f"dec_t{m}")["test"]["wer"] == tuned[m][list(tuned[m])[0]]["wer"]


@pytest.fixture(scope="module")
def adapted(system):
    """LDA+MLLT on the triphone's alignments, then SAT on the LDA+MLLT system (Kaldi's tri2b -> tri3b)."""
    root, _, _ = system
    train = root / "f" / "fsdd_cuts_train.jsonl.gz"
    cmvn = root / "f" / "fsdd_cmvn_train.json"
    small = dict(num_leaves=120, min_leaf_count=30, total_gauss=400, num_iters=8, max_iter_inc=5, realign_iters=(4,))
    lda = train_lda_mllt(train, cmvn, root / "lang", root / "tri", root / "lda", LdaMlltConfig(mllt_iters=(1, 3), **small),
                         num_jobs=2)
    sat = train_sat(train, cmvn, root / "lang", root / "lda", root / "sat",
                    SatConfig(fmllr_iters=(1, 3), fmllr_min_count=100.0, **small), num_jobs=2)
    return root, lda, sat


def test_lda_mllt_and_sat_training(adapted):
    from asrdistill.gmm.fmllr import SpeakerTransforms

    root, lda, sat = adapted
    assert lda.transform.shape == (40, 13 * 9 + 1) and lda.feature_config.splice_context == 4
    assert GmmModel.load(root / "lda").transform.shape == (40, 118) and (root / "lda" / "final.mat").exists()
    log = (root / "lda" / "log.txt").read_text()
    assert log.count("MLLT, objective +") == 2 and "LDA: 117 -> 40 dims" in log
    gains = [float(l.split("objective +")[1].split()[0]) for l in log.splitlines() if "MLLT, objective +" in l]
    assert all(g > 0 for g in gains)  # each MLLT update raises its auxiliary function
    # SAT: transforms for the 3 training speakers, none the identity, and a speaker-independent alignment model
    trans = SpeakerTransforms.load(root / "sat" / "trans_train.npz")
    assert sorted(trans.speakers()) == ["george", "jackson", "yweweler"]
    eye = torch.cat([torch.eye(40), torch.zeros(40, 1)], 1).double()
    assert all(float((w - eye).abs().max()) > 1e-3 for _, w in trans.items())
    loaded = GmmModel.load(root / "sat")
    assert loaded.is_sat and loaded.ali_gmm.num_pdfs == loaded.num_pdfs
    # the adapted model fits the adapted training data better than the speaker-independent model fits its own
    sat_log = (root / "sat" / "log.txt").read_text()
    assert sat_log.count("fMLLR re-estimated for 3 speakers") == 2
    assert loaded.fmllr_opts.min_count == 100.0  # alignment and decoding estimate fMLLR as training did
    # a SAT system from a SAT system (Kaldi's tri4b from tri3b): the source aligns in two passes
    train, cmvn = root / "f" / "fsdd_cuts_train.jsonl.gz", root / "f" / "fsdd_cmvn_train.json"
    sat2 = train_sat(train, cmvn, root / "lang", root / "sat", root / "sat2",
                     SatConfig(num_leaves=120, min_leaf_count=30, total_gauss=300, num_iters=3, max_iter_inc=2,
                               realign_iters=(), fmllr_iters=(1,), fmllr_min_count=100.0), num_jobs=2)
    assert sat2.is_sat and "is a SAT system: speaker-independent alignment, fMLLR for 3 speakers" in (
        root / "sat2" / "log.txt").read_text()
    with pytest.raises(ValueError, match="is a SAT system"):  # LDA+MLLT needs a speaker-independent source
        train_lda_mllt(train, cmvn, root / "lang", root / "sat", root / "bad", LdaMlltConfig(num_iters=1))


def test_sat_two_pass_alignment_and_decoding(adapted, tri_graph):
    import json

    from click.testing import CliRunner

    from asrdistill.cli import cli
    from asrdistill.decode.graph import make_graph
    from asrdistill.gmm.fmllr import SpeakerTransforms

    root, lda, sat = adapted
    report = align_split(root / "sat", root / "f" / "fsdd_cuts_test.jsonl.gz", root / "f" / "fsdd_cmvn_test.json",
                         root / "sat_ali", "fsdd", "test", AlignOptions(), num_jobs=2)
    assert "fMLLR (two-pass): 1 speakers" in report and "failed: 0" in report
    assert SpeakerTransforms.load(root / "sat_ali" / "trans_test.npz").speakers() == ["theo"]
    # G.arpa: the bigram of the tri_graph fixture
    wers = {}
    for name in ("lda", "sat"):
        make_graph(root / "lang", root / name, root / "G.arpa", root / f"graph_{name}")
        r = CliRunner().invoke(cli, ["decode", "run", "--feature-dir", str(root / "f"), "--split", "dev,test",
                                     "--model-dir", str(root / name), "--graph-dir", str(root / f"graph_{name}"),
                                     "--out-dir", str(root / f"dec_{name}_{{split}}"), "--acoustic-scales", "0.05,0.1",
                                     "-j", "2"])
        assert r.exit_code == 0, r.output
        wers[name] = json.loads((root / f"dec_{name}_test" / "best.json").read_text())
    # the SAT system decodes in two passes: a speaker-independent pass and the adapted one, each tuned on dev
    si = json.loads((root / "dec_sat_test.si" / "best.json").read_text())
    assert (root / "dec_sat_test" / "trans.npz").exists() and (root / "dec_sat_dev" / "trans.npz").exists()
    assert wers["sat"]["test"]["wer"] < 40.0 and wers["lda"]["test"]["wer"] < 40.0, (wers, si)
    # lattices of the adapted pass with decode run's transforms (--transform-dir): at LM weight 1/scale their
    # best paths are decode run's adapted recognitions at that scale
    lat = str(root / "lat_sat_{split}")
    args = ["decode", "lattices", "--feature-dir", str(root / "f"), "--split", "dev", "--model-dir", str(root / "sat"),
            "--graph-dir", str(root / "graph_sat"), "--out-dir", lat, "--acoustic-scale", "0.1", "-j", "2"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code != 0 and "--transform-dir" in r.output  # never unadapted by mistake
    r = CliRunner().invoke(cli, args + ["--transform-dir", str(root / "dec_sat_{split}")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["decode", "score-lattices", "--feature-dir", str(root / "f"), "--split", "dev",
                                 "--lat-dir", lat, "--words", str(root / "graph_sat" / "words.txt"), "--lm-weights", "10",
                                 "--word-ins-penalties", "0"])
    assert r.exit_code == 0, r.output
    hyps = [ln for ln in (root / "lat_sat_dev" / "recogs-dev-ac0.1-lmwt10-wip0-lattice.txt").read_text().splitlines()
            if "\thyp=" in ln]
    (ref,) = (root / "dec_sat_dev").glob("recogs-dev-ac0.1-*.txt")
    assert len(hyps) > 50 and hyps == [ln for ln in ref.read_text().splitlines() if "\thyp=" in ln]

    # a SAT system is never scored on unadapted features by mistake
    from asrdistill.decode.acoustic import GmmScorer

    with pytest.raises(ValueError, match="two passes"):
        GmmScorer(root / "sat", root / "f" / "fsdd_cmvn_test.json")


def test_paper_preset_learns_real_tied_state_targets(ensemble):
    """The 8 x 2560 paper network, He-initialized, lowers its loss on real FSDD frames and their aligned tied states."""
    from asrdistill.features.context_window import gather_context_windows
    from asrdistill.nnet.dnn import FrameDnn, preset
    from asrdistill.nnet.ensemble_training import load_split

    root, ali, _, _ = ensemble
    train = load_split(ali, root / "f", "fsdd", "train")
    cfg = preset("paper", num_outputs=train.num_classes)
    assert (cfg.hidden_layers, cfg.hidden_dim, cfg.init) == (8, 2560, "kaiming")
    torch.manual_seed(0)
    net = FrameDnn(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    fixed = torch.randperm(train.num_frames)[:256]
    x_fixed = gather_context_windows(train.feats, fixed, train.offsets, cfg.left_context, cfg.right_context)

    def loss_on_fixed() -> float:
        net.eval()
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(net(x_fixed), train.targets[fixed]))

    before = loss_on_fixed()
    net.train()
    for step in range(15):
        idx = fixed[torch.randint(0, len(fixed), (64,))]
        x = gather_context_windows(train.feats, idx, train.offsets, cfg.left_context, cfg.right_context)
        loss = torch.nn.functional.cross_entropy(net(x), train.targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_on_fixed()
    assert after < before - 0.5, (before, after)
