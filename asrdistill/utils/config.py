"""Dataclass configs: YAML round trip and click options generated from the fields.

Every config is a dataclass whose fields carry ``metadata={"help": ...}``. The same
class gives

* ``save_config`` / ``load_config``: ``config.yaml`` next to every experiment, so a
  result can be reproduced from its folder;
* ``dataclass_options``: one click option per field, with its type, default and help
  (so ``--help`` documents every default), plus ``--config FILE`` to load a YAML file;
* ``config_from_cli``: the config a command runs with: defaults, overridden by the
  YAML file, overridden by options given explicitly on the command line.

Values: one conversion for the command line and YAML
----------------------------------------------------
Each field has one click parameter type (:func:`field_type`), made from its annotation
(``int``, ``float``, ``str``, ``bool``, ``Optional[...]``, ``Tuple[T, ...]``) and its
metadata:

* ``"choices"``: the allowed strings (of the value, or of every element of a tuple);
* ``"separator"``: of the elements of a tuple in one string (default ``","``; the
  command line gives a tuple as one string, ``--acoustic-scales 0.05,0.1``);
* ``"min"`` / ``"max"`` (inclusive), ``"min_exclusive"`` / ``"max_exclusive"``: bounds of a
  number, or of every element of a tuple. A bound that is a string names another field of
  the same config (``"max": "max_active"``); it is checked once the config is complete.

The option on the command line uses that type, and a value from a YAML file is converted
by the very same type (numbers and booleans as the text they would be on the command
line), so ``beam: abc``, ``beam: -5`` or ``acoustic_scales: [0.1, x]`` fail at once with the
message ``--beam abc`` would give, naming the option and the file (a ``click.UsageError``;
:func:`config_from_dict` and :func:`load_config` raise :class:`ConfigError`, a
``ValueError``). A YAML scalar for a tuple field is a one-element tuple, as on the command
line; a list for a scalar field, a mapping, a null for a field that cannot be ``None``, and
a YAML boolean (``yes``, ``on``) for a string field are errors.

YAML files
----------
A file for ``--config`` maps option names (the field names, ``beam``, not ``--beam``) to
values. A command may compose several configs (``train ensemble``: :class:`TrainConfig`
plus the DNN architecture); each has a section name (``train``, ``dnn``), and its values
may be given flat (``lr: 0.001``: each key goes to the config that has the field) or in
its section (``dnn: {hidden_layers: 3}``), or both (a key given twice is an error).

Files written by :func:`save_config` (flat, first line ``# module.Class``) and
:func:`save_sections` (one section per config: the ``config.yaml`` of an experiment
folder) record where they come from in metadata keys, :data:`METADATA_KEYS`:
``command`` (the command line), ``asrdistill_version``, and when the source is a git
checkout ``git_commit`` and ``git_modified`` (uncommitted changes to the package's files).
Loading ignores them, except that a version other than the running one is logged as a
warning; so every saved config can be passed back to ``--config`` as it is. A config
class may list keys it accepts from a file but ignores (values recorded for information,
such as sizes taken from the data) in a ``RECORDED_KEYS`` class attribute.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import operator
import typing
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

import click
import yaml

from .. import __version__
from .atomic import atomic_write_text

T = TypeVar("T")
log = logging.getLogger(__name__)

_COMMAND_LINE = "the command line"

#: Keys of a saved config that describe where it comes from; ignored (the version checked) when loading.
METADATA_KEYS = ("command", "asrdistill_version", "git_commit", "git_modified")


class ConfigError(ValueError):
    """A config value or file that cannot be used; the message names the option and the file."""


def command_line() -> str:
    """The command being run, as a user would type it (``asrdistill ...``)."""
    import shlex
    import sys

    prog = Path(sys.argv[0]).name
    return " ".join(["asrdistill" if prog in ("asrdistill", "__main__.py") else prog] + [shlex.quote(a) for a in sys.argv[1:]])


@functools.lru_cache(maxsize=1)
def source_revision() -> Tuple[Optional[str], Optional[bool]]:
    """``(commit, modified)`` of the git checkout this package runs from; ``(None, None)`` if it is not one.

    ``modified``: whether tracked files of the package (``asrdistill/``) differ from the commit.
    """
    import subprocess

    here = Path(__file__).resolve().parents[1]

    def git(*args) -> Optional[str]:
        try:
            r = subprocess.run(["git", "--no-optional-locks", "-C", str(here), *args], capture_output=True, text=True,
                               timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout if r.returncode == 0 else None

    # the package must be tracked by the repository found (not an installed copy inside another one)
    if git("ls-files", "--error-unmatch", "__init__.py") is None:
        return None, None
    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".")  # the package's own files
    return commit.strip(), (bool(status.strip()) if status is not None else None)


def provenance() -> Dict[str, Any]:
    """The metadata keys of a saved config: command, toolkit version, git commit (when known)."""
    out: Dict[str, Any] = {"command": command_line(), "asrdistill_version": __version__}
    commit, modified = source_revision()
    if commit:
        out["git_commit"] = commit
        if modified is not None:
            out["git_modified"] = modified
    return out


def _check_provenance(data: Mapping[str, Any], source: str) -> None:
    version = data.get("asrdistill_version")
    if version is not None and str(version) != __version__:
        log.warning("%s was written by asrdistill %s (commit %s); this is asrdistill %s: results may differ",
                    source, version, data.get("git_commit", "unknown"), __version__)


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


# -- parameter types: one conversion for the command line and YAML --------------------------------

_BOUNDS = {"min": (">=", operator.ge), "min_exclusive": (">", operator.gt),
           "max": ("<=", operator.le), "max_exclusive": ("<", operator.lt)}


def _bounds(metadata: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: metadata[k] for k in _BOUNDS if k in metadata}


def describe_bounds(metadata: Mapping[str, Any]) -> str:
    """``"> 0"``, ``">= 0, < 1"``: the bounds declared in a field's metadata."""
    return ", ".join(f"{_BOUNDS[k][0]} {v}" for k, v in _bounds(metadata).items())


