"""``asrdistill report``: RESULTS.md from the files the stages wrote (never typed by hand)."""

from __future__ import annotations

import json
import os
import re
import statistics
from datetime import date
from pathlib import Path
from typing import Dict, List, Optional

import click


def _ali_summary(report: Path) -> str:
    text = report.read_text()
    aligned = re.search(r"utterances aligned: (\d+) of (\d+)", text)
    ll = re.search(r"per frame: (-?[\d.]+)", text)
    leaves = re.search(r"frames per leaf: min (\d+), median (\d+)", text)
    dur = re.search(r"phone durations \(frames\): mean ([\d.]+)", text)
    return (f"{aligned[1]}/{aligned[2]} | {ll[1]} | {leaves[1]} / {leaves[2]} | {dur[1]}" if aligned and ll and leaves and dur
            else "?")


def _system_size(model_dir: Path) -> str:
    from ..gmm.model import GmmModel

    if (model_dir / "final.mdl").exists():
        m = GmmModel.load(model_dir)
        return f"{m.num_pdfs} pdfs, {m.gmm.total_gauss()} Gaussians"
    members = sorted(model_dir.glob("member*.pt"))
    if members:
        import torch

        from ..nnet.dnn import DnnConfig
        from ..utils.config import config_from_dict

        cfg = config_from_dict(DnnConfig, torch.load(members[0], weights_only=False)["dnn_config"])
        return (f"{len(members)} x DNN {cfg.hidden_layers}x{cfg.hidden_dim}, {cfg.num_outputs} outputs, "
                f"{cfg.num_parameters() / 1e6:.2f}M params each")
    return ""


def _experiment_dirs(exp_dir: Path) -> list:
    """The experiment directories under ``exp_dir``, without symbolic links (``exp/tri`` -> the chosen
    GMM system is listed under its own name only)."""
    return sorted(d for d in exp_dir.iterdir() if d.is_dir() and not d.is_symlink())


def _frame_accuracy_files(exp_dir: Path) -> list:
    return [d / "frame_accuracy.json" for d in _experiment_dirs(exp_dir) if (d / "frame_accuracy.json").is_file()]


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _frame_accuracy_rows(exp_dir: Path, levels: bool) -> list:
    """One row per experiment and split; with ``levels``, the phone-level and speech/silence columns
    (``-`` where a frame_accuracy.json predates them)."""
    lines = []
    for path in _frame_accuracy_files(exp_dir):
        fa = json.loads(path.read_text())
        name = path.parent.name
        for split in ("dev", "test"):
            if split not in fa:
                continue
            r = fa[split]
            members = ", ".join(f"{100 * a:.2f}" for a in r["members"])
            row = (f"| {name} | {split} | {members} | {100 * r['mean_member']:.2f} | {100 * r['arithmetic']:.2f} | "
                   f"{100 * r['geometric']:.2f} |")
            if levels:
                ph, ss = r.get("phone", {}), r.get("speech_silence", {})
                row += (f" {_pct(ph.get('mean_member'))} | {_pct(ph.get('arithmetic'))} | "
                        f"{_pct(ss.get('mean_member'))} | {_pct(ss.get('arithmetic'))} |")
            lines.append(row)
    return lines


# ------------------------------------------------------------------ GMM systems, before and after
# (directory, decoding directory of the test split holding best.json, label, CLI command that trains it)
GMM_SYSTEMS = [
    ("mono", "decode_test", "mono (monophone)"),
    ("tri1", "decode_test", "tri1 (deltas)"),
    ("tri2", "decode_test", "tri2 (LDA+MLLT)"),
    ("tri3", "decode_test.si", "tri3 (SAT), speaker-independent pass"),
    ("tri3", "decode_test", "tri3 (SAT), fMLLR-adapted"),
]
GMM_COMMANDS = {"MonoConfig": "mono", "TriConfig": "tri", "LdaMlltConfig": "lda-mllt", "SatConfig": "sat"}
GMM_KINDS = {"mono": "monophone", "tri": "deltas", "lda-mllt": "LDA+MLLT", "sat": "SAT"}
SELECTION_RULE = "lowest dev WER at the dev-tuned acoustic scale"
CRITERIA_NOTE = ("WER at the dev-tuned acoustic scale; 'beats' = strictly lower WER. Each check is one run on one "
                 "speaker (dev: nicolas, 1051 words; test: theo, 1020 words; the GMMs one run each, the networks "
                 "every seed): 'yes' says what this run gave, not that it holds over speakers and seeds; a few "
                 "errors either way (one error = 0.1%) is within what a rerun or another speaker changes "
                 "(issue 17's cross-validation is what would establish it)")


