"""Context windows against a naive per-frame reference."""

import numpy as np
import pytest
import torch

from asrdistill.features.context_window import ContextWindow, gather_context_windows, splice, utterance_bounds


def naive_splice(feats: np.ndarray, left: int, right: int) -> np.ndarray:
    t = feats.shape[0]
    rows = []
    for i in range(t):
        rows.append(np.concatenate([feats[min(max(j, 0), t - 1)] for j in range(i - left, i + right + 1)]))
    return np.stack(rows) if rows else np.zeros((0, (left + 1 + right) * feats.shape[1]), feats.dtype)


@pytest.mark.parametrize("length", [1, 3, 5, 25, 26, 27, 60])
@pytest.mark.parametrize("left,right", [(20, 5), (0, 0), (3, 7)])
def test_splice_matches_naive(length, left, right):
    x = np.random.default_rng(length).normal(size=(length, 4)).astype(np.float32)
    out = splice(torch.from_numpy(x), left, right).numpy()
    np.testing.assert_array_equal(out, naive_splice(x, left, right))


def test_default_window_is_26_frames_target_21st():
    x = torch.arange(50.0)[:, None]  # frame t has value t
    out = ContextWindow()(x)
    assert out.shape == (50, 26)
    assert out[30, 20] == 30  # 21st frame of the window is the target
    assert out[30, 0] == 10 and out[30, 25] == 35
    assert (out[0, :21] == 0).all()  # left edge replicates the first frame


def test_batch_from_many_utterances_equals_per_utterance_splice():
    rng = np.random.default_rng(0)
    lengths = [1, 4, 30, 7, 100, 2, 26]
    utts = [rng.normal(size=(n, 40)).astype(np.float32) for n in lengths]
    store = torch.from_numpy(np.concatenate(utts))
    offsets = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.long)
    idx = torch.from_numpy(rng.permutation(store.shape[0])[:120]).long()
    out = gather_context_windows(store, idx, offsets, 20, 5).numpy()
    reference = np.concatenate([naive_splice(u, 20, 5) for u in utts])
    np.testing.assert_array_equal(out, reference[idx.numpy()])
    start, end = utterance_bounds(offsets, idx)
    for i, s, e in zip(idx.tolist(), start.tolist(), end.tolist()):
        u = int(np.searchsorted(offsets.numpy(), i, side="right") - 1)
        assert (s, e) == (offsets[u].item(), offsets[u + 1].item())


def test_real_features(fsdd_dir):
    from asrdistill.features.fbank import Fbank, FbankConfig
    import soundfile as sf

    feats = []
    for name in ["0_george_0.wav", "3_theo_7.wav", "9_yweweler_49.wav"]:
        x, sr = sf.read(fsdd_dir / "recordings" / name, dtype="int16")
        feats.append(Fbank(FbankConfig(dither=0.0)).extract(x, sr))
    store = torch.from_numpy(np.concatenate(feats))
    offsets = torch.tensor([0] + list(np.cumsum([f.shape[0] for f in feats])))
    out = ContextWindow(20, 5)(store, torch.arange(store.shape[0]), offsets).numpy()
    np.testing.assert_array_equal(out, np.concatenate([naive_splice(f, 20, 5) for f in feats]))


def test_dtype_preserved_and_errors():
    store = torch.randn(10, 3).to(torch.bfloat16)
    out = gather_context_windows(store, torch.tensor([0, 9]), torch.tensor([0, 10]), 2, 1)
    assert out.dtype == torch.bfloat16 and out.shape == (2, 12)
    with pytest.raises(ValueError):
        ContextWindow(-1, 5)
    with pytest.raises(ValueError):
        ContextWindow()(store, torch.tensor([0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu():
    store = torch.randn(500, 40)
    offsets = torch.tensor([0, 10, 200, 500])
    idx = torch.randint(0, 500, (256,))
    cpu = gather_context_windows(store, idx, offsets)
    gpu = gather_context_windows(store.cuda(), idx.cuda(), offsets.cuda())
    torch.testing.assert_close(cpu, gpu.cpu())
