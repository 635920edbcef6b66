"""RESULTS_cv.md from fold directories: figures, paired tests and verdicts on constructed folds."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from asrdistill.cli import cli
from asrdistill.stats.cross_validation import collect_fold, evaluate_claim

SPEAKERS = ["george", "jackson", "nicolas", "theo", "yweweler"]
FOLDS = [("nicolas", "theo"), ("theo", "yweweler"), ("yweweler", "george"), ("george", "jackson"), ("jackson", "nicolas")]


def _decode(d, errors_per_utt, words=4):
    """A decoding directory as decode run writes it: best.json and the recogs file it names."""
    d.mkdir(parents=True)
    name = "test-ac0.1-faster-beam8"
    lines = []
    total = 0
    for i, e in enumerate(errors_per_utt):
        ref = ["ONE"] * words
        hyp = ["TWO"] * e + ["ONE"] * (words - e)  # e substitutions
        lines += [f"u{i}:\tref={ref}", f"u{i}:\thyp={hyp}"]
        total += e
    (d / f"recogs-{name}.txt").write_text("\n".join(lines) + "\n")
    wer = 100.0 * total / (words * len(errors_per_utt))
    (d / "best.json").write_text(json.dumps({"acoustic_scale": 0.1, "dev": {"wer": wer, "name": "dev"},
                                             "test": {"wer": wer, "name": name}, "command": f"decode {d.name}"}))


def _fold(root, k, member_errors, student_errors, ensemble_errors, fa):
    dev, test = FOLDS[k]
    f = root / f"fold{k}"
    (f / "data" / "manifests").mkdir(parents=True)
    train = [s for s in SPEAKERS if s not in (dev, test)]
    (f / "data" / "manifests" / "prepare_config.yaml").write_text(
        f"train_speakers: {train}\ndev_speakers: [{dev}]\ntest_speakers: [{test}]\n")
    exp = f / "exp"
    for i, e in enumerate(member_errors):
        _decode(exp / "ensemble" / f"decode_member{i}_test", e)
    _decode(exp / "ensemble" / "decode_test", ensemble_errors)
    for i, e in enumerate(student_errors):
        _decode(exp / "student" / f"decode_member{i}_test", e)
    fa_ens, fa_mem, fa_stu = fa
    (exp / "ensemble" / "frame_accuracy.json").write_text(json.dumps(
        {s: {"members": [fa_mem - 0.01, fa_mem + 0.01], "arithmetic": fa_ens} for s in ("dev", "test")}))
    (exp / "student" / "frame_accuracy.json").write_text(json.dumps(
        {s: {"members": [fa_stu, fa_stu]} for s in ("dev", "test")}))
    return f


def test_report_cv_gives_verdicts_over_speakers(tmp_path):
    cv = tmp_path / "cv"
    rng = np.random.default_rng(0)
    for k in range(5):
        n = 50
        members = [rng.binomial(1, 0.30, n) * 2 for _ in range(2)]
        student = [np.maximum(m - rng.binomial(1, 0.5, n), 0) for m in members]  # fewer errors on every fold
        ensemble = np.maximum(members[0] - 1, 0)
        # frame accuracy: ensemble +4 points; student +1 point in folds 0-2, -0.5 in 3-4 (keeps < 80%)
        _fold(cv, k, members, student, ensemble, (0.54, 0.50, 0.51 if k < 3 else 0.495))
    folds_file = tmp_path / "folds.yaml"
    folds_file.write_text("speakers: [george, jackson, nicolas, theo, yweweler]\nfolds:\n" +
                          "".join(f"  - {{dev: {d}, test: {t}}}\n" for d, t in FOLDS))
    out = tmp_path / "RESULTS_cv.md"
    r = CliRunner().invoke(cli, ["report-cv", "--cv-dir", str(cv), "--folds", str(folds_file), "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| the ")}
    assert "**reproduced**" in rows["the ensemble beats its members"]
    folds = [collect_fold(cv / f"fold{k}") for k in range(5)]
    wer = evaluate_claim(folds, "s", "wer", "student", "member (baseline)", "less")
    assert wer.verdict == "reproduced" and wer.agree == 5 and wer.wilcoxon_p == pytest.approx(1 / 32)
    assert wer.bootstrap.high < 0  # fewer errors on pooled utterances too
    mixed = evaluate_claim(folds, "s", "fa", "student", "80% of the gain", "greater")
    assert mixed.verdict == "not reproduced" and mixed.agree == 0  # below 80% of the gain on every fold
    fa = evaluate_claim(folds, "s", "fa", "student", "member (baseline)", "greater")
    assert fa.verdict == "not distinguishable" and fa.agree == 3
    # per-fold figures: the mean over seeds of the members' WER
    members = folds[0].systems["member (baseline)"]
    assert len(members.wer["test"]) == 2 and "| member (baseline) |" in text and "theo" in text


def test_report_cv_refuses_a_fold_prepared_for_another_split(tmp_path):
    cv = tmp_path / "cv"
    _fold(cv, 0, [[0, 2]], [[0, 0]], [0, 0], (0.5, 0.4, 0.45))
    folds_file = tmp_path / "folds.yaml"
    folds_file.write_text("speakers: [george, jackson, nicolas, theo, yweweler]\nfolds:\n  - {dev: theo, test: nicolas}\n")
    r = CliRunner().invoke(cli, ["report-cv", "--cv-dir", str(cv), "--folds", str(folds_file), "--out", str(tmp_path / "o.md")])
    assert r.exit_code != 0 and "was prepared with dev nicolas, test theo" in r.output


def test_fold_wall_time_from_stage_times_and_markers(tmp_path):
    """Stage 0's last start to the newest marker written before the report stage; the report's own later
    markers, and an earlier run's stage 0, do not count."""
    import os

    from asrdistill.stats.cross_validation import fold_wall_seconds

    exp = tmp_path / "exp"
    (exp / "a").mkdir(parents=True)
    assert fold_wall_seconds(exp) is None  # no stage_times.tsv
    (exp / "stage_times.tsv").write_text("0\t1000\n5\t1100\n0\t2000\n9\t2100\n20\t3000\n")
    for name, t in ((".x.done", 2500), (".y.done", 2900), (".late.done", 3100), (".old.done", 1500)):
        (exp / "a" / name).write_text("")
        os.utime(exp / "a" / name, (t, t))
    assert fold_wall_seconds(exp) == 900  # 2900 - 2000
    (exp / "stage_times.tsv").write_text("0\t2000\n9\t2100\n")  # no report yet: every marker after stage 0
    assert fold_wall_seconds(exp) == 1100


