"""``asrdistill specialists``: confusable-class clusters, specialists with a dustbin, combined evaluation."""

from __future__ import annotations

from pathlib import Path

import click

from ..nnet.configs import ClusterConfig, SpecialistConfig
from ..utils.config import with_config
from .train import common_options, overwrite_option

_generalist = [
    click.option("--generalist-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                 default=Path("exp/ensemble"), help="Directory with the generalist network (member*.pt)."),
    click.option("--generalist-member", type=int, default=0, help="Which member of it is the generalist."),
]


@click.group()
def specialists() -> None:
    """Specialist models (Hinton et al., 2015, section 5): a generalist plus specialists on confusable classes."""


@specialists.command("cluster")
@common_options
@_generalist[0]
@_generalist[1]
@click.option("--split", default="dev", help="Held-out aligned split whose predictions give the covariance.")
@click.option("--tree-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="GMM system of the pdfs, to name them by phone in the listing (optional).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("exp/specialists/clusters.json"),
              help="Subsets (JSON); a readable listing is written next to it (.txt).")
@with_config(ClusterConfig)
def cluster_cmd(config, ali_dir, feature_dir, prefix, generalist_dir, generalist_member, split, tree_dir, out):
    """K-means on the columns of the covariance of the generalist's predictions."""
    from ..nnet.specialists import cluster_generalist_classes

    clusters = cluster_generalist_classes(generalist_dir, generalist_member, ali_dir, feature_dir, prefix, split, out,
                                          config, tree_dir)
    sizes = [len(s) for s in clusters.subsets]
    click.echo(f"{len(sizes)} subsets (sizes {' '.join(map(str, sizes))}); classes covered 0/1/2/..: "
               f"{clusters.info['coverage_histogram']} -> {out}")


@specialists.command("train")
@common_options
@_generalist[0]
@click.option("--clusters", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("exp/specialists/clusters.json"), help="Subsets from 'asrdistill specialists cluster'.")
@click.option("--exp-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("exp/specialists"),
              help="Output directory.")
@overwrite_option
@with_config(SpecialistConfig, section="specialists")
def train_cmd(config, ali_dir, feature_dir, prefix, generalist_dir, clusters, exp_dir, overwrite):
    """Train the specialists (all, or --member-offset/--num-members of them) together; resumable.

    EXP_DIR/config.yaml can be given back to --config to train them again.
    """
    from ..nnet.specialists import train_specialists

    res = train_specialists(generalist_dir, clusters, ali_dir, feature_dir, prefix, exp_dir, config, overwrite)
    click.echo(f"trained specialists for {res['steps']} steps; best dev balanced accuracy "
               + " ".join(f"{a:.4f}" for a in res["best_dev_acc"]))


@specialists.command("evaluate")
@common_options
@click.option("--exp-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/specialists"),
              help="Trained specialists.")
@click.option("--splits", default="dev,test", help="Comma-separated aligned splits.")
@click.option("--top-n", type=int, default=1, help="Specialists of the generalist's top-n classes take part.")
@click.option("--solver", type=click.Choice(["em", "gradient"]), default="em", help="KL-combination solver.")
def evaluate_cmd(ali_dir, feature_dir, prefix, exp_dir, splits, top_n, solver):
    """Frame accuracy with and without specialists, conditional accuracy, and change by coverage."""
    from ..nnet.specialists import evaluate_specialists

    out = evaluate_specialists(exp_dir, ali_dir, feature_dir, prefix, [s for s in splits.split(",") if s], top_n, solver)
    for split in splits.split(","):
        r = out[split]
        click.echo(f"{split}: frame accuracy {100 * r['accuracy_generalist']:.2f}% -> {100 * r['accuracy_combined']:.2f}%; "
                   f"on the specialists' classes {100 * r['conditional_generalist']:.2f}% -> "
                   f"{100 * r['conditional_combined']:.2f}%")
