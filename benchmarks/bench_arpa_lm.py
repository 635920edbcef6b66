"""Memory and time of the rescoring LM (asrdistill.decode.arpa_lm.ArpaLM): parsing an ARPA file, its const form
on disk, and a process that memory-maps the const form and looks up n-grams. Each step runs in a fresh process
of its own (peak resident memory: its ``ru_maxrss``); the interpreter with the module loaded is measured too.

    python benchmarks/make_large_lm.py --out-dir /tmp/lm      # 200k / 1M / 0.5M n-grams, LibriSpeech's first pass
    python benchmarks/bench_arpa_lm.py --arpa /tmp/lm/G.arpa --work-dir /tmp/carpa [--lookups 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(name: str, arpa: Path, const: Path, lookups: int) -> dict:
    t0 = time.perf_counter()
    from asrdistill.decode.arpa_lm import ArpaLM

    if name == "baseline":
        return {"peak_mb": _peak_mb()}
    if name == "parse":
        lm = ArpaLM(arpa)
        parse = time.perf_counter() - t0
        out = {"seconds": parse, "ngrams": lm.num_ngrams, "peak_mb": _peak_mb()}
        t0 = time.perf_counter()
        lm.save(const)
        out["save_seconds"] = time.perf_counter() - t0
        out["const_mb"] = sum(f.stat().st_size for f in const.iterdir()) / 2**20
        return out
    import numpy as np

    lm = ArpaLM(const)
    load = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    words = lm.words
    hist_len = lm.order - 1
    # random histories and words: mostly unseen n-grams, so most lookups back off to the unigram (the slow case)
    t0 = time.perf_counter()
    for i in range(lookups):
        w = words[int(rng.integers(2, len(words)))]
        h = ["<s>"] + [words[int(x)] for x in rng.integers(2, len(words), size=int(rng.integers(0, hist_len)))]
        lm.cost(h, w)
    per = (time.perf_counter() - t0) / max(lookups, 1)
    return {"load_seconds": load, "lookups": lookups, "us_per_cost": per * 1e6, "peak_mb": _peak_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arpa", type=Path, required=True)
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--lookups", type=int, default=100_000)
    ap.add_argument("--step", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    const = args.work_dir / "G.carpa"
    if args.step:
        print(json.dumps(step(args.step, args.arpa, const, args.lookups)))
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    report = {}
    for name in ("baseline", "parse", "const"):
        r = subprocess.run([sys.executable, __file__, "--arpa", str(args.arpa), "--work-dir", str(args.work_dir),
                            "--lookups", str(args.lookups), "--step", name], capture_output=True, text=True, check=True)
        report[name] = json.loads(r.stdout.strip().splitlines()[-1])
        print(name, report[name], flush=True)
    total = sum(report["parse"]["ngrams"])
    base = report["baseline"]["peak_mb"]
    report["summary"] = {
        "ngrams": total,
        "parse_bytes_per_ngram_peak": (report["parse"]["peak_mb"] - base) * 2**20 / total,
        "parse_us_per_ngram": report["parse"]["seconds"] / total * 1e6,
        "const_bytes_per_ngram": report["parse"]["const_mb"] * 2**20 / total,
        "const_process_above_baseline_mb": report["const"]["peak_mb"] - base,
    }
    print(json.dumps(report["summary"], indent=1))
    (args.work_dir / "bench_arpa_lm.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
