"""The training engine: N stacked frame classifiers, one optimizer step for all.

Shared by ensemble training (hard labels) and distillation (soft targets): the loss is
a function ``loss_fn(logits (N, B, C), frame_index (N, B), targets (N, B)) -> (N,)``.

Each step draws, for every member, ``batch_size`` frame indices from that member's own
shuffle of the training frames (a permutation seeded by ``(seed, member, epoch)``, so
any step's batch can be recomputed after a restart), gathers their context windows
from the frame store on the device, and runs one forward/backward through all members.

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
intact. With ``torchrun`` (WORLD_SIZE > 1) every rank takes its slice of each member's
batch and DistributedDataParallel averages the gradients.

Imports torch only (TensorBoard if installed).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..features.cmvn_policy import CMVN_HELP
from ..utils.atomic import atomic_write_text
from ..utils.readers import reading
from .dnn import DnnConfig
from .ensemble import StackedDnn
from .frame_store import FrameStore

log = logging.getLogger(__name__)

LossFn = Callable[[Tensor, Tensor, Tensor], Tensor]


class TrainingDiverged(RuntimeError):
    pass


@dataclass
class TrainConfig:
    cmvn: bool = field(default=True, metadata={"help": CMVN_HELP})
    train_split: str = field(
        default="train", metadata={"help": "Split of the alignment directory to train on (e.g. train_sp: speed-perturbed)."})
    num_members: int = field(default=4, metadata={"help": "Ensemble members trained together.", "min": 1})
    member_offset: int = field(
        default=0, metadata={"help": "Index of the first member (separate processes per member).", "min": 0})
    seed: int = field(default=0, metadata={"help": "Base seed: member i is initialized with seed + i."})
    batch_size: int = field(default=256, metadata={"help": "Frames per member per step.", "min": 1})
    max_epochs: int = field(default=10, metadata={"help": "Passes over the training frames.", "min": 1})
    max_steps: int = field(default=0, metadata={"help": "Stop after this many steps (0: max_epochs).", "min": 0})
    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate (AdamW).", "min_exclusive": 0})
    weight_decay: float = field(
        default=0.0,
        metadata={"help": "AdamW (decoupled) weight decay: each step multiplies every parameter, biases included, "
                  "by 1 - lr * weight_decay. Default 0: off.", "min": 0},
    )
    warmup_steps: int = field(default=200, metadata={"help": "Linear warmup steps.", "min": 0})
    final_lr_fraction: float = field(default=0.05, metadata={"help": "Cosine decay ends at this fraction of lr.", "min": 0})
    grad_clip: float = field(default=5.0, metadata={"help": "Max gradient norm per member.", "min_exclusive": 0})
    eval_every: int = field(default=0, metadata={"help": "Evaluate on dev every N steps (0: every epoch).", "min": 0})
    patience: int = field(default=3, metadata={"help": "Stop when no member improved for this many evaluations.", "min": 1})
    checkpoint_every: int = field(default=500, metadata={"help": "Write checkpoint.pt every N steps.", "min": 1})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N or auto."})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on CUDA (ignored on CPU)."})
    store_on_device: bool = field(default=True, metadata={"help": "Keep the frame store on the GPU (else pinned host memory)."})

    @property
    def seeds(self) -> List[int]:
        return [self.seed + self.member_offset + i for i in range(self.num_members)]


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
        y = store.targets[frames].to(logp.device)
        correct += (logp.argmax(-1) == y).sum(1).cpu()
        arith += int((torch.logsumexp(logp, 0).argmax(-1) == y).sum())
        geo += int((logp.mean(0).argmax(-1) == y).sum())
    model.train()
    acc = (correct.double() / max(total, 1)).tolist()
    return {"members": acc, "mean_member": sum(acc) / n, "arithmetic": arith / max(total, 1), "geometric": geo / max(total, 1)}


class ShuffleSampler:
    """Minibatches of every member: each member's own shuffle of ``frames`` per epoch.

    The permutation of epoch ``e`` for a member with seed ``s`` is seeded by ``(s, e)``, so the
    batch of any step can be recomputed after a restart.

    Args:
        frames: ``(F,)`` frame indices to draw from.
        seeds: one seed per member.
        batch_size: frames per member per step.

    Returns (call with a step): ``(N, batch_size)`` frame indices.
    """

    def __init__(self, frames: Tensor, seeds: List[int], batch_size: int):
        self.frames, self.seeds, self.batch_size = frames, list(seeds), batch_size
        self.steps_per_epoch = max(1, len(frames) // batch_size)
        self._perms: Dict[int, Tensor] = {}

    def __call__(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch not in self._perms:
            self._perms.clear()
            self._perms[epoch] = torch.stack([self.frames[permutation(len(self.frames), seed, epoch)] for seed in self.seeds])
        return self._perms[epoch][:, pos * self.batch_size : (pos + 1) * self.batch_size]


def permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The shuffle of ``n`` items for ``(seed, epoch)``: reproducible across restarts."""
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
    sampler = sampler or ShuffleSampler(train.trainable().cpu(), config.seeds, config.batch_size)
    steps_per_epoch = sampler.steps_per_epoch
    total_steps = config.max_steps or config.max_epochs * steps_per_epoch
    eval_every = config.eval_every or steps_per_epoch
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
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

    def save_checkpoint():
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
        y = train.targets[idx.to(train.device)].to(device) if train.targets is not None else None
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=config.bf16 and device.type == "cuda"):
            logits = net(x)
        losses = loss_fn(logits.float(), idx, y)  # (N,)
        loss = losses.sum()
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"step {step}: loss is {loss.item()} (members {losses.detach().tolist()}); stopped without writing anything. "
                f"The last good checkpoint {ckpt if ckpt.exists() else '(none yet)'} is intact: lower --lr or check the data.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms = model.clip_member_grads_(config.grad_clip)
        opt.step()
        sched.step()
        model.apply_max_norm()
        step += 1
        frames_done += idx.numel()
        bar.update(1)
        if step % 20 == 0:
            writer.add(step, {"train/loss": float(losses.detach().mean()), "train/lr": sched.get_last_lr()[0],
                              "train/grad_norm": float(norms.mean()),
                              "train/frames_per_s": frames_done * world / max(time.time() - t_start, 1e-9)})
            bar.set_postfix(loss=f"{float(losses.detach().mean()):.3f}", refresh=False)
        if dev is not None and (step % eval_every == 0 or step == total_steps):
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
