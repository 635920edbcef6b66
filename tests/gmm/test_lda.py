"""LDA against a naive generalized-eigenproblem reference; splicing and affine transforms."""

import logging

import numpy as np
import pytest
import torch

from asrdistill.gmm.lda import LdaStats, apply_affine, compose_affine, estimate_lda, splice_frames


def make_data(num_classes=5, dim=6, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    class_means = rng.normal(scale=2.0, size=(num_classes, dim))
    mix = rng.normal(size=(dim, dim))
    classes = rng.integers(0, num_classes, size=n)
    x = class_means[classes] + rng.normal(size=(n, dim)) @ mix.T + 0.3 * rng.normal(size=(n, dim))
    weights = rng.uniform(0.2, 1.5, size=n)
    return x, classes, weights


def naive_covariances(x, classes, weights, num_classes):
    """Weighted total / between / within covariances straight from the frames."""
    n = weights.sum()
    mean = (weights[:, None] * x).sum(0) / n
    xc = x - mean
    total = (weights[:, None] * xc).T @ xc / n
    within = np.zeros_like(total)
    for c in range(num_classes):
        sel = classes == c
        wc = weights[sel]
        mc = (wc[:, None] * x[sel]).sum(0) / wc.sum()
        d = x[sel] - mc
        within += (wc[:, None] * d).T @ d
    within /= n
    return mean, total, total - within, within


def reference_lda(between, within, dim):
    """B v = lambda W v, v^T W v = 1, via the symmetric square root of W (not Cholesky)."""
    evals, evecs = np.linalg.eigh(within)
    w_inv_sqrt = evecs @ np.diag(evals ** -0.5) @ evecs.T
    lam, u = np.linalg.eigh(w_inv_sqrt @ between @ w_inv_sqrt)
    order = np.argsort(lam)[::-1][:dim]
    return lam[order], (w_inv_sqrt @ u[:, order]).T


def test_lda_matches_generalized_eigenproblem():
    x, classes, weights = make_data()
    stats = LdaStats.zeros(5, 6).accumulate(torch.from_numpy(x), torch.from_numpy(classes), weights)
    mean, total, between, within = naive_covariances(x, classes, weights, 5)
    ours = stats.covariances()
    for a, b in zip(ours, (mean, total, between, within)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)

    lda = estimate_lda(stats, dim=4)
    assert lda.shape == (4, 7)
    a, b = lda[:, :6], lda[:, 6]
    np.testing.assert_array_equal(b, 0.0)
    lam_ref, v_ref = reference_lda(between, within, 4)
    proj_between = a @ between @ a.T
    np.testing.assert_allclose(np.diag(proj_between), lam_ref, rtol=1e-8)
    np.testing.assert_allclose(proj_between, np.diag(lam_ref), atol=1e-8 * lam_ref[0])
    assert np.all(np.diff(lam_ref) < 0)
    np.testing.assert_allclose(a @ within @ a.T, np.eye(4), atol=1e-9)
    # eigenvalues are distinct: each row is the reference eigenvector up to its sign
    signs = np.sign(np.sum(a * v_ref, axis=1))
    np.testing.assert_allclose(a, signs[:, None] * v_ref, rtol=1e-6, atol=1e-8)


def test_projected_frames_have_identity_within_and_zero_mean_with_offset():
    x, classes, weights = make_data(seed=1)
    stats = LdaStats.zeros(5, 6).accumulate(x, classes, weights)
    lda = estimate_lda(stats, dim=3, remove_offset=True)
    y = apply_affine(torch.from_numpy(x), lda).double().numpy()
    mean, total, between, within = naive_covariances(y, classes, weights, 5)
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(within, np.eye(3), atol=1e-5)
    off = between - np.diag(np.diag(between))
    assert np.abs(off).max() < 1e-5 * between.max()
    assert np.all(np.diff(np.diag(between)) < 0)


def test_accumulate_in_parts_equals_one_pass():
    x, classes, weights = make_data(seed=2)
    one = LdaStats.zeros(5, 6).accumulate(x, classes, weights)
    first = LdaStats.zeros(5, 6).accumulate(x[:1000], classes[:1000], weights[:1000])
    second = LdaStats.zeros(5, 6).accumulate(torch.from_numpy(x[1000:]), classes[1000:],
                                            torch.from_numpy(weights[1000:]))
    both = first.add_(second)
    for name in ("count", "sum", "scatter"):
        np.testing.assert_allclose(getattr(both, name), getattr(one, name), rtol=1e-12, atol=1e-9)
    unweighted = LdaStats.zeros(5, 6).accumulate(x, classes)
    np.testing.assert_allclose(unweighted.count, np.bincount(classes, minlength=5))


def test_lda_errors():
    x, classes, _ = make_data(seed=3)
    stats = LdaStats.zeros(5, 6).accumulate(x, classes)
    with pytest.raises(ValueError, match="input dimension"):
        estimate_lda(stats, dim=7)
    with pytest.raises(ValueError, match="between-class"):
        estimate_lda(stats, dim=5)
    assert estimate_lda(stats, dim=6, allow_large_dim=True).shape == (6, 7)
    one_class = LdaStats.zeros(5, 6).accumulate(x, np.zeros(len(x), dtype=int))
    with pytest.raises(ValueError, match="at least 2 classes"):
        estimate_lda(one_class, dim=1)
    with pytest.raises(ValueError, match="class ids"):
        LdaStats.zeros(5, 6).accumulate(x, classes + 1)
    with pytest.raises(ValueError, match="empty"):
        LdaStats.zeros(5, 6).covariances()


def test_constant_dimension_gets_a_ridge(caplog):
    x, classes, _ = make_data(seed=4)
    x[:, 2] = 1.5  # W is singular
    stats = LdaStats.zeros(5, 6).accumulate(x, classes)
    with caplog.at_level(logging.WARNING, logger="asrdistill.gmm.lda"):
        lda = estimate_lda(stats, dim=3)
    assert "ridge" in caplog.text
    assert np.all(np.isfinite(lda))
    _, _, between, within = stats.covariances()
    a = lda[:, :6]
    np.testing.assert_allclose(a @ within @ a.T, np.eye(3), atol=1e-4)


@pytest.mark.parametrize("t,left,right", [(9, 3, 3), (2, 3, 1), (1, 0, 2), (5, 0, 0)])
def test_splice_matches_loop(t, left, right):
    feats = torch.randn(t, 4)
    ref = torch.zeros(t, 4 * (left + right + 1))
    for i in range(t):
        for k, j in enumerate(range(i - left, i + right + 1)):
            ref[i, 4 * k : 4 * (k + 1)] = feats[min(max(j, 0), t - 1)]
    torch.testing.assert_close(splice_frames(feats, left, right), ref, rtol=0, atol=0)


def test_apply_and_compose_affine():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 5, generator=gen, dtype=torch.float64)
    lin = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    aff = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    y = apply_affine(x, lin)
    assert y.dtype == torch.float32 and y.shape == (20, 3)
    np.testing.assert_allclose(y.numpy(), (x @ lin.T).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(apply_affine(x, aff.numpy()).numpy(), (x @ aff[:, :5].T + aff[:, 5]).numpy(),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        apply_affine(x, torch.zeros(3, 7))
    outer_lin = np.random.default_rng(0).normal(size=(2, 3))
    outer_aff = np.random.default_rng(1).normal(size=(2, 4))
    for outer in (outer_lin, outer_aff):
        for inner, affine in ((lin, False), (aff, True)):
            composed = compose_affine(outer, inner.numpy(), inner_is_affine=affine)
            np.testing.assert_allclose(apply_affine(x, composed).numpy(),
                                       apply_affine(apply_affine(x, inner), outer).numpy(), rtol=1e-4, atol=1e-4)
