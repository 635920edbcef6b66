"""MLLT: monotone row updates, decorrelation of rotated Gaussians, GMM accumulation vs a naive loop."""

import math

import numpy as np
import pytest
import torch

from asrdistill.gmm.diag_gmm import DiagGmmSet
from asrdistill.gmm.mllt import (MlltStats, estimate_mllt, mllt_objective, mllt_row_update,
                                 transform_gmm_means)


def rotated_gaussians(dim=4, num_classes=3, n_per=4000, seed=0):
    """Classes diagonal in the basis z; observed x = R z (R a random rotation)."""
    rng = np.random.default_rng(seed)
    rot, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    means = rng.normal(scale=3.0, size=(num_classes, dim))
    stds = rng.uniform(0.3, 3.0, size=(num_classes, dim))
    classes = np.repeat(np.arange(num_classes), n_per)
    z = means[classes] + stds[classes] * rng.normal(size=(len(classes), dim))
    x = z @ rot.T
    return x, classes


def diagonal_model(x, classes):
    """Per-class sample means and diagonal variances in the (unrotated) observed basis."""
    k = classes.max() + 1
    mu = np.stack([x[classes == c].mean(0) for c in range(k)])
    var = np.stack([x[classes == c].var(0) for c in range(k)])
    return mu, var


def off_diagonal_energy(x, classes, A):
    """Sum over classes of squared off-diagonal correlations of A x."""
    total = 0.0
    for c in range(classes.max() + 1):
        cov = np.cov((x[classes == c] @ A.T).T)
        s = np.sqrt(np.diag(cov))
        r = cov / np.outer(s, s)
        total += float((r ** 2).sum() - (np.diag(r) ** 2).sum())
    return total


def rotated_stats(seed=0):
    x, classes = rotated_gaussians(seed=seed)
    mu, var = diagonal_model(x, classes)
    stats = MlltStats.zeros(4).accumulate(x, mu[classes], var[classes], np.ones(len(x)))
    return x, classes, stats


def test_accumulate_matches_definition_and_adds_up():
    rng = np.random.default_rng(5)
    x, mu, var = rng.normal(size=(50, 3)), rng.normal(size=(50, 3)), rng.uniform(0.5, 2, size=(50, 3))
    w = rng.uniform(0, 1, size=50)
    stats = MlltStats.zeros(3).accumulate(torch.from_numpy(x), mu, var, w)
    d = x - mu
    ref = np.einsum("n,ni,nj,nk->ijk", w, 1 / var, d, d)
    np.testing.assert_allclose(stats.G, ref, rtol=1e-12)
    assert stats.beta == pytest.approx(w.sum())
    parts = MlltStats.zeros(3).accumulate(x[:20], mu[:20], var[:20], w[:20])
    parts.add_(MlltStats.zeros(3).accumulate(x[20:], mu[20:], var[20:], w[20:]))
    np.testing.assert_allclose(parts.G, stats.G, rtol=1e-12)
    assert parts.beta == pytest.approx(stats.beta)


def test_every_row_update_raises_the_objective():
    _, _, stats = rotated_stats()
    A = np.eye(4)
    objf = mllt_objective(stats, A)
    for _ in range(5):
        for row in range(4):
            change = mllt_row_update(stats, A, row)
            new = mllt_objective(stats, A)
            assert new >= objf - 1e-9 * abs(objf)
            assert change == pytest.approx(new - objf, rel=1e-6, abs=1e-6)
            objf = new


def test_estimate_mllt_decorrelates_rotated_gaussians():
    x, classes, stats = rotated_stats(seed=1)
    A, improvement = estimate_mllt(stats, num_iters=50)
    assert improvement > 0
    assert improvement == pytest.approx(mllt_objective(stats, A) - mllt_objective(stats, np.eye(4)), rel=1e-8)
    before = off_diagonal_energy(x, classes, np.eye(4))
    after = off_diagonal_energy(x, classes, A)
    assert after < 0.02 * before, (before, after)
    # more sweeps from the result: (almost) nothing left to gain
    _, more = estimate_mllt(stats, num_iters=5, init=A)
    assert 0 <= more < 1e-3 * improvement


def test_mllt_model_is_more_likely_after_reestimation():
    """Diagonal ML model in the MLLT space (plus the Jacobian) beats the one in the original space."""
    x, classes, stats = rotated_stats(seed=2)
    A, _ = estimate_mllt(stats, num_iters=30)
    y = x @ A.T

    def total_ll(feats):
        f = torch.from_numpy(feats)
        k = classes.max() + 1
        onehot = torch.nn.functional.one_hot(torch.from_numpy(classes), k).double()
        gmm = DiagGmmSet.from_stats(onehot.sum(0), onehot.T @ f, onehot.T @ (f * f), torch.full((4,), 1e-6))
        return float(gmm.log_likelihoods_of(f.float(), torch.from_numpy(classes))[0].double().sum())

    gain = total_ll(y) + len(x) * math.log(abs(np.linalg.det(A))) - total_ll(x)
    assert gain > 0.05 * len(x)


