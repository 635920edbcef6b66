"""ONNX export: onnxruntime's output equals the torch model's on real features; the sidecar is what was trained."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from asrdistill.cli import cli


def export(root, out, members=None):
    args = ["export", "--model-dir", str(root / "ens"), "--tree-dir", str(root / "mono"), "--feature-dir",
            str(root / "f"), "--lang-dir", str(root / "lang"), "--out-dir", str(out), "--format", "onnx"]
    if members is not None:
        args += ["--members", members]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return json.loads((out / "model.json").read_text())


@pytest.fixture(scope="module")
def exports(deploy_system, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    return {"student": export(deploy_system, out / "m0", "0"), "ensemble": export(deploy_system, out / "all")}, out


@pytest.mark.parametrize("which,members", [("student", [0]), ("ensemble", None)])
def test_onnxruntime_equals_torch_on_real_features(deploy_system, exports, which, members):
    from asrdistill.decode.acoustic import NnetScorer
    from asrdistill.deploy.runtime import ExportedModel
    from asrdistill.features.cmvn import load_cmvn
    from asrdistill.features.loading import load_features
    from asrdistill.utils.readers import read_cuts

    root = deploy_system
    _, out = exports
    cmvn = root / "f" / "fsdd_cmvn_test.json"
    scorer = NnetScorer(root / "ens", root / "mono", cmvn, members=members)
    model = ExportedModel(out / ("m0" if which == "student" else "all"))
    stats = load_cmvn(cmvn)
    cuts = list(read_cuts(root / "f" / "fsdd_cuts_test.jsonl.gz"))[:12]
    for cut in cuts:
        ref = scorer(cut).numpy()  # torch: splice, members, log_softmax, combine, - log prior
        got = model.utterance_loglik(load_features(cut, stats))
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
        # the decoder's scores: column j is transition id j + 1's pdf
        np.testing.assert_allclose(model.transition_scores(got),
                                   model.acoustic_scale * ref[:, np.asarray(scorer.tm.transition_id_to_pdf_array())[1:]],
                                   atol=1e-5)


def test_sidecar_records_the_training_setup(deploy_system, exports):
    from asrdistill.nnet.trainer import load_members
    from asrdistill.utils.readers import read_cuts

    root = deploy_system
    (metas, _) = exports
    student, ensemble = metas["student"], metas["ensemble"]
    assert student["context"] == {"left": 20, "right": 5}
    assert student["members"] == [0] and ensemble["members"] == [0, 1]
    net = load_members(root / "ens")
    assert student["parameters"] == net.config.num_parameters() and ensemble["parameters"] == 2 * student["parameters"]
    assert ensemble["mflop_per_frame"] == pytest.approx(2 * student["mflop_per_frame"])
    np.testing.assert_allclose(student["log_prior"], torch.load(root / "ens" / "log_priors.pt").numpy(), atol=1e-6)
    # the stored CMVN statistics: mean and std of all training frames (naive reference)
    frames = np.concatenate([c.features.load() for c in read_cuts(root / "f" / "fsdd_cuts_train.jsonl.gz")]).astype(np.float64)
    np.testing.assert_allclose(student["cmvn"]["mean"], frames.mean(0), atol=1e-6)
    np.testing.assert_allclose(student["cmvn"]["std"], frames.std(0), rtol=1e-6)
    assert student["cmvn"]["count"] == len(frames)
    assert student["sampling_rate"] == 8000 and student["fbank"]["num_mel_bins"] == 40
    assert student["graph"]["HCLG.fst"] and student["tree"]["sha256"]
    assert any(p.endswith("_B") for p in student["phones"].values())


def test_bad_members_name_themselves(deploy_system, tmp_path):
    root = deploy_system
    r = CliRunner().invoke(cli, ["export", "--model-dir", str(root / "ens"), "--tree-dir", str(root / "mono"),
                                 "--feature-dir", str(root / "f"), "--members", "5", "--out-dir", str(tmp_path / "x")])
    assert r.exit_code == 1 and "--members [5]" in r.output, r.output
