"""AdamW per-tensor (foreach) vs fused, in the training step of a stacked ensemble.

At the FSDD member size (3 x 256, 26 x 40 input, 300 outputs) the optimizer is a large part of
a CPU step; the engine uses the fused kernel (:func:`asrdistill.nnet.trainer.make_optimizer`).
Repetitions alternate between the two so that a shared machine's drifting speed hits both.

    python benchmarks/bench_optimizer.py [--members 3] [--hidden-dim 256] [--repeats 4]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from asrdistill.nnet.dnn import DnnConfig
from asrdistill.nnet.ensemble import StackedDnn


def member_frames_per_s(cfg: DnnConfig, members: int, batch: int, steps: int, fused: bool) -> float:
    model = StackedDnn(cfg, list(range(members)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True if fused else None)
    x = torch.randn(members, batch, cfg.input_dim)
    y = torch.randint(0, cfg.num_outputs, (members, batch))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, cfg.num_outputs), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return members * batch * steps / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--hidden-layers", type=int, default=3)
    p.add_argument("--hidden-dim", type=int, default=256)
    p.add_argument("--outputs", type=int, default=300)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=4)
    a = p.parse_args()
    torch.manual_seed(0)
    cfg = DnnConfig(feature_dim=40, left_context=20, right_context=5, hidden_layers=a.hidden_layers,
                    hidden_dim=a.hidden_dim, num_outputs=a.outputs)
    runs = {False: [], True: []}
    for _ in range(a.repeats):
        for fused in (False, True):
            runs[fused].append(member_frames_per_s(cfg, a.members, a.batch, a.steps, fused))
    print(f"machine: {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; {a.members} x "
          f"{a.hidden_layers}x{a.hidden_dim}, {a.outputs} outputs, batch {a.batch} per member, {a.steps} steps x {a.repeats}")
    print("| AdamW | member-frames/s (each repetition) | median |\n|---|---|---|")
    for fused in (False, True):
        r = runs[fused]
        print(f"| {'fused' if fused else 'per-tensor (default)'} | {', '.join(f'{v:,.0f}' for v in r)} | "
              f"{statistics.median(r):,.0f} |")


if __name__ == "__main__":
    main()
