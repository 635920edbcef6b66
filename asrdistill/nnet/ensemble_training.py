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

from ..utils.errors import UserError
from ..utils.atomic import atomic_path, atomic_write_text
from .dnn import DnnConfig
from .ensemble import StackedDnn
from .frame_store import FrameStore
from .trainer import TrainConfig, load_members, pdf_log_priors, resolve_device, save_members, train_stacked

log = logging.getLogger(__name__)


def load_split(ali_dir, feature_dir, prefix: str, split: str, cmvn: bool = True, store_dir=None) -> FrameStore:
    """A split's frames and targets, CMVN-normalized (its statistics must exist unless ``cmvn`` is false),
    memory-mapped from its frame store (built on first use: :mod:`asrdistill.nnet.frame_store`; ``store_dir``
    default ``ALI_DIR/frame_store``). All the processes of a node (torchrun ranks) map the same files."""
    from ..features.cmvn_policy import cmvn_file

    return FrameStore.from_alignment(ali_dir, prefix, split, cmvn_file(feature_dir, prefix, split, cmvn),
                                     store_dir=store_dir or None)


def load_split_for(exp_dir, ali_dir, feature_dir, prefix: str, split: str, store_dir=None) -> FrameStore:
    """A split's frames for evaluating the model in ``exp_dir``: normalized as it was trained (``cmvn`` record),
    from the frame store directory it trained with (``store_dir`` record) unless ``store_dir`` is given."""
    from ..features.cmvn_policy import recorded_cmvn, recorded_setting

    store_dir = store_dir or recorded_setting(exp_dir, "store_dir", "") or None
    return load_split(ali_dir, feature_dir, prefix, split, recorded_cmvn(exp_dir), store_dir)


def save_experiment_config(exp_dir: Path, **configs) -> None:
    """``exp_dir/config.yaml``: one section per config (``dnn``, ``train``...) plus command, version and git commit.

    The file is accepted back by the ``--config`` of the command that wrote it
    (:func:`asrdistill.utils.config.save_sections`).
    """
    from ..utils.config import save_sections

    save_sections(Path(exp_dir) / "config.yaml", **configs)


#: Settings that may differ between the jobs (or restarts) of one experiment: which members a job
#: trains, where, and how often it checkpoints; everything else must match to resume.
RESUMABLE_DIFFERENCES = ("member_offset", "num_members", "device", "checkpoint_every", "store_dir", "log_every")


class ExperimentMismatch(UserError):
    """A run into an experiment folder that holds a run with other settings."""


def start_experiment(exp_dir, overwrite: bool = False, **configs) -> None:
    """Make ``exp_dir`` the record of this run: refuse a folder that holds another run, unless ``overwrite``.

    A folder whose ``config.yaml`` has the same settings (up to
    :data:`RESUMABLE_DIFFERENCES`) is resumed; one with other settings is an
    :class:`ExperimentMismatch` naming them, never resumed into (its checkpoint and results
    would be passed off as this run's). ``overwrite``: empty the folder first and start
    again. Then the config is written and the log attached (``EXP_DIR/log.txt``, main process only).
    """
    import shutil

    import yaml

    from ..utils.config import METADATA_KEYS, config_to_dict

    exp_dir = Path(exp_dir)
    saved_path = exp_dir / "config.yaml"
    if saved_path.is_file() and not overwrite:
        saved = yaml.safe_load(saved_path.read_text()) or {}
        diffs = []
        for name, config in configs.items():
            old = saved.get(name) or {}
            for key, value in config_to_dict(config).items():
                if key in RESUMABLE_DIFFERENCES or key in METADATA_KEYS or key not in old:
                    continue
                if old[key] != value:
                    diffs.append(f"{name}.{key} {old[key]!r} -> {value!r}")
        if diffs:
            raise ExperimentMismatch(
                f"{exp_dir} holds a run with other settings ({'; '.join(diffs[:8])}{' ...' if len(diffs) > 8 else ''}): "
                f"use another --exp-dir, or --overwrite to discard that run and start again")
    if overwrite and exp_dir.is_dir() and any(exp_dir.iterdir()) and is_main_process():
        log.warning("--overwrite: discarding everything in %s", exp_dir)
        shutil.rmtree(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        from ..utils.logfile import attach_experiment_log

        save_experiment_config(exp_dir, **configs)
        attach_experiment_log(exp_dir / "log.txt")


def train_ensemble(ali_dir, feature_dir, prefix: str, exp_dir, dnn: DnnConfig, config: TrainConfig,
                   overwrite: bool = False) -> Dict:
    """Train ``config.num_members`` members together into ``exp_dir`` (resumable; a folder holding a run
    with other settings is refused unless ``overwrite``: :func:`start_experiment`)."""
    exp_dir = Path(exp_dir)
    train = load_split(ali_dir, feature_dir, prefix, config.train_split, config.cmvn, config.store_dir)
    dev = load_split(ali_dir, feature_dir, prefix, "dev", config.cmvn, config.store_dir)
    if dnn.num_outputs <= 0:
        dnn = DnnConfig(**{**asdict(dnn), "num_outputs": train.num_classes})
    dnn = DnnConfig(**{**asdict(dnn), "feature_dim": train.feature_dim})
    start_experiment(exp_dir, overwrite, dnn=dnn, train=config)
    log.info("ensemble of %d: %s, %.1fM parameters each; %d training frames, %d dev frames",
             config.num_members, dnn, dnn.num_parameters() / 1e6, train.num_trainable, dev.num_frames)
    model = StackedDnn(dnn, config.seeds)
    result = train_stacked(model, train, dev, config, exp_dir)
    if is_main_process():
        save_members(model, exp_dir, config)
        with atomic_path(exp_dir / "log_priors.pt") as tmp:
            torch.save(pdf_log_priors(train.raw_targets, dnn.num_outputs), tmp)
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
    and ``command``. ``frame_accuracy.json`` keeps the splits evaluated before (an append-only
    record: ``commands`` says which command wrote each split).
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
        store = load_split_for(exp_dir, ali_dir, feature_dir, prefix, split)
        out[split] = evaluate_levels(model, store, model.config.left_context, model.config.right_context, dev, tables)
    if classes is not None:
        out["phone_classes"] = {"tree_dir": str(tree_dir), "tree_dir_resolved": str(tree_dir.resolve()),
                                **classes.summary()}
    out["command"] = command_line()
    # an append-only record: evaluating other splits adds them; the splits evaluated before stay, with the
    # commands that produced them (per split under "commands")
    path = Path(exp_dir) / "frame_accuracy.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    commands = record.get("commands") or {s: record["command"] for s in record if "command" in record and
                                         isinstance(record.get(s), dict) and "members" in record[s]}
    record.update(out)
    record["commands"] = {**commands, **{s: out["command"] for s in splits}}
    atomic_write_text(path, json.dumps(record, indent=1))
    return out
