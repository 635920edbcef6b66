"""The training engine: N stacked frame classifiers, one optimizer step for all.

Shared by ensemble training (hard labels) and distillation (soft targets): the loss is
a function ``loss_fn(logits (N, B, C), frame_index (N, B), targets (N, B)) -> (N,)``.

Each step draws, for every member, ``batch_size`` frame indices from that member's own
shuffle of the training frames (:func:`hashed_permutation`, keyed by ``(seed, member, epoch)``
and computed for the step's positions only: any step's batch can be recomputed after a
restart, and no per-member permutation of all frames is held), gathers their context
windows from the frame store on the device, and runs one forward/backward through all members.

Memory: on CUDA the store is copied to the GPU chunk by chunk (``store_on_device``; bf16
with ``bf16``), else it stays memory-mapped on the host and each batch's windows are pinned
and copied. Targets stay compact (int16 for up to 32,768 pdfs) and become int64 per batch.

Optimizer: AdamW (per-element, so stacked members stay independent) with linear warmup
and cosine decay to ``final_lr_fraction`` of the peak. Adam needs no per-width tuning of
a momentum-SGD step size, converges in few epochs on ReLU MLPs of this kind, and the
cosine tail gives the final accuracy of newbob-style halving without its extra dev
passes. Gradients are clipped per member. Dev frame accuracy is evaluated every
``eval_every`` steps; each member keeps its best parameters, and training stops when
no member has improved for ``patience`` evaluations.

Robustness: ``checkpoint.pt`` (model, optimizer, step, best parameters, RNG state) is
written atomically every ``checkpoint_every`` steps and at each evaluation, and a run
restarted in the same directory resumes from it; on CPU with the same seed it ends
with exactly the parameters of an uninterrupted run. A non-finite loss stops the run
with :class:`TrainingDiverged` before anything is written, so the last checkpoint stays
intact. The loss is checked on the host (and logged) every ``log_every`` steps and before
every evaluation or checkpoint, not every step: a step never waits for the device, and a
non-finite loss is reported with the step where it first appeared.

With ``torchrun`` (WORLD_SIZE > 1) every rank takes its slice of each member's batch and
DistributedDataParallel averages the gradients (the ranks of a node map one frame store:
:mod:`.frame_store`). ``average_every > 0``: post-local SGD (Lin et al., 2020, as Kaldi
nnet3 averages models rather than gradients): DDP for the first ``warmup_steps``, then each
rank steps on its own slice and :class:`~torch.distributed.algorithms.model_averaging.averagers.PeriodicModelAverager`
averages the models every ``average_every`` steps; they are averaged also before every
evaluation and checkpoint, so all ranks evaluate, stop and save the same model (each rank's
AdamW moments stay its own; a resumed run takes rank 0's).

Imports torch only (TensorBoard if installed).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..utils.atomic import atomic_write_text
from ..utils.readers import reading
from .configs import TrainConfig
from .dnn import DnnConfig
from .ensemble import StackedDnn
from .frame_store import FrameStore

log = logging.getLogger(__name__)

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]


class TrainingDiverged(RuntimeError):
    pass


def hard_label_loss(logits: Tensor, frame_index: Tensor, targets: Tensor) -> Tensor:
    """Per-member mean cross-entropy with the aligned pdfs: ``(N, B, C) -> (N,)``."""
    n, b, c = logits.shape
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(logits.reshape(n * b, c), targets.reshape(-1), reduction="none").view(n, b).mean(1)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def member_logits(model: StackedDnn, store: FrameStore, frames: Tensor, left: int, right: int, device, bf16: bool) -> Tensor:
    """``(N, len(frames), C)`` float32 logits of every member for the given frames."""
    x = store.windows(frames, left, right, device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"):
        return model(x).float()


@torch.no_grad()
def evaluate(model: StackedDnn, store: FrameStore, left: int, right: int, device, bf16: bool = True,
             chunk: int = 8192) -> Dict[str, object]:
    """Frame accuracy of every member and of the ensemble (arithmetic and geometric mean)."""
    model.eval()
    n = model.num_members
    correct = torch.zeros(n, dtype=torch.long)
    arith = geo = 0
    total = store.num_frames
    for s in range(0, total, chunk):
        frames = torch.arange(s, min(s + chunk, total), device=store.device)
        logp = torch.log_softmax(member_logits(model, store, frames, left, right, device, bf16), dim=-1)
        y = store.target_of(frames, logp.device)
        correct += (logp.argmax(-1) == y).sum(1).cpu()
        arith += int((torch.logsumexp(logp, 0).argmax(-1) == y).sum())
        geo += int((logp.mean(0).argmax(-1) == y).sum())
    model.train()
    acc = (correct.double() / max(total, 1)).tolist()
    return {"members": acc, "mean_member": sum(acc) / n, "arithmetic": arith / max(total, 1), "geometric": geo / max(total, 1)}


class ShuffleSampler:
    """Minibatches of every member: each member's own shuffle of the training frames per epoch.

    The shuffle of epoch ``e`` for a member with seed ``s`` is :func:`hashed_permutation` keyed by
    ``(s, e)``: the frames of a step are computed from the step alone (position ``p`` of the epoch
    is frame ``frames[perm(p)]``), so any step's batch is recomputed after a restart, and no
    permutation of all frames is ever held (memory ``O(batch)`` per member, not ``O(frames)``).

    Args:
        frames: ``(F,)`` frame indices to draw from, or the number of frames ``F`` (all of ``0 .. F - 1``).
        seeds: one seed per member.
        batch_size: frames per member per step.

    Returns (call with a step): ``(N, batch_size)`` int64 frame indices.
    """

    def __init__(self, frames, seeds: List[int], batch_size: int):
        self.frames = None if isinstance(frames, int) else frames
        self.num_frames = frames if isinstance(frames, int) else len(frames)
        self.seeds, self.batch_size = list(seeds), batch_size
        self.steps_per_epoch = max(1, self.num_frames // batch_size)

    def __call__(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self.steps_per_epoch)
        positions = torch.arange(pos * self.batch_size, (pos + 1) * self.batch_size, dtype=torch.int64) % self.num_frames
        rows = torch.stack([hashed_permutation(positions, self.num_frames, seed, epoch) for seed in self.seeds])
        return rows if self.frames is None else self.frames[rows]


_M32 = 0xFFFFFFFF


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def _round(r: Tensor, key: int, mask: int) -> Tensor:
    """The Feistel round function: an integer hash of ``r`` (< 2^32) and ``key``, masked to ``mask``."""
    x = (r ^ key) & _M32
    x = (x * 0x045D9F3B) & _M32
    x = x ^ (x >> 16)
    x = (x * 0x045D9F3B) & _M32
    x = x ^ (x >> 16)
    return x & mask


def hashed_permutation(positions: Tensor, n: int, seed: int, epoch: int, rounds: int = 4) -> Tensor:
    """``perm(positions)`` for a pseudo-random permutation ``perm`` of ``0 .. n - 1`` keyed by ``(seed, epoch)``.

    A balanced Feistel network on ``2h``-bit integers (``4^h >= n``, so fewer than ``4n``) with a
    multiply-xorshift round function is a bijection of ``0 .. 4^h - 1``; values that land at or
    above ``n`` are mapped again (cycle walking) until they fall inside, which keeps it a bijection
    of ``0 .. n - 1``. Computed elementwise, so any slice of the permutation costs only its own size.

    Args:
        positions: int64 tensor of positions in ``[0, n)`` (any shape).
        n: size of the permuted set (``n >= 1``).
    """
    if n <= 1:
        return torch.zeros_like(positions)
    h = max(1, ((n - 1).bit_length() + 1) // 2)
    if h > 31:
        raise ValueError(f"hashed_permutation supports up to 2^62 items, got {n}")
    mask = (1 << h) - 1
    keys = [_splitmix((seed * 1_000_003 + epoch) * 16 + r) & _M32 for r in range(rounds)]

    def feistel(x: Tensor) -> Tensor:
        left, right = x >> h, x & mask
        for k in keys:
            left, right = right, left ^ _round(right, k, mask)
        return (left << h) | right

    y = feistel(positions.to(torch.int64))
    out = y >= n
    while bool(out.any()):
        y[out] = feistel(y[out])
        out = y >= n
    return y


def permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The shuffle of ``n`` items for ``(seed, epoch)`` in full (``O(n)``; reproducible across restarts)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed((seed * 1_000_003 + epoch) & 0x7FFFFFFF))


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, device) -> torch.optim.Optimizer:
    """AdamW, fused (one kernel over all parameters) on CPU and CUDA: on 2 CPU cores a training step
    of the FSDD students is a quarter faster than with the per-tensor loop (BENCHMARKS.md)."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                             fused=torch.device(device).type in ("cpu", "cuda"))