class _Number(click.ParamType):
    """``int`` or ``float``, with the numeric bounds of the field (field-name bounds are checked later)."""

    def __init__(self, kind: type, bounds: Mapping[str, Any]):
        self.kind = kind
        self.name = "integer" if kind is int else "float"
        self.bounds = {k: v for k, v in bounds.items() if not isinstance(v, str)}

    def convert(self, value, param, ctx):
        if isinstance(value, self.kind) and not isinstance(value, bool):
            v = value
        elif self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            v = float(value)  # an int default of a float field
        else:
            try:
                if not isinstance(value, str):
                    raise ValueError
                v = self.kind(value.strip())
            except ValueError:
                self.fail(f"{value!r} is not a valid {self.name}.", param, ctx)
        if self.kind is float and math.isnan(v):
            self.fail(f"{value!r} is not a number.", param, ctx)
        for key, bound in self.bounds.items():
            sym, op = _BOUNDS[key]
            if not op(v, bound):
                self.fail(f"{v} is not {sym} {bound}.", param, ctx)
        return v


class _Tuple(click.ParamType):
    """``Tuple[T, ...]``: a comma-separated string (command line), a list or a single value (YAML)."""

    def __init__(self, element: click.ParamType, separator: str = ","):
        self.element = element
        self.separator = separator
        self.name = f"{element.name} list"

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            items: list = [x.strip() for x in value.split(self.separator) if x.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        elif isinstance(value, dict):
            self.fail(f"expected a list of {self.element.name} values, got a mapping {value!r}.", param, ctx)
        else:
            items = [value]
        out = []
        for x in items:
            try:
                out.append(_convert_scalar(self.element, x, param, ctx))
            except click.BadParameter as e:
                self.fail(f"cannot read {value!r} as {self.element.name} values: {e.message}", param, ctx)
        return tuple(out)


def _convert_scalar(ptype: click.ParamType, value, param=None, ctx=None):
    """``ptype.convert`` of one YAML (or command-line) value; YAML numbers and booleans as their text."""
    if isinstance(value, (list, tuple, dict)):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        ptype.fail(f"expected one value, got {kind} {value!r}.", param, ctx)
    if value is None:
        ptype.fail("no value (YAML null).", param, ctx)
    if isinstance(value, bool) and (ptype is click.STRING or isinstance(ptype, click.Choice)):
        ptype.fail(f"expected a string, got the YAML boolean {str(value).lower()} (YAML reads yes/no/on/off as "
                   "booleans: quote the value).", param, ctx)
    if not isinstance(value, str) and not (isinstance(value, bool) and ptype is click.BOOL):
        value = str(value)
    return ptype.convert(value, param, ctx)


def _is_tuple(tp) -> bool:
    return typing.get_origin(tp) in (tuple, list)


def _optional_inner(tp):
    """``X`` for ``Optional[X]``, else None."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def _scalar_type(tp, metadata: Mapping[str, Any]) -> click.ParamType:
    if tp is bool:
        return click.BOOL
    if tp in (int, float):
        return _Number(tp, _bounds(metadata))
    if "choices" in metadata:
        return click.Choice([str(c) for c in metadata["choices"]])
    return click.STRING


def _field_default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


@functools.lru_cache(maxsize=None)
def _hints(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def field_type(cls: type, name: str) -> Tuple[click.ParamType, bool]:
    """``(click type, accepts None)`` of field ``name`` of ``cls``: the conversion and checks of its values."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    tp = _hints(cls)[name]
    inner = _optional_inner(tp)
    allow_none = inner is not None or _field_default(field) is None
    tp = inner if inner is not None else tp
    if _is_tuple(tp):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        element = _scalar_type(args[0] if args else str, field.metadata)
        return _Tuple(element, field.metadata.get("separator", ",")), allow_none
    return _scalar_type(tp, field.metadata), allow_none


def _option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def field_converter(cls: type, name: str) -> Callable[[Any, str], Any]:
    """``convert(value, source)``: a value of field ``name`` from ``source`` (a file), or :class:`ConfigError`."""
    ptype, allow_none = field_type(cls, name)

    def convert(value, source: str):
        if value is None and allow_none:
            return None
        try:
            if isinstance(ptype, _Tuple):
                if value is None:
                    ptype.fail("no value (YAML null); use [] for an empty list.")
                return ptype.convert(value, None, None)
            return _convert_scalar(ptype, value)
        except click.BadParameter as e:
            raise ConfigError(f"Invalid value for '{name}' in {source} ({_option_name(name)}): {e.message}") from None

    return convert


# -- building configs ------------------------------------------------------------------------------

def _check_field_bounds(config: Any, origin: Mapping[str, str]) -> None:
    """Bounds that name another field (``"max": "max_active"``); ``origin``: where each given value comes from."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}

    def where(name: str) -> str:
        if name not in origin:
            return " (default)"
        return " on the command line" if origin[name] == _COMMAND_LINE else f" in {origin[name]}"

    for f in dataclasses.fields(config):
        for key, bound in _bounds(f.metadata).items():
            if not isinstance(bound, str):
                continue
            v, other = values[f.name], values[bound]
            if v is None or other is None:
                continue
            sym, op = _BOUNDS[key]
            if not all(op(x, other) for x in (v if isinstance(v, tuple) else (v,))):
                raise ConfigError(f"Invalid value for '{f.name}'{where(f.name)} ({_option_name(f.name)}): {v} is not "
                                  f"{sym} {other}, the value of '{bound}'{where(bound)} ({_option_name(bound)}).")


def _build(cls: Type[T], values: Dict[str, Any], source: str, origin: Optional[Mapping[str, str]] = None) -> T:
    """``cls(**values)`` and the checks across fields; ``origin``: field -> file or "the command line"."""
    try:
        config = cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {e}") from None
    _check_field_bounds(config, {k: source for k in values} if origin is None else origin)
    return config


def _recorded_keys(cls) -> Tuple[str, ...]:
    return tuple(getattr(cls, "RECORDED_KEYS", ()))


def _convert_values(cls, values: Mapping[str, Any], source: str) -> Dict[str, Any]:
    return {k: field_converter(cls, k)(v, source) for k, v in values.items()}


def config_from_dict(cls: Type[T], values: Dict[str, Any], source: str = "config") -> T:
    """Build ``cls`` from ``values`` (converted and checked as command-line values); errors name ``source``.

    Unknown keys are an error; :data:`METADATA_KEYS` and ``cls.RECORDED_KEYS`` are ignored.
    """
    (raw,) = _split_values(dict(values), [("config", cls, None)], source).values()
    return _build(cls, _convert_values(cls, raw, source), source)


def _read_yaml(path: Path) -> Dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value, got {type(data).__name__} {data!r}")
    return data


Spec = Tuple[str, type, Optional[str]]  # (keyword, config class, section name or None)


def _split_values(data: Dict[str, Any], specs: Sequence[Spec], source: str) -> Dict[str, Dict[str, Any]]:
    """Raw values per config of ``specs`` from the mapping of a file: sections and flat keys (module docstring)."""
    _check_provenance(data, source)
    out: Dict[str, Dict[str, Any]] = {key: {} for key, _, _ in specs}
    sections = {section: (key, cls) for key, cls, section in specs if section}
    owners: Dict[str, List[str]] = {}
    for key, cls, _ in specs:
        for f in dataclasses.fields(cls):
            owners.setdefault(f.name, []).append(key)
    unknown: List[str] = []

    def put(key: str, name: str, value, where: str) -> None:
        if name in out[key]:
            raise ConfigError(f"{source}: option '{name}' is given twice ({where} and once more); give it once")
        out[key][name] = value

    for k, v in data.items():
        if k in METADATA_KEYS:
            continue
        if k in sections and isinstance(v, dict):
            key, cls = sections[k]
            names = {f.name for f in dataclasses.fields(cls)}
            for name, x in v.items():
                if name in names:
                    put(key, name, x, f"in section '{k}'")
                elif name not in _recorded_keys(cls):
                    unknown.append(f"{k}.{name}")
        elif isinstance(v, dict) and k not in owners:
            reads = ", ".join(f"'{s}'" for s in sections) or "no sections"
            raise ConfigError(f"{source}: section '{k}' is not read by this command (it reads {reads}, or their options "
                              "flat)")
        elif k in owners:
            if len(owners[k]) > 1:
                where = [s for s, (key, _) in sections.items() if key in owners[k]]
                raise ConfigError(f"{source}: option '{k}' belongs to several configs; give it in one of the sections "
                                  f"{where}")
            put(owners[k][0], k, v, "flat")
        else:
            unknown.append(k)
    if unknown:
        names = " and ".join(cls.__name__ for _, cls, _ in specs)
        known = sorted(owners) + [f"{s}.<option>" for s in sections]
        raise ConfigError(f"{source}: unknown option(s) {unknown} for {names}; known: {known}")
    return out


def save_config(config: Any, path: Path) -> None:
    """Write ``config`` as YAML (atomically): first line ``# module.Class``, then its fields and :func:`provenance`."""
    text = f"# {type(config).__module__}.{type(config).__name__}\n" + yaml.safe_dump(
        {**config_to_dict(config), **provenance()}, sort_keys=False
    )
    atomic_write_text(path, text)


def save_sections(path: Path, **configs: Any) -> None:
    """Write several configs as YAML sections (``dnn: {...}``, ``train: {...}``) plus :func:`provenance`.

    The file is accepted back by ``--config`` of a command composed of these sections.
    """
    header = "# asrdistill config, sections " + ", ".join(
        f"{name} ({type(c).__module__}.{type(c).__name__})" for name, c in configs.items())
    data = {name: config_to_dict(c) for name, c in configs.items()}
    atomic_write_text(path, header + "\n" + yaml.safe_dump({**data, **provenance()}, sort_keys=False))


def load_config(cls: Type[T], path: Path) -> T:
    """``cls`` from a flat YAML file (as :func:`save_config` writes), values checked; :class:`ConfigError` if wrong."""
    return config_from_dict(cls, _read_yaml(path), source=str(path))


# -- click ---------------------------------------------------------------------------------------------

def _add_field_options(f, cls: Type[Any]):
    for field in reversed(dataclasses.fields(cls)):
        ptype, _ = field_type(cls, field.name)
        default = _field_default(field)
        help_text = field.metadata.get("help", "")
        bounds = describe_bounds(field.metadata)
        name = _option_name(field.name)
        if isinstance(ptype, _Tuple):
            sep = ptype.separator
            help_text += (" (comma-separated" if sep == "," else f" ({sep!r}-separated") + (
                f"; each {bounds})" if bounds else ")")
            shown = sep.join(str(x) for x in default)
            opt = click.option(name, field.name, type=ptype, default=shown, show_default=True, help=help_text)
        elif ptype is click.BOOL:
            opt = click.option(f"{name}/--no-{name[2:]}", field.name, default=default, show_default=True, help=help_text)
        else:
            if bounds:
                help_text += f" ({bounds})"
            opt = click.option(name, field.name, type=ptype, default=default, show_default=True, help=help_text)
        f = opt(f)
    return f


def dataclass_options(*classes: Type[Any], sections: Sequence[Optional[str]] = ()):
    """Decorator adding one click option per field of each of ``classes``, and ``--config``.

    Tuple fields take a comma-separated list (``--train-speakers a,b,c``); bool fields
    become ``--flag/--no-flag``. The wrapped command receives the fields as keyword
    arguments; pass them to :func:`config_from_cli`. ``sections``: the YAML section name of
    each class (for the ``--config`` help).
    """
    seen: Dict[str, str] = {}
    for cls in classes:
        for field in dataclasses.fields(cls):
            if field.name in seen:
                raise TypeError(f"option {field.name!r} is a field of both {seen[field.name]} and {cls.__name__}")
            seen[field.name] = cls.__name__
    names = " and ".join(c.__name__ for c in classes)
    named = [s for s in sections if s]
    where = (f" (flat, or in sections {', '.join(repr(s + ':') for s in named)}; a config.yaml the command saved "
             "is accepted as is)" if named else "")

    def decorator(f):
        for cls in reversed(classes):
            f = _add_field_options(f, cls)
        return click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help=f"YAML file with {names} values{where}; options given on the command line override it.",
        )(f)

    return decorator


