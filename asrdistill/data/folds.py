"""Leave-one-speaker-out folds: which speakers train, tune (dev) and test in fold ``k``.

A folds file (YAML) lists the corpus's speakers and, per fold, its dev and test speaker;
the other speakers train::

    speakers: [george, jackson, nicolas, theo, yweweler]
    folds:
      - {dev: nicolas, test: theo}
      - {dev: theo, test: yweweler}

Every speaker must be the test speaker of at most one fold (a rotation), and a fold's
dev and test speakers differ; anything else is an error naming the file. ``asrdistill
prepare fsdd --folds FILE --fold K`` prepares fold ``K``'s split, recorded in its
``prepare_config.yaml`` as plain speaker lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple


class FoldsError(ValueError):
    """A folds file that does not describe a leave-one-speaker-out rotation."""


def read_folds(path) -> Tuple[List[str], List[Dict[str, str]]]:
    """``(speakers, folds)`` of a folds file, checked (see the module doc)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise FoldsError(f"{path}: not valid YAML: {e}") from None
    speakers, folds = data.get("speakers"), data.get("folds")
    if not isinstance(speakers, list) or not isinstance(folds, list) or not folds:
        raise FoldsError(f"{path}: needs a list 'speakers' and a non-empty list 'folds' of {{dev: S, test: S}}")
    speakers = [str(s) for s in speakers]
    if len(set(speakers)) != len(speakers):
        raise FoldsError(f"{path}: a speaker is listed twice in 'speakers'")
    tested: Dict[str, int] = {}
    out = []
    for k, fold in enumerate(folds):
        if not isinstance(fold, dict) or set(fold) != {"dev", "test"}:
            raise FoldsError(f"{path}: fold {k} must be {{dev: SPEAKER, test: SPEAKER}}, got {fold!r}")
        dev, test = str(fold["dev"]), str(fold["test"])
        unknown = sorted({dev, test} - set(speakers))
        if unknown:
            raise FoldsError(f"{path}: fold {k} names speaker(s) {unknown} not in 'speakers'")
        if dev == test:
            raise FoldsError(f"{path}: fold {k} has {dev!r} as both dev and test speaker")
        if test in tested:
            raise FoldsError(f"{path}: {test!r} is the test speaker of folds {tested[test]} and {k}")
        tested[test] = k
        out.append({"dev": dev, "test": test})
    if len(speakers) - 2 < 1:
        raise FoldsError(f"{path}: with {len(speakers)} speakers no fold has a training speaker")
    return speakers, out


def fold_speakers(path, fold: int) -> Dict[str, Tuple[str, ...]]:
    """The split of fold ``fold``: ``train_speakers``, ``dev_speakers``, ``test_speakers`` (config fields)."""
    speakers, folds = read_folds(path)
    if not 0 <= fold < len(folds):
        raise FoldsError(f"{path}: fold {fold} does not exist (folds 0-{len(folds) - 1})")
    dev, test = folds[fold]["dev"], folds[fold]["test"]
    return {"train_speakers": tuple(s for s in speakers if s not in (dev, test)),
            "dev_speakers": (dev,), "test_speakers": (test,)}
