"""Distilling an ensemble into one (or several, stacked) student networks.

The student trains through the same engine as the ensemble (:func:`train_stacked`:
frame store, checkpoints, resume), with the loss

    w_soft T_n^2 CE(softmax(v / T_n), softmax(z / T_n)) + w_hard CE(y, softmax(z))

for student member ``n``. Each student member may have its own temperature ``T_n`` and
seed, so a temperature sweep or repeated seeds train as one stacked model. The transfer
set is the training split, a random fraction of its frames, the training split without
the utterances of some words (the omitted-class experiment), or unlabeled cuts (soft
targets only). With the online teacher the student's windows may be perturbed (mel-axis
warp, noise: :mod:`asrdistill.features.augment`); the teacher labels the perturbed windows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Sequence

import torch

from ..features.augment import perturb_windows
from ..losses import soft_cross_entropy
from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.readers import read_cuts
from .configs import DistillConfig
from .dnn import DnnConfig
from .ensemble import StackedDnn
from .ensemble_training import is_main_process, load_split, load_split_for, start_experiment
from .frame_store import FrameStore
from .teachers import CachedTeacher, OnlineTeacher
from .trainer import hard_label_loss, load_members, resolve_device, save_members, train_stacked

log = logging.getLogger(__name__)


def words_of(ali_dir, prefix: str, split: str) -> Dict[str, List[str]]:
    from ..data.cuts import cut_text

    return {c.id: cut_text(c).split() for c in read_cuts(Path(ali_dir) / f"{prefix}_cuts_{split}.jsonl.gz")}


def transfer_store(train: FrameStore, config: DistillConfig, words: Dict[str, List[str]]) -> FrameStore:
    store = train
    if config.omit_words:
        drop = {u for u, ws in words.items() if set(ws) & set(config.omit_words)}
        store = store.without_utterances(drop)
        log.info("transfer set without %s: %d of %d utterances dropped", config.omit_words, len(drop), len(train.ids))
    if config.transfer_fraction < 1:
        store = store.subset_frames(config.transfer_fraction, config.transfer_seed)
    return store


def distill(teacher_dir, ali_dir, feature_dir, prefix: str, exp_dir, student: DnnConfig, config: DistillConfig,
            overwrite: bool = False) -> Dict:
    exp_dir = Path(exp_dir)
    device = resolve_device(config.device)
    train = load_split(ali_dir, feature_dir, prefix, config.train_split, config.cmvn, config.store_dir)
    dev = load_split(ali_dir, feature_dir, prefix, "dev", config.cmvn, config.store_dir)
    teacher_model = load_members(teacher_dir)
    student = DnnConfig(**{**asdict(student), "num_outputs": teacher_model.config.num_outputs,
                           "feature_dim": train.feature_dim})
    if (student.left_context, student.right_context) != (teacher_model.config.left_context, teacher_model.config.right_context):
        raise ValueError("student and teacher must use the same context window")
    if config.transfer_cuts and config.hard_weight:
        raise ValueError("an unlabeled transfer set (--transfer-cuts) needs --hard-weight 0")
    augment = config.augment_warp > 0 or config.augment_noise > 0
    if augment and config.teacher != "online":
        raise ValueError("--augment-warp/--augment-noise need --teacher online (the teacher labels the perturbed windows)")
    n = config.num_members
    temps = list(config.temperatures) * (n if len(config.temperatures) == 1 else 1)
    if len(temps) != n:
        raise ValueError(f"{len(config.temperatures)} temperatures for {n} student members")
    start_experiment(exp_dir, overwrite, dnn=student, distill=config)  # a run that can start: its folder
    if config.transfer_cuts:
        store = FrameStore.from_cuts(config.transfer_cuts, config.transfer_cmvn or None, config.store_dir or None)
        if config.transfer_fraction < 1:
            store = store.subset_frames(config.transfer_fraction, config.transfer_seed)
    else:
        store = transfer_store(train, config, words_of(ali_dir, prefix, config.train_split) if config.omit_words else {})
    temperature = torch.tensor(temps, dtype=torch.float32, device=device)
    teacher = OnlineTeacher(teacher_model, config.combine, config.bf16).to(device)
    info = {"teacher": config.teacher, "teacher_members": teacher_model.num_members, "transfer_frames": store.num_trainable,
            "train_frames": train.num_frames}
    if config.teacher == "cached":
        # built once per teacher, combination, k and transfer set; shared by every student of that teacher
        source_name = config.train_split if not config.transfer_cuts else Path(config.transfer_cuts).name.split(".")[0]
        cache_path = Path(teacher_dir) / f"teacher_cache_{config.combine}_top{config.top_k}_{source_name}.pt"
        t0 = time.time()
        if cache_path.exists():
            cache = CachedTeacher.load(cache_path)
        else:
            # from the (memory-mapped) host store: only each chunk's windows go to the device
            cache = CachedTeacher.build(teacher, store if config.transfer_cuts else train, config.top_k, device=device)
            cache.save(cache_path)
        info.update(cache_seconds=time.time() - t0, cache_bytes=cache.nbytes(),
                    cache_bytes_per_frame=cache.nbytes() / (store if config.transfer_cuts else train).num_frames,
                    top_k=config.top_k, dropped_mass=cache.dropped_mass())
        source = cache.to(device)
    else:
        source = teacher
    seen = {}

    def transform(x, step):
        """The student's windows (perturbed, if asked), kept for the online teacher to label."""
        if augment:
            gen = torch.Generator().manual_seed((config.seed * 1_000_003 + step) & 0x7FFFFFFF)
            x = perturb_windows(x, student.feature_dim, config.augment_warp, config.augment_noise, gen)
        seen["x"] = x
        return x

    def loss_fn(logits, idx, y):
        p = source.soft_targets(seen.get("x"), idx, temperature)
        t = temperature.view(-1, 1, 1)
        loss = config.soft_weight * (t[:, 0, 0] ** 2) * soft_cross_entropy(logits, p, t).mean(1)
        if config.hard_weight:
            loss = loss + config.hard_weight * hard_label_loss(logits, idx, y)
        return loss

    model = StackedDnn(student, config.seeds)
    t0 = time.time()
    result = train_stacked(model, store, dev, config, exp_dir, loss_fn,
                           input_transform=transform if config.teacher == "online" else None)
    info["train_seconds"] = time.time() - t0
    if is_main_process():
        save_members(model, exp_dir, config)
        with atomic_path(exp_dir / "log_priors.pt") as tmp:
            torch.save(torch.load(Path(teacher_dir) / "log_priors.pt"), tmp)
        atomic_write_text(exp_dir / "distill_info.json", json.dumps(info, indent=1))
    return {**result, **info}


