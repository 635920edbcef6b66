"""Window perturbations against their formulas."""

import torch

from asrdistill.features.augment import perturb_windows, warp_mel_windows


def test_warp_of_a_ramp_is_the_scaled_ramp():
    d, frames, windows = 8, 3, 50
    x = torch.arange(d, dtype=torch.float32).repeat(windows, frames)  # every frame: channel i holds i
    g = torch.Generator().manual_seed(0)
    y = warp_mel_windows(x, d, 0.2, g).view(windows, frames, d)
    alpha = y[:, 0, 1]  # channel 1 reads position alpha
    assert ((alpha >= 0.8) & (alpha <= 1.2)).all() and alpha.std() > 0.05
    expected = (torch.arange(d, dtype=torch.float32) * alpha[:, None]).clamp(max=d - 1)  # linear interpolation is exact
    torch.testing.assert_close(y, expected[:, None, :].expand(-1, frames, -1))


def test_warp_interpolates_between_channels_and_keeps_shape():
    x = torch.randn(2, 5, 3 * 4)
    g = torch.Generator().manual_seed(1)
    y = warp_mel_windows(x, 4, 0.3, g)
    assert y.shape == x.shape
    assert torch.equal(warp_mel_windows(x, 4, 0.0), x)
    # every output value lies between the two input channels it interpolates, frame by frame
    lo = x.view(-1, 3, 4).min(-1, keepdim=True).values
    hi = x.view(-1, 3, 4).max(-1, keepdim=True).values
    v = y.view(-1, 3, 4)
    assert ((v >= lo - 1e-6) & (v <= hi + 1e-6)).all()


def test_noise_statistics_and_replay():
    x = torch.zeros(4000, 40)
    a = perturb_windows(x, 40, noise=0.5, generator=torch.Generator().manual_seed(3))
    b = perturb_windows(x, 40, noise=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert abs(float(a.mean())) < 0.01 and abs(float(a.std()) - 0.5) < 0.01
