"""Issue 18 ("never silently wrong"): faults in preparation and feature extraction, on real FSDD takes.

Each test reproduces a measured failure: a resumed extraction with another shard layout or
input merged into a manifest with duplicated and missing cuts; a bad take in a worker process
ended in ``BrokenProcessPool`` (the unpicklable ``AudioError`` lost the message) and left a
``.tmp`` file behind; ``prepare`` stopped at the first of several bad files; and skip summaries
counted mangled or lumped categories.
"""

import logging
import pickle
import re

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from lhotse import CutSet

from asrdistill.utils.readers import read_cuts, write_cuts
from asrdistill.cli import cli
from asrdistill.data.audio_check import AudioError, BadInputsError
from asrdistill.data.fsdd import FsddConfig, prepare_fsdd
from asrdistill.features.extract import compute_features
from asrdistill.features.fbank import FbankConfig
from asrdistill.features.loading import load_features
from asrdistill.utils.processes import start_method

from ..conftest import copy_takes

GOOD = [f"{d}_{s}_{t}.wav" for d in range(10) for s in ("george", "jackson", "nicolas", "theo", "yweweler") for t in (0, 1)]
CFG = FsddConfig(utterances_per_speaker=2)


def _prepared(fsdd_dir, tmp_path, damage=None, before=None):
    """Test-split cuts of a small real corpus copy (``before``/``damage(recordings_dir)`` applied before/after prepare)."""
    corpus = copy_takes(fsdd_dir, tmp_path / "corpus", GOOD)
    if before is not None:
        before(corpus / "recordings")
    cuts = prepare_fsdd(corpus, tmp_path / "m", CFG)["test"]
    if damage is not None:
        damage(corpus / "recordings")
    return cuts


def _shorten(path, num_samples=100):
    x, sr = sf.read(path, dtype="int16")
    sf.write(path, x[:num_samples], sr, subtype="PCM_16")


def _uses(cut, take):
    return cut.id == take or any(getattr(t.cut, "id", None) == take for t in getattr(cut, "tracks", []))


def _simulate_kill_after_shard0(out_dir, prefix="fsdd", split="test"):
    """What ``kill -9`` after shard 0 of a 2-job run leaves: shard 0 complete, shard 1 and the final manifest gone."""
    final = out_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    shard0 = out_dir / f"{prefix}_feats_{split}.0.lca"
    write_cuts((c for c in read_cuts(final) if c.features.storage_path == str(shard0.resolve())),
        out_dir / f"{prefix}_feats_{split}.0.jsonl.gz")
    final.unlink()
    (out_dir / f"{prefix}_feats_{split}.1.lca").unlink()


def _tmp_files(d):
    return sorted(p.name for p in d.iterdir() if ".tmp" in p.name)


# --- 1. resumed jobs that differ from the one that started ---------------------------------------


def test_resume_with_other_num_jobs_restarts_cleanly(fsdd_dir, tmp_path, caplog):
    cuts = _prepared(fsdd_dir, tmp_path)
    out_dir = tmp_path / "f"
    compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    _simulate_kill_after_shard0(out_dir)
    with caplog.at_level(logging.WARNING):
        out = compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=3, progress=False)
    ids = list(read_cuts(out_dir / "fsdd_cuts_test.jsonl.gz").ids)
    assert sorted(ids) == sorted(cuts.ids) == sorted(out.ids)  # every cut exactly once
    assert "num_jobs 2 -> 3" in caplog.text
    assert all(np.isfinite(load_features(c)).all() for c in out)
    assert not list(out_dir.glob("fsdd_feats_test.*.jsonl.gz"))


