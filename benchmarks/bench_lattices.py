"""Lattices vs. the acoustic-scale grid on a finished FSDD run: WER and wall time (issue 14).

Runs, each in a fresh process (wall time and peak RSS from ``/usr/bin/time``):

1. ``decode run`` over the grid of acoustic scales of CONFIG (dev at every scale, test at dev's best);
2. ``decode lattices`` (dev and test decoded once) + ``decode score-lattices`` (LM weight x word
   insertion penalty grid, dev-tuned, applied to test).

Usage (from a finished recipe directory, outputs under OUT)::

    python benchmarks/bench_lattices.py --egs /work/demo/egs/fsdd --out /tmp/latbench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path


def timed(cmd, cwd):
    out = subprocess.run(["/usr/bin/time", "-f", "BENCH %e %M", *cmd], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    line = [x for x in out.stderr.splitlines() if x.startswith("BENCH ")][-1].split()
    return float(line[1]), int(line[2]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--egs", type=Path, required=True, help="finished recipe directory (data/, exp/)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model-dir", default="exp/ensemble")
    ap.add_argument("--config", default="conf/decode_nnet.yaml", help="DecodeConfig of the grid")
    ap.add_argument("--beam", default="8.0")
    ap.add_argument("--max-active", default="2000")
    ap.add_argument("--acoustic-scale", default="0.1", help="of the lattice search")
    ap.add_argument("--lattice-beam", default="6.0")
    a = ap.parse_args()
    exe = str(Path(sys.executable).with_name("asrdistill"))
    a.out.mkdir(parents=True, exist_ok=True)
    common = ["--feature-dir", "data/fbank", "--prefix", "fsdd", "--split", "dev,test", "--model-dir", a.model_dir,
              "--model-kind", "nnet", "--graph-dir", "exp/tri/graph", "--num-jobs", "2"]
    grid = [exe, "decode", "run", *common, "--out-dir", str(a.out / "grid_{split}"), "--config", a.config]
    lat = [exe, "decode", "lattices", *common, "--tree-dir", "exp/tri", "--out-dir", str(a.out / "lat_{split}"),
           "--beam", a.beam, "--max-active", a.max_active, "--acoustic-scale", a.acoustic_scale,
           "--lattice-beam", a.lattice_beam]
    score = [exe, "decode", "score-lattices", "--feature-dir", "data/fbank", "--split", "dev,test", "--lat-dir",
             str(a.out / "lat_{split}"), "--words", "exp/tri/graph/words.txt"]
    rows = {}
    for name, cmd in (("grid", grid), ("lattices", lat), ("score", score)):
        rows[name] = timed(cmd, a.egs)
        print(f"{name}: {rows[name][0]:.1f} s, peak {rows[name][1]:.0f} MiB  ({' '.join(cmd[1:])})", flush=True)
    g = json.loads((a.out / "grid_test" / "best.json").read_text())
    b = json.loads((a.out / "lat_test" / "best.json").read_text())
    info = json.loads((a.out / "lat_dev" / "lattices.json").read_text())
    print(f"grid: acoustic scale {g['acoustic_scale']:g}: dev {g['dev']['wer']:.2f} test {g['test']['wer']:.2f}")
    print(f"lattices: LM weight {b['lm_weight']:g} penalty {b['word_ins_penalty']:g}: dev {b['dev']['wer']:.2f} "
          f"test {b['test']['wer']:.2f}; {info['arcs_per_frame']:.1f} arcs/frame (dev)")
    settings = len(json.loads((a.out / "lat_dev" / "results.json").read_text())["results"])
    print(f"decode + sweep of {settings} settings: {rows['lattices'][0] + rows['score'][0]:.1f} s; grid "
          f"({len(g and json.loads((a.out / 'grid_dev' / 'results.json').read_text())['results'])} dev scales): "
          f"{rows['grid'][0]:.1f} s")


if __name__ == "__main__":
    main()
