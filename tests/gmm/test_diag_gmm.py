"""Vectorized GMMs against Kaldi's per-frame values and naive statistics."""

import numpy as np
import pytest
import torch

from asrdistill.gmm.diag_gmm import DiagGmmSet, GmmStats

khg = pytest.importorskip("kaldi_hmm_gmm")


def random_gmm(p=6, g=4, d=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.rand(p, g, generator=gen) + 0.1
    w[1, 2:] = 0  # pdf 1 has 2 components: padding
    w[3, 1:] = 0
    w = w / w.sum(1, keepdim=True)
    return DiagGmmSet(w, torch.randn(p, g, d, generator=gen), torch.rand(p, g, d, generator=gen) + 0.3)


def test_log_likelihoods_equal_kaldi_per_frame():
    gmm = random_gmm()
    x = torch.randn(40, 5) * 1.5
    ours = gmm.log_likelihoods(x, chunk=7).numpy()  # chunking must not matter
    am = gmm.to_kaldi()
    ref = np.array([[am.log_likelihood(p, x[t].numpy()) for p in range(gmm.num_pdfs)] for t in range(40)])
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-3)


def test_accumulate_and_update_match_naive_em():
    gmm = random_gmm()
    x = torch.randn(300, 5, dtype=torch.float64)
    pdfs = torch.randint(0, gmm.num_pdfs, (300,))
    stats = GmmStats.zeros(gmm.num_pdfs, gmm.max_gauss, gmm.dim)
    gmm.accumulate(x.float(), pdfs, stats, chunk=64)
    # naive: per frame, posteriors over its pdf's valid components
    w, m, v = gmm.weights.numpy(), gmm.means.numpy(), gmm.variances.numpy()
    occ = np.zeros_like(w)
    sx = np.zeros_like(m)
    for t in range(300):
        p = int(pdfs[t])
        comps = np.nonzero(w[p] > 0)[0]
        ll = np.array([np.log(w[p, c]) - 0.5 * np.sum(np.log(2 * np.pi * v[p, c]) + (x[t].numpy() - m[p, c]) ** 2 / v[p, c])
                       for c in comps])
        post = np.exp(ll - ll.max())
        post /= post.sum()
        occ[p, comps] += post
        sx[p, comps] += post[:, None] * x[t].numpy()[None, :]
    np.testing.assert_allclose(stats.occ.numpy(), occ, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats.x.numpy(), sx, rtol=1e-4, atol=1e-5)
    assert stats.frames == 300
    new = DiagGmmSet(gmm.weights.clone(), gmm.means.clone(), gmm.variances.clone())
    new.update(stats, min_gaussian_occupancy=0.0, min_gaussian_weight=0.0, var_floor=torch.full((5,), 1e-6))
    valid = w > 0
    np.testing.assert_allclose(new.weights.numpy()[valid[:, : new.max_gauss]],
                               (occ / occ.sum(1, keepdims=True))[valid], rtol=1e-4)


def test_mix_up_allocates_by_occupancy_and_keeps_likelihood_finite():
    gmm = DiagGmmSet.single_gaussian(4, torch.zeros(3), torch.ones(3))
    occ = torch.tensor([1000.0, 100.0, 10.0, 0.0])
    total = gmm.mix_up(occ, 12, power=1.0, min_count=20.0)
    n = gmm.num_gauss().tolist()
    assert total == sum(n) and n[0] > n[1] >= 1 and n[2] == 1 and n[3] == 1  # 10 frames: no split (min_count)
    assert torch.allclose(gmm.weights.sum(1), torch.ones(4, dtype=torch.float64))
    assert torch.isfinite(gmm.log_likelihoods(torch.randn(5, 3))).all()


def test_removal_of_light_gaussians_keeps_one_per_pdf():
    gmm = random_gmm()
    stats = GmmStats.zeros(gmm.num_pdfs, gmm.max_gauss, gmm.dim)
    stats.occ[0, 0] = 100.0
    stats.x[0, 0] = 100.0
    stats.x2[0, 0] = 300.0
    info = gmm.update(stats, min_gaussian_occupancy=10.0, min_gaussian_weight=1e-3)
    assert gmm.num_gauss()[0] == 1 and info["removed"] == 3 and info["pdfs_without_data"] == gmm.num_pdfs - 1
    assert torch.allclose(gmm.means[0, 0], torch.ones(5, dtype=torch.float64))