def recipe_wall_time(exp_dir: Path) -> Optional[str]:
    """``M:SS`` from the start of stage 0 to the start of stage 20 of the last full run of the recipe, from
    ``exp_dir/stage_times.tsv`` (``stage<TAB>unix time`` per stage start, written by local/log.sh)."""
    path = exp_dir / "stage_times.tsv"
    if not path.is_file():
        return None
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.count("\t") == 1]
    starts = [i for i, (s, _) in enumerate(rows) if s == "0"]
    if not starts:
        return None
    last = rows[starts[-1]:]
    end = [float(t) for s, t in last if s == "20"]
    if not end:
        return None
    seconds = int(round(end[0] - float(last[0][1])))  # the first stage 20 after it (a report rerun later is not the run)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text()) if path.is_file() else None


def _tied_states(model_dir: Path) -> Optional[dict]:
    """``{"total", "silence", "speech"}`` from the ``tree:`` line of ``log.txt`` (older logs: total only);
    a monophone system (no tree) -> ``{"pdfs": N}`` from its ``final.mdl``."""
    log = model_dir / "log.txt"
    text = log.read_text() if log.is_file() else ""
    m = re.search(r"^tree: (\d+) leaves(?: \((\d+) silence, (\d+) speech\))?", text, re.M)
    if m:
        return {"total": int(m[1]), "silence": int(m[2]) if m[2] else None, "speech": int(m[3]) if m[3] else None}
    if (model_dir / "final.mdl").is_file():
        from ..gmm.model import GmmModel

        return {"pdfs": GmmModel.load(model_dir).num_pdfs}
    m = re.search(r"^monophone: (\d+) pdfs", text, re.M)
    return {"pdfs": int(m[1])} if m else None


def _tied_states_text(t: Optional[dict]) -> str:
    if not t:
        return "-"
    if "pdfs" in t:
        return f"{t['pdfs']} pdfs (no tree)"
    if t.get("silence") is None:
        return f"{t['total']} (silence / speech not in log.txt)"
    return f"{t['total']} ({t['silence']} / {t['speech']})"


def _gmm_kind(model_dir: Path) -> str:
    """``mono``, ``tri``, ``lda-mllt`` or ``sat`` (the ``asrdistill gmm`` command) from the header of config.yaml."""
    cfg = model_dir / "config.yaml"
    lines = cfg.read_text().splitlines() if cfg.is_file() else []
    return GMM_COMMANDS.get(lines[0].rsplit(".", 1)[-1].strip(), "") if lines else ""


def _gmm_command(model_dir: Path) -> str:
    kind = _gmm_kind(model_dir)
    return (f"`asrdistill gmm {kind} --exp-dir exp/{model_dir.name}` (recipes/train_gmm.sh; options: "
            f"exp/{model_dir.name}/config.yaml)" if kind else f"options: exp/{model_dir.name}/config.yaml")


def _gmm_rows(exp_dir: Path) -> list:
    """``(directory name, decoding dir, label, best.json)`` of the GMM systems decoded under ``exp_dir``:
    the known ones in recipe order, then any other (e.g. the single ``tri`` of the earlier recipe)."""
    rows, seen = [], set()
    for name, decode, label in GMM_SYSTEMS:
        d = exp_dir / name
        if d.is_symlink() or not d.is_dir():
            continue
        best = _json(d / decode / "best.json")
        trained = (d / "final.mdl").is_file() or (d / "log.txt").is_file()
        if best or (trained and not decode.endswith(".si")):  # trained, not decoded yet: tied states only
            rows.append((name, decode, label, best))
            seen.add(name)
    for d in _experiment_dirs(exp_dir):
        if d.name in seen or not ((d / "final.mdl").is_file() or _gmm_kind(d)):
            continue
        for decode in ("decode_test.si", "decode_test"):
            best = _json(d / decode / "best.json")
            if best:
                kind = GMM_KINDS.get(_gmm_kind(d), "")
                label = (d.name + (f" ({kind})" if kind else "")
                         + (", speaker-independent pass" if decode.endswith(".si") else ""))
                rows.append((d.name, decode, label, best))
    return rows


