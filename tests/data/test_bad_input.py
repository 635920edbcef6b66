"""Each kind of bad input gets an error naming the file, or a counted skip with --skip-bad."""

import logging
import shutil

import numpy as np
import pytest
import soundfile as sf

from asrdistill.data.audio_check import AudioError, check_audio_file
from asrdistill.data.fsdd import FsddConfig, prepare_fsdd
from asrdistill.features.extract import compute_features
from asrdistill.features.fbank import FbankConfig

from ..conftest import copy_takes

GOOD = [f"{d}_{s}_{t}.wav" for d in range(10) for s in ("george", "jackson", "nicolas", "theo", "yweweler") for t in (0, 1)]
CFG = FsddConfig(utterances_per_speaker=2)


def corrupt(kind: str, path):
    if kind == "unreadable":
        path.write_bytes(b"this is not audio at all" * 50)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "wrong sampling rate":
        x, _ = sf.read(path, dtype="int16")
        sf.write(path, x, 16000, subtype="PCM_16")
    elif kind == "no samples":
        sf.write(path, np.zeros(0, np.int16), 8000, subtype="PCM_16")


@pytest.mark.parametrize("kind,message", [
    ("unreadable", "unreadable"),
    ("empty", "empty file"),
    ("truncated", "truncated"),
    ("wrong sampling rate", "sampling rate 16000"),
    ("no samples", "no samples"),
])
def test_bad_audio_named_or_skipped(fsdd_dir, tmp_path, kind, message, caplog):
    corpus = copy_takes(fsdd_dir, tmp_path / "corpus", GOOD)
    bad = corpus / "recordings" / "4_theo_1.wav"
    corrupt(kind, bad)
    with pytest.raises(AudioError, match=message) as err:
        prepare_fsdd(corpus, tmp_path / "out", CFG)
    assert str(bad) in str(err.value)
    assert not (tmp_path / "out" / "fsdd_cuts_test.jsonl.gz").exists()
    with caplog.at_level(logging.WARNING):
        cuts = prepare_fsdd(corpus, tmp_path / "out", FsddConfig(utterances_per_speaker=2, skip_bad=True))
    assert "skipped 1 bad audio file" in caplog.text and "4_theo_1" in caplog.text
    assert len([c for c in cuts["test"] if c.id.startswith("4_theo")]) == 1
    assert len(cuts["test"]) == 19 + 2


def test_file_without_label(fsdd_dir, tmp_path):
    corpus = copy_takes(fsdd_dir, tmp_path / "corpus", GOOD)
    shutil.copy(corpus / "recordings" / "4_theo_1.wav", corpus / "recordings" / "mystery.wav")
    with pytest.raises(AudioError, match="mystery.wav: no label"):
        prepare_fsdd(corpus, tmp_path / "out", CFG)
    cuts = prepare_fsdd(corpus, tmp_path / "out", FsddConfig(utterances_per_speaker=2, skip_bad=True))
    assert sum(len(c) for c in cuts.values()) == 100 + 10


def test_missing_corpus_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare_fsdd(tmp_path / "nowhere", tmp_path / "out", CFG)
    (tmp_path / "empty" / "recordings").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no .wav files"):
        prepare_fsdd(tmp_path / "empty", tmp_path / "out", CFG)


def test_missing_audio_at_feature_time_names_cut_and_file(fsdd_dir, tmp_path):
    corpus = copy_takes(fsdd_dir, tmp_path / "corpus", GOOD)
    cuts = prepare_fsdd(corpus, tmp_path / "m", CFG)["test"]
    (corpus / "recordings" / "2_theo_0.wav").unlink()
    with pytest.raises(AudioError, match="2_theo_0"):
        compute_features(cuts, tmp_path / "f", "fsdd", "test", FbankConfig(), num_jobs=1, progress=False)
    assert not (tmp_path / "f" / "fsdd_cuts_test.jsonl.gz").exists()
    out = compute_features(cuts, tmp_path / "f2", "fsdd", "test", FbankConfig(), num_jobs=2, skip_bad=True, progress=False)
    # the take itself and every connected utterance built from it are skipped
    lost = [c.id for c in cuts if "2_theo_0" in c.id or any(t.cut.id == "2_theo_0" for t in getattr(c, "tracks", []))]
    assert len(out) == len(cuts) - len(lost) and 1 <= len(lost)


def test_check_audio_file_accepts_good_file(fsdd_dir):
    info = check_audio_file(fsdd_dir / "recordings" / "0_george_0.wav", expected_sampling_rate=8000)
    assert info.num_samples > 0 and info.num_channels == 1
