"""Network scoring in the main process, batched over utterances (``score_device``), against the workers' own
per-utterance scoring on real FSDD utterances (fixtures: tests/real_system.py)."""

import numpy as np
import pytest

pytest.importorskip("kaldi_hmm_gmm")


def _spec(root, split="test", **extra):
    return {"kind": "nnet", "model_dir": str(root / "ens"), "tree_dir": str(root / "tri"),
            "cmvn": str(root / "f" / f"fsdd_cmvn_{split}.json"), **extra}


def test_batched_scores_equal_per_utterance_scores(ensemble):
    """Windows of several cuts in forward passes that cut across utterances: each cut's scores as its own pass."""
    import torch

    from asrdistill.decode.acoustic import NnetScorer
    from asrdistill.utils.readers import read_cuts

    root, _, _, _ = ensemble
    cuts = list(read_cuts(root / "f" / "fsdd_cuts_test.jsonl.gz"))[:7]
    for each_member in (False, True):
        scorer = NnetScorer(root / "ens", root / "tri", root / "f" / "fsdd_cmvn_test.json", each_member=each_member)
        batched = scorer.score_batch(cuts, max_frames=37)  # a prime: passes end inside utterances
        assert len(batched) == len(cuts)
        for cut, b in zip(cuts, batched):
            ref = scorer(cut)
            assert b.shape == ref.shape
            torch.testing.assert_close(b, ref, atol=1e-5, rtol=1e-5)


def test_frame_bounded_tasks_keep_every_cut_once_in_order():
    from asrdistill.decode.batch_scoring import frame_bounded_tasks

    rng = np.random.default_rng(0)
    dicts = [{"id": str(i), "duration": float(d)} for i, d in enumerate(rng.uniform(0.1, 3.0, 50))]
    tasks = frame_bounded_tasks(dicts, max_frames=400)
    assert [d["id"] for t in tasks for d in t] == [d["id"] for d in dicts]
    for t in tasks:
        frames = sum(round(d["duration"] / 0.01) for d in t)
        assert frames <= 400 or len(t) == 1
    assert frame_bounded_tasks(dicts, max_frames=1) == [[d] for d in dicts]  # a cut longer than the bound: alone


def test_score_device_names():
    import torch

    from asrdistill.decode.batch_scoring import resolve_score_device

    assert resolve_score_device("") is None
    assert resolve_score_device("cpu") == torch.device("cpu")
    assert resolve_score_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises((ValueError, RuntimeError)):
        resolve_score_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_score_device("cuda")


def test_workers_are_spawned_when_the_main_process_scores_on_a_gpu():
    import torch

    from asrdistill.decode.batch_scoring import worker_context
    from asrdistill.utils.processes import start_method

    assert worker_context(torch.device("cuda")).get_start_method() == "spawn"  # a CUDA context is never forked
    assert worker_context(torch.device("cpu")).get_start_method() == start_method()
    assert worker_context(None).get_start_method() == start_method()


def test_decoding_scored_in_the_main_process_equals_scoring_in_the_workers(ensemble, tri_graph, tmp_path):
    """decode_split (each member a system) and decode_lattices: the same words, WERs and lattices."""
    from asrdistill.decode.lattice import Lattices
    from asrdistill.decode.lattice_decoder import LatticeDecodeConfig, decode_lattices
    from asrdistill.decode.runner import DecodeConfig, decode_split

    root, _, _, _ = ensemble
    graph_dir, _ = tri_graph
    cuts = root / "f" / "fsdd_cuts_test.jsonl.gz"
    spec = _spec(root, members=[0, 1], each_member=True)
    results = {}
    for device, jobs in (("", 2), ("cpu", 2), ("cpu", 1)):
        out = tmp_path / f"dec_{device or 'workers'}_{jobs}" / "m{member}"
        results[device, jobs] = decode_split(spec, graph_dir, cuts, out, "test",
                                             DecodeConfig(acoustic_scales=(0.1,), score_device=device), num_jobs=jobs)
        for m in (0, 1):
            name = results[device, jobs][m][0.1]["name"]
            results[device, jobs, m] = (out.parent / f"m{m}" / f"recogs-{name}.txt").read_text()
    for key in (("cpu", 2), ("cpu", 1)):
        for m in (0, 1):
            assert results[key][m][0.1]["wer"] == results["", 2][m][0.1]["wer"]
            assert results[key + (m,)] == results["", 2, m]  # every hypothesis
    lats = {}
    for device in ("", "cpu"):
        out = tmp_path / f"lat_{device or 'workers'}"
        decode_lattices(_spec(root), graph_dir, cuts, out, LatticeDecodeConfig(beam=10, score_device=device), num_jobs=2)
        lats[device] = Lattices.load(out / "lat.npz")
    a, b = lats[""], lats["cpu"]
    assert a.ids == b.ids and a.num_arcs == b.num_arcs
    for f in ("src", "dst", "tid", "word"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    np.testing.assert_allclose(a.acoustic, b.acoustic, atol=1e-3)
