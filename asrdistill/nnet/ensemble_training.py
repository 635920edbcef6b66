"""Training and evaluating an ensemble of frame classifiers on aligned splits.

``exp_dir`` receives ``config.yaml`` (architecture + training options), ``member{i}.pt``
per member, ``log_priors.pt`` (pdf priors from the training alignment, for hybrid
decoding), ``checkpoint.pt``, TensorBoard scalars and ``frame_accuracy.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Sequence

import torch

from ..utils.atomic import atomic_path, atomic_write_text
from .dnn import DnnConfig
from .ensemble import StackedDnn
from .frame_store import FrameStore
from .trainer import TrainConfig, load_members, pdf_log_priors, resolve_device, save_members, train_stacked

log = logging.getLogger(__name__)


def load_split(ali_dir, feature_dir, prefix: str, split: str) -> FrameStore:
    cmvn = Path(feature_dir) / f"{prefix}_cmvn_{split}.json"
    return FrameStore.from_alignment(ali_dir, prefix, split, cmvn if cmvn.exists() else None)


def save_experiment_config(exp_dir: Path, **configs) -> None:
    """``exp_dir/config.yaml``: one section per config (``dnn``, ``train``...) plus command, version and git commit.

    The file is accepted back by the ``--config`` of the command that wrote it
    (:func:`asrdistill.utils.config.save_sections`).
    """
    from ..utils.config import save_sections

    save_sections(Path(exp_dir) / "config.yaml", **configs)


def train_ensemble(ali_dir, feature_dir, prefix: str, exp_dir, dnn: DnnConfig, config: TrainConfig) -> Dict:
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    train = load_split(ali_dir, feature_dir, prefix, config.train_split)
    dev = load_split(ali_dir, feature_dir, prefix, "dev")
    if dnn.num_outputs <= 0:
        dnn = DnnConfig(**{**asdict(dnn), "num_outputs": train.num_classes})
    dnn = DnnConfig(**{**asdict(dnn), "feature_dim": train.feature_dim})
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        save_experiment_config(exp_dir, dnn=dnn, train=config)
    log.info("ensemble of %d: %s, %.1fM parameters each; %d training frames, %d dev frames",
             config.num_members, dnn, dnn.num_parameters() / 1e6, len(train.trainable()), dev.num_frames)
    model = StackedDnn(dnn, config.seeds)
    result = train_stacked(model, train, dev, config, exp_dir)
    if is_main_process():
        save_members(model, exp_dir, config)
        with atomic_path(exp_dir / "log_priors.pt") as tmp:
            torch.save(pdf_log_priors(train.targets, dnn.num_outputs), tmp)
    return result


def is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def evaluate_members(exp_dir, ali_dir, feature_dir, prefix: str, splits: Sequence[str] = ("dev", "test"),
                     device: str = "auto", tree_dir=None) -> Dict[str, dict]:
    """Frame accuracy of each member, their mean, and the ensemble, per split -> ``frame_accuracy.json``.

    Per split: ``members``, ``mean_member``, ``arithmetic``, ``geometric`` (tied states, as
    :func:`asrdistill.nnet.trainer.evaluate`) and, when the targets' GMM system is known
    (``tree_dir``; by default ``ali_dir``'s parent, where ``asrdistill gmm align`` writes ``ali/``),
    ``phone`` and ``speech_silence`` with the same four keys (a frame is right when the predicted
    and the aligned pdf have the same base phone / are both speech or both silence:
    :mod:`asrdistill.nnet.phone_accuracy`). Top level: ``phone_classes`` (where the mapping came
    from and its size; absent when no mapping could be made, e.g. a lang directory prepared again
    since the tree was built, or a tree with another number of pdfs than the network's outputs)
    and ``command``.
    """
    from ..utils.config import command_line
    from .phone_accuracy import evaluate_levels, pdf_classes, tree_dir_of

    model = load_members(exp_dir)
    dev = resolve_device(device)
    model.to(dev)
    tree_dir = Path(tree_dir) if tree_dir is not None else tree_dir_of(ali_dir)
    tables, classes = {}, None
    if tree_dir is not None:
        try:
            classes = pdf_classes(tree_dir)
        except (FileNotFoundError, KeyError, ValueError) as e:
            log.warning("no phone-level frame accuracy: pdf classes of %s: %s", tree_dir, e)
        if classes is not None and classes.num_pdfs != model.config.num_outputs:
            log.warning("no phone-level frame accuracy: %s has %d pdfs, the network %d outputs", tree_dir,
                        classes.num_pdfs, model.config.num_outputs)
            classes = None
        if classes is not None:
            tables = classes.tables()
    out = {}
    for split in splits:
        store = load_split(ali_dir, feature_dir, prefix, split)
        out[split] = evaluate_levels(model, store, model.config.left_context, model.config.right_context, dev, tables)
    if classes is not None:
        out["phone_classes"] = {"tree_dir": str(tree_dir), "tree_dir_resolved": str(tree_dir.resolve()),
                                **classes.summary()}
    out["command"] = command_line()
    atomic_write_text(Path(exp_dir) / "frame_accuracy.json", json.dumps(out, indent=1))
    return out
