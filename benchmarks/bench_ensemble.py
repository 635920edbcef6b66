"""Ensemble training throughput: stacked N-member steps vs a conventional DataLoader.

Synthetic data (random features and targets); times full training steps (forward,
backward, AdamW) and reports frames/s and model FLOPs utilization (MFU) against the
device's matrix-product rate measured in the same run (bf16 on CUDA, float32 on CPU).

* ``stacked``: frames on the device in one store, windows gathered by index, all members
  in one batched step (the engine of ``asrdistill train``).
* ``dataloader``: the usual pipeline: a ``torch.utils.data.Dataset`` that cuts each frame's
  window on the CPU, a ``DataLoader`` with workers, one model per member.

    python benchmarks/bench_ensemble.py --preset paper --members 1 10          # GPU
    python benchmarks/bench_ensemble.py --cpu-small                            # 2-core CPU
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from asrdistill.nnet.dnn import FrameDnn, preset
from asrdistill.nnet.ensemble import StackedDnn
from asrdistill.nnet.frame_store import FrameStore
from asrdistill.nnet.trainer import hard_label_loss, make_optimizer


def matmul_rate(device, dtype, n=4096, iters=10) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync(device)
    return 2 * n ** 3 * iters / (time.perf_counter() - t)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic_store(frames: int, dim: int, classes: int, device, dtype) -> FrameStore:
    utt = 500
    feats = torch.randn(frames, dim, device=device).to(dtype)
    offsets = torch.arange(0, frames + 1, utt, device=device)
    if offsets[-1] != frames:
        offsets = torch.cat([offsets, torch.tensor([frames], device=device)])
    targets = torch.randint(0, classes, (frames,), device=device)
    return FrameStore(feats, offsets, [str(i) for i in range(len(offsets) - 1)], targets, num_classes=classes)


def bench_stacked(cfg, members, batch, steps, device, store, bf16):
    model = StackedDnn(cfg, list(range(members))).to(device)
    opt = make_optimizer(model, 1e-4, 0.0, device)  # the engine's optimizer
    n = store.num_frames

    def step():
        idx = torch.randint(0, n, (members, batch), device=device)
        x = store.windows(idx.reshape(-1), cfg.left_context, cfg.right_context).view(members, batch, -1)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = hard_label_loss(logits.float(), idx, store.targets[idx]).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        model.clip_member_grads_(5.0)
        opt.step()

    for _ in range(3):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return members * batch * steps / (time.perf_counter() - t)


class _WindowDataset(torch.utils.data.Dataset):
    def __init__(self, store: FrameStore, left: int, right: int):
        self.feats, self.targets, self.left, self.right = store.feats.cpu().float(), store.targets.cpu(), left, right

    def __len__(self):
        return self.feats.shape[0]

    def __getitem__(self, i):
        n = self.feats.shape[0]
        rows = [min(max(j, 0), n - 1) for j in range(i - self.left, i + self.right + 1)]
        return self.feats[rows].reshape(-1), self.targets[i]


def bench_dataloader(cfg, members, batch, steps, device, store, bf16, workers):
    nets = [FrameDnn(cfg).to(device) for _ in range(members)]
    opts = [make_optimizer(n, 1e-4, 0.0, device) for n in nets]
    loader = torch.utils.data.DataLoader(_WindowDataset(store, cfg.left_context, cfg.right_context), batch_size=batch,
                                         shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)
    it = iter(loader)
    done = 0
    t = None
    for k in range(steps + 3):
        if k == 3:
            sync(device)
            t = time.perf_counter()
        for net, opt in zip(nets, opts):
            x, y = next(it)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(net(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            if k >= 3:
                done += batch
    sync(device)
    return done / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="paper")
    p.add_argument("--hidden-dim", type=int, default=None)
    p.add_argument("--hidden-layers", type=int, default=None)
    p.add_argument("--outputs", type=int, default=14000)
    p.add_argument("--members", type=int, nargs="+", default=[1, 10])
    p.add_argument("--batch", type=int, default=1024, help="frames per member per step")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--frames", type=int, default=2_000_000)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--cpu-small", action="store_true", help="a reduced size that runs on a 2-core CPU")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.cpu_small:
        args.hidden_dim, args.hidden_layers, args.outputs = 512, 4, 2000
        args.batch, args.steps, args.frames, args.workers = 256, 5, 200_000, 2
        args.members = [1, 4]
    cfg = preset(args.preset, hidden_dim=args.hidden_dim, hidden_layers=args.hidden_layers)
    cfg.num_outputs = args.outputs
    bf16 = device.type == "cuda"
    dtype = torch.bfloat16 if bf16 else torch.float32
    rate = matmul_rate(device, dtype, n=8192 if device.type == "cuda" else 1024)
    flops_per_frame = 6 * (cfg.num_parameters())  # forward + backward, 2 FLOPs per weight each
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; model {cfg.hidden_layers}x{cfg.hidden_dim}, {cfg.num_outputs} outputs, "
          f"{cfg.num_parameters() / 1e6:.1f}M parameters per member; {'bf16 autocast' if bf16 else 'float32'}; "
          f"batch {args.batch} frames per member; measured {dtype} matmul rate {rate / 1e12:.2f} TFLOP/s")
    store = synthetic_store(args.frames, cfg.feature_dim, cfg.num_outputs, device, dtype)
    print("| pipeline | members | frames/s | MFU vs measured matmul rate |\n|---|---|---|---|")
    for m in args.members:
        fps = bench_stacked(cfg, m, args.batch, args.steps, device, store, bf16)
        print(f"| stacked, windows gathered on the {device.type} | {m} | {fps:,.0f} | {100 * fps * flops_per_frame / rate:.1f}% |")
        fps_dl = bench_dataloader(cfg, m, args.batch, args.steps, device, store, bf16, args.workers)
        print(f"| DataLoader, windows cut on the CPU ({args.workers} workers), one model per member | {m} | {fps_dl:,.0f} | "
              f"{100 * fps_dl * flops_per_frame / rate:.1f}% |")


if __name__ == "__main__":
    main()
