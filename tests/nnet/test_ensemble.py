"""Stacked ensemble = N separate models; frame store windows; training engine robustness."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from asrdistill.features.context_window import splice
from asrdistill.nnet.dnn import DnnConfig, FrameDnn, preset
from asrdistill.nnet.ensemble import StackedDnn
from asrdistill.nnet.trainer import TrainConfig, TrainingDiverged, evaluate, hard_label_loss, train_stacked

from .synthetic import synthetic_store

ROOT = Path(__file__).resolve().parents[2]


def test_paper_preset_size():
    cfg = preset("paper")
    assert cfg.input_dim == 26 * 40 and cfg.num_outputs == 14000
    assert 84e6 < cfg.num_parameters() < 86e6  # "about 85M parameters"


def test_fused_step_equals_separate_models_float64():
    torch.set_default_dtype(torch.float64)
    try:
        cfg = DnnConfig(feature_dim=3, left_context=2, right_context=1, hidden_layers=2, hidden_dim=8, num_outputs=5)
        seeds = [3, 4, 5]
        ens = StackedDnn(cfg, seeds)
        separate = []
        for s in seeds:
            torch.manual_seed(s)
            separate.append(FrameDnn(cfg))
        x = torch.randn(3, 7, cfg.input_dim)
        y = torch.randint(0, 5, (3, 7))
        hard_label_loss(ens(x), None, y).sum().backward()
        opt = torch.optim.AdamW(ens.parameters(), lr=0.1)
        for i, net in enumerate(separate):
            F.cross_entropy(net(x[i]), y[i]).backward()
            for l, layer in enumerate(net.layers):
                torch.testing.assert_close(ens.weights[l].grad[i], layer.weight.grad.T, rtol=1e-12, atol=1e-12)
                torch.testing.assert_close(ens.biases[l].grad[i, 0], layer.bias.grad, rtol=1e-12, atol=1e-12)
        # one AdamW step of the stack equals one step of each member alone
        opt.step()
        for i, net in enumerate(separate):
            torch.optim.AdamW(net.parameters(), lr=0.1).step()
            torch.testing.assert_close(ens.member(i).layers[0].weight, net.layers[0].weight, rtol=1e-12, atol=1e-12)
        # per-member clipping only scales the member whose norm is too large
        norms = ens.member_grad_norms()
        before = [w.grad.clone() for w in ens.weights]
        ens.clip_member_grads_(float(norms.min()) * 1.01)
        for l, w in enumerate(ens.weights):
            i = int(norms.argmin())
            torch.testing.assert_close(w.grad[i], before[l][i])
        assert torch.allclose(ens.member_grad_norms().max(), norms.min() * 1.01, rtol=1e-4)
    finally:
        torch.set_default_dtype(torch.float32)


def test_frame_store_windows_equal_operator():
    store = synthetic_store()
    idx = torch.randperm(store.num_frames)[:200]
    out = store.windows(idx, 4, 2)
    ref = torch.cat([splice(store.feats[store.offsets[u]:store.offsets[u + 1]], 4, 2) for u in range(len(store.ids))])
    torch.testing.assert_close(out, ref[idx])
    sub = store.subset_frames(0.1, seed=1)
    assert abs(len(sub.trainable()) - 0.1 * store.num_frames) <= 1 and torch.equal(sub.feats, store.feats)
    with3 = [u for k, u in enumerate(store.ids) if (store.targets[store.offsets[k]:store.offsets[k + 1]] == 3).any()]
    no3 = store.without_utterances(with3)
    kept = no3.trainable()
    utt = torch.searchsorted(store.offsets, kept, right=True) - 1  # naive reference for frame_utterances
    assert torch.equal(utt, store.frame_utterances()[kept])
    for u in utt.unique():
        assert not (store.targets[store.offsets[u]:store.offsets[u + 1]] == 3).any()
    assert len(kept) == store.num_frames - sum(int(store.offsets[store.ids.index(u) + 1] - store.offsets[store.ids.index(u)])
                                               for u in with3)


TRAIN_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from tests.nnet.synthetic import synthetic_store
from asrdistill.nnet.dnn import DnnConfig
from asrdistill.nnet.ensemble import StackedDnn
from asrdistill.nnet.trainer import TrainConfig, train_stacked
torch.set_num_threads(1)
store = synthetic_store()
cfg = DnnConfig(feature_dim=5, left_context=3, right_context=1, hidden_layers=2, hidden_dim=32, num_outputs=6, dropout=0.1)
tc = TrainConfig(num_members=3, batch_size=32, max_steps={steps}, eval_every=100, checkpoint_every=7, warmup_steps=20,
                 patience=100, lr=3e-3)
model = StackedDnn(cfg, tc.seeds)
train_stacked(model, store, synthetic_store(seed=1), tc, sys.argv[1], progress=False)
torch.save(model.state_dict(), sys.argv[1] + "/final_params.pt")
"""