def random_gmm(p=4, g=3, d=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(p, g, generator=gen) + 0.1
    w[1, 2:] = 0  # padding
    w[3, 1:] = 0
    w = w / w.sum(1, keepdim=True)
    return DiagGmmSet(w, torch.randn(p, g, d, generator=gen), torch.rand(p, g, d, generator=gen) + 0.3)


def test_accumulate_gmm_matches_naive_per_frame():
    gmm = random_gmm()
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(60, 3, generator=gen)
    pdfs = torch.randint(0, gmm.num_pdfs, (60,), generator=gen)
    weights = torch.rand(60, generator=gen)
    weights[:5] = 0  # e.g. silence
    stats = MlltStats.zeros(3)
    total_ll = stats.accumulate_gmm(gmm, feats, pdfs, weights=weights, max_pairs=10)  # chunks of 3 frames

    w_, m_, v_ = gmm.weights.numpy(), gmm.means.numpy(), gmm.variances.numpy()
    G = np.zeros((3, 3, 3))
    beta = ref_ll = 0.0
    for t in range(60):
        p, x = int(pdfs[t]), feats[t].double().numpy()
        valid = np.nonzero(w_[p] > 0)[0]
        comp = np.array([math.log(w_[p, k])
                         - 0.5 * np.sum(np.log(2 * math.pi * v_[p, k]) + (x - m_[p, k]) ** 2 / v_[p, k])
                         for k in valid])
        ll = np.logaddexp.reduce(comp)
        ref_ll += float(weights[t]) * ll
        for k, post in zip(valid, np.exp(comp - ll)):
            gamma = float(weights[t]) * post
            d = x - m_[p, k]
            G += gamma * np.outer(d, d)[None] / v_[p, k][:, None, None]
            beta += gamma
    np.testing.assert_allclose(stats.G, G, rtol=1e-4, atol=1e-5)
    assert stats.beta == pytest.approx(beta, rel=1e-5)
    assert total_ll == pytest.approx(ref_ll, rel=1e-5)
    # chunking does not matter
    again = MlltStats.zeros(3)
    again.accumulate_gmm(gmm, feats, pdfs, weights=weights)
    np.testing.assert_allclose(again.G, stats.G, rtol=1e-10)


def test_transform_gmm_means():
    gmm = random_gmm()
    A = np.random.default_rng(0).normal(size=(3, 3))
    new = transform_gmm_means(gmm, A)
    torch.testing.assert_close(new.means, gmm.means @ torch.from_numpy(A).T)
    torch.testing.assert_close(new.variances, gmm.variances)
    torch.testing.assert_close(new.weights, gmm.weights)
    assert new.means.data_ptr() != gmm.means.data_ptr()
    affine = np.concatenate([A, np.ones((3, 1))], axis=1)
    torch.testing.assert_close(transform_gmm_means(gmm, affine).means, new.means + 1)
    with pytest.raises(ValueError):
        transform_gmm_means(gmm, np.eye(4))


def test_estimate_mllt_errors():
    with pytest.raises(ValueError, match="empty"):
        estimate_mllt(MlltStats.zeros(3))
    _, _, stats = rotated_stats()
    with pytest.raises(ValueError, match="nonsingular"):
        estimate_mllt(stats, init=np.zeros((4, 4)))
    bad = MlltStats.zeros(2).accumulate(np.ones((30, 2)), np.ones((30, 2)), np.ones((30, 2)), np.ones(30))
    with pytest.raises(ValueError, match="positive definite"):
        estimate_mllt(bad)


def test_rand_prune_is_unbiased():
    gmm = random_gmm()
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(4000, 3, generator=gen)
    pdfs = torch.randint(0, gmm.num_pdfs, (4000,), generator=gen)
    exact = MlltStats.zeros(3)
    exact.accumulate_gmm(gmm, feats, pdfs)
    pruned = MlltStats.zeros(3)
    pruned.accumulate_gmm(gmm, feats, pdfs, rand_prune=0.5, generator=torch.Generator().manual_seed(0))
    assert pruned.beta == pytest.approx(exact.beta, rel=0.03)
    assert np.linalg.norm(pruned.G - exact.G) < 0.05 * np.linalg.norm(exact.G)
    assert not np.allclose(pruned.G, exact.G)