def _lr_lambda(config: TrainConfig, total_steps: int):
    def f(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return config.final_lr_fraction + (1 - config.final_lr_fraction) * cos

    return f


def _local_sgd(net, config: TrainConfig):
    """Post-local SGD on a DistributedDataParallel ``net`` (torch.distributed.algorithms): gradients are
    all-reduced for the first ``warmup_steps``; then every rank steps on its own (no gradient communication)
    and :class:`PeriodicModelAverager` averages the models every ``average_every`` steps.
    Returns ``(hook state, averager)``."""
    from torch.distributed.algorithms.ddp_comm_hooks.post_localSGD_hook import PostLocalSGDState, post_localSGD_hook
    from torch.distributed.algorithms.model_averaging.averagers import PeriodicModelAverager

    state = PostLocalSGDState(process_group=None, subgroup=None, start_localSGD_iter=config.warmup_steps,
                              post_local_gradient_allreduce=False)
    net.register_comm_hook(state, post_localSGD_hook)
    return state, PeriodicModelAverager(period=config.average_every, warmup_steps=config.warmup_steps)


def _distributed():
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _Writer:
    """Scalars to TensorBoard (if installed) and to ``scalars.jsonl`` (``scalars.m{offset}.jsonl`` for a job
    training a slice of the members). A run resumed at ``resume_step`` first drops the lines logged after
    it (the killed run's steps are logged again), so every step is in the file once."""

    def __init__(self, exp_dir: Path, enabled: bool, name: str = "scalars.jsonl", resume_step: int = 0):
        self.enabled = enabled
        self.tb = None
        self.path = exp_dir / name
        if enabled and self.path.is_file():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(exp_dir / "tensorboard"))
            except ImportError:
                log.warning("tensorboard is not installed; scalars go to %s only", self.path)

    def add(self, step: int, values: Dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def train_stacked(
    model: StackedDnn,
    train: FrameStore,
    dev: Optional[FrameStore],
    config: TrainConfig,
    exp_dir,
    loss_fn: LossFn = hard_label_loss,
    progress: bool = True,
    sampler: Optional["ShuffleSampler"] = None,
    evaluate_fn: Optional[Callable[[StackedDnn, FrameStore], Dict[str, object]]] = None,
    input_transform: Optional[Callable[[Tensor, int], Tensor]] = None,
) -> Dict[str, object]:
    """Train ``model`` (all members at once) on ``train``; returns the final dev evaluation.

    ``sampler(step)`` gives the ``(N, B)`` frame indices of a step (default: :class:`ShuffleSampler`
    over ``train.trainable()``); ``evaluate_fn(model, dev)`` returns ``{"members": [accuracy per
    member], ...}`` for early stopping (default: :func:`evaluate`, frame accuracy on the targets).
    ``input_transform(x, step)`` maps the step's ``(N, B, input_dim)`` windows before the forward
    pass (e.g. perturbations; it must depend on ``step`` only, so that a resumed run is identical).
    """
    from ..utils.progress import progress as tqdm

    from ..utils.atomic import atomic_path

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    rank, world = _distributed()
    device = resolve_device(config.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    left, right = model.config.left_context, model.config.right_context
    model.to(device)
    if device.type == "cuda":
        dtype = torch.bfloat16 if config.bf16 else torch.float32
        train = train.to(device, dtype) if config.store_on_device else train.pin_memory()
        dev = dev.to(device, dtype) if dev is not None and config.store_on_device else dev
    n = model.num_members
    if sampler is None:
        frames = train.sample_index.cpu() if train.sample_index is not None else train.num_frames
        sampler = ShuffleSampler(frames, config.seeds, config.batch_size)
    steps_per_epoch = sampler.steps_per_epoch
    total_steps = config.max_steps or config.max_epochs * steps_per_epoch
    eval_every = config.eval_every or steps_per_epoch
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    averager = _local_sgd(net, config) if world > 1 and config.average_every > 0 else None
    opt = make_optimizer(model, config.lr, config.weight_decay, device)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(config, total_steps))
    best = [p.detach().clone() for p in model.parameters()]
    best_acc = torch.full((n,), -1.0)
    bad = torch.zeros(n, dtype=torch.long)
    history: List[dict] = []
    step = 0
    # separate jobs training other members into the same directory keep their own checkpoints
    suffix = "" if config.member_offset == 0 else f".m{config.member_offset}"
    ckpt = exp_dir / f"checkpoint{suffix}.pt"
    if ckpt.exists():
        with reading(ckpt, "training checkpoint"):
            state = torch.load(ckpt, weights_only=False, map_location=device)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            best = [t.to(device) for t in state["best"]]
            best_acc, bad, history, step = state["best_acc"], state["bad"], state["history"], state["step"]
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])
        log.info("resumed from %s at step %d", ckpt, step)
    if averager is not None:  # the hook and the averager count steps from the start of the run
        averager[0].iter, averager[1].step = step, step

    # the loss is checked on the host only every log_every steps (and before anything is written):
    # the step and member losses of the first non-finite loss are kept on the device meanwhile
    bad_step = torch.full((), -1, dtype=torch.long, device=device)
    bad_losses = torch.zeros(n, device=device)

    def check_finite():
        first = int(bad_step)
        if first >= 0:
            losses_then = bad_losses.tolist()
            raise TrainingDiverged(
                f"step {first}: loss is {sum(losses_then)} (members {losses_then}); stopped without writing anything. "
                f"The last good checkpoint {ckpt if ckpt.exists() else '(none yet)'} is intact: lower --lr or check the data.")

    def sync_models():
        """Post-local SGD: the ranks' models averaged (before evaluating or saving, so that all ranks agree)."""
        if averager is not None:
            from torch.distributed.algorithms.model_averaging.utils import average_parameters

            average_parameters(model.parameters(), None)

    def save_checkpoint():
        check_finite()
        sync_models()
        if rank != 0:
            return
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "best": best, "best_acc": best_acc, "bad": bad, "history": history, "step": step,
                 "rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        with atomic_path(ckpt) as tmp:
            torch.save(state, tmp)

    writer = _Writer(exp_dir, rank == 0, f"scalars{suffix}.jsonl", resume_step=step)

    def batch_index(s: int) -> Tensor:
        idx = sampler(s)
        return idx[:, rank::world] if world > 1 else idx

    stopped = bool(history) and bool((bad >= config.patience).all())
    bar = tqdm(total=total_steps, initial=step, desc=f"train x{n}", unit="step", disable=not progress or rank != 0)
    t_start, frames_done = time.time(), 0
    model.train()
    while step < total_steps and not stopped:
        idx = batch_index(step)
        x = train.windows(idx.reshape(-1), left, right, device).view(idx.shape[0], idx.shape[1], -1)
        if input_transform is not None:
            x = input_transform(x, step)
        y = train.target_of(idx, device) if train.raw_targets is not None else None
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=config.bf16 and device.type == "cuda"):
            logits = net(x)
        losses = loss_fn(logits.float(), idx, y)  # (N,)
        loss = losses.sum()
        first = (bad_step < 0) & ~torch.isfinite(loss.detach())
        bad_step = torch.where(first, step, bad_step)
        bad_losses = torch.where(first, losses.detach(), bad_losses)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms = model.clip_member_grads_(config.grad_clip)
        opt.step()
        sched.step()
        model.apply_max_norm()
        if averager is not None:
            averager[1].average_parameters(model.parameters())
        step += 1
        frames_done += idx.numel()
        bar.update(1)
        if step % config.log_every == 0:
            check_finite()
            writer.add(step, {"train/loss": float(losses.detach().mean()), "train/lr": sched.get_last_lr()[0],
                              "train/grad_norm": float(norms.mean()),
                              "train/frames_per_s": frames_done * world / max(time.time() - t_start, 1e-9)})
            bar.set_postfix(loss=f"{float(losses.detach().mean()):.3f}", refresh=False)
        if dev is not None and (step % eval_every == 0 or step == total_steps):
            check_finite()
            sync_models()
            res = evaluate_fn(model, dev) if evaluate_fn else evaluate(model, dev, left, right, device, config.bf16)
            acc = torch.tensor(res["members"])
            improved = acc > best_acc
            with torch.no_grad():
                for p, q in zip(model.parameters(), best):
                    q[improved.to(q.device)] = p.detach()[improved.to(p.device)]
            best_acc = torch.where(improved, acc, best_acc)
            bad = torch.where(improved, torch.zeros_like(bad), bad + 1)
            history.append({"step": step, **res})
            writer.add(step, {f"dev/{k}": v for k, v in res.items() if isinstance(v, float)})
            log.info("step %d: dev accuracy of the members %s", step, " ".join(f"{a:.4f}" for a in res["members"]))
            stopped = bool((bad >= config.patience).all())
            save_checkpoint()
        elif step % config.checkpoint_every == 0:
            save_checkpoint()
    bar.close()
    writer.close()
    check_finite()
    sync_models()
    if dev is not None and history:
        with torch.no_grad():
            for p, q in zip(model.parameters(), best):
                p.copy_(q)
    save_checkpoint()
    return {"best_dev_acc": best_acc.tolist(), "history": history, "steps": step}


