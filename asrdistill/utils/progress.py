"""Progress bars that stay readable in log files.

On a terminal they refresh as usual; when stderr is a file or a pipe (recipes logging
to ``exp/*/log``), they print at most every 30 seconds instead of rewriting the line
many times a second.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable=None, **kwargs) -> tqdm:
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 30.0)
    return tqdm(iterable, **kwargs)
