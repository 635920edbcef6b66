"""Log lines and progress bars (issue 18, case 8: log lines used to overwrite the bars)."""

import logging
import sys

from asrdistill.utils.progress import ProgressAwareHandler, progress


def test_log_lines_are_printed_above_the_bar(capsys):
    logger = logging.getLogger("asrdistill.test_progress")
    handler = ProgressAwareHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        bar = progress(range(3), desc="work", file=sys.stderr, mininterval=0)
        for i in bar:
            logger.info("line %d", i)
        bar.close()
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    # each log line stands alone on its line (tqdm.write clears the bar first), never glued to a bar's text
    lines = err.replace("\r", "\n").splitlines()
    assert all(f"line {i}" in lines for i in range(3)), err