def _target_system(exp_dir: Path):
    """``(name, selection record or None)`` of the GMM system whose alignments are the DNN targets:
    ``exp/gmm_selection.json``'s ``chosen``, else what ``exp/tri`` is (a link or the directory itself)."""
    sel = _json(exp_dir / "gmm_selection.json")
    if sel and sel.get("chosen"):
        return Path(sel["chosen"]).name, sel
    tri = exp_dir / "tri"
    if tri.is_symlink():
        return Path(os.readlink(tri)).name, None
    if tri.is_dir() and ((tri / "final.mdl").is_file() or _gmm_kind(tri)):
        return "tri", None
    fa = _json(exp_dir / "ensemble" / "frame_accuracy.json") or {}
    tree = (fa.get("phone_classes") or {}).get("tree_dir")  # the tree the ensemble's targets came from
    if tree and (exp_dir / Path(tree).name).is_dir():
        return Path(tree).name, None
    return None, None


def gmm_section(exp_dir: Path) -> list:
    """The GMM systems: tied states, dev/test WER at the dev-tuned setting, which one gives the DNN targets."""
    rows = _gmm_rows(exp_dir)
    if not rows:
        return []
    target, sel = _target_system(exp_dir)
    chosen_dev = None
    if sel and target:
        chosen_dev = next((r["dev"] for s, r in sel.get("systems", {}).items() if Path(s).name == target), None)
    target_rows = [i for i, (name, decode, _, b) in enumerate(rows) if name == target]
    marked = next((i for i in target_rows
                   if chosen_dev is not None and rows[i][3] and abs(rows[i][3]["dev"]["wer"] - chosen_dev) < 1e-9),
                  next((i for i in target_rows if not rows[i][1].endswith(".si")), None))
    lines = ["## GMM systems", "",
             "Tied states: leaves of the decision tree (silence / speech), from each system's log.txt; WER: acoustic "
             "scale tuned on dev, test decoded at it (each decoding directory's best.json).", "",
             "| system | tied states (silence / speech) | acoustic scale | dev %WER | test %WER | DNN targets |",
             "|---|---|---|---|---|---|"]
    for i, (name, decode, label, b) in enumerate(rows):
        wer = (f"{b['acoustic_scale']:g} | {b['dev']['wer']:.2f} | {b['test']['wer']:.2f}" if b
               else f"- | - | - (no exp/{name}/{decode}/best.json)")
        lines.append(f"| {label} | {_tied_states_text(_tied_states(exp_dir / name))} | {wer} | "
                     f"{'**yes**' if i == marked else ''} |")
    lines.append("")
    if sel:
        cands = ", ".join(f"{Path(s).name} {r['dev']:.2f} / {r['test']:.2f}" for s, r in sel.get("systems", {}).items())
        link = exp_dir / "tri"
        via = f" (`exp/tri` -> `{os.readlink(link)}`)" if link.is_symlink() else ""
        lines.append(f"- DNN targets: **{target}**{via}. Rule: {sel.get('rule', SELECTION_RULE)}; the test WER is "
                     f"recorded, never used. Candidates (dev / test %WER): {cands}.")
    elif target and (exp_dir / "tri").is_symlink():
        lines.append(f"- DNN targets: **{target}** (`exp/tri` -> `{os.readlink(exp_dir / 'tri')}`; no "
                     "exp/gmm_selection.json records why).")
    elif target:
        lines.append(f"- DNN targets: **{target}** (no exp/gmm_selection.json: the alignments in exp/tri/ali, "
                     "the recipe's only triphone system).")
    if sel or target:
        lines.append("")
    lines += ["Commands:", ""]
    for name in dict.fromkeys(r[0] for r in rows):
        decodes = [c for c in dict.fromkeys(r[3].get("command", "") for r in rows if r[0] == name and r[3]) if c]
        lines.append(f"- {name}: trained by {_gmm_command(exp_dir / name)}; tied states from exp/{name}/log.txt"
                     + ("; decoded by " + "; ".join(f"`{c}`" for c in decodes) if decodes else "; not decoded"))
    if sel and sel.get("command"):
        lines.append(f"- selection: `{sel['command']}` (exp/gmm_selection.json)")
    lines.append("")
    return lines


