"""Leave-one-speaker-out results: every row over the folds, and the paper's claims as paired tests.

Reads the fold directories of ``egs/fsdd/run_cv.sh`` (``cv/fold<K>``, each a complete run
of the recipe with its own ``data/`` and ``exp/``) and nothing else: the WERs of each
system's dev-tuned decoding (``decode_*test/best.json`` and its ``recogs-*.txt``), the
frame accuracies of ``frame_accuracy.json`` and the speakers of
``data/manifests/prepare_config.yaml``.

Rows: per system, the test figure of every fold, the mean and standard deviation over
folds (speakers), and, where a fold has several seeds (ensemble members, students, the
3%-data runs), the mean over folds of the standard deviation over seeds.

Claims: each is a paired comparison of two systems on the test speaker of every fold
(``a`` vs ``b``) in the direction the paper predicts, tested with the exact one-sided
Wilcoxon signed-rank test over speakers (:mod:`.paired_tests`), with the sign count and,
for WER, a paired bootstrap interval over all test utterances of all folds
(:mod:`.bootstrap`; every utterance is a test utterance of exactly one fold). Verdicts:

- **reproduced**: one-sided p <= 0.05 in the paper's direction (over five speakers: all five agree);
- **not reproduced**: one-sided p <= 0.05 in the opposite direction, or a WER interval
  entirely on the wrong side of zero;
- **not distinguishable**: neither.

Nothing here is tuned: the temperature of the tiny student is the one with the best dev
frame accuracy of each fold (dev only), as the recipe's decodings tune their scales on dev.
"""

from __future__ import annotations

import ast
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .bootstrap import paired_bootstrap_wer
from .paired_tests import sign_test, wilcoxon_signed_rank

ALPHA = 0.05


@dataclass
class SystemFigures:
    """One system of one fold: test (and dev) WER and frame accuracy, per seed where there are several,
    and the per-utterance test errors (mean over seeds) for the bootstrap."""

    wer: Dict[str, List[float]] = field(default_factory=dict)  # split -> one value per seed
    fa: Dict[str, List[float]] = field(default_factory=dict)  # split -> one value per seed (percent)
    utt_errors: Dict[str, float] = field(default_factory=dict)  # test utterance -> errors (mean over seeds)
    utt_words: Dict[str, int] = field(default_factory=dict)


@dataclass
class Fold:
    name: str
    dev_speaker: str
    test_speaker: str
    systems: Dict[str, SystemFigures]
    commands: List[str]
    wall_seconds: Optional[float] = None  # stage 0 to the fold's last stage marker (see fold_wall_seconds)
    tiny_temperature: Optional[float] = None  # the tiny student's temperature chosen on dev


def _json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text()) if path.is_file() else None


def _read_recogs(path: Path) -> Dict[str, Tuple[List[str], List[str]]]:
    """``utterance -> (ref, hyp)`` of a ``recogs-*.txt`` (as :func:`asrdistill.decode.scoring.write_results` writes it)."""
    out: Dict[str, list] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(\S+):\t(ref|hyp)=(.*)$", line)
        if m:
            out.setdefault(m[1], [None, None])[0 if m[2] == "ref" else 1] = ast.literal_eval(m[3])
    return {u: (r, h) for u, (r, h) in out.items()}


def _utterance_errors(decode_dir: Path, name: str) -> Tuple[Dict[str, int], Dict[str, int]]:
    import kaldialign

    errors, words = {}, {}
    path = decode_dir / f"recogs-{name}.txt"
    if not path.is_file():
        return errors, words
    for u, (ref, hyp) in _read_recogs(path).items():
        errors[u] = int(kaldialign.edit_distance(ref, hyp)["total"])
        words[u] = len(ref)
    return errors, words


def _add_decodes(fig: SystemFigures, decode_test_dirs: Sequence[Path], commands: List[str]) -> None:
    """The dev-tuned decodings of one system (one per seed): WERs and mean per-utterance errors."""
    per_seed = []
    for d in decode_test_dirs:
        best = _json(d / "best.json")
        if not best:
            continue
        for split in ("dev", "test"):
            fig.wer.setdefault(split, []).append(best[split]["wer"])
        errors, words = _utterance_errors(d, best["test"]["name"])
        per_seed.append(errors)
        fig.utt_words.update(words)
        commands.append(best.get("command", ""))
    if per_seed and all(set(e) == set(per_seed[0]) for e in per_seed):
        fig.utt_errors = {u: statistics.mean(e[u] for e in per_seed) for u in per_seed[0]}


def _member_dirs(exp: Path) -> List[Path]:
    found = {}
    for d in exp.glob("decode_member*_test"):
        m = re.fullmatch(r"decode_member(\d+)_test", d.name)
        if m:
            found[int(m[1])] = d
    return [found[i] for i in sorted(found)]


