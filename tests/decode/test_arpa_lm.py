"""ArpaLM's compact trie and its memory-mapped const form against a naive dictionary parse of the same ARPA file
and against the interpolated model that wrote it."""

import gzip
import math

import numpy as np
import pytest

from asrdistill.decode.arpa_lm import ArpaFormatError, ArpaLM
from asrdistill.decode.ngram import WittenBellLM


def naive_arpa(path):
    """Reference: every n-gram's -ln P and -ln back-off in dictionaries keyed by word tuples."""
    prob, bow, order = {}, {}, 0
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        for line in f:
            line = line.strip()
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1])
                continue
            parts = line.split()
            if not order or not parts or line.startswith("\\"):
                continue
            gram = tuple(parts[1 : 1 + order])
            prob[gram] = -float(parts[0]) * math.log(10)
            if len(parts) > 1 + order:
                bow[gram] = -float(parts[1 + order]) * math.log(10)
    return prob, bow, order


def naive_cost(ref, history, word):
    prob, bow, order = ref
    h, total = tuple(history)[-(order - 1):], 0.0
    while (h + (word,)) not in prob:
        total += bow.get(h, 0.0)
        h = h[1:]
    return total + prob[h + (word,)]


@pytest.fixture(scope="module")
def four_gram(tmp_path_factory):
    rng = np.random.default_rng(0)
    vocab = [f"W{i}" for i in range(40)]
    text = [[vocab[int(x)] for x in rng.zipf(1.5, size=rng.integers(1, 12)) % 40] for _ in range(400)]
    lm = WittenBellLM(text, 4)
    path = tmp_path_factory.mktemp("lm") / "G4.arpa.gz"
    lm.write_arpa(path.with_suffix(""))
    with open(path.with_suffix(""), "rb") as f, gzip.open(path, "wb") as g:
        g.write(f.read())
    return path, lm, vocab


def test_costs_equal_a_naive_parse_and_the_model_in_memory_and_memory_mapped(four_gram, tmp_path):
    path, wb, vocab = four_gram
    ref = naive_arpa(path)
    lm = ArpaLM(path)
    assert lm.order == 4 and sum(lm.num_ngrams) == len(ref[0])
    const = ArpaLM(lm.save(tmp_path / "G4.carpa"))
    assert isinstance(const.logp[3].base, np.memmap) and const.num_ngrams == lm.num_ngrams
    rng = np.random.default_rng(1)
    words = vocab + ["</s>"]
    for _ in range(400):
        hist = ["<s>"] + [vocab[int(i)] for i in rng.integers(0, 40, size=rng.integers(0, 4))]
        w = words[int(rng.integers(0, len(words)))]
        expect = naive_cost(ref, hist, w)
        assert lm.cost(hist, w) == pytest.approx(expect, rel=1e-6, abs=1e-6)
        assert const.cost(hist, w) == pytest.approx(expect, rel=1e-6, abs=1e-6)
        assert expect == pytest.approx(-math.log(wb.prob(tuple(hist[-3:]) + (w,))), rel=1e-4)  # ARPA = interpolated
    # every listed n-gram is found (options at back-off depth 0 has its own probability)
    for gram, p in list(ref[0].items())[::7]:
        if gram[-1] == "<s>":
            continue
        opts = const.options(gram[:-1], gram[-1])
        assert opts[0][1] == pytest.approx(p, rel=1e-6, abs=1e-6) and opts[0][0] == gram[-3:]


def test_bad_files_are_named(tmp_path):
    good = "\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1.0 <s> -0.5\n-0.5 A -0.3\n-0.7 </s>\n\n" \
           "\\2-grams:\n-0.2 <s> A\n\n\\end\\\n"
    (tmp_path / "ok.arpa").write_text(good)
    assert ArpaLM(tmp_path / "ok.arpa").cost(["<s>"], "A") == pytest.approx(0.2 * math.log(10))
    (tmp_path / "oov.arpa").write_text(good.replace("-0.2 <s> A", "-0.2 <s> B"))
    with pytest.raises(ArpaFormatError, match="oov.arpa: word 'B' of a 2-gram .near line 11. is not a unigram"):
        ArpaLM(tmp_path / "oov.arpa")
    (tmp_path / "count.arpa").write_text(good.replace("ngram 2=1", "ngram 2=2"))
    with pytest.raises(ArpaFormatError, match="count.arpa.*ngram 2=2"):
        ArpaLM(tmp_path / "count.arpa")
    three = good.replace("ngram 2=1\n", "ngram 2=1\nngram 3=1\n").replace(
        "\\end\\", "\\3-grams:\n-0.1 A A </s>\n\n\\end\\")
    (tmp_path / "prefix.arpa").write_text(three)
    with pytest.raises(ArpaFormatError, match="prefix.arpa: the 3-gram '-0.1 A A </s>' has no 2-gram prefix"):
        ArpaLM(tmp_path / "prefix.arpa")
    (tmp_path / "half").mkdir()
    with pytest.raises(ArpaFormatError, match="half.*no meta.json"):
        ArpaLM(tmp_path / "half")
    with pytest.raises(ValueError, match="'Z'.*not in the LM's vocabulary"):
        ArpaLM(tmp_path / "ok.arpa").cost(["<s>"], "Z")


def test_const_arpa_cli_writes_a_directory_rescoring_reads(four_gram, tmp_path):
    from click.testing import CliRunner

    from asrdistill.cli import cli

    path, _, vocab = four_gram
    r = CliRunner().invoke(cli, ["decode", "const-arpa", "--arpa", str(path), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    lm, const = ArpaLM(path), ArpaLM(tmp_path / "c")
    assert const.words == lm.words and const.order == 4
    assert const.options(("<s>", vocab[0]), vocab[1]) == lm.options(("<s>", vocab[0]), vocab[1])
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nnot-a-number A\n\n\\end\\\n")
    r = CliRunner().invoke(cli, ["decode", "const-arpa", "--arpa", str(tmp_path / "bad.arpa"), "--out", str(tmp_path / "d")])
    assert r.exit_code != 0 and "bad.arpa" in r.output and "malformed number" in r.output
    assert not (tmp_path / "d" / "meta.json").exists()
