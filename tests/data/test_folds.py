"""Leave-one-speaker-out folds files."""

import pytest

from asrdistill.data.folds import FoldsError, fold_speakers, read_folds
from tests.conftest import ROOT


def test_recipe_folds_are_a_rotation_and_fold_0_is_the_main_split():
    import yaml

    path = ROOT / "egs" / "fsdd" / "conf" / "folds.yaml"
    speakers, folds = read_folds(path)
    assert sorted(f["test"] for f in folds) == sorted(speakers) == sorted(f["dev"] for f in folds)
    main = yaml.safe_load((ROOT / "egs" / "fsdd" / "conf" / "prepare.yaml").read_text())
    split = fold_speakers(path, 0)
    assert list(split["dev_speakers"]) == main["dev_speakers"] and list(split["test_speakers"]) == main["test_speakers"]
    assert sorted(split["train_speakers"]) == sorted(main["train_speakers"])
    for k in range(len(folds)):
        s = fold_speakers(path, k)
        assert sorted(s["train_speakers"] + s["dev_speakers"] + s["test_speakers"]) == sorted(speakers)


@pytest.mark.parametrize("text,reason", [
    ("speakers: [a, b, c]\nfolds:\n  - {dev: a, test: a}\n", "both dev and test"),
    ("speakers: [a, b, c]\nfolds:\n  - {dev: a, test: b}\n  - {dev: c, test: b}\n", "test speaker of folds 0 and 1"),
    ("speakers: [a, b, c]\nfolds:\n  - {dev: a, test: z}\n", r"\['z'\] not in 'speakers'"),
    ("speakers: [a, b]\nfolds:\n  - {dev: a, test: b}\n", "no fold has a training speaker"),
    ("folds: []\n", "needs a list"),
    ("speakers: [a, b, c]\nfolds:\n  - {dev: a}\n", "must be {dev: SPEAKER, test: SPEAKER}"),
])
def test_bad_folds_files_name_themselves(tmp_path, text, reason):
    path = tmp_path / "folds.yaml"
    path.write_text(text)
    with pytest.raises(FoldsError, match=reason) as e:
        fold_speakers(path, 0)
    assert str(path) in str(e.value)


def test_missing_fold_is_an_error(tmp_path):
    path = tmp_path / "folds.yaml"
    path.write_text("speakers: [a, b, c]\nfolds:\n  - {dev: a, test: b}\n")
    with pytest.raises(FoldsError, match="fold 3 does not exist"):
        fold_speakers(path, 3)


def test_prepare_fsdd_prepares_the_fold(fsdd_subset, tmp_path):
    from click.testing import CliRunner

    from asrdistill.cli import cli
    from asrdistill.utils.readers import read_cuts

    folds = ROOT / "egs" / "fsdd" / "conf" / "folds.yaml"
    out = tmp_path / "m"
    r = CliRunner().invoke(cli, ["prepare", "fsdd", "--corpus-dir", str(fsdd_subset), "--output-dir", str(out),
                                 "--folds", str(folds), "--fold", "2", "--utterances-per-speaker", "2",
                                 "--speed-perturb", "1.0"])
    assert r.exit_code == 0, r.output
    speakers = {split: {s.speaker for c in read_cuts(out / f"fsdd_cuts_{split}.jsonl.gz") for s in c.supervisions}
                for split in ("train", "dev", "test")}
    assert speakers == {"train": {"jackson", "nicolas", "theo"}, "dev": {"yweweler"}, "test": {"george"}}
    saved = (out / "prepare_config.yaml").read_text()
    assert "test_speakers:\n- george\n" in saved, saved  # the fold's split, as plain lists
    r = CliRunner().invoke(cli, ["prepare", "fsdd", "--corpus-dir", str(fsdd_subset), "--output-dir", str(out),
                                 "--fold", "2"])
    assert r.exit_code == 2 and "--folds and --fold go together" in r.output
