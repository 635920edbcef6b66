"""``asrdistill train``: frame-classifier ensembles."""

from __future__ import annotations

from pathlib import Path

import click

from ..nnet.trainer import TrainConfig
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


def dnn_options(f):
    from ..nnet.dnn import PRESETS

    f = click.option("--preset", type=click.Choice(sorted(PRESETS)), default="small", help="Named architecture.")(f)
    f = click.option("--hidden-layers", type=int, default=None, help="Override the preset's hidden layers.")(f)
    f = click.option("--hidden-dim", type=int, default=None, help="Override the preset's hidden width.")(f)
    f = click.option("--dropout", type=float, default=None, help="Dropout after hidden layers (default: the preset's, 0).")(f)
    f = click.option("--init", "init", type=click.Choice(["kaiming", "torch"]), default=None,
                     help="Weight initialization (default kaiming: He init, activations keep their scale through deep stacks).")(f)
    f = click.option("--max-norm", type=float, default=None, help="Max norm of incoming weights per unit.")(f)
    f = click.option("--left-context", type=int, default=20, help="Frames of left context.")(f)
    f = click.option("--right-context", type=int, default=5, help="Frames of right context.")(f)
    return f


def dnn_from_options(preset, hidden_layers, hidden_dim, dropout, max_norm, left_context, right_context, init=None):
    from ..nnet.dnn import preset as make_preset

    cfg = make_preset(preset, hidden_layers=hidden_layers, hidden_dim=hidden_dim, dropout=dropout, max_norm=max_norm,
                      left_context=left_context, right_context=right_context, init=init)
    if preset == "paper":
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


@click.group()
def train() -> None:
    """Frame-classifier DNNs and N-member ensembles (stacked, one step for all members)."""


@train.command("ensemble")
@common_options
@click.option("--exp-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("exp/ensemble"), help="Output directory.")
@dnn_options
@evaluate_option
@with_config(TrainConfig)
def ensemble_cmd(config, ali_dir, feature_dir, prefix, exp_dir, preset, hidden_layers, hidden_dim, dropout, init, max_norm,
                 left_context, right_context, evaluate_splits):
    """Train N members together (resumes from EXP_DIR/checkpoint.pt); writes member*.pt and priors.

    Several processes can each train a slice of the members into one directory
    (--member-offset, --num-members); 'asrdistill train evaluate' combines them.
    """
    from ..nnet.ensemble_training import train_ensemble

    dnn = dnn_from_options(preset, hidden_layers, hidden_dim, dropout, max_norm, left_context, right_context, init)
    res = train_ensemble(ali_dir, feature_dir, prefix, exp_dir, dnn, config)
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
