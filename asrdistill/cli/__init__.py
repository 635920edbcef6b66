"""The ``asrdistill`` command line: one group per recipe stage family.

Each subcommand lives in its own module and is registered here; heavy imports happen
inside the commands, so ``asrdistill --help`` is fast.
"""

from __future__ import annotations

import logging

import click

from .. import __version__
from .decode import decode, score
from .distill import distill
from .features import features
from .gmm import gmm
from .prepare import prepare
from .report import report
from .specialists import specialists
from .summary import summary
from .train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="asrdistill")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    default="INFO",
    help="Logging verbosity.",
)
def cli(log_level: str) -> None:
    """asrdistill: distil ensembles of speech frame classifiers (Hinton et al., 2015).

    Recipes (egs/<corpus>/run.sh) call one subcommand per stage.
    """
    logging.basicConfig(
        level=getattr(logging, log_level), format="%(asctime)s %(levelname)s [%(name)s] %(message)s"
    )


cli.add_command(prepare)
cli.add_command(features)
cli.add_command(summary)
cli.add_command(gmm)
cli.add_command(decode)
cli.add_command(score)
cli.add_command(report)
cli.add_command(train)
cli.add_command(distill)
cli.add_command(specialists)
