"""Choosing the GMM system whose tied states and alignments become the DNN targets.

Kaldi's recipes train their DNNs on the alignments of their best GMM (tri3b/tri4b, SAT).
Here the choice is made by dev WER only: each candidate's decoding directory holds a
``best.json`` (:func:`asrdistill.decode.runner.tune_and_score`, test decoded at the
dev-tuned setting); the candidate with the lowest dev WER wins (ties: the later, more
complex system). The test WER is recorded but never used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Sequence

from ..utils.atomic import atomic_write_text
from ..utils.config import command_line


def select_gmm(systems: Sequence[str], decode_dir: str = "decode_test", out=None, link=None) -> Dict:
    """Pick the system of ``systems`` with the lowest dev WER in ``SYSTEM/DECODE_DIR/best.json``.

    Writes ``out`` (JSON: ``chosen``, every system's dev and test WER, the rule, the command) and,
    with ``link``, makes ``link`` a relative symbolic link to the chosen directory (replacing an
    older link; an existing real directory there is an error). Returns the record.
    """
    table = {}
    for system in systems:
        path = Path(system) / decode_dir / "best.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: decode {system} on dev and test first")
        best = json.loads(path.read_text())
        table[str(system)] = {"dev": best["dev"]["wer"], "test": best["test"]["wer"],
                              "acoustic_scale": best["acoustic_scale"]}
    if not table:
        raise ValueError("no candidate systems given")
    order = list(table)
    chosen = min(order, key=lambda s: (table[s]["dev"], -order.index(s)))
    record = {"chosen": chosen, "rule": "lowest dev WER at the dev-tuned acoustic scale (ties: the later system)",
              "systems": table, "command": command_line()}
    if out is not None:
        atomic_write_text(Path(out), json.dumps(record, indent=1))
    if link is not None:
        link = Path(link)
        if link.exists() and not link.is_symlink():
            raise FileExistsError(f"{link} exists and is not a symbolic link; remove it or choose another --link")
        tmp = link.with_name(link.name + ".tmp-link")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.relpath(Path(chosen).resolve(), link.parent.resolve()), tmp)
        os.replace(tmp, link)
    return record
