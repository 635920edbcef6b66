"""Shared fixtures: the real FSDD recordings beside the project (../shared/data/fsdd)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from . import real_system

ROOT = Path(__file__).resolve().parents[1]
FSDD_DIR = Path(os.environ.get("ASRDISTILL_FSDD_DIR", ROOT.parent / "shared" / "data" / "fsdd"))


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    if not (FSDD_DIR / "recordings").is_dir():
        pytest.skip(f"FSDD not found at {FSDD_DIR} (set ASRDISTILL_FSDD_DIR)")
    return FSDD_DIR


@pytest.fixture(scope="session")
def fsdd_subset(fsdd_dir, tmp_path_factory) -> Path:
    """A small FSDD copy: takes 0-5 of every digit and speaker (300 real files), as symlinks."""
    out = tmp_path_factory.mktemp("fsdd_subset")
    rec = out / "recordings"
    rec.mkdir()
    for path in sorted((fsdd_dir / "recordings").glob("*.wav")):
        if int(path.stem.split("_")[2]) < 6:
            (rec / path.name).symlink_to(path)
    return out


def copy_takes(fsdd_dir: Path, dest: Path, names) -> Path:
    rec = dest / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(fsdd_dir / "recordings" / name, rec / name)
    return dest


#: The small real GMM system and ensemble (session fixtures, see tests/real_system.py).
system = real_system.system
ensemble = real_system.ensemble
tri_graph = real_system.tri_graph