def test_resume_with_changed_input_restarts_cleanly(fsdd_dir, tmp_path, caplog):
    cuts = _prepared(fsdd_dir, tmp_path)
    out_dir = tmp_path / "f"
    compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    _simulate_kill_after_shard0(out_dir)
    fewer = CutSet.from_cuts(list(cuts)[2:])  # e.g. prepare rerun with other options
    with caplog.at_level(logging.WARNING):
        out = compute_features(fewer, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    assert sorted(out.ids) == sorted(fewer.ids)
    assert "input cuts" in caplog.text
    # a finished split computed from other cuts is not returned either
    with caplog.at_level(logging.WARNING):
        again = compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    assert sorted(again.ids) == sorted(cuts.ids)


def test_final_manifest_holds_every_input_cut_once(fsdd_dir, tmp_path):
    cuts = _prepared(fsdd_dir, tmp_path)
    out_dir = tmp_path / "f"
    compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    _simulate_kill_after_shard0(out_dir)
    # a shard manifest that holds shard 0's cuts again (as a mixed-up resume would)
    shard0 = read_cuts(out_dir / "fsdd_feats_test.0.jsonl.gz")
    shard0.to_file(out_dir / "fsdd_feats_test.1.jsonl.gz")
    (out_dir / "fsdd_feats_test.1.lca").write_bytes(b"")
    with pytest.raises(ValueError, match=r"duplicated.*missing") as err:
        compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    assert list(shard0.ids)[0] in str(err.value)
    assert not (out_dir / "fsdd_cuts_test.jsonl.gz").exists()


def test_cmvn_refuses_duplicate_cut_ids(fsdd_dir, tmp_path):
    cuts = _prepared(fsdd_dir, tmp_path)
    out_dir = tmp_path / "f"
    out = compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=1, progress=False)
    dup = list(out)[3]
    CutSet.from_cuts(list(out) + [dup]).to_file(out_dir / "fsdd_cuts_test.jsonl.gz")
    r = CliRunner().invoke(cli, ["features", "cmvn", "--feature-dir", str(out_dir), "--splits", "test"])
    assert r.exit_code != 0
    assert "duplicate" in r.output and dup.id in r.output
    assert not (out_dir / "fsdd_cmvn_test.json").exists()


# --- 2. errors in worker processes; nothing half-written ----------------------------------------


def test_audio_error_survives_pickling():
    e = pickle.loads(pickle.dumps(AudioError("/x/3_theo_0.wav", "cut 3_theo_0: too short")))
    assert str(e) == "/x/3_theo_0.wav: cut 3_theo_0: too short"
    e = pickle.loads(pickle.dumps(AudioError("/x/3_theo_0.wav", "cut 3_theo_0: too short", reason="too_short")))
    assert e.reason == "too_short" and e.problem == "cut 3_theo_0: too short"
    many = BadInputsError([e, AudioError("/x/mystery.wav", "no label", "no_label")], "audio file")
    assert str(pickle.loads(pickle.dumps(many))) == str(many) and "/x/mystery.wav: no label" in str(many)


def test_too_short_take_in_worker_names_cut_and_file(fsdd_dir, tmp_path):
    cuts = _prepared(fsdd_dir, tmp_path, before=lambda rec: _shorten(rec / "3_theo_0.wav"))
    out_dir = tmp_path / "f"
    with pytest.raises(AudioError, match=re.escape("3_theo_0.wav: cut 3_theo_0: 100 samples is shorter than one analysis window")):
        compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    assert not (out_dir / "fsdd_cuts_test.jsonl.gz").exists()
    assert _tmp_files(out_dir) == []


def test_deleted_take_in_worker_names_cut_and_leaves_no_tmp(fsdd_dir, tmp_path):
    cuts = _prepared(fsdd_dir, tmp_path, lambda rec: (rec / "2_theo_0.wav").unlink())
    out_dir = tmp_path / "f"
    with pytest.raises(AudioError, match=r"2_theo_0\.wav: cut 2_theo_0: audio file does not exist"):
        compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    assert _tmp_files(out_dir) == []
    assert not (out_dir / "fsdd_cuts_test.jsonl.gz").exists()
    # the command says the same in one line per bad cut, not "BrokenProcessPool"
    r = CliRunner().invoke(cli, ["features", "compute", "--manifest-dir", str(tmp_path / "m"), "--output-dir", str(out_dir),
                                 "--splits", "test", "-j", "2"])
    assert r.exit_code == 1 and "cut 2_theo_0: audio file does not exist" in r.output, r.output
    assert "BrokenProcessPool" not in r.output and "Traceback" not in r.output


