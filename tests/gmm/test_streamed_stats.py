"""GMM statistics accumulated in chunks (issue 15): equal to the whole-array float64 formulas."""

import numpy as np
import torch

from asrdistill.gmm.shards import Shard
from asrdistill.gmm.tree import ContextStats


def test_context_stats_in_chunks_equal_per_context_sums():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 3, size=(103, 4))
    feats = rng.normal(size=(103, 5)).astype(np.float32)
    stats = ContextStats.from_frames(keys, feats, chunk=10)  # 11 chunks, the last one short
    assert len(stats.keys) == len({tuple(k) for k in keys.tolist()})
    for k, n, x, x2 in zip(stats.keys, stats.count, stats.x, stats.x2):
        sel = (keys == k).all(1)
        f = feats[sel].astype(np.float64)
        assert n == sel.sum()
        np.testing.assert_allclose(x, f.sum(0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(x2, (f * f).sum(0), rtol=1e-12, atol=1e-12)
    whole = ContextStats.from_frames(keys, feats, chunk=1000)
    np.testing.assert_allclose(whole.x2, stats.x2, rtol=1e-12)


def test_shard_feature_stats_in_chunks():
    shard = object.__new__(Shard)  # only the feature arrays matter here
    rng = np.random.default_rng(1)
    shard.si_store = torch.from_numpy(rng.normal(size=(77, 6)).astype(np.float32))
    shard.store = shard.si_store * 2 + 1
    for si, feats in ((True, shard.si_store), (False, shard.store)):
        n, s, ss = shard.feature_stats(si, chunk=8)
        f = feats.numpy().astype(np.float64)
        assert n == 77 and s.dtype == torch.float64
        np.testing.assert_allclose(s.numpy(), f.sum(0), rtol=1e-12)
        np.testing.assert_allclose(ss.numpy(), (f * f).sum(0), rtol=1e-12)


def test_context_stats_from_chunks_equal_all_frames_at_once():
    from asrdistill.gmm.tree import _unique_rows

    rng = np.random.default_rng(2)
    keys = rng.integers(0, 6, size=(500, 4))
    feats = rng.normal(size=(500, 3)).astype(np.float32)
    whole = ContextStats.from_frames(keys, feats)
    bounds = [0, 1, 120, 121, 380, 500]  # uneven chunks, one of a single frame
    parts = ContextStats.from_chunks(((keys[a:b], feats[a:b]) for a, b in zip(bounds[:-1], bounds[1:])), 3)
    assert np.array_equal(parts.keys, whole.keys)
    np.testing.assert_array_equal(parts.count, whole.count)
    np.testing.assert_allclose(parts.x, whole.x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(parts.x2, whole.x2, rtol=1e-12, atol=1e-12)
    # the packed unique equals numpy's row-wise unique, and negative keys take numpy's path
    for k in (keys, keys - 3):
        u, inv = _unique_rows(k)
        u2, inv2 = np.unique(k, axis=0, return_inverse=True)
        assert np.array_equal(u, u2) and np.array_equal(inv.reshape(-1), inv2.reshape(-1))


def test_shard_mllt_stats_in_row_chunks_equal_one_call(monkeypatch):
    """Chunks are multiples of accumulate_gmm's own: the same pairs and random draws (rand_prune) as one call."""
    from asrdistill.gmm import shards
    from asrdistill.gmm.diag_gmm import DiagGmmSet
    from asrdistill.gmm.mllt import MlltStats

    g = torch.Generator().manual_seed(3)
    gmm = DiagGmmSet(torch.full((5, 4), 0.25), torch.randn(5, 4, 3, generator=g), torch.rand(5, 4, 3, generator=g) + 0.5)
    shard = object.__new__(Shard)
    shard.si_store = torch.randn(200_000 // 1000 * 171, 3, generator=g)  # 34,200 frames
    n = shard.si_store.shape[0]
    rows = torch.randperm(n, generator=g)[: n - 100]
    pdfs = torch.randint(0, 5, (len(rows),), generator=g)
    weights = torch.where(torch.rand(len(rows), generator=g) < 0.1, 0.0, 1.0).double()
    shard._aligned_frames = lambda w: (None, rows, pdfs, weights)
    monkeypatch.setattr(shards, "ROW_CHUNK", 3 * (32768 // 4))  # several chunks of rows
    got = shard.mllt_stats(gmm.state_dict(), 0.0, rand_prune=0.5, seed=7)
    keep = weights > 0
    ref = MlltStats.zeros(3)
    ref.accumulate_gmm(gmm, shard.si_store[rows[keep]], pdfs[keep], weights[keep], rand_prune=0.5,
                       generator=torch.Generator().manual_seed(7))
    assert got.beta == ref.beta and np.array_equal(got.G, ref.G)