def _run(exp, steps):
    return subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT.format(root=str(ROOT), steps=steps), str(exp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill9_and_resume_gives_the_same_parameters(tmp_path):
    steps = 1500
    ref = _run(tmp_path / "ref", steps)
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()[-2000:]
    killed = _run(tmp_path / "run", steps)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert killed.poll() is None, "training finished before it could be killed; raise the step count"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    step_at_kill = torch.load(ckpt, weights_only=False)["step"]
    assert 0 < step_at_kill < steps
    resumed = _run(tmp_path / "run", steps)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    a = torch.load(tmp_path / "ref" / "final_params.pt")
    b = torch.load(tmp_path / "run" / "final_params.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the scalars of the killed run's steps after its checkpoint are not repeated (issue 18, case 8)
    import json

    steps_logged = [json.loads(line)["step"] for line in (tmp_path / "run" / "scalars.jsonl").read_text().splitlines()]
    ref_steps = [json.loads(line)["step"] for line in (tmp_path / "ref" / "scalars.jsonl").read_text().splitlines()]
    assert steps_logged == ref_steps


def test_nan_loss_stops_with_checkpoint_intact(tmp_path):
    store = synthetic_store()
    cfg = DnnConfig(feature_dim=5, left_context=1, right_context=1, hidden_layers=1, hidden_dim=8, num_outputs=6)
    calls = {"n": 0}

    def loss_fn(logits, idx, y):
        calls["n"] += 1
        loss = hard_label_loss(logits, idx, y)
        return loss * float("nan") if calls["n"] > 25 else loss

    tc = TrainConfig(num_members=2, batch_size=16, max_steps=100, checkpoint_every=10, eval_every=1000)
    with pytest.raises(TrainingDiverged, match="step 25.*last good checkpoint"):
        train_stacked(StackedDnn(cfg, tc.seeds), store, None, tc, tmp_path, loss_fn, progress=False)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 20 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_training_learns_the_synthetic_task(tmp_path):
    store, dev = synthetic_store(num_utts=150), synthetic_store(num_utts=40, seed=1)
    cfg = DnnConfig(feature_dim=5, left_context=2, right_context=1, hidden_layers=2, hidden_dim=64, num_outputs=6)
    tc = TrainConfig(num_members=2, batch_size=64, max_epochs=20, warmup_steps=20, lr=3e-3, patience=5)
    model = StackedDnn(cfg, tc.seeds)
    train_stacked(model, store, dev, tc, tmp_path, progress=False)
    res = evaluate(model, dev, 2, 1, torch.device("cpu"))
    majority = torch.bincount(dev.targets).max().item() / dev.num_frames
    assert min(res["members"]) > majority + 0.3 and (tmp_path / "scalars.jsonl").exists()
    assert any((tmp_path / "tensorboard").glob("events.*"))


DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from tests.nnet.synthetic import synthetic_store
from asrdistill.nnet.dnn import DnnConfig
from asrdistill.nnet.ensemble import StackedDnn
from asrdistill.nnet.trainer import TrainConfig, train_stacked
torch.set_num_threads(1)
cfg = DnnConfig(feature_dim=5, left_context=2, right_context=1, hidden_layers=2, hidden_dim=16, num_outputs=6)
tc = TrainConfig(num_members=2, batch_size=32, max_steps=30, eval_every=1000, warmup_steps=5, lr=3e-3)
model = StackedDnn(cfg, tc.seeds)
train_stacked(model, synthetic_store(), None, tc, sys.argv[1], progress=False)
import torch.distributed as dist
if not dist.is_initialized() or dist.get_rank() == 0:
    torch.save(model.state_dict(), sys.argv[1] + "/final_params.pt")
"""


def test_torchrun_two_processes_match_one_process(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(DDP_SCRIPT.format(root=str(ROOT)))
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-port=29533",
                          str(script), str(tmp_path / "two")], capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "final_params.pt")
    b = torch.load(tmp_path / "two" / "final_params.pt")
    for k in a:  # each rank took half of every member's batch; DDP averaged the gradients
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