# ---------------------------------------------------------------------- outputs
def save_members(model: StackedDnn, exp_dir, config: TrainConfig) -> List[Path]:
    """``member{i}.pt`` per member: a FrameDnn state dict with its architecture and seed."""
    from ..utils.atomic import atomic_path
    from ..utils.config import config_to_dict

    out = []
    for k, net in enumerate(model.members()):
        i = config.member_offset + k
        path = Path(exp_dir) / f"member{i}.pt"
        with atomic_path(path) as tmp:
            torch.save({"state_dict": net.state_dict(), "dnn_config": config_to_dict(model.config),
                        "seed": config.seeds[k], "member": i}, tmp)
        out.append(path)
    return out


def load_members(exp_dir) -> StackedDnn:
    """All ``member*.pt`` of a directory (from one run or several) as one StackedDnn."""
    from ..utils.config import config_from_dict
    from .dnn import FrameDnn

    paths = sorted(Path(exp_dir).glob("member*.pt"), key=lambda p: int(p.stem[6:]))
    if not paths:
        raise FileNotFoundError(f"no member*.pt in {exp_dir}; train the ensemble first")
    nets, seeds = [], []
    for p in paths:
        with reading(p, "network"):
            state = torch.load(p, weights_only=False, map_location="cpu")
            net = FrameDnn(config_from_dict(DnnConfig, state["dnn_config"]))
            net.load_state_dict(state["state_dict"])
        nets.append(net)
        seeds.append(state["seed"])
    return StackedDnn.from_members(nets, seeds)


def pdf_log_priors(targets: Tensor, num_pdfs: int, floor: float = 1.0) -> Tensor:
    """Log prior of each pdf from aligned frame counts (add-``floor`` smoothing), for hybrid decoding."""
    counts = torch.bincount(targets.cpu(), minlength=num_pdfs).double() + floor
    return (counts / counts.sum()).log().float()
