"""Progress bars that stay readable in log files.

On a terminal they refresh as usual; when stderr is a file or a pipe (recipes logging
to ``exp/*/log``), they print at most every 30 seconds instead of rewriting the line
many times a second. Log lines go through :class:`ProgressAwareHandler`, so they are
printed above the bars instead of over them.
"""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm


class _CountingTqdm(tqdm):
    """A bar whose count is current after every item, not only when it prints.

    tqdm's own iterator counts in a local variable and stores it only when it prints (at
    most every ``mininterval``), so a bar redrawn under a log line showed a stale count
    (``EM: 0/20`` while iteration 11 was logged above it). Items here are iterations or
    utterances, never frames, so one ``update`` per item costs nothing.
    """

    def __iter__(self):
        if self.disable:
            yield from self.iterable
            return
        try:
            for obj in self.iterable:
                yield obj
                self.update(1)
        finally:
            self.close()


def progress(iterable=None, **kwargs) -> tqdm:
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 30.0)
        return _CountingTqdm(iterable, **kwargs)
    return tqdm(iterable, **kwargs)


class ProgressAwareHandler(logging.StreamHandler):
    """A stderr log handler that prints through ``tqdm.write``: a log line clears the progress bars
    below it and redraws them, instead of being written over them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)
