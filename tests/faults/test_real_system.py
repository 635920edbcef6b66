"""Faults on a real trained system: missing CMVN (case 1), corrupt files (case 4), experiment folders
as records (case 5), bad member indices (case 7), a moved or copied data directory (case 6).

Each test breaks a copy of the session's small real FSDD system (``tests/real_system.py``).
"""

import pytest

pytest.importorskip("kaldi_hmm_gmm")

from asrdistill.gmm.align import SplitAlignment  # noqa: E402


def test_missing_cmvn_is_an_error_unless_asked_for(ensemble, tri_graph, tmp_path):
    """Issue 18, case 1: a missing CMVN file used to be skipped silently (a student decoded new recordings at
    83% WER instead of 0%; 'train evaluate' gave 3.8% frame accuracy instead of 31.7%). Now every reader of
    features requires its split's statistics unless told --no-cmvn, and a model is used with the
    normalization it was trained with."""
    import shutil

    from click.testing import CliRunner

    from asrdistill.cli import cli

    root, ali, _, _ = ensemble
    feats = tmp_path / "f"
    shutil.copytree(root / "f", feats, symlinks=True)
    (feats / "fsdd_cmvn_test.json").unlink()
    run = CliRunner().invoke
    r = run(cli, ["train", "evaluate", "--exp-dir", str(root / "ens"), "--ali-dir", str(ali), "--feature-dir", str(feats),
                  "--prefix", "fsdd", "--splits", "test"])
    assert r.exit_code != 0 and "fsdd_cmvn_test.json does not exist" in r.output and "--no-cmvn" in r.output, r.output
    # every evaluation of a trained model (bias tuning, specialists, clustering) loads features as it was trained
    from asrdistill.nnet.ensemble_training import load_split_for

    for trained_with_cmvn in (True, False):
        d = tmp_path / f"trained_{trained_with_cmvn}"
        d.mkdir()
        (d / "config.yaml").write_text(f"distill:\n  cmvn: {str(trained_with_cmvn).lower()}\n")
        if trained_with_cmvn:
            with pytest.raises(FileNotFoundError, match="fsdd_cmvn_test.json does not exist"):
                load_split_for(d, ali, feats, "fsdd", "test")
        else:
            assert load_split_for(d, ali, feats, "fsdd", "test").num_frames > 0
    graph, _ = tri_graph
    decode = ["decode", "run", "--feature-dir", str(feats), "--split", "test", "--model-dir", str(root / "ens"),
              "--model-kind", "nnet", "--tree-dir", str(root / "tri"), "--graph-dir", str(graph), "--out-dir",
              str(tmp_path / "dec"), "--acoustic-scales", "0.1", "-j", "1"]
    r = run(cli, decode)
    assert r.exit_code != 0 and "fsdd_cmvn_test.json does not exist" in r.output, r.output
    r = run(cli, decode + ["--no-cmvn"])  # a model trained with CMVN is not scored without it
    assert r.exit_code != 0 and "trained on CMVN-normalized features" in r.output, r.output
    r = run(cli, ["gmm", "align", "--feature-dir", str(feats), "--splits", "test", "--model-dir", str(root / "tri"),
                  "--out-dir", str(tmp_path / "ali")])
    assert r.exit_code != 0 and "fsdd_cmvn_test.json does not exist" in r.output, r.output
    r = run(cli, ["gmm", "align", "--feature-dir", str(feats), "--splits", "test", "--model-dir", str(root / "tri"),
                  "--out-dir", str(tmp_path / "ali"), "--no-cmvn", "-j", "1"])
    assert r.exit_code != 0 and "trained on CMVN-normalized features" in r.output, r.output
    # asked for from the start, it runs and is recorded: a monophone system without CMVN
    r = run(cli, ["gmm", "mono", "--feature-dir", str(feats), "--lang-dir", str(root / "lang"), "--exp-dir",
                  str(tmp_path / "mono"), "--no-cmvn", "--num-iters", "2", "--realign-iters", "1", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "cmvn: false" in (tmp_path / "mono" / "config.yaml").read_text()


def test_corrupt_files_name_themselves(ensemble, tmp_path):
    """Issue 18, case 4: a truncated manifest printed only 'Aborted!', a truncated .lca 'decompress_float
    returned 6', a truncated alignment a raw BadZipFile traceback. Each now gives one line naming the file."""
    import gzip
    import shutil

    from click.testing import CliRunner

    from asrdistill.cli import cli
    from asrdistill.features.loading import load_features
    from asrdistill.utils.readers import CorruptFileError, read_cuts

    root, ali, _, _ = ensemble
    feats = tmp_path / "f"
    shutil.copytree(root / "f", feats)
    manifest = feats / "fsdd_cuts_test.jsonl.gz"
    data = manifest.read_bytes()
    manifest.write_bytes(data[: len(data) // 2])  # truncated mid-stream
    for args in (["summary", str(feats)], ["features", "cmvn", "--feature-dir", str(feats),
                                                                   "--splits", "test"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code != 0 and f"{manifest}: cannot read this manifest" in r.output, (args, r.output)
        assert "Traceback" not in r.output and "Aborted!" not in r.output
    # a truncated feature archive: the file and the cut
    cut = next(iter(read_cuts(root / "f" / "fsdd_cuts_dev.jsonl.gz")))
    archive = tmp_path / "feats.lca"
    original = open(cut.features.storage_path, "rb").read()
    archive.write_bytes(original[: len(original) // 3])  # the cut's chunks cut short
    from dataclasses import replace

    keys = [int(k) for k in cut.features.storage_key.split(",")]  # offset, chunk sizes
    key = ",".join(str(k) for k in [len(original) // 3 - 8] + keys[1:])  # the chunks run past the end
    broken = replace(cut, features=replace(cut.features, storage_path=str(archive), storage_key=key))
    with pytest.raises(CorruptFileError, match=rf"feats.lca: cannot read this feature archive \(cut {cut.id}"):
        load_features(broken)
    # a truncated alignment
    npz = tmp_path / "fsdd_ali_dev.npz"
    npz.write_bytes((ali / "fsdd_ali_dev.npz").read_bytes()[:100])
    with pytest.raises(CorruptFileError, match="fsdd_ali_dev.npz: cannot read this alignment"):
        SplitAlignment.load(npz)
    assert gzip  # the manifest format is gzip: its truncation is an EOFError inside lhotse


def test_experiment_folders_are_records(ensemble, tmp_path):
    """Issue 18, case 5: a rerun with other settings into a finished folder resumed into it (and rewrote its
    config), and evaluating another split replaced frame_accuracy.json. Now: refused unless --overwrite;
    evaluating adds to the record."""
    import json

    from click.testing import CliRunner

    from asrdistill.cli import cli

    root, ali, _, _ = ensemble
    exp = tmp_path / "ens"
    base = ["train", "ensemble", "--ali-dir", str(ali), "--feature-dir", str(root / "f"), "--prefix", "fsdd",
            "--exp-dir", str(exp), "--hidden-layers", "1", "--hidden-dim", "16", "--left-context", "2",
            "--right-context", "1", "--num-members", "1", "--max-steps", "10", "--warmup-steps", "2",
            "--evaluate-splits", "dev,test"]
    run = CliRunner().invoke
    assert run(cli, base).exit_code == 0
    config = (exp / "config.yaml").read_text()
    r = run(cli, base + ["--lr", "0.01"])
    assert r.exit_code != 0 and "holds a run with other settings (train.lr 0.001 -> 0.01)" in r.output, r.output
    r = run(cli, base + ["--hidden-dim", "8"])
    assert r.exit_code != 0 and "dnn.hidden_dim 16 -> 8" in r.output, r.output
    assert (exp / "config.yaml").read_text() == config  # nothing rewritten
    assert run(cli, base).exit_code == 0  # the same settings: resumed (already finished)
    r = run(cli, base + ["--lr", "0.01", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "lr: 0.01" in (exp / "config.yaml").read_text()
    # evaluating another split adds to frame_accuracy.json
    r = run(cli, ["train", "evaluate", "--exp-dir", str(exp), "--ali-dir", str(ali), "--feature-dir", str(root / "f"),
                  "--prefix", "fsdd", "--splits", "test"])
    assert r.exit_code == 0, r.output
    record = json.loads((exp / "frame_accuracy.json").read_text())
    assert {"dev", "test"} <= set(record) and set(record["commands"]) == {"dev", "test"}
    assert "ensemble of 1" in (exp / "log.txt").read_text()  # the folder has its log (Issue 18, case 6)


def test_bad_member_index_is_one_line(ensemble, tmp_path):
    """Issue 18, case 7: --members 7 of a 2-member ensemble was an IndexError in a worker."""
    from click.testing import CliRunner

    from asrdistill.cli import cli

    root, ali, _, _ = ensemble
    r = CliRunner().invoke(cli, ["decode", "run", "--feature-dir", str(root / "f"), "--split", "test", "--model-dir",
                                 str(root / "ens"), "--model-kind", "nnet", "--tree-dir", str(root / "tri"), "--members",
                                 "7", "--out-dir", str(tmp_path / "d")])
    assert r.exit_code == 2 and "[7] out of range" in r.output and "has 2 member(s)" in r.output, r.output


def test_a_moved_or_copied_data_directory_reads_its_own_features(ensemble, tmp_path):
    """Issue 18, case 6: feature manifests held absolute archive paths, so a copied data/fbank silently read
    the original's archives and a moved one failed. Manifests now name archives relative to themselves."""
    import gzip
    import shutil

    import numpy as np
    from click.testing import CliRunner

    from asrdistill.cli import cli
    from asrdistill.features.loading import load_features
    from asrdistill.utils.readers import read_cuts

    root, ali, _, _ = ensemble
    for name in ("f", "ali_all"):  # features and the alignment directory's manifest copies, together
        shutil.copytree(root / name, tmp_path / "copy" / name)
    text = gzip.open(tmp_path / "copy" / "f" / "fsdd_cuts_test.jsonl.gz", "rt").read()
    assert str(root) not in text and '"storage_path": "fsdd_feats_test.0.lca"' in text
    original = {c.id: c for c in read_cuts(root / "f" / "fsdd_cuts_test.jsonl.gz")}
    for manifest in (tmp_path / "copy" / "f" / "fsdd_cuts_test.jsonl.gz", tmp_path / "copy" / "ali_all" / "fsdd_cuts_test.jsonl.gz"):
        cuts = read_cuts(manifest)
        assert len(cuts) == len(original)
        for cut in cuts:  # the copy's own archives, and the same features
            assert cut.features.storage_path.startswith(str(tmp_path / "copy" / "f"))
            np.testing.assert_array_equal(load_features(cut), load_features(original[cut.id]))
    # moved: the original place is gone, the commands read the new one
    shutil.move(str(tmp_path / "copy"), str(tmp_path / "moved"))
    r = CliRunner().invoke(cli, ["features", "cmvn", "--feature-dir", str(tmp_path / "moved" / "f"), "--splits", "test"])
    assert r.exit_code == 0, r.output
    assert next(iter(read_cuts(tmp_path / "moved" / "ali_all" / "fsdd_cuts_test.jsonl.gz"))).features.storage_path.startswith(
        str(tmp_path / "moved" / "f"))
