"""FSDD manifests on the real recordings."""

import re

import numpy as np
import pytest
from lhotse import RecordingSet, SupervisionSet
from lhotse.cut import MixedCut, MonoCut

from asrdistill.utils.readers import read_cuts
from asrdistill.data.connected_digits import is_filler, source_takes
from asrdistill.data.cuts import cut_speaker, cut_text
from asrdistill.data.fsdd import DIGIT_WORDS, FsddConfig, prepare_fsdd, summarize_splits
from asrdistill.features.extract import extract_cut, features_cut
from asrdistill.features.fbank import Fbank, FbankConfig
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
        on_disk = read_cuts(out / f"fsdd_cuts_{split}.jsonl.gz")
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


@pytest.fixture(scope="module")
def perturbed(fsdd_subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("sp")
    config = FsddConfig(utterances_per_speaker=2, speed_perturb=(0.9, 1.0, 1.1))
    return out, prepare_fsdd(fsdd_subset, out, config)


def test_speed_perturbation_of_the_train_split(perturbed):
    out, cuts = perturbed
    assert load_config(FsddConfig, out / "prepare_config.yaml").speed_perturb == (0.9, 1.0, 1.1)
    train = {c.id: c for c in read_cuts(out / "fsdd_cuts_train_sp.jsonl.gz")}
    originals = [c for c in train.values() if not c.id.startswith("sp")]
    n = 3 * 60 + 3 * 2  # 60 takes of each train speaker in the subset, 2 connected utterances each
    assert len(originals) == n and len(train) == 3 * n
    plain = read_cuts(out / "fsdd_cuts_train.jsonl.gz")  # the GMMs' split stays unperturbed
    assert sorted(plain.ids) == sorted(c.id for c in originals) and len(cuts["train_sp"]) == 3 * n
    for split in ("dev", "test"):
        assert len(cuts[split]) == 60 + 2 and not any(c.id.startswith("sp") for c in cuts[split])
    speakers = {cut_speaker(c) for c in train.values()}
    assert speakers == {p + s for p in ("", "sp0.9-", "sp1.1-") for s in ("george", "jackson", "yweweler")}
    for orig in originals:
        for factor in (0.9, 1.1):
            prefix = f"sp{factor}-"
            c = train[prefix + orig.id]
            assert type(c) is type(orig) and cut_text(c) == cut_text(orig)
            assert cut_speaker(c) == prefix + cut_speaker(orig)
            assert c.duration == pytest.approx(orig.duration / factor, abs=2.5 / 8000)
            for s, o in zip(c.supervisions, orig.supervisions):
                assert s.id == prefix + o.id and s.recording_id == prefix + o.recording_id
                assert s.start == pytest.approx(o.start / factor, abs=2.5 / 8000)
                assert s.duration == pytest.approx(o.duration / factor, abs=2.5 / 8000)
            if isinstance(c, MixedCut):
                assert source_takes(c) == [prefix + t for t in source_takes(orig)]
                assert all(t.cut.id.startswith(prefix) and t.cut.recording.id.startswith(prefix) for t in c.tracks)
                assert sum(is_filler(t.cut) for t in c.tracks) == sum(is_filler(t.cut) for t in orig.tracks)
            else:
                assert c.recording.id == prefix + orig.recording.id and c.custom["speed"] == factor


def test_speed_perturbed_cuts_load_and_give_features(perturbed):
    out, _ = perturbed
    train = read_cuts(out / "fsdd_cuts_train_sp.jsonl.gz").to_eager()
    fbank = Fbank(FbankConfig())
    picked = [c for c in train if c.id.startswith("sp0.9-")][::40] + [c for c in train if c.id.startswith("sp1.1-")][-3:]
    assert any(isinstance(c, MixedCut) for c in picked) and any(isinstance(c, MonoCut) for c in picked)
    for c in picked:
        audio = c.load_audio()[0]
        assert audio.shape[0] == c.num_samples and np.abs(audio).max() > 0.01
        feats = extract_cut(fbank, c)
        assert abs(feats.shape[0] - round(c.duration * 100)) <= 2
        out_cut = features_cut(c, None)
        assert cut_speaker(out_cut) == cut_speaker(c) and cut_speaker(c).startswith(c.id.split("-")[0] + "-")
        if isinstance(c, MixedCut):
            assert out_cut.custom["source_takes"] == source_takes(c)


def test_bad_speed_factors_are_errors(fsdd_subset, tmp_path):
    for factors in ((0.9, 0.9), (0.0, 1.0), (-1.1,)):
        with pytest.raises(ValueError, match="speed_perturb"):
            prepare_fsdd(fsdd_subset, tmp_path, FsddConfig(utterances_per_speaker=0, speed_perturb=factors))
