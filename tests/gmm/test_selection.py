"""Choosing the DNN targets' GMM system by dev WER (never by test WER)."""

import json

import pytest

from asrdistill.gmm.selection import select_gmm


def _system(root, name, dev, test):
    d = root / name / "decode_test"
    d.mkdir(parents=True)
    (d / "best.json").write_text(json.dumps({"acoustic_scale": 0.1, "dev": {"wer": dev}, "test": {"wer": test}}))
    return str(root / name)


def test_lowest_dev_wer_wins_and_the_link_follows(tmp_path):
    a = _system(tmp_path, "tri1", 30.0, 2.0)   # best on test, worse on dev: not chosen
    b = _system(tmp_path, "tri2", 25.0, 9.0)
    c = _system(tmp_path, "tri3", 25.0, 8.0)   # ties with tri2 on dev: the later system
    rec = select_gmm([a, b, c], out=tmp_path / "sel.json", link=tmp_path / "tri")
    assert rec["chosen"] == c and json.loads((tmp_path / "sel.json").read_text())["systems"][a]["test"] == 2.0
    assert (tmp_path / "tri").is_symlink() and (tmp_path / "tri").resolve() == (tmp_path / "tri3").resolve()
    select_gmm([a], link=tmp_path / "tri")  # an old link is replaced
    assert (tmp_path / "tri").resolve() == (tmp_path / "tri1").resolve()


def test_missing_decoding_and_a_real_directory_in_the_way(tmp_path):
    a = _system(tmp_path, "tri1", 30.0, 2.0)
    (tmp_path / "tri4").mkdir()
    with pytest.raises(FileNotFoundError, match="tri4/decode_test/best.json"):
        select_gmm([a, str(tmp_path / "tri4")])
    (tmp_path / "tri").mkdir()
    with pytest.raises(FileExistsError, match="not a symbolic link"):
        select_gmm([a], link=tmp_path / "tri")
