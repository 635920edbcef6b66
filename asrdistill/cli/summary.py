"""``asrdistill summary``: utterances, hours and speakers per split."""

from __future__ import annotations

from pathlib import Path

import click

from ..utils.readers import read_cuts


@click.command()
@click.argument("manifest_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--prefix", default="fsdd", help="Corpus prefix of the manifest file names.")
def summary(manifest_dir: Path, prefix: str) -> None:
    """Print a table of the {prefix}_cuts_{split}.jsonl.gz manifests in MANIFEST_DIR."""
    from ..data.cuts import format_summary, summarize

    paths = sorted(manifest_dir.glob(f"{prefix}_cuts_*.jsonl.gz"))
    if not paths:
        raise click.ClickException(f"no {prefix}_cuts_*.jsonl.gz in {manifest_dir}")
    order = {"train": 0, "dev": 1, "test": 2}
    splits = sorted((p.name[len(prefix) + 6 : -len(".jsonl.gz")] for p in paths), key=lambda s: (order.get(s, 9), s))
    click.echo(format_summary({s: summarize(s, read_cuts(manifest_dir / f"{prefix}_cuts_{s}.jsonl.gz")) for s in splits}))
