"""The streamed, memory-mapped frame store and the on-the-fly shuffle (issue 15)."""

import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from asrdistill.nnet.frame_store import FrameStore, store_files, target_dtype
from asrdistill.nnet.trainer import ShuffleSampler, hashed_permutation, hard_label_loss

ROOT = Path(__file__).resolve().parents[2]


def write_split(root: Path, lengths, dim=4, num_pdfs=300, seed=0, prefix="x", split="train"):
    """A feature manifest (numpy feature files, stored paths relative to it) and an alignment, as
    ``gmm align`` writes them; returns the per-cut features and pdfs."""
    from lhotse import CutSet, Features, MonoCut, SupervisionSegment
    from lhotse.features.io import NumpyFilesWriter

    from asrdistill.gmm.align import SplitAlignment
    from asrdistill.utils.readers import write_cuts

    rng = np.random.default_rng(seed)
    feats, pdfs, cuts = [], [], []
    root.mkdir(parents=True, exist_ok=True)
    with NumpyFilesWriter(root / "feats") as w:
        for i, t in enumerate(lengths):
            a = rng.normal(size=(t, dim)).astype(np.float32)
            key = w.write(f"c{i}", a)
            f = Features(type="fbank", num_frames=t, num_features=dim, frame_shift=0.01, sampling_rate=16000, start=0,
                         duration=t * 0.01, storage_type=w.name, storage_path=str(root / "feats"), storage_key=key)
            sup = SupervisionSegment(id=f"c{i}", recording_id=f"c{i}", start=0, duration=t * 0.01, speaker=f"s{i % 2}")
            cuts.append(MonoCut(id=f"c{i}", start=0, duration=t * 0.01, channel=0, features=f, supervisions=[sup]))
            feats.append(a)
            pdfs.append(rng.integers(0, num_pdfs, size=t).astype(np.int32))
    write_cuts(CutSet.from_cuts(cuts), root / f"{prefix}_cuts_{split}.jsonl.gz")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    SplitAlignment([c.id for c in cuts], offsets, np.concatenate(pdfs) + 1, np.concatenate(pdfs), num_pdfs).save(
        root / f"{prefix}_ali_{split}.npz")
    return feats, pdfs


def test_target_dtype_is_the_smallest_holding_the_pdfs():
    assert target_dtype(14000) == np.int16 and target_dtype(32768) == np.int16
    assert target_dtype(32769) == np.int32 and target_dtype(2 ** 31 + 1) == np.int64


def test_streamed_store_equals_the_concatenated_features(tmp_path):
    lengths = [7, 30, 1, 12, 25]
    feats, pdfs = write_split(tmp_path, lengths, num_pdfs=20000)
    store = FrameStore.from_alignment(tmp_path, "x", "train")
    ref = np.concatenate(feats)
    files = store_files(tmp_path / "frame_store", "x_train.raw")
    assert store.memory_mapped and store.path == files["feats"] and files["meta"].is_file()
    assert torch.equal(store.feats, torch.from_numpy(ref))
    assert store.offsets.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
    assert store.ids == [f"c{i}" for i in range(len(lengths))] and store.num_classes == 20000
    # targets compact on disk, int64 per batch and in full
    assert store.raw_targets.dtype == torch.int16 and np.load(files["targets"]).dtype == np.int16
    idx = torch.tensor([[0, 5], [40, 74]])
    y = store.target_of(idx)
    assert y.dtype == torch.int64 and y.tolist() == np.concatenate(pdfs)[idx.numpy()].tolist()
    assert torch.equal(store.targets, torch.from_numpy(np.concatenate(pdfs).astype(np.int64)))
    hard_label_loss(torch.zeros(2, 2, 20000), idx, y)  # cross_entropy accepts them
    # no temporary file is left; the data files are the store's size (float32, int16)
    names = sorted(p.name for p in (tmp_path / "frame_store").iterdir())
    assert names == sorted(p.name for p in files.values()), names
    assert files["feats"].stat().st_size - 128 == ref.nbytes and files["targets"].stat().st_size - 128 == ref.shape[0] * 2
    # the same inputs: the store is mapped again, not rebuilt
    mtime = files["feats"].stat().st_mtime_ns
    again = FrameStore.from_alignment(tmp_path, "x", "train")
    assert files["feats"].stat().st_mtime_ns == mtime and torch.equal(again.feats, store.feats)
    # windows of the mapped store equal those of an in-memory store of the same arrays
    mem = FrameStore.from_arrays(feats, store.ids, pdfs)
    frames = torch.arange(store.num_frames)
    torch.testing.assert_close(store.windows(frames, 3, 2), mem.windows(frames, 3, 2), rtol=0, atol=0)
    # 'memory': the same store built in RAM, no files
    ram = FrameStore.from_alignment(tmp_path, "x", "train", store_dir="memory")
    assert ram.path is None and torch.equal(ram.feats, store.feats) and torch.equal(ram.raw_targets, store.raw_targets)


