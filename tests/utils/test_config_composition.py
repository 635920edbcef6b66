"""Configs composed from several dataclasses must not silently merge two different fields.

``class TriConfig(TreeConfig, GmmTrainConfig)`` gets ONE ``min_count`` even when both bases
define one with a different meaning (tree: fewest frames per split side; GMM: fewest frames
per Gaussian): the dataclass machinery keeps the first in the MRO, and the code written
against the other base silently reads the wrong value. This test walks every config
dataclass of the package and fails when a field is defined by two or more *unrelated*
bases (neither a subclass of the other) with different defaults or different help text.
A class overriding a field of one base on purpose (a subclass changing a default) is
fine; so are two bases declaring the very same field (same default and help). Redefining
the field in the composed class does not resolve a clash: both bases' code still read
the one value.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
from typing import Dict, List, Tuple

import pytest

import asrdistill
from asrdistill.utils.config import _field_default

#: Optional third-party modules whose absence may make a module unimportable: those
#: modules are skipped (and listed by the test), anything else failing to import is an error.
OPTIONAL_DEPS = ("k2", "kaldi_hmm_gmm", "kaldifst", "kaldi_decoder", "lhotse", "tensorboard", "torchaudio", "soundfile",
                 "sentencepiece", "matplotlib", "graphviz")


def import_all_modules() -> Tuple[List[object], List[str]]:
    """Every module of :mod:`asrdistill` (``pkgutil.walk_packages``) and the ones skipped for a missing optional dep."""
    modules, skipped = [], []

    def onerror(name):
        skipped.append(f"{name} (package failed to import)")

    for info in pkgutil.walk_packages(asrdistill.__path__, "asrdistill.", onerror=onerror):
        if info.name.endswith("__main__"):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except ModuleNotFoundError as e:
            root = (e.name or "").split(".")[0]
            if root in OPTIONAL_DEPS or (root and root != "asrdistill" and importlib.util.find_spec(root) is None):
                skipped.append(f"{info.name} (needs {e.name})")
            else:
                raise
    return modules, skipped


def is_config_class(cls) -> bool:
    if not (inspect.isclass(cls) and dataclasses.is_dataclass(cls)):
        return False
    if cls.__name__.endswith(("Config", "Options")):
        return True
    return any("help" in f.metadata for f in dataclasses.fields(cls))


def config_classes(modules) -> Dict[str, type]:
    found = {}
    for mod in modules:
        for _, obj in vars(mod).items():
            if is_config_class(obj) and obj.__module__.startswith("asrdistill"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def own_fields(cls) -> Dict[str, dataclasses.Field]:
    """The fields ``cls`` declares in its own body (not inherited)."""
    annotations = inspect.get_annotations(cls)
    return {f.name: f for f in dataclasses.fields(cls) if f.name in annotations}


def _describe(base: type, f: dataclasses.Field) -> str:
    return f"{base.__module__}.{base.__qualname__} (default {_field_default(f)!r}, help {f.metadata.get('help', '')!r})"


def field_clashes(cls) -> List[str]:
    """One message per field of ``cls`` defined differently by two unrelated dataclass bases in its MRO."""
    out = []
    bases = [b for b in cls.__mro__[1:] if dataclasses.is_dataclass(b)]
    for name in (f.name for f in dataclasses.fields(cls)):
        definers = [(b, own_fields(b)[name]) for b in bases if name in own_fields(b)]
        # the most derived definition on each independent line of inheritance
        heads = [(b, f) for b, f in definers if not any(o is not b and issubclass(o, b) for o, _ in definers)]
        for i, (a, fa) in enumerate(heads):
            for b, fb in heads[i + 1:]:
                same_default = _field_default(fa) == _field_default(fb)
                same_help = fa.metadata.get("help", "") == fb.metadata.get("help", "")
                if not (same_default and same_help):
                    differ = " and ".join(w for w, same in (("defaults", same_default), ("help texts", same_help)) if not same)
                    kept = next(c for c in cls.__mro__ if dataclasses.is_dataclass(c) and name in own_fields(c))
                    out.append(f"{cls.__module__}.{cls.__qualname__}.{name}: defined by two unrelated bases with different "
                               f"{differ}: {_describe(a, fa)} vs {_describe(b, fb)}; {cls.__qualname__} keeps one field, "
                               f"{kept.__qualname__}'s (default {_field_default(own_fields(kept)[name])!r}), for both")
    return out


@pytest.fixture(scope="module")
def package_configs():
    modules, skipped = import_all_modules()
    print("skipped modules:", skipped or "none")
    return config_classes(modules)


def test_walk_finds_the_package_configs(package_configs):
    names = {c.__name__ for c in package_configs.values()}
    assert {"DnnConfig", "TrainConfig", "DistillConfig", "FbankConfig"} <= names, sorted(names)
    assert len(package_configs) >= 15, sorted(names)


def test_no_config_merges_two_different_fields(package_configs):
    clashes = [m for _, cls in sorted(package_configs.items()) for m in field_clashes(cls)]
    assert not clashes, f"{len(clashes)} merged field(s):\n" + "\n".join(clashes)


# -- the checker itself -----------------------------------------------------------------------

@dataclasses.dataclass
class _Tree:
    min_count: float = dataclasses.field(default=50.0, metadata={"help": "Fewest frames per split side."})
    shared: int = dataclasses.field(default=1, metadata={"help": "Same in both."})


@dataclasses.dataclass
class _Gmm:
    min_count: float = dataclasses.field(default=20.0, metadata={"help": "Fewest frames per Gaussian."})
    shared: int = dataclasses.field(default=1, metadata={"help": "Same in both."})


@dataclasses.dataclass
class _Merged(_Tree, _Gmm):
    pass


@dataclasses.dataclass
class _MergedAndOverridden(_Tree, _Gmm):
    min_count: float = dataclasses.field(default=30.0, metadata={"help": "Fewest frames per split side."})


@dataclasses.dataclass
class _Override(_Tree):
    min_count: float = dataclasses.field(default=10.0, metadata={"help": "Fewest frames per split side."})


@dataclasses.dataclass
class _OverrideThenCompose(_Override, _Tree):
    pass


def test_checker_flags_two_unrelated_bases_only():
    (msg,) = field_clashes(_Merged)
    assert "_Merged.min_count" in msg and "_Tree" in msg and "_Gmm" in msg and "defaults and help texts" in msg
    assert "50.0" in msg and "20.0" in msg
    assert len(field_clashes(_MergedAndOverridden)) == 1  # overriding in the composed class does not fix it
    assert field_clashes(_Override) == [] and field_clashes(_OverrideThenCompose) == []  # one line of inheritance