def _frame_accuracy(exp: Path, key: str) -> Dict[str, List[float]]:
    """Per split, percent: ``members`` (one per seed), or a single value of another key (``arithmetic``)."""
    fa = _json(exp / "frame_accuracy.json") or {}
    out = {}
    for split in ("dev", "test"):
        if split in fa:
            v = fa[split][key]
            out[split] = [100 * x for x in (v if isinstance(v, list) else [v])]
    return out


def _temperatures(exp: Path) -> List[float]:
    import yaml

    cfg = yaml.safe_load((exp / "config.yaml").read_text()) if (exp / "config.yaml").is_file() else {}
    return list((cfg.get("distill") or cfg).get("temperatures", []))


def fold_wall_seconds(exp: Path) -> Optional[float]:
    """Seconds from the fold's last start of stage 0 (``exp/stage_times.tsv``) to its newest ``.done`` marker
    written before its report stage (20) started, i.e. the fold's stages without the report."""
    path = exp / "stage_times.tsv"
    if not path.is_file():
        return None
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.count("\t") == 1]
    starts = [float(t) for s, t in rows if s == "0"]
    if not starts:
        return None
    report = [float(t) for s, t in rows if s == "20" and float(t) >= starts[-1]]
    limit = report[0] if report else float("inf")
    ends = [m.stat().st_mtime for m in exp.rglob(".*done") if m.stat().st_mtime < limit]
    return max(ends) - starts[-1] if ends and max(ends) > starts[-1] else None


def collect_fold(fold_dir: Path) -> Fold:
    """The figures of one fold directory (see the module doc)."""
    import yaml

    exp = fold_dir / "exp"
    prep = yaml.safe_load((fold_dir / "data" / "manifests" / "prepare_config.yaml").read_text())
    systems: Dict[str, SystemFigures] = {}
    commands: List[str] = []
    sel = _json(exp / "gmm_selection.json") or {}
    target = Path(sel["chosen"]).name if sel.get("chosen") else None
    for name in ("mono", "tri1", "tri2", "tri3"):
        if (exp / name / "decode_test" / "best.json").is_file():
            fig = SystemFigures()
            _add_decodes(fig, [exp / name / "decode_test"], commands)
            systems[name] = fig
    if target and target in systems:
        systems["GMM targets"] = systems[target]
    for name, exp_name, members, fa_key in (
            ("ensemble", "ensemble", False, "arithmetic"), ("member (baseline)", "ensemble", True, "members"),
            ("student", "student", True, "members"), ("3% hard labels", "baseline_3pct", True, "members"),
            ("3% soft targets", "student_3pct", True, "members")):
        d = exp / exp_name
        if not d.is_dir():
            continue
        fig = SystemFigures(fa=_frame_accuracy(d, fa_key))
        _add_decodes(fig, _member_dirs(d) if members else [d / "decode_test"], commands)
        systems[name] = fig
    sweep, tiny_t = exp / "tsweep_tiny", None
    if sweep.is_dir():  # one member per temperature: each a system of its own (its WER and per-utterance errors)
        fa, temps, dirs = _frame_accuracy(sweep, "members"), _temperatures(sweep), _member_dirs(sweep)
        for i, t in enumerate(temps):
            fig = SystemFigures(fa={s: [v[i]] for s, v in fa.items() if len(v) > i})
            if i < len(dirs):
                _add_decodes(fig, [dirs[i]], [])
            systems[f"tiny T={t:g}"] = fig
        dev = fa.get("dev", [])
        if dev and len(dev) == len(temps):
            best = int(np.argmax(dev))  # chosen on dev frame accuracy
            systems["tiny, T chosen on dev"], tiny_t = systems[f"tiny T={temps[best]:g}"], temps[best]
    return Fold(fold_dir.name, prep["dev_speakers"][0], prep["test_speakers"][0], systems, [c for c in commands if c],
                fold_wall_seconds(exp), tiny_t)


