"""egs/kaldi_dir/run.sh end to end (tiny preset) on small Kaldi data directories of real FSDD audio, then the
exported student transcribes the test split and a WAV file the recipe never saw."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("kaldi_hmm_gmm")

ROOT = Path(__file__).resolve().parents[2]
WORDS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
SPLITS = {"train": ("george", "jackson", "yweweler"), "dev": ("nicolas",), "test": ("theo",)}


def kaldi_dirs(fsdd_dir: Path, out: Path, takes: int = 4):
    """One data dir per split: takes 0..takes-1 of each digit; train's first 10 as piped commands; test's first
    take of each digit concatenated into one recording per 5 digits (a segments file)."""
    dirs = {}
    for split, speakers in SPLITS.items():
        d = out / split
        d.mkdir(parents=True)
        utts = {}
        for f in sorted((fsdd_dir / "recordings").glob("*.wav")):
            digit, spk, take = f.stem.split("_")
            if spk in speakers and int(take) < takes:
                utts[f"{spk}-{digit}-{int(take):02d}"] = (f, spk, WORDS[int(digit)])
        wav, segs = [], []
        if split == "test":
            items = sorted(utts.items())
            for r in range(0, len(items), 5):
                rec, t, audio = f"theo-rec{r // 5:02d}", 0.0, []
                for utt, (f, _, _) in items[r:r + 5]:
                    x, _ = sf.read(f, dtype="int16")
                    segs.append(f"{utt} {rec} {t:.4f} {t + len(x) / 8000:.4f}\n")
                    audio.append(x)
                    t += len(x) / 8000
                import numpy as np

                sf.write(d / f"{rec}.wav", np.concatenate(audio), 8000, subtype="PCM_16")
                wav.append(f"{rec} {d / (rec + '.wav')}\n")
            (d / "segments").write_text("".join(segs))
        else:
            for i, (utt, (f, _, _)) in enumerate(sorted(utts.items())):
                wav.append(f"{utt} cat {f} |\n" if i < 10 else f"{utt} {f}\n")
        (d / "wav.scp").write_text("".join(wav))
        (d / "text").write_text("".join(f"{u} {w}\n" for u, (_, _, w) in sorted(utts.items())))
        (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, (_, s, _) in sorted(utts.items())))
        dirs[split] = d
    return dirs


def test_generic_recipe_on_kaldi_dirs(fsdd_dir, tmp_path):
    dirs = kaldi_dirs(fsdd_dir, tmp_path / "kaldi")
    work = tmp_path / "work"
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    cmd = ["bash", str(ROOT / "egs" / "kaldi_dir" / "run.sh"), "--preset", "tiny", "--work-dir", str(work),
           "--train", str(dirs["train"]), "--dev", str(dirs["dev"]), "--test", str(dirs["test"]), "--prefix", "digits",
           "--hidden-layers", "2", "--hidden-dim", "128", "--gmm-systems", "tri1", "--speed-perturb", "0.9 1.1"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    # train_sp: train and its copies at 0.9 and 1.1 speed, featurized and aligned (the tiny preset's networks
    # still train on train: its configs say so)
    from asrdistill.utils.readers import read_cuts

    train = read_cuts(work / "data" / "fbank" / "digits_cuts_train.jsonl.gz")
    sp = read_cuts(work / "data" / "fbank" / "digits_cuts_train_sp.jsonl.gz")
    assert sorted(c.id for c in sp) == sorted([c.id for c in train] + [f"sp{f}-{c.id}" for f in (0.9, 1.1) for c in train])
    assert (work / "exp" / "tri" / "ali" / "digits_ali_train_sp.npz").exists()
    results = (work / "RESULTS.md").read_text()
    rows = {m[1]: float(m[2]) for m in re.finditer(
        r"^\| (ensemble|ensemble \(member0\)|student \(member0\)) \| test \|[^|]*\|[^|]*\|[^|]*\| ([\d.]+) \|", results, re.M)}
    assert set(rows) == {"ensemble", "ensemble (member0)", "student (member0)"}, results
    assert max(rows.values()) < 60.0, rows  # 3 training speakers, 4 takes per digit: far from chance (~90%)
    # the deployment table: measured, and the ONNX student's offline WER is the recipe's ('decode run')
    table = re.search(r"^\| student \(member 0\) \|.*$", results, re.M)
    assert "## Deployment" in results and table, results
    cells = [c.strip() for c in table[0].strip("|").split("|")]
    assert float(cells[8]) == float(cells[9]) == float(cells[11])  # offline == streaming == decode run
    # the exported student transcribed the test split (segments of long recordings) with onnxruntime
    refs = dict(l.split(maxsplit=1) for l in (dirs["test"] / "text").read_text().splitlines())
    hyps = dict((l.split(maxsplit=1) + [""])[:2] for l in (work / "exp/student/transcribe_test/hyp.txt").read_text().splitlines())
    assert set(hyps) == set(refs)
    errors = sum(hyps[u].strip() != refs[u].strip() for u in refs)
    assert errors / len(refs) < 0.6, (errors, len(refs))
    # a WAV file it never saw (another take of the test speaker), as the README shows
    unseen = fsdd_dir / "recordings" / "7_theo_40.wav"
    r = subprocess.run(["asrdistill", "transcribe", "--model", str(work / "exp/student/export"), "--graph",
                        str(work / "exp/tri/graph"), "--cmvn", "running", str(unseen)], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[0] == "7_theo_40" and len(r.stdout.split()) <= 3
