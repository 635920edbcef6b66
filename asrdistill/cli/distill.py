"""``asrdistill distill``: students from an ensemble teacher; the omitted-class bias correction."""

from __future__ import annotations

from pathlib import Path

import click

from ..nnet.configs import DistillConfig
from ..utils.config import with_config
from .train import DnnOptions, common_options, dnn_from_options, evaluate_and_echo, evaluate_option, overwrite_option


@click.group()
def distill() -> None:
    """Knowledge distillation (Hinton et al., 2015) from an ensemble into smaller or equal-size students."""


@distill.command("student")
@common_options
@click.option("--teacher-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/ensemble"),
              help="Ensemble (member*.pt) to distil.")
@click.option("--exp-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("exp/student"), help="Output directory.")
@evaluate_option
@overwrite_option
@with_config(DistillConfig, section="distill", dnn=DnnOptions)
def student_cmd(config, dnn, ali_dir, feature_dir, prefix, teacher_dir, exp_dir, evaluate_splits, overwrite):
    """Train student(s) on soft targets (T^2-scaled) plus hard labels; resumable like 'train ensemble'.

    EXP_DIR/config.yaml can be given back to --config to train it again.
    """
    from ..nnet.distillation import distill as run

    res = run(teacher_dir, ali_dir, feature_dir, prefix, exp_dir, dnn_from_options(dnn), config, overwrite)
    click.echo(f"distilled {config.num_members} student(s) ({config.teacher} teacher) for {res['steps']} steps in "
               f"{res['train_seconds']:.0f} s; best dev frame accuracy " + " ".join(f"{a:.4f}" for a in res["best_dev_acc"]))
    evaluate_and_echo(exp_dir, ali_dir, feature_dir, prefix, evaluate_splits, config.device)


@distill.command("bias")
@common_options
@click.option("--exp-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Student trained without WORD in its transfer set.")
@click.option("--word", required=True, help="The omitted word, e.g. THREE.")
def bias_cmd(ali_dir, feature_dir, prefix, exp_dir, word):
    """Tune a logit bias for the omitted word's classes on dev; report test before and after."""
    from ..nnet.distillation import tune_bias

    out = tune_bias(exp_dir, ali_dir, feature_dir, prefix, word)
    b, a = out["test_before"], out["test_after"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    click.echo(f"{word}: {len(out['classes'])} classes; best bias on dev {out['best_delta']:g}; test frames of {word}: "
               f"{100 * mean(b['word_frames']):.2f}% -> {100 * mean(a['word_frames']):.2f}%; overall "
               f"{100 * mean(b['overall']):.2f}% -> {100 * mean(a['overall']):.2f}%")
