"""Dataclass configs: YAML round trip and click options generated from the fields.

Every config is a dataclass whose fields carry ``metadata={"help": ...}``. The same
class gives

* ``save_config`` / ``load_config``: ``config.yaml`` next to every experiment, so a
  result can be reproduced from its folder;
* ``dataclass_options``: one click option per field, with its type, default and help
  (so ``--help`` documents every default), plus ``--config FILE`` to load a YAML file;
* ``config_from_cli``: the config a command runs with: defaults, overridden by the
  YAML file, overridden by options given explicitly on the command line.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from pathlib import Path
from typing import Any, Dict, Type, TypeVar

import click
import yaml

from .atomic import atomic_write_text

T = TypeVar("T")


def command_line() -> str:
    """The command being run, as a user would type it (``asrdistill ...``)."""
    import shlex
    import sys

    prog = Path(sys.argv[0]).name
    return " ".join(["asrdistill" if prog in ("asrdistill", "__main__.py") else prog] + [shlex.quote(a) for a in sys.argv[1:]])


def config_to_dict(config: Any) -> Dict[str, Any]:
    """Plain-YAML-able dict of a dataclass (tuples become lists)."""

    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return {f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def config_from_dict(cls: Type[T], values: Dict[str, Any], source: str = "config") -> T:
    """Build ``cls`` from ``values``; unknown keys are an error naming ``source``."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{source}: unknown option(s) {unknown} for {cls.__name__}; known: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in values.items():
        if _is_tuple(hints[k]) and isinstance(v, (list, tuple, str)):
            v = _as_tuple(hints[k], v, k)
        kwargs[k] = v
    return cls(**kwargs)


def save_config(config: Any, path: Path) -> None:
    """Write ``config`` as YAML (atomically), with its class name as a comment."""
    text = f"# {type(config).__module__}.{type(config).__name__}\n" + yaml.safe_dump(
        config_to_dict(config), sort_keys=False
    )
    atomic_write_text(path, text)


def load_config(cls: Type[T], path: Path) -> T:
    with open(path) as f:
        values = yaml.safe_load(f) or {}
    return config_from_dict(cls, values, source=str(path))


def _is_tuple(tp) -> bool:
    return typing.get_origin(tp) in (tuple, list)


def _element_type(tp):
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    return args[0] if args else str


def _as_tuple(tp, values, name: str) -> tuple:
    """Convert a list (from YAML) or a comma-separated string to a tuple of the annotated element type."""
    if isinstance(values, str):
        values = [x.strip() for x in values.split(",") if x.strip()]
    elem = _element_type(tp)
    try:
        return tuple(elem(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"option {name}: cannot read {list(values)} as {elem.__name__} values") from None


def _option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def dataclass_options(cls: Type[Any]):
    """Decorator adding one click option per field of ``cls`` and ``--config``.

    Tuple fields take a comma-separated list (``--train-speakers a,b,c``); bool fields
    become ``--flag/--no-flag``. The wrapped command receives the fields as keyword
    arguments; pass them to :func:`config_from_cli`.
    """
    hints = typing.get_type_hints(cls)

    def decorator(f):
        for field in reversed(dataclasses.fields(cls)):
            tp = hints[field.name]
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            help_text = field.metadata.get("help", "")
            name = _option_name(field.name)
            if tp is bool:
                opt = click.option(f"{name}/--no-{name[2:]}", field.name, default=default, show_default=True, help=help_text)
            elif _is_tuple(tp):
                shown = ",".join(str(x) for x in default)
                opt = click.option(name, field.name, default=shown, show_default=True, help=help_text + " (comma-separated)")
            else:
                ptype = tp if tp in (int, float, str) else str
                if "choices" in field.metadata:
                    ptype = click.Choice(field.metadata["choices"])
                opt = click.option(name, field.name, type=ptype, default=default, show_default=True, help=help_text)
            f = opt(f)
        f = click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help=f"YAML file with {cls.__name__} values; options given on the command line override it.",
        )(f)
        return f

    return decorator


def config_from_cli(cls: Type[T], kwargs: Dict[str, Any]) -> T:
    """Config for a command decorated with :func:`dataclass_options`.

    Pops the fields of ``cls`` (and ``config_file``) from ``kwargs``. Precedence:
    command-line option > ``--config`` file > dataclass default.
    """
    ctx = click.get_current_context()
    config_file = kwargs.pop("config_file", None)
    values: Dict[str, Any] = {}
    if config_file is not None:
        with open(config_file) as f:
            values.update(yaml.safe_load(f) or {})
    for field in dataclasses.fields(cls):
        v = kwargs.pop(field.name)
        explicit = ctx.get_parameter_source(field.name) not in (
            click.core.ParameterSource.DEFAULT,
            click.core.ParameterSource.DEFAULT_MAP,
        )
        if explicit or field.name not in values:
            values[field.name] = v
    try:
        return config_from_dict(cls, values, source=str(config_file) if config_file else "command line")
    except (TypeError, ValueError) as e:
        raise click.UsageError(str(e))


def with_config(cls: Type[Any]):
    """``dataclass_options`` plus conversion: the command gets ``config=cls(...)``."""

    def decorator(f):
        @functools.wraps(f)
        def wrapper(**kwargs):
            config = config_from_cli(cls, kwargs)
            return f(config=config, **kwargs)

        return dataclass_options(cls)(wrapper)

    return decorator
