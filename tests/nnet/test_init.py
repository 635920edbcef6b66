"""Initialization of the frame classifiers (DnnConfig.init), dropout in the stacked ensemble.

Kaiming (the default) keeps the hidden activations of the 8 x 2560 ``paper`` stack at
unit RMS; PyTorch's default ``nn.Linear`` init (``init="torch"``) shrinks them ~45x.
"""

import math
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from asrdistill.nnet.dnn import INIT_CHOICES, DnnConfig, FrameDnn, preset
from asrdistill.nnet.ensemble import StackedDnn
from asrdistill.nnet.trainer import TrainConfig, load_members
from asrdistill.utils.config import config_from_dict, config_to_dict, with_config

#: The paper's architecture with a small output layer: the ~14,000 real outputs only add a
#: big matmul at the end and are irrelevant to the hidden-activation statistics.
PAPER_OUTPUTS = 10


def hidden_rms(net: FrameDnn, x: torch.Tensor):
    """RMS of every hidden layer's activations (after the ReLU) and of the logits, in eval mode."""
    out = []
    with torch.no_grad():
        for layer in net.layers[:-1]:
            x = torch.relu(layer(x))
            out.append(x.pow(2).mean().sqrt().item())
        return out, net.layers[-1](x).pow(2).mean().sqrt().item()


@pytest.fixture(scope="module")
def paper_nets():
    nets = {}
    for init in INIT_CHOICES:
        torch.manual_seed(0)
        nets[init] = FrameDnn(preset("paper", num_outputs=PAPER_OUTPUTS, init=init))
    return nets


def test_kaiming_is_the_default_and_choices_are_validated():
    assert DnnConfig().init == "kaiming" and preset("paper").init == "kaiming"
    with pytest.raises(ValueError, match="init must be one of"):
        DnnConfig(init="xavier")


def test_paper_preset_keeps_activation_scale_with_kaiming_and_shrinks_with_torch(paper_nets):
    x = torch.randn(256, preset("paper").input_dim, generator=torch.Generator().manual_seed(1))  # CMVN-like: unit variance
    rms = {init: hidden_rms(net, x) for init, net in paper_nets.items()}
    for init, (h, z) in rms.items():
        print(f"{init:8s} hidden RMS " + " ".join(f"{r:.3f}" for r in h) + f"; logits {z:.3f}")
    h, z = rms["kaiming"]
    assert len(h) == 8
    assert all(h[0] / 2 < r < h[0] * 2 for r in h), h  # within a factor 2 of the first layer, through all 8
    assert all(0.7 < r < 1.4 for r in h), h  # and about unit scale (E[h^2] = E[x^2] = 1)
    assert 0.3 < z < 3.0  # logits of about unit scale: neither flat nor saturated posteriors
    # the bug Kaiming fixes: torch's default shrinks ~2.4x per layer to the bias-dominated floor (~0.009)
    t, _ = rms["torch"]
    assert 0.3 < t[0] < 0.5 and t[-1] < t[0] / 20, t


def test_kaiming_parameter_statistics(paper_nets):
    layers = paper_nets["kaiming"].layers
    for i, layer in enumerate(layers):
        fan_in = layer.weight.shape[1]
        gain = 1.0 if i == len(layers) - 1 else math.sqrt(2.0)
        assert layer.weight.std().item() == pytest.approx(gain / math.sqrt(fan_in), rel=0.05)
        assert abs(layer.weight.mean().item()) < 0.05 * gain / math.sqrt(fan_in)
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("init", INIT_CHOICES)
def test_stacked_member_equals_frame_dnn_of_its_seed(init):
    cfg = DnnConfig(feature_dim=5, left_context=2, right_context=1, hidden_layers=3, hidden_dim=24, num_outputs=7, init=init)
    seeds = [3, 11, 5]
    ens = StackedDnn(cfg, seeds)
    for i, s in enumerate(seeds):
        torch.manual_seed(s)
        ref = FrameDnn(cfg)
        for a, b in zip(ens.member(i).parameters(), ref.parameters()):
            assert torch.equal(a, b)
    # the two inits are really different draws
    other = StackedDnn(DnnConfig(**{**config_to_dict(cfg), "init": "torch" if init == "kaiming" else "kaiming"}), seeds)
    assert not torch.equal(other.weights[0], ens.weights[0])


def test_stacked_paper_member_equals_frame_dnn_of_its_seed(paper_nets):
    ens = StackedDnn(paper_nets["kaiming"].config, seeds=[0])  # one member: the paper preset is 48M parameters
    for l, layer in enumerate(paper_nets["kaiming"].layers):
        assert torch.equal(ens.weights[l][0], layer.weight.T) and torch.equal(ens.biases[l][0, 0], layer.bias)