@torch.no_grad()
def tune_bias(exp_dir, ali_dir, feature_dir, prefix: str, word: str, share: float = 0.9,
              grid: Sequence[float] = tuple(x / 2 for x in range(0, 21))) -> Dict:
    """The omitted-class experiment's bias correction (the paper's MNIST "3" experiment).

    The classes of ``word`` are the pdfs whose training frames (of the split the students
    trained on) come at least ``share`` from utterances containing it. A bias ``delta`` is added to their logits; the value
    maximizing dev frame accuracy is applied to test. Reports accuracy on the frames of
    those classes and overall, before and after, per student member.
    """
    from ..utils.config import command_line

    from ..features.cmvn_policy import recorded_setting

    split = recorded_setting(exp_dir, "train_split", "train")  # the students' own transfer data
    words = words_of(ali_dir, prefix, split)
    train = load_split_for(exp_dir, ali_dir, feature_dir, prefix, split)
    has_word = torch.tensor([word in words[u] for u in train.ids])
    utt = train.frame_utterances()
    c = train.num_classes
    total = torch.bincount(train.targets, minlength=c).double()
    inside = torch.bincount(train.targets[has_word[utt]], minlength=c).double()
    classes = torch.nonzero((inside >= share * total) & (total > 0)).flatten()
    model = load_members(exp_dir).eval()
    cfg = model.config
    out = {"word": word, "classes": classes.tolist(), "command": command_line()}
    for split in ("dev", "test"):
        store = load_split_for(exp_dir, ali_dir, feature_dir, prefix, split)
        logits = torch.cat([model(store.windows(torch.arange(s, min(s + 8192, store.num_frames)), cfg.left_context,
                                                cfg.right_context)) for s in range(0, store.num_frames, 8192)], dim=1)
        target_in = torch.isin(store.targets, classes)
        rows = []
        for delta in grid:
            adj = logits.clone()
            adj[:, :, classes] += delta
            pred = adj.argmax(-1)
            rows.append({"delta": delta, "overall": (pred == store.targets).double().mean(1).tolist(),
                         "word_frames": (pred[:, target_in] == store.targets[target_in]).double().mean(1).tolist()})
        out[split] = rows
    dev_mean = [sum(r["overall"]) / len(r["overall"]) for r in out["dev"]]
    best = max(range(len(grid)), key=lambda i: dev_mean[i])
    out["best_delta"] = grid[best]
    out["test_before"] = out["test"][0]
    out["test_after"] = out["test"][best]
    atomic_write_text(Path(exp_dir) / f"bias_{word}.json", json.dumps(out, indent=1))
    return out
