"""The ``asrdistill`` command line: one group per recipe stage family.

Each subcommand lives in its own module, imported only when the subcommand is used: the
command list of ``asrdistill --help`` comes from the modules' source (the docstrings of
the command functions) without importing them, so neither ``import asrdistill.cli`` nor
``asrdistill --help`` imports torch, lhotse or the Kaldi bindings.

An ``OSError`` that reaches the entry point (an output directory that cannot be created,
a full disk) is printed as one line naming the path and the OS's reason, exit status 1;
``--log-level DEBUG`` logs its traceback too.
"""

from __future__ import annotations

import ast
import errno
import importlib
import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import Dict, Iterator, Tuple

import click

from .. import __version__

log = logging.getLogger(__name__)

#: Subcommand -> (module of this package, attribute): loaded on first use.
_COMMANDS: Dict[str, Tuple[str, str]] = {
    "prepare": ("prepare", "prepare"),
    "features": ("features", "features"),
    "summary": ("summary", "summary"),
    "gmm": ("gmm", "gmm"),
    "decode": ("decode", "decode"),
    "score": ("decode", "score"),
    "report": ("report", "report"),
    "report-cv": ("report_cv", "report_cv"),
    "train": ("train", "train"),
    "distill": ("distill", "distill"),
    "specialists": ("specialists", "specialists"),
    "export": ("export", "export"),
    "transcribe": ("transcribe", "transcribe"),
}


def _docstring(module: str, attr: str) -> str:
    """The docstring of function ``attr`` in module ``module``, read from the source, not imported."""
    tree = ast.parse((Path(__file__).parent / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == attr:
            return ast.get_docstring(node) or ""
    return ""


class LazyCommands(MutableMapping):
    """``Group.commands`` whose values are imported when first looked up (names and help without import)."""

    def __init__(self, lazy: Dict[str, Tuple[str, str]]):
        self._lazy = dict(lazy)
        self._loaded: Dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._lazy:
                raise KeyError(name)
            module, attr = self._lazy[name]
            self._loaded[name] = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        return self._loaded[name]

    def __setitem__(self, name: str, cmd: click.Command) -> None:
        self._loaded[name] = cmd

    def __delitem__(self, name: str) -> None:
        self._loaded.pop(name, None)
        self._lazy.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._lazy, *self._loaded]))

    def __len__(self) -> int:
        return len(set(self._lazy) | set(self._loaded))

    def __contains__(self, name) -> bool:
        return name in self._lazy or name in self._loaded

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def short_help(self, name: str, limit: int) -> str:
        """What ``self[name].get_short_help_str(limit)`` gives, without importing an unloaded command."""
        if name in self._loaded:
            return self._loaded[name].get_short_help_str(limit)
        module, attr = self._lazy[name]
        try:
            doc = _docstring(module, attr)
        except (OSError, SyntaxError):  # no source next to the package: import it
            return self[name].get_short_help_str(limit)
        return click.Command(name, help=doc).get_short_help_str(limit)


class Cli(click.Group):
    """The top-level group: lazy subcommands, OS errors as one line."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        commands = self.commands
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            if isinstance(commands, LazyCommands) and not commands.is_loaded(name):
                rows.append((name, commands.short_help(name, limit)))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ValueError as e:
            from ..utils.errors import UserError

            if isinstance(e, UserError):  # names the file or setting: one line, no traceback
                raise click.ClickException(str(e)) from e
            raise
        except OSError as e:
            if e.errno == errno.EPIPE:
                raise
            from ..utils.atomic import describe_os_error

            log.debug("OS error", exc_info=True)
            raise click.ClickException(describe_os_error(e)) from e


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
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
    from ..utils.logfile import FORMAT
    from ..utils.progress import ProgressAwareHandler

    logging.basicConfig(
        level=getattr(logging, log_level), format=FORMAT,
        handlers=[ProgressAwareHandler()],
    )
    logging.getLogger().setLevel(getattr(logging, log_level))  # also when a host already configured logging


cli.commands = LazyCommands(_COMMANDS)