def test_stacked_dropout_is_frame_dnn_dropout():
    cfg = DnnConfig(feature_dim=4, left_context=1, right_context=1, hidden_layers=3, hidden_dim=32, num_outputs=5, dropout=0.5)
    ens = StackedDnn(cfg, [3])
    net = ens.member(0)
    x = torch.randn(16, cfg.input_dim)
    ens.train(), net.train()
    torch.manual_seed(1)
    ref = net(x)
    for inp in (x[None], x):  # (N, B, d) and a shared (B, d) input draw the same masks as FrameDnn
        torch.manual_seed(1)
        # same masks: equal up to the rounding of batched vs. single matmul kernels (a different
        # mask changes outputs by O(1)); bit-equality depends on the CPU's kernel choice
        assert torch.allclose(ens(inp)[0], ref, rtol=0, atol=1e-5)
    ens.eval(), net.eval()
    assert torch.allclose(ens(x)[0], net(x), atol=1e-6)  # no dropout in evaluation
    # two members with identical parameters: independent masks per member in training, none in eval
    two = StackedDnn.from_members([net, net])
    two.train()
    out = two(x)
    assert not torch.allclose(out[0], out[1])
    two.eval()
    out = two(x)
    assert torch.equal(out[0], out[1])


def test_checkpoints_without_init_still_load(tmp_path):
    """member*.pt written before DnnConfig.init existed: the missing key takes the default; the weights come
    from the state dict, so the init used to build the network before loading is irrelevant."""
    cfg = DnnConfig(feature_dim=3, left_context=1, right_context=1, hidden_layers=2, hidden_dim=8, num_outputs=4, init="torch")
    torch.manual_seed(7)
    old = FrameDnn(cfg)
    old_config = {k: v for k, v in config_to_dict(cfg).items() if k != "init"}
    torch.save({"state_dict": old.state_dict(), "dnn_config": old_config, "seed": 7, "member": 0}, tmp_path / "member0.pt")
    loaded = load_members(tmp_path)
    assert loaded.config.init == "kaiming" and loaded.seeds == [7]
    for a, b in zip(loaded.member(0).parameters(), old.parameters()):
        assert torch.equal(a, b)
    assert config_from_dict(DnnConfig, old_config) == DnnConfig(**{**old_config, "init": "kaiming"})


def test_help_documents_init_dropout_and_weight_decay_defaults():
    import click

    for cls in (DnnConfig, TrainConfig):
        @click.command()
        @with_config(cls)
        def cmd(config):
            pass

        out = CliRunner().invoke(cmd, ["--help"], terminal_width=400, max_content_width=400).output
        if cls is DnnConfig:
            assert "[kaiming|torch]" in out and "default: kaiming" in out
            assert "Dropout probability" in out and "Default 0: off" in out
        else:
            assert "weight decay" in out and "Default 0: off" in out
    fields = {f.name: f for f in DnnConfig.__dataclass_fields__.values()}
    assert fields["dropout"].default == 0.0 and fields["init"].metadata["choices"] == list(INIT_CHOICES)
    assert TrainConfig().weight_decay == 0.0


# ----------------------------------------------------------------------------------------------
# Real data. Tied-state targets need the whole GMM pipeline (minutes), so this uses real FSDD
# fbank frames (40 log-mel, per-speaker CMVN, 26-frame windows from splice) with the
# utterance's DIGIT as every frame's target (10 classes; the silence at the ends is labelled
# with the digit too, which only caps the reachable accuracy).

SPEAKERS = ("george", "jackson")
TAKES = range(3)


def _read_wav(path: Path) -> tuple:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def fsdd_digit_windows(fsdd_dir: Path):
    from asrdistill.features.cmvn import CmvnStats
    from asrdistill.features.context_window import splice
    from asrdistill.features.fbank import Fbank, FbankConfig, utterance_seed

    fbank = Fbank(FbankConfig())
    utts = []
    for spk in SPEAKERS:
        for digit in range(10):
            for take in TAKES:
                uid = f"{digit}_{spk}_{take}"
                samples, rate = _read_wav(fsdd_dir / "recordings" / f"{uid}.wav")
                utts.append((fbank.extract(samples, rate, seed=utterance_seed(uid)), digit, spk))
    cmvn = CmvnStats()
    for feats, _, spk in utts:
        cmvn.accumulate(spk, feats)
    x = torch.cat([splice(torch.from_numpy(cmvn.apply(f, spk)), 20, 5) for f, _, spk in utts])
    y = torch.cat([torch.full((len(f),), d) for f, d, _ in utts])
    return x, y


def test_paper_preset_learns_on_real_fsdd_frames(fsdd_dir):
    torch.manual_seed(0)
    x, y = fsdd_digit_windows(fsdd_dir)
    assert x.shape[1] == 26 * 40 and x.shape[0] > 2000
    assert x[:, 20 * 40 : 21 * 40].std(0).mean().item() == pytest.approx(1.0, abs=0.05)  # CMVN: unit variance
    net = FrameDnn(preset("paper", num_outputs=10))  # kaiming
    gen = torch.Generator().manual_seed(0)
    held = torch.randperm(len(y), generator=gen)[:256]

    def loss_on_fixed_frames() -> float:
        net.eval()
        with torch.no_grad():
            return F.cross_entropy(net(x[held]), y[held]).item()

    before = loss_on_fixed_frames()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
    net.train()
    for _ in range(20):
        idx = torch.randint(len(y), (64,), generator=gen)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_on_fixed_frames()
    print(f"paper preset (kaiming), real FSDD frames, digit targets: loss {before:.3f} -> {after:.3f} in 20 steps")
    assert before == pytest.approx(math.log(10), abs=0.7)
    assert math.isfinite(after) and after < before - 0.8
