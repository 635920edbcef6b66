"""Log lines and progress bars (issue 18, case 8: log lines used to overwrite the bars)."""

import logging
import sys

import pytest

from asrdistill.utils.progress import ProgressAwareHandler, progress


@pytest.fixture
def logger():
    """A logger printing bare messages through :class:`ProgressAwareHandler` (to the captured stderr)."""
    log = logging.getLogger("asrdistill.test_progress")
    handler = ProgressAwareHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield log
    log.removeHandler(handler)


def test_log_lines_are_printed_above_the_bar(capsys, logger):
    bar = progress(range(3), desc="work", file=sys.stderr, mininterval=0)
    for i in bar:
        logger.info("line %d", i)
    bar.close()
    err = capsys.readouterr().err
    # each log line stands alone on its line (tqdm.write clears the bar first), never glued to a bar's text
    lines = err.replace("\r", "\n").splitlines()
    assert all(f"line {i}" in lines for i in range(3)), err


def test_bar_redrawn_under_a_log_line_shows_the_current_count(capsys, logger):
    """In a log file (not a terminal) a bar prints at most every 30 s; redrawn under a log line it showed
    the count of its last print ('EM: 0/20' while iteration 11 was being logged)."""
    for i in progress(range(5), desc="EM", file=sys.stderr):  # stderr is captured: not a terminal
        if i == 3:
            logger.info("iter %d", i)
    err = capsys.readouterr().err.replace("\r", "\n")
    after_log = err.split("iter 3", 1)[1]
    assert "EM:  60%" in after_log and "3/5" in after_log, err