def test_take_changed_after_prepare_is_an_error(fsdd_dir, tmp_path):
    # lhotse pads (reflects) audio up to 0.5 s shorter than its manifest declares: a take cut
    # to 100 samples after prepare gave features of 0.24 s of made-up audio
    cuts = _prepared(fsdd_dir, tmp_path, lambda rec: _shorten(rec / "3_theo_0.wav"))
    with pytest.raises(AudioError, match=r"3_theo_0\.wav: cut 3_theo_0: file holds 100 samples, its manifest declares \d+ "
                                         r"\(changed since prepare\?\)"):
        compute_features(cuts, tmp_path / "f", "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)


class _NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a} {b}")


def test_unexpected_worker_error_names_cut(fsdd_dir, tmp_path, monkeypatch):
    if start_method() != "fork":
        pytest.skip("the patched extractor reaches the workers only when they are forked")
    cuts = _prepared(fsdd_dir, tmp_path)

    def boom(self, audio, sampling_rate, seed=None):
        raise _NeedsTwoArgs("exploded", 1)

    monkeypatch.setattr("asrdistill.features.extract.Fbank.extract", boom)
    out_dir = tmp_path / "f"
    with pytest.raises(RuntimeError, match=r"cut \S+ \(.*\.wav.*\): _NeedsTwoArgs: exploded 1"):
        compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    assert _tmp_files(out_dir) == []


def test_stale_tmp_files_cleaned_with_log(fsdd_dir, tmp_path, caplog):
    cuts = _prepared(fsdd_dir, tmp_path)
    out_dir = tmp_path / "f"
    out_dir.mkdir()
    stale = [out_dir / ".fsdd_feats_test.k9x2_a.tmp.0.lca", out_dir / ".fsdd_cuts_test.q1w2e3.tmp.jsonl.gz"]
    other = out_dir / ".fsdd_feats_dev.abcdef.tmp.0.lca"  # another split's: not ours to remove
    for p in stale + [other]:
        p.write_bytes(b"")
    with caplog.at_level(logging.INFO):
        compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    assert not any(p.exists() for p in stale) and other.exists()
    assert "stale temporary" in caplog.text and stale[0].name in caplog.text


# --- 3. every bad file reported; skips counted per reason -----------------------------------------