def _member_wers(exp: Path) -> Dict[str, List[float]]:
    """Dev and test WER of every member decoded as a system of its own (``decode_member{i}_test/best.json``)."""
    found = {}
    for path in exp.glob("decode_member*_test/best.json"):
        m = re.fullmatch(r"decode_member(\d+)_test", path.parent.name)
        if m:
            b = json.loads(path.read_text())
            found[int(m[1])] = (b["dev"]["wer"], b["test"]["wer"])
    idx = sorted(found)
    return {"dev": [found[i][0] for i in idx], "test": [found[i][1] for i in idx]} if idx else {}


def _wer_pair(best: Optional[dict]) -> Optional[dict]:
    return {"dev": best["dev"]["wer"], "test": best["test"]["wer"]} if best else None


def _after_figures(exp_dir: Path) -> dict:
    """The figures of the current exp dir, in the shape of results_before.json (percent)."""
    fig: dict = {"wer": {}, "frame_accuracy": {}, "phone_accuracy": {}, "commands": []}
    target, sel = _target_system(exp_dir)
    if target:
        t = _tied_states(exp_dir / target)
        if t and "total" in t:
            fig["tied_states"] = {**t, "system": target}
        rec = next((r for s, r in (sel or {}).get("systems", {}).items() if Path(s).name == target), None)
        best = _json(exp_dir / target / "decode_test" / "best.json")
        gmm = ({"dev": rec["dev"], "test": rec["test"]} if rec else _wer_pair(best))
        if gmm:
            fig["wer"]["target_gmm"] = {**gmm, "system": target}
        if best:
            fig["commands"].append(best.get("command", ""))
        if sel and sel.get("command"):
            fig["commands"].append(sel["command"])
    for key, path in (("mono", exp_dir / "mono" / "decode_test" / "best.json"),
                      ("ensemble", exp_dir / "ensemble" / "decode_test" / "best.json")):
        best = _json(path)
        if best:
            fig["wer"][key] = _wer_pair(best)
            fig["commands"].append(best.get("command", ""))
    for key, name in (("members", "ensemble"), ("student", "student")):
        w = _member_wers(exp_dir / name)
        if w:
            fig["wer"][key] = w
            b = _json(exp_dir / name / "decode_member0_test" / "best.json")
            fig["commands"].append(b.get("command", "") if b else "")
    for key, name, field in (("ensemble", "ensemble", "arithmetic"), ("members", "ensemble", "mean_member"),
                             ("student", "student", "mean_member")):
        fa = _json(exp_dir / name / "frame_accuracy.json")
        if not fa:
            continue
        fig["commands"].append(fa.get("command", ""))
        acc = {s: 100 * fa[s][field] for s in ("dev", "test") if s in fa}
        if acc:
            fig["frame_accuracy"][key] = acc
        ph = {s: 100 * fa[s]["phone"][field] for s in ("dev", "test") if "phone" in fa.get(s, {})}
        if ph:
            fig["phone_accuracy"][key] = ph
    fig["commands"] = list(dict.fromkeys(c for c in fig["commands"] if c))
    return fig


def _value(entry: Optional[dict], split: str) -> Optional[float]:
    """One figure of a before/after entry: the value, a printed ``mean``, or the mean of a per-member list."""
    if not entry:
        return None
    v = entry.get(split)
    if isinstance(v, list):
        printed = (entry.get("mean") or {}).get(split)
        return printed if printed is not None else (statistics.mean(v) if v else None)
    return v