def test_store_with_cmvn_and_chunked_device_copy(tmp_path, monkeypatch):
    from asrdistill.features.cmvn import CmvnStats, compute_cmvn_stats  # noqa: F401
    from asrdistill.features.loading import load_features
    from asrdistill.nnet import frame_store
    from asrdistill.utils.readers import read_cuts

    feats, _ = write_split(tmp_path, [9, 14, 3, 22])
    cuts = read_cuts(tmp_path / "x_cuts_train.jsonl.gz")
    cmvn = compute_cmvn_stats(cuts, progress=False)
    cmvn.save(tmp_path / "cmvn.json")
    store = FrameStore.from_alignment(tmp_path, "x", "train", tmp_path / "cmvn.json")
    ref = np.concatenate([load_features(c, CmvnStats.load(tmp_path / "cmvn.json")) for c in cuts])
    assert store.path.name == "x_train.cmvn.feats.npy"
    np.testing.assert_array_equal(store.feats.numpy(), ref)
    monkeypatch.setattr(frame_store, "COPY_CHUNK", 5)  # several chunks
    half = store.to("cpu", torch.bfloat16)
    assert half.path is None and torch.equal(half.feats, torch.from_numpy(ref).to(torch.bfloat16))
    assert torch.equal(half.raw_targets, store.raw_targets)


def test_stale_store_is_rebuilt_and_a_mismatch_is_an_error(tmp_path):
    write_split(tmp_path, [5, 6, 7], seed=0)
    old = FrameStore.from_alignment(tmp_path, "x", "train")
    old_feats = old.feats.clone()
    del old
    # new features and alignments in the same place (e.g. the alignment stage run again)
    feats, pdfs = write_split(tmp_path, [8, 4, 7], seed=1)
    new = FrameStore.from_alignment(tmp_path, "x", "train")
    assert new.num_frames == 19 and not torch.equal(new.feats[:18], old_feats[:18])
    assert torch.equal(new.feats, torch.from_numpy(np.concatenate(feats)))
    assert torch.equal(new.targets, torch.from_numpy(np.concatenate(pdfs).astype(np.int64)))
    # an alignment whose frame counts disagree with the features: one error naming the cut; nothing is left behind
    from asrdistill.gmm.align import SplitAlignment

    ali = SplitAlignment.load(tmp_path / "x_ali_train.npz")
    ali.offsets = np.array([0, 8, 5 + 8, 19])
    ali.save(tmp_path / "x_ali_train.npz")
    with pytest.raises(ValueError, match="cut c1 has a different number of frames"):
        FrameStore.from_alignment(tmp_path, "x", "train")
    assert not any(".tmp" in p.name for p in (tmp_path / "frame_store").iterdir())
    with pytest.raises(ValueError, match="cut c1"):  # the earlier store is not passed off as this one
        FrameStore.from_alignment(tmp_path, "x", "train")


def test_from_cuts_store_and_unwritable_directory_falls_back_to_memory(tmp_path):
    feats, _ = write_split(tmp_path / "d", [4, 9, 2])
    store = FrameStore.from_cuts(tmp_path / "d" / "x_cuts_train.jsonl.gz")
    assert store.raw_targets is None and store.path == tmp_path / "d" / "frame_store" / "x_cuts_train.raw.feats.npy"
    assert torch.equal(store.feats, torch.from_numpy(np.concatenate(feats)))
    # a store directory that cannot be made (here: under a file) falls back to RAM (logged), the same store
    (tmp_path / "file").write_text("")
    s = FrameStore.from_cuts(tmp_path / "d" / "x_cuts_train.jsonl.gz", store_dir=tmp_path / "file" / "stores")
    assert s.path is None and torch.equal(s.feats, store.feats)


def _open_in_child(root, queue):
    s = FrameStore.from_alignment(root, "x", "train")
    queue.put((s.path.stat().st_ino, float(s.feats.double().sum())))


def test_processes_opening_one_split_build_it_once_and_share_it(tmp_path):
    feats, _ = write_split(tmp_path, [50] * 40)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_open_in_child, args=(tmp_path, q)) for _ in range(3)]
    for p in procs:
        p.start()
    out = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    # the same file (one build under the lock, not one per process), the same frames
    assert len({ino for ino, _ in out}) == 1
    total = float(np.concatenate(feats).astype(np.float64).sum())
    assert all(abs(s - total) < 1e-6 * max(1.0, abs(total)) for _, s in out)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4097])
def test_hashed_permutation_is_a_bijection(n):
    for seed, epoch in ((0, 0), (3, 1)):
        p = hashed_permutation(torch.arange(n), n, seed, epoch)
        assert torch.equal(p.sort().values, torch.arange(n))
    if n >= 64:  # keyed: other seeds and epochs give other orders, not the identity
        a, b, c = (hashed_permutation(torch.arange(n), n, s, e) for s, e in ((0, 0), (1, 0), (0, 1)))
        assert not torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, torch.arange(n))


