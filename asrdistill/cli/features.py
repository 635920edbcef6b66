"""``asrdistill features``: filterbank extraction and CMVN statistics."""

from __future__ import annotations

from pathlib import Path

import click

from ..features.fbank import FbankConfig
from ..utils.config import with_config
from ..utils.readers import read_cuts, write_cuts

_splits = click.option(
    "--splits", default="train,dev,test", help="Comma-separated splits ({prefix}_cuts_{split}.jsonl.gz)."
)
_prefix = click.option("--prefix", default="fsdd", help="Corpus prefix of the manifest file names.")


def _split_list(splits: str):
    return [s.strip() for s in splits.split(",") if s.strip()]


@click.group()
def features() -> None:
    """Feature extraction (Kaldi-compatible log-mel filterbanks) and normalization."""


@features.command("compute")
@click.option(
    "--manifest-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/manifests"),
    help="Directory with {prefix}_cuts_{split}.jsonl.gz from the prepare stage.",
)
@click.option(
    "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/fbank"),
    help="Where feature archives and the feature manifests go.",
)
@_prefix
@_splits
@click.option("--num-jobs", "-j", type=int, default=2, help="Parallel worker processes.")
@click.option("--skip-bad/--no-skip-bad", default=False, help="Log and count cuts whose audio is unusable instead of stopping.")
@with_config(FbankConfig)
def compute_cmd(config: FbankConfig, manifest_dir: Path, output_dir: Path, prefix: str, splits: str, num_jobs: int, skip_bad: bool) -> None:
    """Compute filterbank features of every cut (parallel, resumable)."""
    from ..features.extract import compute_features

    for split in _split_list(splits):
        path = manifest_dir / f"{prefix}_cuts_{split}.jsonl.gz"
        if not path.exists():
            raise click.ClickException(f"{path} does not exist; run the prepare stage first")
        try:
            cuts = compute_features(read_cuts(path), output_dir, prefix, split, config, num_jobs, skip_bad)
        except (ValueError, RuntimeError) as e:  # AudioError (bad cuts), a failed worker, an inconsistent resume
            raise click.ClickException(str(e))
        frames = sum(c.features.num_frames for c in cuts)
        click.echo(f"{split}: {len(cuts)} cuts, {frames} frames of dim {config.num_mel_bins} -> {output_dir}")


@features.command("cmvn")
@click.option(
    "--feature-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/fbank"),
    help="Directory with {prefix}_cuts_{split}.jsonl.gz from 'features compute'.",
)
@_prefix
@_splits
def cmvn_cmd(feature_dir: Path, prefix: str, splits: str) -> None:
    """Per-speaker CMVN statistics, stored as {prefix}_cmvn_{split}.json."""
    from ..features.cmvn import compute_cmvn_stats
    from ..features.extract import check_unique_cut_ids

    for split in _split_list(splits):
        path = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
        if not path.exists():
            raise click.ClickException(f"{path} does not exist; run 'asrdistill features compute' first")
        cuts = read_cuts(path).to_eager()
        try:
            check_unique_cut_ids(cuts, str(path))  # a cut counted twice would skew its speaker's statistics
        except ValueError as e:
            raise click.ClickException(f"{e}; recompute the features of {split}")
        stats = compute_cmvn_stats(cuts)
        out = feature_dir / f"{prefix}_cmvn_{split}.json"
        stats.save(out)
        click.echo(f"{split}: CMVN statistics of {len(stats.count)} speaker(s) -> {out}")


@features.command("subset")
@click.option("--feature-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/fbank"),
              help="Directory with {prefix}_cuts_{split}.jsonl.gz and {prefix}_cmvn_{split}.json.")
@_prefix
@click.option("--split", default="train", help="Split to take the subset of.")
@click.option("--num-cuts", type=int, required=True, help="Cuts in the subset.")
@click.option("--select", type=click.Choice(["shortest", "random"]), default="shortest",
              help="The shortest cuts (monophone training, as Kaldi's subset_data_dir.sh --shortest) or a random draw.")
@click.option("--seed", type=int, default=0, help="Seed of --select random.")
@click.option("--out-split", required=True, help="Name of the new split ({prefix}_cuts_{out_split}.jsonl.gz).")
def subset_cmd(feature_dir: Path, prefix: str, split: str, num_cuts: int, select: str, seed: int, out_split: str) -> None:
    """A subset of a split's feature cuts as a split of its own (its speakers' CMVN statistics come along)."""
    import random
    import shutil

    from ..utils.atomic import atomic_path

    src = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    if not src.exists():
        raise click.ClickException(f"{src} does not exist; run the features stage first")
    cuts = list(read_cuts(src))
    if num_cuts > len(cuts):
        raise click.ClickException(f"{src} has {len(cuts)} cuts, fewer than --num-cuts {num_cuts}")
    if select == "shortest":
        chosen = sorted(cuts, key=lambda c: (c.duration, c.id))[:num_cuts]
    else:
        chosen = random.Random(seed).sample(cuts, num_cuts)
    write_cuts(sorted(chosen, key=lambda c: c.id), feature_dir / f"{prefix}_cuts_{out_split}.jsonl.gz")
    cmvn = feature_dir / f"{prefix}_cmvn_{split}.json"
    if cmvn.exists():
        with atomic_path(feature_dir / f"{prefix}_cmvn_{out_split}.json") as tmp:
            shutil.copyfile(cmvn, tmp)
    hours = sum(c.duration for c in chosen) / 3600
    click.echo(f"{out_split}: {num_cuts} of {len(cuts)} cuts of {split} ({select}), {hours:.2f} h")