def configs_from_cli(specs: Sequence[Spec], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The configs of ``specs`` (``(keyword, class, section)``) for a command decorated with :func:`dataclass_options`.

    Pops the fields (and ``config_file``) from ``kwargs``. Precedence: command-line option >
    ``--config`` file > ``default_map`` > dataclass default. Any wrong value is one
    ``click.UsageError`` naming the option (and the file).
    """
    ctx = click.get_current_context()
    config_file = kwargs.pop("config_file", None)
    source = str(config_file) if config_file else _COMMAND_LINE
    try:
        raw = _split_values(_read_yaml(config_file), specs, source) if config_file else {k: {} for k, _, _ in specs}
        out = {}
        for key, cls, _ in specs:
            values = _convert_values(cls, raw[key], source)
            origin = {k: source for k in values}
            for field in dataclasses.fields(cls):
                v = kwargs.pop(field.name)
                where = ctx.get_parameter_source(field.name)
                if where == click.core.ParameterSource.DEFAULT or (
                        where == click.core.ParameterSource.DEFAULT_MAP and field.name in values):
                    continue
                values[field.name] = v  # already converted and checked by the option's type
                origin[field.name] = _COMMAND_LINE
            out[key] = _build(cls, values, source, origin)
        return out
    except ConfigError as e:
        raise click.UsageError(str(e), ctx) from None


def config_from_cli(cls: Type[T], kwargs: Dict[str, Any]) -> T:
    """Config for a command decorated with ``dataclass_options(cls)`` (see :func:`configs_from_cli`)."""
    return configs_from_cli([("config", cls, None)], kwargs)["config"]


def with_config(cls: Type[Any], section: Optional[str] = None, **others: Type[Any]):
    """``dataclass_options`` plus conversion: the command gets ``config=cls(...)``.

    ``section``: the name of ``cls``'s section in a YAML file (as :func:`save_sections`
    writes it); ``others``: more configs composed into the command, each passed as the
    keyword of its name, which is also its section (``with_config(TrainConfig, "train",
    dnn=DnnOptions)``: the command gets ``config`` and ``dnn``).
    """
    specs: List[Spec] = [("config", cls, section)] + [(name, c, name) for name, c in others.items()]

    def decorator(f):
        @functools.wraps(f)
        def wrapper(**kwargs):
            configs = configs_from_cli(specs, kwargs)
            return f(**configs, **kwargs)

        return dataclass_options(*[c for _, c, _ in specs], sections=[s for _, _, s in specs])(wrapper)

    return decorator
