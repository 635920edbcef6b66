"""The specialists section of RESULTS.md (Hinton et al., 2015, section 5), from the files the stages wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

from .report_distill import _config, _json, _wer


def specialist_sections(exp_dir: Path, corpus: str = "FSDD") -> List[str]:
    acc = _json(exp_dir / "specialists" / "specialist_accuracy.json")
    info = _json(exp_dir / "specialists" / "specialists.json")
    if not acc or not info:
        return []
    clusters = json.loads(Path(info["clusters"]).read_text()) if Path(info["clusters"]).exists() else {}
    saved = _config(exp_dir / "specialists")
    cfg = saved.get("specialists", {})
    sizes = [len(s["classes"]) for _, s in sorted(info["specialists"].items(), key=lambda kv: int(kv[0]))]
    gen = f"{Path(info['generalist_dir']).name} member {info['generalist_member']}"
    lines = [f"## Specialists (Hinton et al., 2015, section 5 on {corpus})", "",
             f"Generalist: {gen} (a member-size DNN trained on all the data with hard labels). "
             f"{len(sizes)} specialists on subsets of the {info['num_classes']} tied states (sizes {', '.join(map(str, sizes))}), "
             f"found by k-means on the columns of the covariance of the generalist's predictions on "
             f"{clusters.get('split', '?')} ({clusters.get('held_out_frames', '?')} frames); classes covered by 0, 1, 2, ... "
             f"specialists: {clusters.get('coverage_histogram', '?')}. Each specialist starts from the generalist's weights, "
             f"sees batches {100 * (1 - info['dustbin_fraction']):.0f}% from its subset and "
             f"{100 * info['dustbin_fraction']:.0f}% from the rest for {cfg.get('max_epochs', '?')} epochs of its own frames "
             f"(soft-target weight {cfg.get('soft_weight', 0)}), and its dustbin logit is corrected to the natural prior. "
             f"Per frame, the specialists whose subset holds the generalist's top-{acc['top_n']} class take part, and the "
             f"combined distribution minimizes the summed KL divergences ({acc['solver']} solver).", "",
             "| system | dev frame acc | test frame acc | dev frame acc, specialists' classes | test frame acc, "
             "specialists' classes | test %WER |", "|---|---|---|---|---|---|"]
    d, t = acc["dev"], acc["test"]
    member = info["generalist_member"]
    lines.append(f"| generalist ({gen}) | {100 * d['accuracy_generalist']:.2f} | {100 * t['accuracy_generalist']:.2f} | "
                 f"{100 * d['conditional_generalist']:.2f} | {100 * t['conditional_generalist']:.2f} | "
                 f"{_wer(Path(info['generalist_dir']), f'member{member}_')} |")
    lines.append(f"| generalist + {len(sizes)} specialists | {100 * d['accuracy_combined']:.2f} | "
                 f"{100 * t['accuracy_combined']:.2f} | {100 * d['conditional_combined']:.2f} | "
                 f"{100 * t['conditional_combined']:.2f} | {_wer(exp_dir / 'specialists', '')} |")
    lines += ["", "\"Specialists' classes\": frames whose correct class is in at least one specialist's subset "
              f"(test: {t['conditional_frames']} of {t['frames']}). (The paper, JFT: 25.0% -> 26.1% test accuracy, "
              "43.1% -> 45.9% conditional, with 61 specialists.)", "",
              "Change in correctly classified test frames by the number of specialists covering the correct class "
              "(the paper's Table 4):", "",
              "| specialists covering | test frames | correct, generalist | correct, combined | change | relative change |",
              "|---|---|---|---|---|---|"]
    for r in t["by_coverage"]:
        lines.append(f"| {r['covering']} | {r['frames']} | {r['correct_before']} | {r['correct_after']} | "
                     f"{r['change']:+d} | {100 * r['relative']:+.1f}% |")
    lines += ["", "Commands:", "", f"- `{clusters.get('command', '')}`", f"- `{saved.get('command', '')}`",
              f"- `{acc['command']}`", ""]
    return lines
