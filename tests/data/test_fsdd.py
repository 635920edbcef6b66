"""FSDD manifests on the real recordings."""

import re

import pytest
from lhotse import CutSet, RecordingSet, SupervisionSet
from lhotse.cut import MixedCut, MonoCut

from asrdistill.data.cuts import cut_speaker, cut_text
from asrdistill.data.fsdd import DIGIT_WORDS, FsddConfig, prepare_fsdd, summarize_splits
from asrdistill.utils.config import load_config


@pytest.fixture(scope="module")
def prepared(fsdd_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("manifests")
    return out, prepare_fsdd(fsdd_dir, out, FsddConfig(utterances_per_speaker=20))


def test_speaker_independent_splits_on_all_real_files(prepared):
    out, cuts = prepared
    config = load_config(FsddConfig, out / "prepare_config.yaml")
    assert config.test_speakers == ("theo",) and config.utterances_per_speaker == 20
    speakers = {}
    for split in ("train", "dev", "test"):
        recs = {r.id: r for r in RecordingSet.from_file(out / f"fsdd_recordings_{split}.jsonl.gz")}
        sups = SupervisionSet.from_file(out / f"fsdd_supervisions_{split}.jsonl.gz")
        on_disk = CutSet.from_file(out / f"fsdd_cuts_{split}.jsonl.gz")
        n_spk = len(getattr(config, f"{split}_speakers"))
        assert len(recs) == len(sups) == 500 * n_spk  # 50 takes x 10 digits per speaker
        assert len(on_disk) == 500 * n_spk + 20 * n_spk
        assert all(s.custom["split"] == split for s in sups)
        speakers[split] = {s.speaker for s in sups}
        for sup in sups:
            digit = int(sup.recording_id.split("_")[0])
            assert sup.text == DIGIT_WORDS[digit]
            assert sup.speaker == sup.recording_id.split("_")[1]
            assert recs[sup.recording_id].sampling_rate == 8000
    assert speakers["train"] == {"george", "jackson", "yweweler"}
    assert not (speakers["train"] & speakers["dev"]) and not (speakers["train"] & speakers["test"])
    summary = summarize_splits(cuts)
    assert summary["test"].num_speakers == 1 and 0.1 < summary["train"].hours < 1.0


def test_isolated_and_connected_cuts(prepared):
    _, cuts = prepared
    test = cuts["test"]
    iso = [c for c in test if isinstance(c, MonoCut)]
    conn = [c for c in test if isinstance(c, MixedCut)]
    assert len(iso) == 500 and len(conn) == 20
    for c in conn:
        m = re.fullmatch(r"theo-conn\d{4}-(\d+)", c.id)
        assert m and 2 <= len(m[1]) <= 7
        assert cut_text(c) == " ".join(DIGIT_WORDS[int(d)] for d in m[1])
        assert cut_speaker(c) == "theo"


def test_speaker_in_two_splits_and_missing_speaker_are_errors(fsdd_subset, tmp_path):
    with pytest.raises(ValueError, match="both"):
        prepare_fsdd(fsdd_subset, tmp_path, FsddConfig(dev_speakers=("theo",)))
    with pytest.raises(ValueError, match="nobody"):
        prepare_fsdd(fsdd_subset, tmp_path, FsddConfig(test_speakers=("nobody",)))