def _f(v: Optional[float], system: str = "") -> str:
    return "-" if v is None else f"{v:.2f}" + (f" ({system})" if system else "")


def _criteria(fig: dict, split: str) -> list:
    """``(criterion, text)`` per success criterion of the issue, each with its numbers; text "-" where a figure is missing."""
    wer = fig.get("wer", {})
    gmm, mono = wer.get("target_gmm"), wer.get("mono")
    g = _value(gmm, split)
    name = (gmm or {}).get("system", "GMM")
    out = []
    m = _value(mono, split)
    out.append(("best GMM (the DNN targets' system) beats mono",
                "-" if g is None or m is None else
                f"{'yes' if g < m else 'no'}: {name} {g:.2f} {'<' if g < m else '>='} mono {m:.2f}"))
    e = _value(wer.get("ensemble"), split)
    out.append(("ensemble beats the target GMM", "-" if g is None or e is None else
                f"{'yes' if e < g else 'no'}: ensemble {e:.2f} {'<' if e < g else '>='} {name} {g:.2f}"))
    for key, label in (("members", "every ensemble member"), ("student", "every student seed")):
        ws = (wer.get(key) or {}).get(split)
        if g is None or not ws:
            out.append((f"{label} beats the target GMM", "-"))
            continue
        below = sum(w < g for w in ws)
        out.append((f"{label} beats the target GMM",
                    f"{'yes' if below == len(ws) else 'no'}: {below} of {len(ws)} below {name} {g:.2f} "
                    f"({', '.join(f'{w:.2f}' for w in ws)})"))
    return out


def before_after_section(exp_dir: Path, before_path: Optional[Path]) -> list:
    """Metric | before | after, and the issue's success criteria as checks with their numbers."""
    before = _json(before_path) if before_path else None
    after = _after_figures(exp_dir)
    b = before or {}
    rows = []

    def tied(t):
        if not t:
            return "-"
        split = f" ({t['silence']} silence, {t['speech']} speech)" if t.get("silence") is not None else ""
        return f"{t['total']}{split}" + (f", {t['system']}" if t.get("system") else "")

    if b.get("tied_states") or after.get("tied_states"):
        rows.append(("tied states of the DNN targets' GMM system", tied(b.get("tied_states")), tied(after.get("tied_states"))))
    for key, label in (("mono", "mono %WER"), ("target_gmm", "best GMM (DNN targets) %WER"), ("ensemble", "ensemble %WER"),
                       ("members", "ensemble members %WER (mean)"), ("student", "student %WER (mean over seeds)")):
        for split in ("dev", "test"):
            eb, ea = b.get("wer", {}).get(key), after["wer"].get(key)
            vb, va = _value(eb, split), _value(ea, split)
            if vb is not None or va is not None:
                rows.append((f"{label}, {split}", _f(vb, (eb or {}).get("system", "")), _f(va, (ea or {}).get("system", ""))))
    for section, level in (("frame_accuracy", "tied-state"), ("phone_accuracy", "phone")):
        for key, label in (("ensemble", "ensemble (arithmetic)"), ("members", "members (mean)"),
                           ("student", "student (mean over seeds)")):
            for split in ("dev", "test"):
                vb, va = _value(b.get(section, {}).get(key), split), _value(after[section].get(key), split)
                if vb is not None or va is not None:
                    rows.append((f"{level} frame accuracy %, {label}, {split}", _f(vb), _f(va)))
    demo = b.get("make_demo")
    wall = recipe_wall_time(exp_dir)
    if demo or wall:
        rows.append(("recipe wall time (min:s; before: `time make demo`, set-up done; after: stage 0 to stage 20)",
                     (demo or {}).get("time", "-"),
                     f"{wall} (exp/stage_times.tsv)" if wall else "- (no exp/stage_times.tsv)"))
    if not rows:
        return []
    src = (f"the previous pipeline, from `{before_path}` ({b.get('source', 'source not stated')}; each figure's "
           "origin is in the file)" if before else
           "no results_before.json found (next to the exp dir, or `asrdistill report --before FILE`)")
    lines = ["## Before and after", "",
             f"Before: {src}. After: this experiment directory. WER at the dev-tuned "
             "acoustic scale; means over members/seeds are of each one decoded as a system of its own. Tied-state "
             "frame accuracies count over each pipeline's own tied states (their numbers are in the first row), so "
             "before and after are not the same task; phone-level accuracy (new: after only) does not depend on "
             "the number of tied states.", "",
             "| metric | before | after |", "|---|---|---|"]
    lines += [f"| {m} | {x} | {y} |" for m, x, y in rows]
    lines += ["", f"Success criteria ({CRITERIA_NOTE}):", "",
              "| criterion | split | before | after |", "|---|---|---|---|"]
    verdicts, n_checks = [], 0
    for split in ("dev", "test"):
        for (crit, after_text), (_, before_text) in zip(_criteria(after, split), _criteria(b, split)):
            lines.append(f"| {crit} | {split} | {before_text} | {after_text} |")
            n_checks += 1
            if after_text != "-":
                verdicts.append(after_text.startswith("yes"))
    if verdicts:
        lines += ["", f"After: {sum(verdicts)} of {len(verdicts)} checks hold in this one run (one split, one seed "
                  "set: not established over speakers; `run_cv.sh` tests them over the five speakers)"
                  + (f" ({n_checks - len(verdicts)} not checked: figures missing)." if len(verdicts) < n_checks else ".")]
    lines += ["", "Commands (after):", ""] + [f"- `{c}`" for c in after["commands"]] + [""]
    return lines