def test_shuffle_sampler_is_a_function_of_the_step():
    frames = torch.arange(10, 1010) * 3  # e.g. a transfer subset
    s = ShuffleSampler(frames, [5, 6], 64)
    assert s.steps_per_epoch == 15
    epoch0 = torch.cat([s(i) for i in range(15)], dim=1)  # (2, 960): each frame at most once per member
    for row in epoch0:
        assert len(row.unique()) == 960 and bool(torch.isin(row, frames).all())
    assert not torch.equal(epoch0[0], epoch0[1])
    # a new sampler (a restarted run) gives the same batch for any step, and epoch 1 is another order
    again = ShuffleSampler(frames, [5, 6], 64)
    for step in (0, 7, 15, 31):
        assert torch.equal(again(step), s(step))
    assert not torch.equal(s(15), s(0))
    # the positions in the epoch follow the documented permutation
    assert torch.equal(s(2)[1], frames[hashed_permutation(torch.arange(128, 192), 1000, 6, 0)])
    whole = ShuffleSampler(1000, [5, 6], 64)
    assert torch.equal(whole(3), s(3) // 3 - 10)


LOCAL_SGD_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from tests.nnet.synthetic import synthetic_store
from asrdistill.nnet.dnn import DnnConfig
from asrdistill.nnet.ensemble import StackedDnn
from asrdistill.nnet.trainer import TrainConfig, train_stacked
import torch.distributed as dist
torch.set_num_threads(1)
cfg = DnnConfig(feature_dim=5, left_context=2, right_context=1, hidden_layers=2, hidden_dim=16, num_outputs=6)
for name, warmup in zip(sys.argv[2::2], sys.argv[3::2]):  # one or more runs in the same processes
    tc = TrainConfig(num_members=2, batch_size=32, max_steps=30, eval_every=1000, warmup_steps=int(warmup), lr=3e-3,
                     average_every=4, log_every=7)
    model = StackedDnn(cfg, tc.seeds)
    out = sys.argv[1] + "/" + name
    train_stacked(model, synthetic_store(), None, tc, out, progress=False)
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.save(model.state_dict(), out + f"/final_params{{rank}}.pt")
"""


def test_post_local_sgd_with_two_ranks(tmp_path):
    """average_every > 0: DDP during the warmup (so a warmup covering the whole run equals one process), then
    local steps and periodic averaging: the ranks end with the same, averaged models."""
    script = tmp_path / "train.py"
    script.write_text(LOCAL_SGD_SCRIPT.format(root=str(ROOT)))
    one = subprocess.run([sys.executable, str(script), str(tmp_path), "one", "30"], capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-port=29537",
                          str(script), str(tmp_path), "ddp_warmup", "30", "local", "10"], capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    a = torch.load(tmp_path / "one" / "final_params0.pt")
    w = torch.load(tmp_path / "ddp_warmup" / "final_params0.pt")
    l0, l1 = (torch.load(tmp_path / "local" / f"final_params{r}.pt") for r in (0, 1))
    for k in a:
        torch.testing.assert_close(a[k], w[k], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(l0[k], l1[k], rtol=1e-6, atol=1e-7)  # averaged at the end
    assert any(not torch.allclose(a[k], l0[k], rtol=1e-4, atol=1e-5) for k in a)  # local steps did happen


def test_a_shared_store_dir_keeps_the_splits_of_two_alignment_directories_apart(tmp_path):
    fa, _ = write_split(tmp_path / "tri3", [5, 9], seed=3)
    fb, _ = write_split(tmp_path / "tri4", [7, 2, 4], seed=4)
    shared = tmp_path / "stores"
    for _ in range(2):  # the second round maps both again (no rebuild back and forth)
        a = FrameStore.from_alignment(tmp_path / "tri3", "x", "train", store_dir=shared)
        b = FrameStore.from_alignment(tmp_path / "tri4", "x", "train", store_dir=shared)
        assert torch.equal(a.feats, torch.from_numpy(np.concatenate(fa)))
        assert torch.equal(b.feats, torch.from_numpy(np.concatenate(fb)))
    assert a.path.parent == b.path.parent == shared and a.path != b.path
    assert len(list(shared.glob("*.json"))) == 2


def test_evaluation_reads_the_store_dir_the_model_trained_with(tmp_path):
    """An evaluation of a trained model (load_split_for) maps the store its training recorded (store_dir in
    config.yaml), instead of building a second one in the default place."""
    from asrdistill.nnet.ensemble_training import load_split_for

    feats, _ = write_split(tmp_path / "ali", [6, 3])
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text(f"train:\n  cmvn: false\n  store_dir: {tmp_path / 'stores'}\n")
    store = load_split_for(exp, tmp_path / "ali", tmp_path / "ali", "x", "train")
    assert store.path.parent == tmp_path / "stores" and not (tmp_path / "ali" / "frame_store").exists()
    assert torch.equal(store.feats, torch.from_numpy(np.concatenate(feats)))
    other = load_split_for(exp, tmp_path / "ali", tmp_path / "ali", "x", "train", store_dir="memory")
    assert other.path is None  # an explicit store_dir wins