def test_ensemble_ahead_of_student_claim(tmp_path):
    cv = tmp_path / "cv"
    for k in range(5):
        _fold(cv, k, [[2, 0, 2]] * 2, [[2, 0, 0]] * 2, [0, 0, 0], (0.54, 0.50, 0.52 + 0.001 * k))
    folds = [collect_fold(cv / f"fold{k}") for k in range(5)]
    r = evaluate_claim(folds, "s", "fa", "ensemble", "student", "greater")
    assert r.verdict == "reproduced" and r.agree == 5
    from asrdistill.stats.cross_validation import CLAIMS

    assert ("fa", "ensemble", "student", "greater") in [c[1:] for c in CLAIMS]


def test_tiny_temperature_chosen_on_dev_with_its_own_test_errors(tmp_path):
    """Each temperature of the sweep is a system of its own (its WER and per-utterance errors, so the WER claims
    get a bootstrap interval); the one with the best dev frame accuracy is chosen, never by test figures."""
    cv = tmp_path / "cv"
    for k in range(5):
        f = _fold(cv, k, [[2, 0, 2]] * 2, [[2, 0, 0]] * 2, [0, 0, 0], (0.54, 0.50, 0.52))
        sweep = f / "exp" / "tsweep_tiny"
        sweep.mkdir(parents=True)
        (sweep / "config.yaml").write_text("distill:\n  temperatures: [1.0, 2.0, 4.0, 8.0, 20.0]\n")
        dev_fa = [0.40, 0.44, 0.47, 0.45, 0.43]  # T=4 best on dev
        test_fa = [0.41, 0.45, 0.46, 0.48, 0.44]  # (T=8 would be best on test: not chosen)
        (sweep / "frame_accuracy.json").write_text(json.dumps({"dev": {"members": dev_fa}, "test": {"members": test_fa}}))
        for i, errors in enumerate([[3, 3, 3, 3], [2, 2, 2, 2], [1, 1, 0, 1], [0, 0, 0, 0], [2, 2, 3, 2]]):
            _decode(sweep / f"decode_member{i}_test", errors)
    folds = [collect_fold(cv / f"fold{k}") for k in range(5)]
    assert all(f.tiny_temperature == 4.0 for f in folds)
    chosen = folds[0].systems["tiny, T chosen on dev"]
    assert chosen.fa["test"] == [46.0] and chosen.utt_errors == {"u0": 1, "u1": 1, "u2": 0, "u3": 1}
    r = evaluate_claim(folds, "s", "wer", "tiny, T chosen on dev", "tiny T=1", "less")
    assert r.verdict == "reproduced" and r.bootstrap is not None and r.bootstrap.high < 0
    r = evaluate_claim(folds, "s", "fa", "tiny, T chosen on dev", "tiny T=20", "greater")
    assert r.verdict == "reproduced" and r.agree == 5
