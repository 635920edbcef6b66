"""RESULTS.md: the GMM systems table, phone-level frame accuracy, before/after and the success checks,
on synthetic experiment directories of the new layout (mono, tri1-tri3, gmm_selection.json, exp/tri a link),
the earlier one (a single exp/tri) and partial ones."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from asrdistill.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _best(path: Path, dev: float, test: float, scale: float = 0.1, command: str = "asrdistill decode run x") -> None:
    def r(split, wer):
        return {"name": f"{split}-ac{scale}-faster-beam8", "wer": wer, "words": 1000, "rtf": 0.01,
                "line": f"%WER {wer:.2f} [ {int(wer * 10)} / 1000, 1 ins, 0 del, 2 sub ]  %SER 1.00 [ 1 / 100 ]"}
    path.mkdir(parents=True, exist_ok=True)
    (path / "best.json").write_text(json.dumps({"acoustic_scale": scale, "dev": r("dev", dev), "test": r("test", test),
                                                "dev_command": command, "test_command": command, "command": command}))


def _gmm(exp: Path, name: str, kind: str, leaves=None, mono_pdfs=None) -> Path:
    d = exp / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(f"# asrdistill.gmm.trainer.{kind}\nbeam: 10.0\n")
    log = f"monophone: {mono_pdfs} pdfs, 1860 utterances\n" if mono_pdfs else ""
    if leaves:
        total, sil = leaves
        log += f"tree: {total} leaves ({sil} silence, {total - sil} speech) from 544 seen contexts (160866 frames)\n"
    (d / "log.txt").write_text(log + "iter 0: log-like/frame -100\n")
    return d


def _fa(path: Path, members: dict, phone: bool) -> None:
    out = {}
    for split, accs in members.items():
        r = {"members": accs, "mean_member": sum(accs) / len(accs), "arithmetic": max(accs) + 0.01,
             "geometric": max(accs) + 0.02}
        if phone:
            r["phone"] = {k: (v + 0.3 if not isinstance(v, list) else [a + 0.3 for a in v]) for k, v in r.items()}
            r["speech_silence"] = {k: (v + 0.5 if not isinstance(v, list) else [a + 0.5 for a in v])
                                   for k, v in r.items() if k != "phone"}
        out[split] = r
    if phone:
        out["phone_classes"] = {"tree_dir": "exp/tri", "num_pdfs": 162, "num_phone_classes": 20, "silence_pdfs": 5,
                                "speech_pdfs": 157}
    out["command"] = f"asrdistill train ensemble --exp-dir {path.name}"
    path.mkdir(parents=True, exist_ok=True)
    (path / "frame_accuracy.json").write_text(json.dumps(out))


def _new_layout(root: Path) -> Path:
    exp = root / "exp"
    _best(_gmm(exp, "mono", "MonoConfig", mono_pdfs=67) / "decode_test", 6.0, 5.0)
    _best(_gmm(exp, "tri1", "TriConfig", (163, 5)) / "decode_test", 4.0, 4.5)
    tri2 = _gmm(exp, "tri2", "LdaMlltConfig", (162, 5))
    _best(tri2 / "decode_test", 3.0, 3.5, command="asrdistill decode run --model-dir exp/tri2")
    tri3 = _gmm(exp, "tri3", "SatConfig", (170, 6))
    _best(tri3 / "decode_test.si", 5.5, 6.5)
    _best(tri3 / "decode_test", 3.2, 3.0)
    (tri2 / "ali").mkdir()
    (tri2 / "ali" / "report_train.txt").write_text(
        "split: train  model: exp/tri\nutterances aligned: 10 of 10; failed: 0\nframes: 100\naverage acoustic "
        "log-likelihood per frame: -96.9\nleaves (pdfs): 162\nframes per leaf: min 1, median 5, max 9\n"
        "phone durations (frames): mean 13.5, min 3, max 60\n")
    os.symlink("tri2", exp / "tri")
    (exp / "gmm_selection.json").write_text(json.dumps({
        "chosen": "exp/tri2", "rule": "lowest dev WER at the dev-tuned acoustic scale (ties: the later system)",
        "systems": {"exp/tri1": {"dev": 4.0, "test": 4.5, "acoustic_scale": 0.1},
                    "exp/tri2": {"dev": 3.0, "test": 3.5, "acoustic_scale": 0.1},
                    "exp/tri3": {"dev": 3.2, "test": 3.0, "acoustic_scale": 0.1}},
        "command": "asrdistill gmm select --systems exp/tri1,exp/tri2,exp/tri3 --out exp/gmm_selection.json --link exp/tri"}))
    _fa(exp / "ensemble", {"dev": [0.30, 0.32], "test": [0.40, 0.42]}, phone=True)
    _best(exp / "ensemble" / "decode_test", 2.5, 2.8)
    _best(exp / "ensemble" / "decode_member0_test", 2.9, 3.1)
    _best(exp / "ensemble" / "decode_member1_test", 3.1, 3.4)  # dev 3.1 >= tri2's 3.0: no on dev
    _fa(exp / "student", {"dev": [0.31, 0.33, 0.32], "test": [0.41, 0.43, 0.42]}, phone=False)  # an older file
    for i, (d, t) in enumerate(((2.7, 3.0), (2.8, 3.2), (2.6, 3.3))):
        _best(exp / "student" / f"decode_member{i}_test", d, t)
    shutil.copy(ROOT / "egs" / "fsdd" / "results_before.json", root / "results_before.json")
    return exp


def _report(exp: Path, out: Path, *extra) -> str:
    r = CliRunner().invoke(cli, ["report", "--exp-dir", str(exp), "--out", str(out), *extra])
    assert r.exit_code == 0, r.output
    return out.read_text()


def _section(text: str, heading: str) -> str:
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"no section {heading!r}"
    return m.group(1)


def test_report_new_layout(tmp_path):
    exp = _new_layout(tmp_path)
    text = _report(exp, tmp_path / "RESULTS.md")

    gmm = _section(text, "GMM systems")
    rows = [line for line in gmm.splitlines() if line.startswith("| ") and not line.startswith("| system")]
    assert [r.split(" | ")[0] for r in rows] == ["| mono (monophone)", "| tri1 (deltas)", "| tri2 (LDA+MLLT)",
                                                 "| tri3 (SAT), speaker-independent pass", "| tri3 (SAT), fMLLR-adapted"]
    assert rows[0].startswith("| mono (monophone) | 67 pdfs (no tree) | 0.1 | 6.00 | 5.00 |")
    assert rows[2] == "| tri2 (LDA+MLLT) | 162 (5 / 157) | 0.1 | 3.00 | 3.50 | **yes** |"
    assert "| 170 (6 / 164) | 0.1 | 5.50 | 6.50 |  |" in rows[3] and sum("**yes**" in r for r in rows) == 1
    assert "DNN targets: **tri2** (`exp/tri` -> `tri2`). Rule: lowest dev WER" in gmm
    assert "`asrdistill gmm sat --exp-dir exp/tri3`" in gmm and "- selection: `asrdistill gmm select" in gmm

    wer = _section(text, "WER (acoustic scale tuned on dev, applied to the evaluation split)")
    assert "| tri3 (speaker-independent pass) | test |" in wer and "| tri |" not in wer  # the link is not a system

    fa = _section(text, "Frame accuracy (%) on the aligned tied states, their phones, and speech/silence")
    assert "| phone: mean member | phone: ensemble (arithmetic) |" in fa
    assert "| ensemble | test | 40.00, 42.00 | 41.00 | 43.00 | 44.00 | 71.00 | 73.00 | 91.00 | 93.00 |" in fa
    assert "| student | dev | 31.00, 33.00, 32.00 | 32.00 | 34.00 | 35.00 | - | - | - | - |" in fa
    assert "(phone classes: 20 from the 162 tied states of exp/tri)" in fa

    ba = _section(text, "Before and after")
    assert "| tied states of the DNN targets' GMM system | 300 (152 silence, 148 speech), tri | " \
           "162 (5 silence, 157 speech), tri2 |" in ba
    assert "| mono %WER, dev | 36.35 | 6.00 |" in ba
    assert "| best GMM (DNN targets) %WER, test | 6.76 (tri) | 3.50 (tri2) |" in ba
    assert "| ensemble members %WER (mean), dev | 29.11 | 3.00 |" in ba
    assert "| student %WER (mean over seeds), test | 5.62 | 3.17 |" in ba
    assert "| phone frame accuracy %, ensemble (arithmetic), test | - | 73.00 |" in ba
    assert "| tied-state frame accuracy %, members (mean), test | 39.07 | 41.00 |" in ba
    assert "after: stage 0 to stage 20) | 16:50 | - (no exp/stage_times.tsv) |" in ba
    assert ("| best GMM (the DNN targets' system) beats mono | test | no: tri 6.76 >= mono 2.94 | "
            "yes: tri2 3.50 < mono 5.00 |") in ba
    assert "| every ensemble member beats the target GMM | dev | yes: 4 of 4 below tri 31.97 " in ba
    assert "no: 1 of 2 below tri2 3.00 (2.90, 3.10) |" in ba
    assert "| every student seed beats the target GMM | test | yes: 3 of 3 below tri 6.76 (5.39, 5.39, 6.08) | " \
           "yes: 3 of 3 below tri2 3.50 (3.00, 3.20, 3.30) |" in ba
    assert "After: 7 of 8 checks hold in this one run (one split" in ba

    ali = _section(text, "Forced alignments (DNN targets)")
    assert ali.count("| tri2 | train |") == 1 and "`asrdistill gmm align --model-dir exp/tri`" in ali


def test_report_partial_and_empty_exp_dirs(tmp_path):
    empty = tmp_path / "empty" / "exp"
    empty.mkdir(parents=True)
    assert _report(empty, tmp_path / "e.md").startswith("# FSDD results")

    part = tmp_path / "part" / "exp"
    _best(_gmm(part, "mono", "MonoConfig", mono_pdfs=67) / "decode_test", 6.0, 5.0)
    _gmm(part, "tri1", "TriConfig", (163, 5))  # trained, not decoded yet
    (part / "ensemble").mkdir()
    (part / "ensemble" / "frame_accuracy.json").write_text(json.dumps({"dev": {"members": [0.3], "mean_member": 0.3,
                                                                                "arithmetic": 0.3, "geometric": 0.3}}))
    text = _report(part, tmp_path / "p.md")
    gmm = _section(text, "GMM systems")
    assert "| tri1 (deltas) | 163 (5 / 158) | - | - | - (no exp/tri1/decode_test/best.json) |  |" in gmm
    assert "tri2" not in gmm and "tri3" not in gmm and "**yes**" not in gmm
    ba = _section(text, "Before and after")
    assert "| mono %WER, test | - | 5.00 |" in ba and "no results_before.json found" in ba
    assert "| best GMM (the DNN targets' system) beats mono | dev | - | - |" in ba and "checks hold" not in ba
    assert "## Distillation" not in text  # the ensemble was evaluated on dev only


def test_report_earlier_layout_single_tri(tmp_path):
    exp = tmp_path / "exp"
    _best(_gmm(exp, "mono", "MonoConfig", mono_pdfs=67) / "decode_test", 36.0, 3.0)
    tri = _gmm(exp, "tri", "TriConfig")
    (tri / "log.txt").write_text("aligned with exp/mono\ntree: 300 leaves from 479 seen contexts (160866 frames)\n")
    _best(tri / "decode_test", 32.0, 6.8)
    _best(tri / "decode_k2_test", 32.1, 6.9)
    text = _report(exp, tmp_path / "RESULTS.md", "--before", str(ROOT / "egs" / "fsdd" / "results_before.json"))
    gmm = _section(text, "GMM systems")
    assert "| tri (deltas) | 300 (silence / speech not in log.txt) | 0.1 | 32.00 | 6.80 | **yes** |" in gmm
    assert "DNN targets: **tri** (no exp/gmm_selection.json" in gmm
    ba = _section(text, "Before and after")
    assert "| tied states of the DNN targets' GMM system | 300 (152 silence, 148 speech), tri | 300, tri |" in ba
    assert "| best GMM (the DNN targets' system) beats mono | test | no: tri 6.76 >= mono 2.94 | " \
           "no: tri 6.80 >= mono 3.00 |" in ba


def test_results_before_holds_the_figures_of_the_old_results_md():
    """Every WER and frame accuracy in egs/fsdd/results_before.json is printed in RESULTS.md at 4280057
    (except the dev means the file marks as computed), and the file says so."""
    before = json.loads((ROOT / "egs" / "fsdd" / "results_before.json").read_text())
    assert before["source"] == "egs/fsdd/RESULTS.md at 4280057"
    try:
        old = subprocess.run(["git", "show", "4280057:egs/fsdd/RESULTS.md"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git history not available")
    printed = set(re.findall(r"\d+\.\d\d", old))
    for section in ("wer", "frame_accuracy"):
        for key, entry in before[section].items():
            assert entry["source"], key
            for split in ("dev", "test"):
                values = entry[split] if isinstance(entry[split], list) else [entry[split]]
                values += [entry.get("mean", {}).get(split)] if entry.get("mean", {}).get(split) is not None else []
                for v in values:
                    assert f"{v:.2f}" in printed, (section, key, split, v)
    assert before["tied_states"]["total"] == 300 and "300 pdfs" in old
    assert before["tied_states"]["silence"] + before["tied_states"]["speech"] == 300


def test_recipe_wall_time_from_stage_times(tmp_path):
    """local/log.sh appends 'stage<TAB>time' per stage start; the report takes the last run from stage 0 to 20."""
    import subprocess
    from pathlib import Path

    from asrdistill.cli.report import recipe_wall_time

    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "run.sh"
    script.write_text(f". {root}/local/log.sh\nstage_times={tmp_path}/exp/stage_times.tsv\n"
                      'log "Stage 0: first"\nlog "not a stage"\nlog "Stage 20: last"\n')
    subprocess.run(["bash", str(script)], check=True, capture_output=True)
    rows = (tmp_path / "exp" / "stage_times.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows] == ["0", "20"]
    (tmp_path / "exp" / "stage_times.tsv").write_text("0\t100\n5\t200\n20\t300\n0\t1000\n3\t1100\n20\t2105\n")
    assert recipe_wall_time(tmp_path / "exp") == "18:25"  # the last run: 1000 -> 2105 s