@click.command()
@click.option("--exp-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp"),
              help="Experiment directory of the recipe.")
@click.option("--title", default="FSDD", help="Corpus name for the heading.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("RESULTS.md"), help="File to write.")
@click.option("--before", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Figures of an earlier pipeline for the 'Before and after' section (default: results_before.json "
              "next to EXP_DIR, if there).")
def report(exp_dir: Path, title: str, out: Path, before: Optional[Path]) -> None:
    """Collect WER, RTF and alignment reports of every system under EXP_DIR into RESULTS.md."""
    from ..utils.atomic import atomic_write_text

    if before is None and (exp_dir.parent / "results_before.json").is_file():
        before = exp_dir.parent / "results_before.json"
    lines = [f"# {title} results", "",
             f"Generated by `asrdistill report --exp-dir {exp_dir} --out {out}` on {date.today().isoformat()} "
             "from the files the recipe stages wrote; each row names the command that produced it.", "",
             "Reproducibility: a rerun on the same machine gives the same figures (every stage is seeded and the CPU "
             "training deterministic); on another CPU the floating-point kernels differ and figures move (README, "
             "'Reproducibility'). Each figure is one split: one dev and one test speaker; `run_cv.sh` tests the "
             "claims over speakers.", ""]
    lines += gmm_section(exp_dir)
    rows = []
    for d in _experiment_dirs(exp_dir):
        for best in sorted(d.glob("decode_*/best.json")):
            model_dir = best.parent.parent
            b = json.loads(best.read_text())
            size = _system_size(model_dir)
            split = b["test"]["name"].split("-ac")[0]  # the evaluated split: test, test_other, ...
            name = best.parent.name[len("decode_"):]
            si = name.endswith(".si")  # the speaker-independent first pass of a SAT system
            name = name[:-3] if si else name
            variant = name[: -len(split) - 1] if name.endswith("_" + split) else name if name != split else ""
            if si:
                variant = ", ".join(v for v in (variant, "speaker-independent pass") if v)
            rows.append((model_dir.name + (f" ({variant})" if variant else ""), split, size, b))
    rows.sort(key=lambda r: (r[1] != "test", r[1], r[0]))  # the test split first, then the other evaluation splits
    if rows:
        lines += ["## WER (acoustic scale tuned on dev, applied to the evaluation split)", "",
                  "| system | split | size | acoustic scale (lattices: LM weight, insertion penalty) | dev %WER | %WER | errors | RTF |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, split, size, b in rows:
            t = b["test"]
            scale = (f"LMWT {b['lm_weight']:g}, WIP {b['word_ins_penalty']:g}" if "lm_weight" in b
                     else f"{b['acoustic_scale']:g}")
            lines.append(f"| {name} | {split} | {size} | {scale} | {b['dev']['wer']:.2f} | {t['wer']:.2f} | "
                         f"{t['line'].split('[')[1].split(']')[0].strip()} | {t['rtf']:.4f} |")
        lines += ["", "Commands:", ""]
        for name, _, _, b in rows:
            commands = dict.fromkeys(c for c in (b.get("dev_command"), b.get("test_command"), b.get("command")) if c)
            lines += [f"- {name}: " + "; ".join(f"`{c}`" for c in commands)]
        lines.append("")
    fa_files = _frame_accuracy_files(exp_dir)
    levels = any("phone" in json.loads(p.read_text()).get(split, {}) for p in fa_files for split in ("dev", "test"))
    fa_rows = _frame_accuracy_rows(exp_dir, levels)
    if fa_rows:
        if levels:
            lines += ["## Frame accuracy (%) on the aligned tied states, their phones, and speech/silence", "",
                      "Phone level: a frame is right when the predicted and the aligned tied state belong to the same "
                      "base phone (tree root: word-position variants together, SIL/SPN one class where they share a "
                      "root); speech/silence: when both are speech or both silence. Mapping from the targets' GMM "
                      "system (`phone_classes` in each frame_accuracy.json); `-`: evaluated before these columns "
                      "existed.", "",
                      "| system | split | members | mean member | ensemble (arithmetic) | ensemble (geometric) | "
                      "phone: mean member | phone: ensemble (arithmetic) | speech/silence: mean member | "
                      "speech/silence: ensemble (arithmetic) |",
                      "|---|---|---|---|---|---|---|---|---|---|"] + fa_rows + [""]
        else:
            lines += ["## Frame accuracy (%) on the aligned tied states", "",
                      "| system | split | members | mean member | ensemble (arithmetic) | ensemble (geometric) |",
                      "|---|---|---|---|---|---|"] + fa_rows + [""]
        for path in fa_files:
            fa = json.loads(path.read_text())
            pc = fa.get("phone_classes")
            where = (f" (phone classes: {pc['num_phone_classes']} from the {pc['num_pdfs']} tied states of "
                     f"{pc['tree_dir']})" if pc else "")
            lines.append(f"- {path.parent.name}: `{fa.get('command', '')}`{where}")
        lines.append("")
    lines += before_after_section(exp_dir, before)
    from .report_distill import distillation_sections

    lines += distillation_sections(exp_dir, out.parent if str(out.parent) else Path("."), title)
    from .report_specialists import specialist_sections

    lines += specialist_sections(exp_dir, title)
    deployment = exp_dir / "deployment" / "table.md"  # benchmarks/bench_transcribe.py (recipes/deployment_table.sh)
    if deployment.is_file():
        lines += ["## Deployment: exported networks on one CPU thread", "", deployment.read_text().rstrip(), ""]
    reports = [r for d in _experiment_dirs(exp_dir) for r in sorted(d.glob("ali/report_*.txt"))]
    if reports:
        lines += ["## Forced alignments (DNN targets)", "",
                  "| model | split | aligned | acoustic log-like/frame | frames per leaf (min / median) | mean phone duration (frames) |",
                  "|---|---|---|---|---|---|"]
        models = {}
        for r in reports:
            split = r.stem.replace("report_", "")
            lines.append(f"| {r.parent.parent.name} | {split} | {_ali_summary(r)} |")
            m = re.search(r"model: (\S+)", r.read_text())
            models.setdefault(m[1] if m else f"exp/{r.parent.parent.name}", None)
        lines.append("")
        lines.append("Command: " + "; ".join(f"`asrdistill gmm align --model-dir {m}`" for m in models)
                     + " (recipes/align.sh); full reports in `exp/*/ali/report_*.txt`.")
        lines.append("")
    atomic_write_text(out, "\n".join(lines) + "\n")
    click.echo(out.read_text())
