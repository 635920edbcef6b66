"""Speed of the generalist + specialists KL combination (frames per second, one thread).

Synthetic posteriors at the FSDD recipe's size (300 classes, 12 specialists) and at the
paper's speech scale (14,000 classes; 61 specialists as in its JFT system), with the
specialists of the generalist's top-1 class active (subsets of the given size, a partition
plus overlap so that frames have 1-3 active specialists). Reports, per solver, frames/s,
iterations until every frame's log-probabilities move less than ``tol``, and the mean
objective gap to a tightly converged EM solution.

    python benchmarks/bench_specialists.py
    python benchmarks/bench_specialists.py --device cuda   # on a GPU machine (torch only)
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from asrdistill.nnet.specialist_combination import (active_specialists, combination_objective,
                                                    combine_with_specialists)


def problem(frames: int, classes: int, specialists: int, size: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    subsets = torch.stack([torch.randperm(classes, generator=g)[:size] for _ in range(specialists)])
    membership = torch.zeros(specialists, classes, dtype=torch.bool)
    membership[torch.arange(specialists)[:, None], subsets] = True
    # every class in at least one subset: give uncovered classes to a random specialist
    uncovered = torch.nonzero(~membership.any(0)).flatten()
    membership[torch.randint(specialists, (len(uncovered),), generator=g), uncovered] = True
    width = int(membership.sum(1).max())
    table = torch.full((specialists, width), -1, dtype=torch.long)
    for m in range(specialists):
        cls = torch.nonzero(membership[m]).flatten()
        table[m, : len(cls)] = cls
    log_pg = torch.log_softmax(3 * torch.randn(frames, classes, generator=g), -1)
    logits = 3 * torch.randn(frames, specialists, width + 1, generator=g)
    pad = torch.cat([torch.zeros(specialists, 1, dtype=torch.bool), table < 0], 1)
    log_ps = torch.log_softmax(logits.masked_fill(pad, float("-inf")), -1)
    active = active_specialists(log_pg, membership, 1)
    return log_pg.to(device), log_ps.to(device), table.to(device), active.to(device)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tol", type=float, default=1e-4)
    args = p.parse_args()
    torch.set_num_threads(1)
    dev = torch.device(args.device)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, device {dev}, 1 thread")
    print("| classes | specialists | subset size | frames | mean active | solver | max steps | frames/s | objective gap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for classes, specialists, size, frames in ((300, 12, 40, 4096), (14000, 61, 300, 256)):
        log_pg, log_ps, table, active = problem(frames, classes, specialists, size, dev)
        ref = combine_with_specialists(log_pg, log_ps, table, active, "em", max_steps=2000, tol=1e-9)
        f_ref = combination_objective(ref.double(), log_pg.double(), log_ps.double(), table, active)
        for solver, steps in (("em", 200), ("gradient", 200), ("gradient", 2000)):
            t0 = time.perf_counter()
            out = combine_with_specialists(log_pg, log_ps, table, active, solver, max_steps=steps, tol=args.tol)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            gap = (combination_objective(out.double(), log_pg.double(), log_ps.double(), table, active) - f_ref).mean()
            print(f"| {classes} | {specialists} | {size} | {frames} | {float(active.sum(1).double().mean()):.2f} | "
                  f"{solver} | {steps} | {frames / dt:,.0f} | {float(gap):.2e} |")


if __name__ == "__main__":
    main()
