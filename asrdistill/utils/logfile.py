"""A log file beside an experiment's outputs: what the command logged, appended run after run."""

from __future__ import annotations

import logging
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


class _ExperimentLog(logging.FileHandler):
    """The handler of :func:`attach_experiment_log` (at most one attached at a time)."""


def attach_experiment_log(path) -> Path:
    """From now on, copy every log record to ``path`` (appended), in place of the previous experiment's log.

    An experiment's training starts this once its folder is known to be its own, so that
    ``EXP_DIR/log.txt`` holds what the run logged (its progress and evaluations, its
    resumes).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _ExperimentLog)]:
        root.removeHandler(h)
        h.close()
    handler = _ExperimentLog(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)  # records at the root logger's level (the CLI's --log-level, INFO by default)
    return path
