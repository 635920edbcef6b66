"""Start method of the toolkit's worker processes (decoding, GMM shards, feature extraction).

Workers are forked where the platform allows it (Linux): they inherit the parent's imported
modules (torch, lhotse, the Kaldi bindings), so a pool starts in milliseconds instead of the
seconds a spawned interpreter spends importing them again. Every worker sets torch to one
thread before any computation (as torch's DataLoader workers do), so no OpenMP pool of the
parent is used after the fork. ``ASRDISTILL_START_METHOD=spawn`` (or ``forkserver``) overrides
the choice; spawn is used where fork is not available.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys

ENV_VAR = "ASRDISTILL_START_METHOD"


def start_method() -> str:
    """``$ASRDISTILL_START_METHOD`` if set, else ``fork`` on Linux, else ``spawn``."""
    method = os.environ.get(ENV_VAR, "")
    available = mp.get_all_start_methods()
    if method:
        if method not in available:
            raise ValueError(f"{ENV_VAR}={method!r} is not a start method of this platform ({', '.join(available)})")
        return method
    return "fork" if sys.platform.startswith("linux") and "fork" in available else "spawn"


def process_context():
    """The multiprocessing context of :func:`start_method`."""
    return mp.get_context(start_method())
