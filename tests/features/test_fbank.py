"""Our vectorized fbank against Kaldi's C++ implementation (kaldi-native-fbank)."""

import numpy as np
import pytest
import soundfile as sf
import torch

from asrdistill.features.fbank import Fbank, FbankConfig, mel_filterbank

knf = pytest.importorskip("kaldi_native_fbank")

# Log-domain agreement with kaldi-native-fbank: float32 FFTs in a different order give
# differences of a few 1e-4 on real speech; anything structural (window, mel bank,
# pre-emphasis, frame count) shows up as errors of 1e-2 or more.
TOL = 2e-3


def knf_fbank(samples, sr, num_bins=40, snip_edges=True, window="povey"):
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = sr
    opts.frame_opts.snip_edges = snip_edges
    opts.frame_opts.window_type = window
    opts.mel_opts.num_bins = num_bins
    f = knf.OnlineFbank(opts)
    f.accept_waveform(sr, np.asarray(samples, dtype=np.float32))
    f.input_finished()
    if f.num_frames_ready == 0:
        return np.zeros((0, num_bins), np.float32)
    return np.stack([f.get_frame(i) for i in range(f.num_frames_ready)])


@pytest.mark.parametrize("snip_edges", [True, False])
def test_matches_kaldi_native_fbank_on_real_fsdd(fsdd_dir, snip_edges):
    files = sorted((fsdd_dir / "recordings").glob("*.wav"))[::50]  # 50 files, all digits and speakers
    fb = Fbank(FbankConfig(dither=0.0, snip_edges=snip_edges))
    worst = 0.0
    for path in files:
        x, sr = sf.read(path, dtype="int16")
        ours, ref = fb.extract(x, sr), knf_fbank(x, sr, snip_edges=snip_edges)
        assert ours.shape == ref.shape, path
        assert ours.shape[0] == fb.config.num_frames(len(x), sr)
        worst = max(worst, float(np.abs(ours - ref).max()))
    assert worst < TOL, worst


@pytest.mark.parametrize("window", ["povey", "hamming", "hanning", "rectangular"])
def test_matches_kaldi_native_fbank_16k_and_windows(window):
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    x = 3000 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 300, t.shape)
    fb = Fbank(FbankConfig(dither=0.0, window_type=window))
    ours, ref = fb.extract(x.astype(np.float32), 16000, scale_to_int16=False), knf_fbank(x, 16000, window=window)
    assert ours.shape == ref.shape == (198, 40)
    assert np.abs(ours - ref).max() < TOL


def test_float_input_is_scaled_like_kaldi_reads_wav(fsdd_dir):
    path = fsdd_dir / "recordings" / "7_jackson_32.wav"
    ints, sr = sf.read(path, dtype="int16")
    floats, _ = sf.read(path, dtype="float32")
    fb = Fbank(FbankConfig(dither=0.0))
    np.testing.assert_allclose(fb.extract(ints, sr), fb.extract(floats, sr), atol=1e-4)


def test_dither_is_seeded():
    x = np.zeros(8000, dtype=np.int16)  # digital silence: dither is all there is
    fb = Fbank(FbankConfig(dither=1.0))
    a, b, c = fb.extract(x, 8000, seed=1), fb.extract(x, 8000, seed=1), fb.extract(x, 8000, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.isfinite(a).all() and a.std() > 0.1


def test_short_input_gives_no_frames_and_frame_counts():
    fb = Fbank(FbankConfig(dither=0.0))
    assert fb.extract(np.zeros(199, np.int16), 8000).shape == (0, 40)
    for n in (200, 279, 280, 4301):
        assert fb.extract(np.ones(n, np.int16), 8000).shape[0] == 1 + (n - 200) // 80
    cfg = FbankConfig(dither=0.0, snip_edges=False)
    for n in (50, 200, 4301):
        assert Fbank(cfg).extract(np.ones(n, np.int16), 8000).shape[0] == (n + 40) // 80 == cfg.num_frames(n, 8000)


def test_too_many_mel_bins_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        mel_filterbank(128, 256, 8000, 20.0, 0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu():
    x = np.random.default_rng(0).normal(0, 1000, 16000).astype(np.float32)
    cpu = Fbank(FbankConfig(dither=0.0)).extract(x, 8000, scale_to_int16=False)
    gpu = Fbank(FbankConfig(dither=0.0), device="cuda").extract(x, 8000, scale_to_int16=False)
    np.testing.assert_allclose(cpu, gpu, atol=1e-3)


@pytest.mark.parametrize("snip_edges", [True, False])
def test_numpy_backend_equals_torch_backend_on_real_fsdd(fsdd_dir, snip_edges):
    """The torch-free backend (deployment) gives the torch backend's features to float32 rounding, and
    imports no torch."""
    import subprocess
    import sys

    files = sorted((fsdd_dir / "recordings").glob("*.wav"))[::100]
    cfg = FbankConfig(dither=0.0, snip_edges=snip_edges)
    ours, ref = Fbank(cfg, backend="numpy"), Fbank(cfg)
    for path in files:
        x, sr = sf.read(path, dtype="float32")
        a, b = ours.extract(x, sr), ref.extract(x, sr)
        assert a.dtype == np.float32 and a.shape == b.shape == (cfg.num_frames(len(x), sr), 40)
        assert np.abs(a - b).max() < TOL, path  # log domain; the FFTs differ in rounding only (as with Kaldi)
    assert ours.extract(np.zeros(10, np.float32), 8000).shape == (0, 40)
    with pytest.raises(ValueError, match="dither"):
        Fbank(FbankConfig(dither=1.0), backend="numpy")
    code = ("import sys; sys.modules['torch'] = None; import numpy as np; "
            "from asrdistill.features.fbank import Fbank, FbankConfig; "
            "print(Fbank(FbankConfig(dither=0.0), backend='numpy').extract(np.ones(800, np.float32), 8000).shape)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "(8, 40)", r.stderr
