"""Host memory and time per frame of the corpus-sized stages, at growing corpus sizes (issue 15).

Synthetic features (40 dims, stored as numpy feature files through a lhotse manifest, as
``asrdistill features`` stores them) and alignments (``gmm align``'s npz, ``--pdfs`` tied states)
of 1, 4, 16 ... million frames go through:

* ``build``: :meth:`FrameStore.from_alignment` from scratch (the streamed, memory-mapped store);
* ``build_old``: the previous build (per-cut arrays, ``np.concatenate``, ``astype``), for comparison;
* ``train``: ``--steps`` steps of :func:`train_stacked` (2 members, 2 x 256 hidden, ``--pdfs`` outputs)
  on the memory-mapped store, as many steps at every size (a slice of an epoch);
* ``cache``: :meth:`CachedTeacher.build` (top-10) over every frame, then ``save`` (a small teacher:
  the cache's size depends on k, not on the network);
* ``gmm``: one EM pass over every frame of the store in chunks: :meth:`DiagGmmSet.accumulate`
  (4 Gaussians per pdf) and ``update``, the global feature statistics
  (:meth:`Shard.feature_stats`) and the tree's context statistics
  (:meth:`ContextStats.from_chunks`, as :meth:`Shard.tree_stats` accumulates them).

Each measurement runs in a fresh process (one thread). Memory is read from ``/proc/self/status``
every 20 ms: the peak of the private memory (``RssAnon``: what the process itself holds) and the
peak of the file pages it maps (``RssFile``: the memory-mapped store's pages, in the page cache,
shared by every process mapping it and reclaimable), minus the same figures of a process that
only imports the modules. Bytes per frame = that difference / frames.

    nice -n 10 python benchmarks/bench_scale.py --sizes 1,4,16 --out /tmp/bench_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIM = 40
FRAMES_PER_CUT = 1200  # 12 s utterances, about LibriSpeech's mean
LIBRISPEECH_960H_FRAMES = 345.6e6


class MemoryWatch:
    """Peaks of RssAnon / RssFile of this process, sampled every ``period`` seconds."""

    def __init__(self, period: float = 0.02):
        self.peak = {"RssAnon": 0, "RssFile": 0, "VmHWM": 0}
        self.period, self._stop = period, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":")[0]
                if key in self.peak:
                    self.peak[key] = max(self.peak[key], int(line.split()[1]) * 1024)

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.period)

    def __enter__(self):
        self._thread.start()
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        self._stop.set()
        self._thread.join()
        self.sample()


def make_data(d: Path, frames: int, pdfs: int, seed: int = 0) -> None:
    import numpy as np
    from lhotse import CutSet, Features, MonoCut, SupervisionSegment
    from lhotse.features.io import NumpyFilesWriter

    from asrdistill.gmm.align import SplitAlignment
    from asrdistill.utils.readers import write_cuts

    rng = np.random.default_rng(seed)
    lengths = []
    left = frames
    while left > 0:
        t = min(left, int(rng.integers(FRAMES_PER_CUT // 2, FRAMES_PER_CUT * 3 // 2)))
        lengths.append(t)
        left -= t
    cuts = []
    d.mkdir(parents=True, exist_ok=True)
    with NumpyFilesWriter(d / "feats") as w:
        for i, t in enumerate(lengths):
            key = w.write(f"u{i}", rng.standard_normal((t, DIM), dtype=np.float32))
            f = Features(type="fbank", num_frames=t, num_features=DIM, frame_shift=0.01, sampling_rate=16000, start=0,
                         duration=t * 0.01, storage_type=w.name, storage_path=str(d / "feats"), storage_key=key)
            sup = SupervisionSegment(id=f"u{i}", recording_id=f"u{i}", start=0, duration=t * 0.01, speaker=f"s{i % 50}")
            cuts.append(MonoCut(id=f"u{i}", start=0, duration=t * 0.01, channel=0, features=f, supervisions=[sup]))
    write_cuts(CutSet.from_cuts(cuts), d / "bench_cuts_train.jsonl.gz")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    p = rng.integers(0, pdfs, size=frames).astype(np.int32)
    SplitAlignment([c.id for c in cuts], offsets, p + 1, p, pdfs).save(d / "bench_ali_train.npz")


def run_stage(stage: str, d: Path, args) -> dict:
    """One measurement (in this process)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from asrdistill.gmm.diag_gmm import DiagGmmSet, GmmStats
    from asrdistill.gmm.shards import Shard
    from asrdistill.gmm.tree import ContextStats
    from asrdistill.nnet.dnn import DnnConfig
    from asrdistill.nnet.ensemble import StackedDnn
    from asrdistill.nnet.frame_store import FrameStore
    from asrdistill.nnet.teachers import CachedTeacher, OnlineTeacher
    from asrdistill.nnet.trainer import TrainConfig, train_stacked

    out = {"stage": stage}
    if stage == "baseline":
        with MemoryWatch() as mem:
            pass
    elif stage == "build":
        shutil.rmtree(d / "frame_store", ignore_errors=True)
        with MemoryWatch() as mem:
            store = FrameStore.from_alignment(d, "bench", "train")
        out["frames"] = store.num_frames
        out["store_bytes"] = sum(p.stat().st_size for p in (d / "frame_store").glob("*.npy"))
    elif stage == "build_old":
        from asrdistill.features.loading import load_features
        from asrdistill.gmm.align import SplitAlignment
        from asrdistill.utils.readers import read_cuts

        with MemoryWatch() as mem:
            ali = SplitAlignment.load(d / "bench_ali_train.npz")
            cuts = read_cuts(d / "bench_cuts_train.jsonl.gz")
            feats = [load_features(c) for c in cuts]
            store = FrameStore.from_arrays(feats, [c.id for c in cuts])
            del feats
            store.targets = torch.from_numpy(ali.pdfs.astype(np.int64))
        out["frames"] = store.num_frames
        out["store_bytes"] = store.feats.numel() * 4 + store.num_frames * 8
    elif stage == "train":
        store = FrameStore.from_alignment(d, "bench", "train")
        cfg = DnnConfig(feature_dim=DIM, hidden_layers=2, hidden_dim=256, num_outputs=args.pdfs)
        tc = TrainConfig(num_members=2, batch_size=256, max_steps=args.steps, warmup_steps=10, eval_every=10 ** 9,
                         checkpoint_every=10 ** 9, device="cpu")
        model = StackedDnn(cfg, tc.seeds)
        with MemoryWatch() as mem:
            train_stacked(model, store, None, tc, d / "exp_train", progress=False)
        out["frames"] = store.num_frames
        out["trained_frames"] = args.steps * tc.batch_size * tc.num_members
        shutil.rmtree(d / "exp_train", ignore_errors=True)
    elif stage == "cache":
        store = FrameStore.from_alignment(d, "bench", "train")
        cfg = DnnConfig(feature_dim=DIM, hidden_layers=1, hidden_dim=32, num_outputs=args.cache_pdfs)
        teacher = OnlineTeacher(StackedDnn(cfg, [0]), bf16=False)
        with MemoryWatch() as mem:
            cache = CachedTeacher.build(teacher, store, top_k=10, device=torch.device("cpu"))
            cache.save(d / "cache.pt")
        out["frames"] = store.num_frames
        out["cache_bytes"] = cache.nbytes()
        (d / "cache.pt").unlink()
    elif stage == "gmm":
        store = FrameStore.from_alignment(d, "bench", "train")
        g = torch.Generator().manual_seed(0)
        gmm = DiagGmmSet(torch.full((args.pdfs, 4), 0.25), torch.randn(args.pdfs, 4, DIM, generator=g),
                         torch.ones(args.pdfs, 4, DIM))
        with MemoryWatch() as mem:
            stats = GmmStats.zeros(gmm.num_pdfs, gmm.max_gauss, gmm.dim)
            gmm.accumulate(store.feats, store.raw_targets, stats)
            gmm.update(stats)
            shard = object.__new__(Shard)  # the statistics a shard computes, over the same frames
            shard.store = shard.si_store = store.feats
            shard.feature_stats()
            def chunks(size=1 << 18):  # (T, 4) contexts of a tree, per group of frames as Shard.tree_stats
                for a in range(0, store.num_frames, size):
                    y = store.raw_targets[a:a + size].numpy().astype(np.int64)
                    yield np.stack([y % 300, (y // 7) % 300, (y // 3) % 300, y % 3], 1), store.feats[a:a + size]

            ContextStats.from_chunks(chunks(), DIM)
        out["frames"] = store.num_frames
    else:
        raise SystemExit(f"unknown stage {stage}")
    out.update(mem.peak)
    out["seconds"], out["cpu_seconds"] = getattr(mem, "wall", 0.0), getattr(mem, "cpu", 0.0)
    return out


def ddp_worker(args) -> None:
    """One torchrun rank: ``--steps`` steps of a 2-member 3 x 512 network (``--pdfs`` outputs) on an in-memory store;
    rank 0 prints the seconds per step after the first ``warmup`` steps."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    from asrdistill.nnet.dnn import DnnConfig
    from asrdistill.nnet.ensemble import StackedDnn
    from asrdistill.nnet.frame_store import FrameStore
    from asrdistill.nnet.trainer import TrainConfig, train_stacked

    n = 200_000
    g = torch.Generator().manual_seed(0)
    store = FrameStore(torch.randn(n, DIM, generator=g), torch.arange(0, n + 1, 1000), [str(i) for i in range(n // 1000)],
                       torch.randint(0, args.pdfs, (n,), generator=g, dtype=torch.int16), num_classes=args.pdfs)
    cfg = DnnConfig(feature_dim=DIM, hidden_layers=3, hidden_dim=512, num_outputs=args.pdfs)
    times = {}
    for phase, steps in (("warmup", 5), ("run", 5 + args.steps)):  # the second run's time minus the first's
        tc = TrainConfig(num_members=2, batch_size=512, max_steps=steps, warmup_steps=5, eval_every=10 ** 9,
                         checkpoint_every=10 ** 9, device="cpu", average_every=args.average_every, log_every=20)
        model = StackedDnn(cfg, tc.seeds)
        dist.barrier() if dist.is_initialized() else None
        t = time.perf_counter()
        train_stacked(model, store, None, tc, Path(args.dir) / f"ddp_{phase}", progress=False)
        times[phase] = time.perf_counter() - t
    if not dist.is_initialized() or dist.get_rank() == 0:
        world = dist.get_world_size() if dist.is_initialized() else 1
        print(json.dumps({"average_every": args.average_every, "world": world, "steps": args.steps,
                          "seconds_per_step": (times["run"] - times["warmup"]) / args.steps,
                          "params": 2 * cfg.num_parameters(), "frames_per_step": 2 * 512}))


def ddp_benchmark(args) -> list:
    """Seconds per step: one process, 2 gloo ranks with DDP, 2 ranks with post-local SGD (averaging every 4, 16)."""
    work = Path(tempfile.mkdtemp(prefix="bench_ddp."))
    out = []
    for world, avg in ((1, 0), (2, 0), (2, 4), (2, 16)):
        cmd = [sys.executable, __file__, "--stage", "ddp_worker", "--dir", str(work / f"{world}_{avg}"),
               "--pdfs", str(args.pdfs), "--steps", str(args.steps), "--average-every", str(avg)]
        if world > 1:
            cmd[1:1] = ["-m", "torch.distributed.run", f"--nproc-per-node={world}", "--master-port=29541"]
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if r.returncode != 0:
            raise SystemExit(f"ddp benchmark failed:\n{r.stderr[-3000:]}")
        out.append(json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1]))
        print(json.dumps(out[-1]), file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    return out


def fresh(stage: str, d: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--stage", stage, "--dir", str(d), "--pdfs", str(args.pdfs),
           "--cache-pdfs", str(args.cache_pdfs), "--steps", str(args.steps)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if r.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1,4,16", help="Millions of frames.")
    p.add_argument("--pdfs", type=int, default=4000)
    p.add_argument("--cache-pdfs", type=int, default=200, help="Outputs of the (small) teacher of the cache stage.")
    p.add_argument("--old-max", type=float, default=4, help="build_old only up to this size (M frames): it needs ~3x the store.")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--stages", default="build,build_old,train,cache,gmm")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--stage", help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    p.add_argument("--average-every", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--ddp", action="store_true", help="Instead: seconds per step with 2 CPU gloo ranks, DDP vs "
                   "post-local SGD (--steps steps).")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.stage == "make":
        make_data(args.dir, args.frames, args.pdfs)
        return
    if args.stage == "ddp_worker":
        ddp_worker(args)
        return
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.dir, args)))
        return
    if args.ddp:
        rows = ddp_benchmark(args)
        one = rows[0]["seconds_per_step"]
        print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}; "
              f"`{' '.join(sys.argv)}`; {rows[0]['params'] / 1e6:.1f}M parameters, {rows[0]['frames_per_step']} frames "
              f"per step in all\n\n| processes | gradient sync | s per step | speed-up over 1 process |\n|---|---|---|---|")
        for r in rows:
            sync = "-" if r["world"] == 1 else ("DDP all-reduce every step" if not r["average_every"] else
                                                f"post-local SGD, models averaged every {r['average_every']} steps")
            print(f"| {r['world']} | {sync} | {r['seconds_per_step']:.3f} | {one / r['seconds_per_step']:.2f} |")
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_scale."))
    base = fresh("baseline", work, args)
    rows = []
    for size in [float(s) for s in args.sizes.split(",")]:
        frames = int(size * 1e6)
        d = work / f"{size:g}M"
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--stage", "make", "--dir", str(d), "--frames", str(frames),
                        "--pdfs", str(args.pdfs)], check=True)
        print(f"# {size:g}M frames: data written in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        for stage in args.stages.split(","):
            if stage == "build_old" and size > args.old_max:
                continue
            r = fresh(stage, d, args)
            r["size_m"] = size
            for k in ("RssAnon", "RssFile", "VmHWM"):
                r[k + "_over_baseline"] = r[k] - base[k]
            rows.append(r)
            print(json.dumps(r), file=sys.stderr)
        shutil.rmtree(d, ignore_errors=True)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    report = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv), "baseline": base, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(table(report))


def table(report: dict) -> str:
    """Per stage: peak private / mapped memory over the baseline at every size, the marginal private bytes per
    frame (slope from the smallest to the largest size: what grows with the corpus), CPU seconds per M frames."""
    rows = report["rows"]
    sizes = sorted({r["size_m"] for r in rows})
    lines = [f"machine: {report['machine']}; {report['date']}; `{report['command']}`", "",
             "| stage | " + " | ".join(f"{s:g}M: private / mapped MB" for s in sizes)
             + " | private B/frame, marginal | CPU s per M frames (smallest / largest) | output B/frame |",
             "|---|" + "---|" * len(sizes) + "---|---|---|"]
    for stage in dict.fromkeys(r["stage"] for r in rows):
        rs = sorted((r for r in rows if r["stage"] == stage), key=lambda r: r["size_m"])
        by = {r["size_m"]: r for r in rs}
        cells = [f"{by[s]['RssAnon_over_baseline'] / 2 ** 20:.0f} / {by[s]['RssFile_over_baseline'] / 2 ** 20:.0f}"
                 if s in by else "-" for s in sizes]
        lo, hi = rs[0], rs[-1]
        slope = ((hi["RssAnon_over_baseline"] - lo["RssAnon_over_baseline"]) / (hi["frames"] - lo["frames"])
                 if hi is not lo else float("nan"))

        def per_m(r):
            return r["cpu_seconds"] / (r.get("trained_frames", r["frames"]) / 1e6)

        outb = lo.get("store_bytes") or lo.get("cache_bytes")
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {slope:.1f} | {per_m(lo):.2f} / {per_m(hi):.2f}"
                     + (" (trained frames)" if "trained_frames" in lo else "") + f" | {outb / lo['frames']:.1f} |"
                     if outb else f"| {stage} | " + " | ".join(cells) + f" | {slope:.1f} | {per_m(lo):.2f} / "
                     f"{per_m(hi):.2f}" + (" (trained frames)" if "trained_frames" in lo else "") + " | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