#: (claim, metric, system a, system b, direction of a vs b that the paper predicts)
CLAIMS = [
    ("the ensemble beats its members", "fa", "ensemble", "member (baseline)", "greater"),
    ("the ensemble beats its members", "wer", "ensemble", "member (baseline)", "less"),
    ("the distilled student beats the baseline (a member, same size, hard labels)", "fa", "student",
     "member (baseline)", "greater"),
    ("the distilled student beats the baseline (a member, same size, hard labels)", "wer", "student",
     "member (baseline)", "less"),
    ("the ensemble stays ahead of its distilled student (paper: 61.1% vs 60.8% frame accuracy)", "fa", "ensemble",
     "student", "greater"),
    ("the ensemble stays ahead of its distilled student (paper: 61.1% vs 60.8% frame accuracy)", "wer", "ensemble",
     "student", "less"),
    ("the student keeps at least 80% of the ensemble's gain", "fa", "student", "80% of the gain", "greater"),
    ("the student keeps at least 80% of the ensemble's gain", "wer", "student", "80% of the gain", "less"),
    ("soft targets regularize: 3% of the data, soft beats hard", "fa", "3% soft targets", "3% hard labels", "greater"),
    ("soft targets regularize: 3% of the data, soft beats hard", "wer", "3% soft targets", "3% hard labels", "less"),
    ("a tiny student learns best at an intermediate temperature: vs T=1", "fa", "tiny, T chosen on dev", "tiny T=1",
     "greater"),
    ("a tiny student learns best at an intermediate temperature: vs T=20", "fa", "tiny, T chosen on dev", "tiny T=20",
     "greater"),
    ("a tiny student learns best at an intermediate temperature: vs T=1", "wer", "tiny, T chosen on dev", "tiny T=1",
     "less"),
    ("a tiny student learns best at an intermediate temperature: vs T=20", "wer", "tiny, T chosen on dev", "tiny T=20",
     "less"),
]


def _test_value(fold: Fold, system: str, metric: str) -> Optional[float]:
    if system == "80% of the gain":
        ens, mem = _test_value(fold, "ensemble", metric), _test_value(fold, "member (baseline)", metric)
        return None if ens is None or mem is None else mem + 0.8 * (ens - mem)
    fig = fold.systems.get(system)
    values = (fig.fa if metric == "fa" else fig.wer).get("test") if fig else None
    return statistics.mean(values) if values else None


@dataclass
class ClaimResult:
    claim: str
    metric: str
    a: str
    b: str
    direction: str
    differences: List[float]  # a - b per fold
    wilcoxon_p: float
    opposite_p: float
    agree: int  # folds whose difference has the predicted sign
    bootstrap: Optional[object]
    verdict: str


def evaluate_claim(folds: Sequence[Fold], claim, metric, a, b, direction) -> Optional[ClaimResult]:
    pairs = [(_test_value(f, a, metric), _test_value(f, b, metric)) for f in folds]
    if not pairs or any(x is None or y is None for x, y in pairs):
        return None
    d = [x - y for x, y in pairs]
    opposite = "less" if direction == "greater" else "greater"
    p = wilcoxon_signed_rank(d, direction).p_value
    q = wilcoxon_signed_rank(d, opposite).p_value
    agree = sum(1 for v in d if (v > 0 if direction == "greater" else v < 0))
    ci = None
    if metric == "wer" and all(a in f.systems and b in f.systems for f in folds):
        ea, eb, w = [], [], []
        for f in folds:
            fa, fb = f.systems[a], f.systems[b]
            common = sorted(set(fa.utt_errors) & set(fb.utt_errors))
            ea += [fa.utt_errors[u] for u in common]
            eb += [fb.utt_errors[u] for u in common]
            w += [fa.utt_words[u] for u in common]
        if w:
            ci = paired_bootstrap_wer(ea, eb, w, replicates=10000, seed=0)
    wrong_side = ci is not None and ((ci.low > 0) if direction == "less" else (ci.high < 0))
    if p <= ALPHA:
        verdict = "reproduced"
    elif q <= ALPHA or wrong_side:
        verdict = "not reproduced"
    else:
        verdict = "not distinguishable"
    return ClaimResult(claim, metric, a, b, direction, d, p, q, agree, ci, verdict)


