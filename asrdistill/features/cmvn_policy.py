"""CMVN is required: which statistics file a split's features are normalized with, and checks.

Features are never silently left unnormalized. A command that reads features takes its
split's ``{prefix}_cmvn_{split}.json``; a missing file is an error naming it, unless the
user said ``--no-cmvn`` (the ``cmvn`` field of the command's config, saved with its
outputs). A model is scored with the normalization it was trained with. Imports nothing
but the standard library (and yaml, lazily), so the training engine keeps importing with
torch alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

CMVN_HELP = ("Normalize with the per-speaker CMVN statistics {prefix}_cmvn_{split}.json, which must exist; "
             "--no-cmvn: use the features as they are (recorded in the output's config)")


def cmvn_file(feature_dir, prefix: str, split: str, use_cmvn: bool = True) -> Optional[Path]:
    """The CMVN statistics file of a split, which must exist; ``None`` only when ``use_cmvn`` is false.

    Features are never silently left unnormalized: a missing file is a
    :class:`FileNotFoundError` naming it and saying how to go without (``--no-cmvn``).
    """
    if not use_cmvn:
        return None
    path = Path(feature_dir) / f"{prefix}_cmvn_{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: compute it (asrdistill features cmvn --splits {split}), "
                                f"or pass --no-cmvn to use unnormalized features")
    return path


def recorded_setting(exp_dir, key: str, default):
    """A setting the run in ``exp_dir`` recorded in its ``config.yaml`` (a key, flat or in a section);
    ``default`` for a folder without it."""
    import yaml

    path = Path(exp_dir) / "config.yaml"
    if not path.is_file():
        return default
    data = yaml.safe_load(path.read_text()) or {}
    if key in data:
        return data[key]
    for value in data.values():
        if isinstance(value, dict) and key in value:
            return value[key]
    return default


def recorded_cmvn(exp_dir) -> bool:
    """Whether the model in ``exp_dir`` was trained on CMVN-normalized features (older folders without
    the record: True, as they always were when the statistics existed)."""
    return bool(recorded_setting(exp_dir, "cmvn", True))


def check_cmvn_matches(exp_dir, use_cmvn: bool) -> None:
    """A model is scored with the normalization it was trained with, or not at all."""
    trained = recorded_cmvn(exp_dir)
    if trained and not use_cmvn:
        raise ValueError(f"{exp_dir} was trained on CMVN-normalized features: use it with its CMVN statistics "
                         f"(without --no-cmvn)")
    if use_cmvn and not trained:
        raise ValueError(f"{exp_dir} was trained without CMVN (--no-cmvn): use it with --no-cmvn")


