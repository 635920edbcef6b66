"""fMLLR-adapted features computed on access (issue 15: one float32 copy of a shard's frames)."""

import numpy as np
import torch

from asrdistill.gmm.fmllr import apply_fmllr
from asrdistill.gmm.shards import AdaptedFeatures, PerUtterance


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = [5, 3, 7, 4, 6]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    si = torch.randn(int(offsets[-1]), 4, generator=g)
    utt_speaker = np.array([0, 0, 1, 2, 1])
    transforms = [torch.randn(4, 5, generator=g).double() for _ in range(3)]
    # the reference: the materialized adapted store, one utterance at a time (what the shard kept before)
    ref = torch.cat([apply_fmllr(si[a:b], transforms[utt_speaker[u]]) for u, (a, b) in enumerate(zip(offsets[:-1], offsets[1:]))])
    return AdaptedFeatures(si, offsets, utt_speaker, transforms), ref, offsets


def test_slices_and_rows_equal_the_materialized_store():
    view, ref, offsets = _setup()
    assert view.shape == ref.shape and len(view) == ref.shape[0]
    torch.testing.assert_close(view[:], ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(view[3:17], ref[3:17], rtol=0, atol=1e-6)  # across utterances and speakers
    rows = torch.tensor([20, 0, 9, 9, 14, 2])
    torch.testing.assert_close(view[rows], ref[rows], rtol=0, atol=1e-6)
    for u, f in enumerate(PerUtterance(view, offsets)):  # one utterance: one speaker, bit for bit
        assert torch.equal(f, ref[offsets[u]:offsets[u + 1]])
    assert view[0:0].shape == (0, 4) and view.new_zeros(0, 3).shape == (0, 3)


def test_per_utterance_of_a_tensor_is_its_views():
    si = torch.arange(12.0).view(6, 2)
    per = PerUtterance(si, np.array([0, 2, 6]))
    assert len(per) == 2 and torch.equal(per[1], si[2:6]) and per[0].data_ptr() == si.data_ptr()


def test_a_real_shard_keeps_one_copy_of_its_frames(system):
    """A shard of real FSDD utterances holds its speaker-independent features only: the fbank they come from
    is re-read when the front end changes, fMLLR is applied on access (identity transforms: the same rows)."""
    import dataclasses

    from asrdistill.gmm.features import GmmFeatureConfig
    from asrdistill.gmm.shards import Shard, make_shards
    from asrdistill.utils.readers import read_cuts

    root, _, _ = system
    cuts = root / "f" / "fsdd_cuts_dev.jsonl.gz"
    ids = [c.id for c in read_cuts(cuts)][:12]
    spec = make_shards(cuts, ids, 1, root / "f" / "fsdd_cmvn_dev.json", root / "lang", GmmFeatureConfig())[0]
    shard = Shard(spec)
    frames = int(shard.offsets[-1])
    def arrays():  # the storages of the shard's tensors that hold a row per frame
        return {v.untyped_storage().data_ptr() for v in vars(shard).values() if isinstance(v, torch.Tensor) and v.numel() >= frames}

    assert arrays() == {shard.si_store.untyped_storage().data_ptr()}  # one float32 array of the shard's frames
    si = shard.si_store.clone()
    d = si.shape[1]
    shard.set_fmllr({s: torch.cat([torch.eye(d), torch.zeros(d, 1)], 1).double() for s in set(shard.speakers)})
    assert isinstance(shard.store, AdaptedFeatures)
    torch.testing.assert_close(shard.store[:], si, rtol=0, atol=1e-6)
    assert arrays() == {shard.si_store.untyped_storage().data_ptr()}
    # another front end (fbank read again from the archives), then the first one again: the same features
    shard.set_front_end(dataclasses.replace(GmmFeatureConfig(), delta_order=1))
    assert shard.si_store.shape[1] == d // 3 * 2 and isinstance(shard.store, torch.Tensor)
    shard.set_front_end(GmmFeatureConfig())
    assert torch.equal(shard.si_store, si)
