"""``asrdistill train``: frame-classifier ensembles.

``train ensemble`` (and ``distill student``) compose two configs: the training options
(:class:`~asrdistill.nnet.trainer.TrainConfig`, YAML section ``train``; ``distill`` for
:class:`~asrdistill.nnet.distillation.DistillConfig`) and the DNN architecture
(:class:`DnnOptions`: ``preset``, ``hidden_layers``, ``hidden_dim``, ``dropout``, ``init``,
``max_norm``, ``left_context``, ``right_context``; YAML section ``dnn``). A ``--config`` file
gives either kind flat (``preset: tiny`` next to ``lr: 0.001``) or in its section, and the
``config.yaml`` an experiment folder receives (sections ``dnn`` and ``train``/``distill``,
plus command, version and git commit) is accepted back as it is, so
``asrdistill train ensemble --config exp/ensemble/config.yaml --exp-dir exp/again ...``
trains the same networks. Options on the command line override the file
(:mod:`asrdistill.utils.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional, Tuple

import click

from ..nnet.configs import INIT_CHOICES, PRESETS, TrainConfig
from ..utils.config import with_config

_common = [
    click.option("--ali-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri/ali"),
                 help="Alignments from 'asrdistill gmm align' (targets)."),
    click.option("--feature-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/fbank"),
                 help="Directory with the CMVN statistics {prefix}_cmvn_{split}.json."),
    click.option("--prefix", default="fsdd", help="Corpus prefix of the manifest file names."),
]


def common_options(f):
    for opt in reversed(_common):
        f = opt(f)
    return f


@dataclass
class DnnOptions:
    """The DNN architecture options of ``train ensemble`` and ``distill student`` (YAML section ``dnn``).

    In a ``--config`` file they go flat (``preset: tiny``, ``hidden_dim: 32``) or in a
    ``dnn:`` section; the ``dnn`` section of a saved ``config.yaml`` (the resolved
    :class:`~asrdistill.nnet.dnn.DnnConfig`) is read as it is: its ``feature_dim`` and
    ``num_outputs`` are ignored (:attr:`RECORDED_KEYS`), since training takes them from the
    data again. Command-line options override the file; ``None``: the preset's value.
    """

    RECORDED_KEYS: ClassVar[Tuple[str, ...]] = ("feature_dim", "num_outputs")

    preset: str = field(default="small", metadata={"help": "Named architecture.", "choices": sorted(PRESETS)})
    hidden_layers: Optional[int] = field(default=None, metadata={"help": "Override the preset's hidden layers.", "min": 0})
    hidden_dim: Optional[int] = field(default=None, metadata={"help": "Override the preset's hidden width.", "min": 1})
    dropout: Optional[float] = field(
        default=None, metadata={"help": "Dropout after hidden layers (default: the preset's, 0).", "min": 0,
                                "max_exclusive": 1})
    init: Optional[str] = field(
        default=None,
        metadata={"help": "Weight initialization (default kaiming: He init, activations keep their scale through deep "
                  "stacks).", "choices": list(INIT_CHOICES)})
    max_norm: Optional[float] = field(default=None, metadata={"help": "Max norm of incoming weights per unit.", "min": 0})
    left_context: int = field(default=20, metadata={"help": "Frames of left context.", "min": 0})
    right_context: int = field(default=5, metadata={"help": "Frames of right context.", "min": 0})


def dnn_from_options(options: DnnOptions):
    """The :class:`~asrdistill.nnet.dnn.DnnConfig` of ``options`` (``num_outputs`` 0: from the alignments)."""
    from ..nnet.dnn import preset as make_preset

    cfg = make_preset(options.preset, hidden_layers=options.hidden_layers, hidden_dim=options.hidden_dim,
                      dropout=options.dropout, max_norm=options.max_norm, left_context=options.left_context,
                      right_context=options.right_context, init=options.init)
    if options.preset == "paper":
        cfg.num_outputs = 0  # the alignment model's pdfs, not the paper's 14,000
    return cfg


def evaluate_option(f):
    return click.option("--evaluate-splits", default="", show_default=True,
                        help="After training, frame accuracy on these comma-separated aligned splits, in the same "
                        "process (EXP_DIR/frame_accuracy.json, as 'asrdistill train evaluate'); empty: none.")(f)


def evaluate_and_echo(exp_dir, ali_dir, feature_dir, prefix, splits: str, device: str = "auto") -> None:
    """``evaluate_members`` on ``splits`` (comma-separated; nothing if empty) and its summary lines."""
    from ..nnet.ensemble_training import evaluate_members, is_main_process

    names = [s for s in splits.split(",") if s]
    if not names or not is_main_process():
        return
    out = evaluate_members(exp_dir, ali_dir, feature_dir, prefix, names, device)
    for split in names:
        r = out[split]
        click.echo(f"{split}: members {' '.join(f'{a:.4f}' for a in r['members'])}; mean {r['mean_member']:.4f}; "
                   f"ensemble arithmetic {r['arithmetic']:.4f}, geometric {r['geometric']:.4f}")


def overwrite_option(f):
    return click.option("--overwrite/--no-overwrite", default=False, show_default=True,
                        help="EXP_DIR holds a run with other settings: discard it and start again "
                             "(without it, such a folder is refused; one with the same settings is resumed).")(f)


@click.group()
def train() -> None:
    """Frame-classifier DNNs and N-member ensembles (stacked, one step for all members)."""


@train.command("ensemble")
@common_options
@click.option("--exp-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("exp/ensemble"), help="Output directory.")
@evaluate_option
@overwrite_option
@with_config(TrainConfig, section="train", dnn=DnnOptions)
def ensemble_cmd(config, dnn, ali_dir, feature_dir, prefix, exp_dir, evaluate_splits, overwrite):
    """Train N members together (resumes from EXP_DIR/checkpoint.pt); writes member*.pt and priors.

    Several processes can each train a slice of the members into one directory
    (--member-offset, --num-members); 'asrdistill train evaluate' combines them.
    EXP_DIR/config.yaml can be given back to --config to train it again.
    """
    from ..nnet.ensemble_training import train_ensemble

    res = train_ensemble(ali_dir, feature_dir, prefix, exp_dir, dnn_from_options(dnn), config, overwrite)
    click.echo(f"trained {config.num_members} member(s) for {res['steps']} steps; best dev frame accuracy "
               + " ".join(f"{a:.4f}" for a in res["best_dev_acc"]))
    evaluate_and_echo(exp_dir, ali_dir, feature_dir, prefix, evaluate_splits, config.device)


@train.command("evaluate")
@common_options
@click.option("--exp-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/ensemble"),
              help="Directory with member*.pt.")
@click.option("--splits", default="dev,test", help="Comma-separated aligned splits to evaluate.")
@click.option("--device", default="auto", help="cpu, cuda or auto.")
def evaluate_cmd(ali_dir, feature_dir, prefix, exp_dir, splits, device):
    """Frame accuracy per member, mean member, ensemble (arithmetic and geometric mean of posteriors)."""
    evaluate_and_echo(exp_dir, ali_dir, feature_dir, prefix, splits, device)
