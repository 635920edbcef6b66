"""``asrdistill prepare``: corpus download and lhotse manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..data.fsdd import FsddConfig
from ..utils.config import with_config


@click.group()
def prepare() -> None:
    """Prepare corpora as lhotse manifests (recordings, supervisions, cuts)."""


@prepare.command("fsdd")
@click.option(
    "--corpus-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="An existing FSDD copy (with recordings/); if not given, the corpus is downloaded to --download-dir.",
)
@click.option(
    "--download-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("download"),
    help="Where to download FSDD when --corpus-dir is not given.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/manifests"),
    help="Where the manifests are written.",
)
@with_config(FsddConfig)
def prepare_fsdd_cmd(config: FsddConfig, corpus_dir: Optional[Path], download_dir: Path, output_dir: Path) -> None:
    """Free Spoken Digit Dataset: speaker-independent splits plus connected-digit utterances."""
    from ..data.audio_check import AudioError
    from ..data.cuts import format_summary
    from ..data.fsdd import download_fsdd, prepare_fsdd, summarize_splits

    if corpus_dir is None:
        corpus_dir = download_fsdd(download_dir)
    try:
        cuts = prepare_fsdd(corpus_dir, output_dir, config)
    except (AudioError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e))
    click.echo(format_summary(summarize_splits(cuts)))