def _pm(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.mean(values):.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")


def render(folds: Sequence[Fold], title: str, command: str, today: str) -> List[str]:
    """RESULTS_cv.md lines."""
    names = list(dict.fromkeys(n for f in folds for n in f.systems))
    head = " | ".join(f"{f.name} ({f.test_speaker})" for f in folds)
    lines = [f"# {title}: leave-one-speaker-out results", "",
             f"Generated by `{command}` on {today} from the fold directories of `run_cv.sh` "
             f"({len(folds)} folds; in each, one speaker is test, one is dev, the others train).", "",
             "| fold | dev speaker | test speaker |", "|---|---|---|"]
    lines += [f"| {f.name} | {f.dev_speaker} | {f.test_speaker} |" for f in folds]
    walls = [f.wall_seconds for f in folds]
    if all(w is not None for w in walls):
        lines += ["", "Run time (each fold's stages, from `exp/stage_times.tsv` and its stage markers): " + ", ".join(
            f"{f.name} {int(w) // 60}:{int(w) % 60:02d}" for f, w in zip(folds, walls)) +
            f"; all folds {int(sum(walls)) // 60}:{int(sum(walls)) % 60:02d} (min:s)."]
    for metric, label in (("wer", "test %WER"), ("fa", "test frame accuracy (%)")):
        lines += ["", f"## {label} per fold", "",
                  f"| system | {head} | mean ± sd over speakers | sd over seeds (mean over folds) |",
                  "|---|" + "---|" * len(folds) + "---|---|"]
        for n in names:
            per_fold, seed_sd = [], []
            for f in folds:
                fig = f.systems.get(n)
                v = (fig.fa if metric == "fa" else fig.wer).get("test") if fig else None
                per_fold.append(statistics.mean(v) if v else None)
                if v and len(v) > 1:
                    seed_sd.append(statistics.stdev(v))
            if all(v is None for v in per_fold):
                continue
            cells = " | ".join("-" if v is None else f"{v:.2f}" for v in per_fold)
            sd = f"{statistics.mean(seed_sd):.2f}" if seed_sd else "-"
            lines.append(f"| {n} | {cells} | {_pm([v for v in per_fold if v is not None])} | {sd} |")
    if any(f.tiny_temperature is not None for f in folds):
        lines += ["", "The tiny student's temperature chosen on each fold's dev speaker (best dev frame accuracy): " +
                  ", ".join(f"{f.name} T={f.tiny_temperature:g}" for f in folds if f.tiny_temperature is not None) + "."]
    gains = [(_test_value(f, "ensemble", "fa"), _test_value(f, "member (baseline)", "fa"),
              _test_value(f, "student", "fa")) for f in folds]
    if all(None not in g for g in gains):
        lines += ["", "## The ensemble's gain and how much of it the student keeps (test frame accuracy)", "",
                  "| fold | ensemble - mean member (points) | student - mean member | recovered |", "|---|---|---|---|"]
        for f, (e, m, s) in zip(folds, gains):
            rec = f"{100 * (s - m) / (e - m):.0f}%" if e != m else "-"
            lines.append(f"| {f.name} ({f.test_speaker}) | {e - m:+.2f} | {s - m:+.2f} | {rec} |")
    lines += ["", "## What was tuned where", "",
              "Within each fold only its dev speaker tunes: the acoustic scale of every decoding, the GMM system that "
              "gives the targets, every network's best-on-dev parameters, and the tiny student's temperature (best "
              "dev frame accuracy). The recipe's fixed settings (conf/*.yaml: the hard-label weight, speed "
              "perturbation, steps, sizes) were chosen in earlier development on fold 0's dev speaker (nicolas), "
              "who is the test speaker of the fold with dev jackson: that fold's test figures are not blind to "
              "those choices, the other four are."]
    lines += ["", "## The paper's claims, tested over speakers", "",
              "Each claim compares system a with system b on every fold's test speaker: the exact one-sided "
              "Wilcoxon signed-rank test over the speakers in the direction the paper predicts (with five speakers "
              "the smallest possible p is 1/32 = 0.031, reached only when all five agree; two-sided it would be "
              "0.0625, so no two-sided test over five speakers can reach 0.05), the number of speakers that agree, "
              "and for WER a paired bootstrap 95% interval of a - b over all test utterances of all folds "
              "(10,000 replicates). Verdicts: reproduced (p <= 0.05), not reproduced (p <= 0.05 the other way, "
              "or the WER interval on the wrong side of 0), else not distinguishable.", "",
              "| claim | metric | a | b | a - b per fold | speakers agreeing | one-sided p | WER a - b, 95% interval | verdict |",
              "|---|---|---|---|---|---|---|---|---|"]
    results = []
    for spec in CLAIMS:
        r = evaluate_claim(folds, *spec)
        if r is None:
            continue
        results.append(r)
        ci = f"{r.bootstrap.delta:+.2f} [{r.bootstrap.low:+.2f}, {r.bootstrap.high:+.2f}]" if r.bootstrap else "-"
        diffs = ", ".join(f"{v:+.2f}" for v in r.differences)
        lines.append(f"| {r.claim} | {'frame acc.' if r.metric == 'fa' else 'WER'} | {r.a} | {r.b} | {diffs} | "
                     f"{r.agree} of {len(r.differences)} | {r.wilcoxon_p:.3f} | {ci} | **{r.verdict}** |")
    if any(r.metric == "fa" for r in results):
        lines += ["", "Sign tests (one-sided, same direction) for reference: " + "; ".join(
            f"{r.claim} ({r.metric}): {sign_test(r.differences, r.direction).p_value:.3f}" for r in results) + "."]
    commands = list(dict.fromkeys(folds[0].commands)) if folds else []
    lines += ["", "## Commands", "", "Every fold: `egs/fsdd/run_cv.sh` ran `run.sh --work-dir cv/fold<K> --fold <K>`; "
              "the decodings behind the WERs (fold 0's, the other folds' differ only in their directory):", ""]
    lines += [f"- `{c}`" for c in commands[:40]]
    return lines + [""]
