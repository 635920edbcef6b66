"""``asrdistill align``: GMM-HMM training and forced alignment."""

from __future__ import annotations

from pathlib import Path

import click

from ..gmm.shards import AlignOptions
from ..gmm.trainer import MonoConfig, TriConfig
from ..utils.config import with_config

_feature_dir = click.option(
    "--feature-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/fbank"),
    help="Directory with {prefix}_cuts_{split}.jsonl.gz and {prefix}_cmvn_{split}.json.",
)
_prefix = click.option("--prefix", default="fsdd", help="Corpus prefix of the manifest file names.")
_lang = click.option("--lang-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/lang"),
                     help="Lang directory from 'asrdistill prepare lang'.")
_jobs = click.option("--num-jobs", "-j", type=int, default=2, help="Parallel worker processes.")


def _inputs(feature_dir: Path, prefix: str, split: str):
    cuts = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    if not cuts.exists():
        raise click.ClickException(f"{cuts} does not exist; run the features stage first")
    cmvn = feature_dir / f"{prefix}_cmvn_{split}.json"
    return cuts, (cmvn if cmvn.exists() else None)


@click.group()
def align() -> None:
    """GMM-HMM systems (monophone, triphone with our decision trees) and forced alignment."""


@align.command("mono")
@_feature_dir
@_prefix
@_lang
@click.option("--split", default="train", help="Split to train on.")
@click.option("--exp-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("exp/mono"), help="Output directory.")
@_jobs
@with_config(MonoConfig)
def mono_cmd(config, feature_dir, prefix, lang_dir, split, exp_dir, num_jobs):
    """Monophone training: flat start, equal alignment, EM with realignment and mixing up."""
    from ..gmm.trainer import train_mono

    cuts, cmvn = _inputs(feature_dir, prefix, split)
    model = train_mono(cuts, cmvn, lang_dir, exp_dir, config, num_jobs)
    click.echo(f"monophone system: {model.num_pdfs} pdfs, {model.gmm.total_gauss()} Gaussians -> {exp_dir}")


@align.command("tri")
@_feature_dir
@_prefix
@_lang
@click.option("--split", default="train", help="Split to train on.")
@click.option("--src-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/mono"),
              help="Model whose alignments build the tree.")
@click.option("--exp-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("exp/tri"), help="Output directory.")
@_jobs
@with_config(TriConfig)
def tri_cmd(config, feature_dir, prefix, lang_dir, split, src_dir, exp_dir, num_jobs):
    """Triphone training with decision-tree state tying."""
    from ..gmm.trainer import train_tri

    cuts, cmvn = _inputs(feature_dir, prefix, split)
    model = train_tri(cuts, cmvn, lang_dir, src_dir, exp_dir, config, num_jobs)
    click.echo(f"triphone system: {model.num_pdfs} leaves, {model.gmm.total_gauss()} Gaussians -> {exp_dir}")


@align.command("ali")
@_feature_dir
@_prefix
@click.option("--splits", default="train,dev,test", help="Comma-separated splits to align.")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri"),
              help="GMM system to align with.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where targets go (default: MODEL_DIR/ali).")
@_jobs
@with_config(AlignOptions)
def ali_cmd(config, feature_dir, prefix, splits, model_dir, out_dir, num_jobs):
    """Forced alignment: per-frame pdf targets (+ transition ids) and an alignment report per split."""
    from ..gmm.align import align_split

    out_dir = out_dir or model_dir / "ali"
    for split in [s for s in splits.split(",") if s]:
        cuts, cmvn = _inputs(feature_dir, prefix, split)
        click.echo(align_split(model_dir, cuts, cmvn, out_dir, prefix, split, config, num_jobs))
