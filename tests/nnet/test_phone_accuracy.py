"""Phone-level and speech/silence frame accuracy: pdf -> class mapping and vectorized evaluation."""

import numpy as np
import pytest
import torch

from asrdistill.nnet.dnn import DnnConfig
from asrdistill.nnet.ensemble import StackedDnn
from asrdistill.nnet.phone_accuracy import SILENCE, SPEECH, classes_from_pdf_names, evaluate_levels, tree_dir_of
from asrdistill.nnet.trainer import evaluate

from .synthetic import synthetic_store


def test_classes_from_pdf_names_strip_positions_and_merge_shared_roots():
    names = ["SIL/SPN", "SIL", "SPN", "AH_B/AH_I", "AH", "AH_E", "IY_S", "IY", "T_B/T_E"]
    c = classes_from_pdf_names(names)
    assert c.phone_classes == ["AH", "IY", "SIL/SPN", "T"]
    assert [c.phone_classes[i] for i in c.phone] == ["SIL/SPN"] * 3 + ["AH"] * 3 + ["IY"] * 2 + ["T"]
    assert c.speech.tolist() == [SILENCE] * 3 + [SPEECH] * 6
    assert c.summary() == {"num_pdfs": 9, "num_phone_classes": 4, "silence_pdfs": 3, "speech_pdfs": 6}
    # monophone: SIL and SPN never share a pdf, so they stay two classes
    mono = classes_from_pdf_names(["SIL", "SIL", "SPN", "AH", "AH"])
    assert mono.phone_classes == ["AH", "SIL", "SPN"]
    # position-independent lang: "X_B" is a phone of its own
    pi = classes_from_pdf_names(["X_B", "X"], position_dependent=False)
    assert pi.phone_classes == ["X", "X_B"]


def _naive(model, store, left, right, table):
    """Per frame, in Python: is the class of each member's (and the ensemble's) top pdf the aligned pdf's class?"""
    model.eval()
    with torch.no_grad():
        x = store.windows(torch.arange(store.num_frames), left, right, torch.device("cpu"))
        logp = torch.log_softmax(model(x).float(), -1)
    n, total = model.num_members, store.num_frames
    members = [0] * n
    arith = geo = 0
    for f in range(total):
        y = int(store.targets[f])
        for m in range(n):
            members[m] += int(table[int(logp[m, f].argmax())] == table[y])
        arith += int(table[int(logp[:, f].exp().mean(0).argmax())] == table[y])
        geo += int(table[int(logp[:, f].mean(0).argmax())] == table[y])
    acc = [c / total for c in members]
    return {"members": acc, "mean_member": sum(acc) / n, "arithmetic": arith / total, "geometric": geo / total}


def test_phone_accuracy_equals_a_naive_per_frame_reference():
    store = synthetic_store(num_utts=30, classes=6, seed=2)
    cfg = DnnConfig(feature_dim=5, left_context=2, right_context=1, hidden_layers=2, hidden_dim=16, num_outputs=6)
    model = StackedDnn(cfg, [0, 1, 2])
    phone = [0, 0, 1, 2, 2, 2]  # pdf -> phone class
    speech = [0, 1, 1, 1, 1, 1]
    tables = {"phone": torch.tensor(phone), "speech_silence": torch.tensor(speech)}
    got = evaluate_levels(model, store, 2, 1, torch.device("cpu"), tables, chunk=37)  # chunks cut utterances
    for name, table in (("phone", phone), ("speech_silence", speech)):
        ref = _naive(model, store, 2, 1, table)
        assert got[name]["members"] == pytest.approx(ref["members"], abs=1e-12)
        for k in ("mean_member", "arithmetic", "geometric"):
            assert got[name][k] == pytest.approx(ref[k], abs=1e-12), (name, k)
    # the tied-state keys are trainer.evaluate's, unchanged; the identity table gives them again
    base = evaluate(model, store, 2, 1, torch.device("cpu"))
    assert {k: got[k] for k in base} == base
    ident = evaluate_levels(model, store, 2, 1, torch.device("cpu"), {"id": torch.arange(6)})["id"]
    assert ident == base
    # coarser levels can only be at least as accurate
    assert all(p >= t for p, t in zip(got["phone"]["members"], got["members"]))
    assert all(s >= p for s, p in zip(got["speech_silence"]["members"], got["phone"]["members"]))
    with pytest.raises(ValueError, match="entries for 6 network outputs"):
        evaluate_levels(model, store, 2, 1, torch.device("cpu"), {"phone": torch.tensor([0, 1])})


def test_tree_dir_is_the_alignment_directory_parent(tmp_path):
    (tmp_path / "tri2" / "ali").mkdir(parents=True)
    assert tree_dir_of(tmp_path / "tri2" / "ali") is None
    (tmp_path / "tri2" / "final.mdl").write_bytes(b"")
    assert tree_dir_of(tmp_path / "tri2" / "ali") == tmp_path / "tri2"
    (tmp_path / "tri").symlink_to("tri2")
    assert tree_dir_of(tmp_path / "tri" / "ali") == tmp_path / "tri"
    assert np.array_equal(classes_from_pdf_names(["A", "B_B"]).speech, [SPEECH, SPEECH])
