"""fMLLR (CMLLR) statistics, estimation, application and per-speaker storage."""

import math

import numpy as np
import pytest
import torch

from asrdistill.gmm.diag_gmm import DiagGmmSet
from asrdistill.gmm.fmllr import (
    FmllrStats,
    SpeakerTransforms,
    _update_row,
    apply_fmllr,
    compose_fmllr,
    estimate_fmllr,
    fmllr_auxf,
    fmllr_auxf_gradient,
    fmllr_logdet,
    identity_fmllr,
)


def known_transform_data(n=20000, d=5, g=4, seed=0):
    """Frames x ~ a known diagonal GMM, observed as y = M x + c; true Gaussian of each frame."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=2.0, size=(g, d))
    variances = rng.uniform(0.3, 1.5, size=(g, d))
    comp = rng.integers(0, g, size=n)
    x = means[comp] + rng.normal(size=(n, d)) * np.sqrt(variances[comp])
    # a speaker transform near the identity, as fMLLR transforms are (the auxf is not
    # concave over all of det A > 0: far from I the row updates may find another optimum)
    M = np.diag(rng.uniform(0.7, 1.4, size=d)) + 0.15 * rng.normal(size=(d, d))
    assert np.linalg.det(M) > 0
    c = rng.normal(size=d)
    y = x @ M.T + c
    return torch.from_numpy(y), torch.from_numpy(means[comp]), torch.from_numpy(variances[comp]), M, c, x


def random_gmm(p=3, g=3, d=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(p, g, generator=gen) + 0.1
    w[1, 1:] = 0  # padding: pdf 1 has one component, pdf 2 two
    w[2, 2:] = 0
    w = w / w.sum(1, keepdim=True)
    return DiagGmmSet(w, torch.randn(p, g, d, generator=gen), torch.rand(p, g, d, generator=gen) + 0.3)


def naive_stats(gmm, feats, pdfs, weights, post_feats):
    """Per-frame loops in float64: posteriors on post_feats, stats on feats."""
    w, m, v = gmm.weights.numpy(), gmm.means.numpy(), gmm.variances.numpy()
    d = gmm.dim
    beta, K, G = 0.0, np.zeros((d, d + 1)), np.zeros((d, d + 1, d + 1))
    for t in range(feats.shape[0]):
        p = int(pdfs[t])
        valid = w[p] > 0
        z = post_feats[t].numpy().astype(np.float64)
        logp = np.log(w[p, valid]) - 0.5 * (np.log(2 * np.pi * v[p, valid]) + (z - m[p, valid]) ** 2 / v[p, valid]).sum(1)
        post = np.exp(logp - logp.max())
        post = post / post.sum() * float(weights[t])
        xi = np.append(feats[t].numpy().astype(np.float64), 1.0)
        for gam, mu, var in zip(post, m[p, valid], v[p, valid]):
            beta += gam
            K += gam * np.outer(mu / var, xi)
            for i in range(d):
                G[i] += gam / var[i] * np.outer(xi, xi)
    return beta, K, G


def test_recovers_known_transform():
    y, means, variances, M, c, _ = known_transform_data()
    stats = FmllrStats.zeros(5)
    stats.accumulate(y, means, variances, chunk=3000)  # weight 1, true assignments
    assert stats.beta == pytest.approx(20000)
    W, impr, count = estimate_fmllr(stats)
    Minv = np.linalg.inv(M)
    truth = np.concatenate([Minv, -(Minv @ c)[:, None]], 1)
    np.testing.assert_allclose(W.numpy(), truth, atol=0.1)
    assert impr > 0 and count == pytest.approx(20000)
    # W is the maximum-likelihood estimate: at least as good as the truth on this sample,
    # with a vanishing gradient (relative to the size of the statistics)
    assert fmllr_auxf(stats, W) >= fmllr_auxf(stats, truth)
    assert np.abs(fmllr_auxf_gradient(stats, W)).max() < 1e-3 * stats.beta
    # ... and its error is of the size sampling predicts: with Q the exact log-likelihood
    # (true assignments), err^T (-Hessian) err ~ chi^2 with D (D+1) = 30 degrees of freedom
    eps, hess = 1e-5, np.zeros((30, 30))
    for j in range(30):
        step = np.zeros(30)
        step[j] = eps
        step = step.reshape(5, 6)
        hess[:, j] = ((fmllr_auxf_gradient(stats, W.numpy() + step)
                       - fmllr_auxf_gradient(stats, W.numpy() - step)) / (2 * eps)).ravel()
    err = (W.numpy() - truth).ravel()
    assert err @ (-hess) @ err < 30 + 5 * math.sqrt(2 * 30)
    # adapted features are the originals' distribution: mapping y back gives ~x
    x_hat = apply_fmllr(y, W)
    assert x_hat.dtype == torch.float32 and x_hat.shape == y.shape


def test_auxf_never_decreases_after_any_row_update():
    y, means, variances, *_ = known_transform_data(n=3000, d=6, g=3, seed=1)
    stats = FmllrStats.zeros(6)
    stats.accumulate(y, means, variances, weights=torch.rand(3000, dtype=torch.float64) + 0.5)
    init = identity_fmllr(6)
    values = [fmllr_auxf(stats, init)]
    W, impr, _ = estimate_fmllr(stats, num_iters=10, init=init,
                                callback=lambda it, row, auxf: values.append(auxf))
    assert len(values) == 1 + 10 * 6
    diffs = np.diff(values)
    assert np.all(diffs >= -1e-9 * abs(values[0])), diffs.min()
    assert impr == pytest.approx((values[-1] - values[0]) / stats.beta, rel=1e-9)
    assert fmllr_auxf(stats, W) == pytest.approx(values[-1])
    # the row helper alone maximizes its row: perturbing the result lowers the auxf
    Wn = init.numpy().copy()
    Wn[2] = _update_row(Wn, np.linalg.inv(stats.G[2].numpy()), stats.K[2].numpy(), stats.beta, 2)
    best = fmllr_auxf(stats, Wn)
    assert best > values[0]
    rng = np.random.default_rng(0)
    for _ in range(20):
        Wp = Wn.copy()
        Wp[2] += 1e-3 * rng.normal(size=7)
        assert fmllr_auxf(stats, Wp) <= best


def test_accumulate_gmm_matches_naive_and_halves_add_up():
    gmm = random_gmm()
    gen = torch.Generator().manual_seed(3)
    n = 40
    feats = torch.randn(n, 3, generator=gen)
    post_feats = feats + 0.3 * torch.randn(n, 3, generator=gen)
    pdfs = torch.randint(0, 3, (n,), generator=gen)
    weights = torch.rand(n, generator=gen)
    weights[::7] = 0  # silence frames
    for pf in (None, post_feats):
        stats = FmllrStats.zeros(3)
        ll = stats.accumulate_gmm(gmm, feats, pdfs, weights, post_feats=pf, chunk=16)
        beta, K, G = naive_stats(gmm, feats, pdfs, weights, feats if pf is None else pf)
        assert stats.beta == pytest.approx(beta, rel=1e-5)
        np.testing.assert_allclose(stats.K.numpy(), K, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(stats.G.numpy(), G, rtol=1e-4, atol=1e-5)
        ref_ll = (gmm.log_likelihoods_of(feats if pf is None else pf, pdfs)[0].double() * weights.double()).sum()
        assert ll == pytest.approx(float(ref_ll), rel=1e-5)
    # two halves + add_ == one pass
    whole = FmllrStats.zeros(3)
    whole.accumulate_gmm(gmm, feats, pdfs, weights)
    a, b = FmllrStats.zeros(3), FmllrStats.zeros(3)
    a.accumulate_gmm(gmm, feats[:17], pdfs[:17], weights[:17])
    b.accumulate_gmm(gmm, feats[17:], pdfs[17:], weights[17:])
    a.add_(b)
    assert a.beta == pytest.approx(whole.beta)
    torch.testing.assert_close(a.K, whole.K)
    torch.testing.assert_close(a.G, whole.G)
    # a matching alignment model gives the posteriors: equal to using post_feats with it
    other = random_gmm(seed=5)
    with_model = FmllrStats.zeros(3)
    with_model.accumulate_gmm(gmm, feats, pdfs, weights, post_gmm=other)
    assert with_model.beta == pytest.approx(whole.beta, rel=1e-5)  # posteriors sum to the weights
    assert not torch.allclose(with_model.K, whole.K)


def test_min_count_returns_init_and_identity():
    y, means, variances, *_ = known_transform_data(n=100, d=4, g=2)
    stats = FmllrStats.zeros(4)
    stats.accumulate(y, means, variances)
    W, impr, count = estimate_fmllr(stats)  # default min_count 500 > 100 frames
    torch.testing.assert_close(W, identity_fmllr(4))
    assert impr == 0.0 and count == pytest.approx(100)
    W2, impr2, _ = estimate_fmllr(stats, min_count=50)
    assert impr2 > 0 and not torch.allclose(W2, identity_fmllr(4))
    # an empty accumulator with min_count 0 must not crash
    W0, i0, c0 = estimate_fmllr(FmllrStats.zeros(4), min_count=0)
    torch.testing.assert_close(W0, identity_fmllr(4))
    assert (i0, c0) == (0.0, 0.0)


def test_apply_compose_logdet():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, generator=gen)
    W1 = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    W2 = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    ref = x.double() @ W1[:, :3].T + W1[:, 3]
    torch.testing.assert_close(apply_fmllr(x, W1), ref.float())
    torch.testing.assert_close(apply_fmllr(x, compose_fmllr(W2, W1)), apply_fmllr(apply_fmllr(x, W1), W2),
                               rtol=1e-5, atol=1e-5)
    assert fmllr_logdet(W1) == pytest.approx(math.log(abs(np.linalg.det(W1[:, :3].numpy()))))
    with pytest.raises(ValueError):
        apply_fmllr(torch.randn(5, 4), W1)


def test_speaker_transforms_round_trip_and_errors(tmp_path):
    gen = torch.Generator().manual_seed(0)
    trans = SpeakerTransforms({"spk-a": torch.randn(4, 5, generator=gen, dtype=torch.float64), "spk b/é": identity_fmllr(4)})
    path = tmp_path / "trans.npz"
    trans.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trans.npz"]  # no temporary left behind
    back = SpeakerTransforms.load(path)
    assert back.speakers() == trans.speakers() and back.dim == 4
    for spk in trans:
        torch.testing.assert_close(back[spk], trans[spk])
    x = torch.randn(6, 4, generator=gen)
    torch.testing.assert_close(back.apply(x, "spk-a"), apply_fmllr(x, trans["spk-a"]))
    with pytest.raises(KeyError, match=r"spk-zzz.*trans\.npz"):
        back.apply(x, "spk-zzz")
    # a file name without .npz is kept as given
    other = tmp_path / "trans.1"
    trans.save(other)
    assert other.is_file() and len(SpeakerTransforms.load(other)) == 2
    # empty container round trip
    SpeakerTransforms().save(tmp_path / "empty.npz")
    assert len(SpeakerTransforms.load(tmp_path / "empty.npz")) == 0
    # errors name the file
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="corrupt.npz"):
        SpeakerTransforms.load(bad)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated.npz"):
        SpeakerTransforms.load(truncated)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        SpeakerTransforms.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError):
        trans["bad"] = torch.zeros(3, 4)  # wrong dimension
    # SAT-style composition of incremental transforms
    inc = SpeakerTransforms({s: identity_fmllr(4) * 2 for s in trans})
    composed = SpeakerTransforms(dict(trans.items())).compose_(inc)
    torch.testing.assert_close(composed.apply(x, "spk-a"), 2 * trans.apply(x, "spk-a"), rtol=1e-5, atol=1e-5)