def _six_bad(rec):
    (rec / "0_theo_0.wav").write_bytes(b"this is not audio at all" * 50)
    (rec / "1_theo_0.wav").write_bytes(b"")
    data = (rec / "2_theo_0.wav").read_bytes()
    (rec / "2_theo_0.wav").write_bytes(data[: len(data) // 2])
    x, _ = sf.read(rec / "3_theo_0.wav", dtype="int16")
    sf.write(rec / "3_theo_0.wav", x, 16000, subtype="PCM_16")
    sf.write(rec / "4_theo_0.wav", np.zeros(0, np.int16), 8000, subtype="PCM_16")
    (rec / "5_theo_0.wav").rename(rec / "mystery.wav")


SIX = {
    "0_theo_0.wav": "unreadable",
    "1_theo_0.wav": "empty file",
    "2_theo_0.wav": "truncated",
    "3_theo_0.wav": "sampling rate 16000",
    "4_theo_0.wav": "no samples",
    "mystery.wav": "no label",
}


def test_prepare_reports_every_bad_file_then_stops(fsdd_dir, tmp_path):
    corpus = copy_takes(fsdd_dir, tmp_path / "corpus", GOOD)
    _six_bad(corpus / "recordings")
    with pytest.raises(AudioError) as err:
        prepare_fsdd(corpus, tmp_path / "out", CFG)
    msg = str(err.value)
    assert "6 bad audio files" in msg
    for name, problem in SIX.items():
        line = next((ln for ln in msg.splitlines() if name in ln), "")
        assert problem in line, (name, msg)
    assert not (tmp_path / "out" / "fsdd_cuts_test.jsonl.gz").exists()
    r = CliRunner().invoke(cli, ["prepare", "fsdd", "--corpus-dir", str(corpus), "--output-dir", str(tmp_path / "out")])
    assert r.exit_code != 0 and all(name in r.output for name in SIX)


def test_prepare_skip_summary_names_reasons(fsdd_dir, tmp_path, caplog):
    corpus = copy_takes(fsdd_dir, tmp_path / "corpus", GOOD)
    _six_bad(corpus / "recordings")
    with caplog.at_level(logging.WARNING):
        prepare_fsdd(corpus, tmp_path / "out", FsddConfig(utterances_per_speaker=2, skip_bad=True))
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped 6 bad audio file"))
    for label in ("unreadable audio: 1", "empty file: 1", "truncated: 1", "wrong sampling rate: 1", "no samples: 1", "no label: 1"):
        assert label in summary, summary


def test_feature_skips_counted_per_reason(fsdd_dir, tmp_path, caplog):
    cuts = _prepared(fsdd_dir, tmp_path, lambda rec: (rec / "2_theo_0.wav").unlink(),
                     before=lambda rec: _shorten(rec / "3_theo_0.wav"))
    lost_deleted = [c.id for c in cuts if _uses(c, "2_theo_0")]
    with caplog.at_level(logging.WARNING):
        out = compute_features(cuts, tmp_path / "f", "fsdd", "test", FbankConfig(), num_jobs=2, skip_bad=True, progress=False)
    assert sorted(out.ids) == sorted(set(cuts.ids) - set(lost_deleted) - {"3_theo_0"})
    summary = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped "))
    assert f"file does not exist: {len(lost_deleted)}" in summary, summary
    assert "shorter than one analysis window: 1" in summary, summary
    assert "skipped: " not in summary


def test_resume_keeps_skips_of_finished_shards(fsdd_dir, tmp_path, caplog, monkeypatch):
    if start_method() != "fork":
        pytest.skip("the patched extractor reaches the workers only when they are forked")
    import asrdistill.features.extract as extract

    cuts = _prepared(fsdd_dir, tmp_path, before=lambda rec: _shorten(rec / "3_theo_0.wav"))
    out_dir = tmp_path / "f"
    real = extract.extract_cut

    def failing(fbank, cut):
        if cut.id == "0_theo_1":  # the 2nd take: shard 1; 3_theo_0 (the 7th) is in shard 0
            raise OSError("No space left on device")
        return real(fbank, cut)

    monkeypatch.setattr(extract, "extract_cut", failing)
    with pytest.raises(RuntimeError, match="cut 0_theo_1 .*No space left"):
        compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, skip_bad=True, progress=False)
    assert (out_dir / "fsdd_feats_test.0.jsonl.gz").exists() and not (out_dir / "fsdd_feats_test.1.jsonl.gz").exists()
    monkeypatch.setattr(extract, "extract_cut", real)
    # without --skip-bad, the cut the finished shard skipped is an error, not a silent gap
    with pytest.raises(AudioError, match="cut 3_theo_0: 100 samples"):
        compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, progress=False)
    with caplog.at_level(logging.WARNING):
        out = compute_features(cuts, out_dir, "fsdd", "test", FbankConfig(), num_jobs=2, skip_bad=True, progress=False)
    assert sorted(out.ids) == sorted(set(cuts.ids) - {"3_theo_0"})
    assert "shorter than one analysis window: 1" in caplog.text
