"""N-gram language models with interpolated Witten-Bell smoothing, written as ARPA.

For a history ``h`` seen ``c(h)`` times followed by ``T(h)`` distinct words,

    P(w | h) = (c(h, w) + T(h) P(w | h')) / (c(h) + T(h))

where ``h'`` drops the oldest word; unigrams interpolate with the uniform distribution
over the vocabulary (so every vocabulary word, seen or not, has a probability). The
ARPA file stores these interpolated probabilities for seen n-grams and back-off weights

    alpha(h) = (1 - sum_{w seen after h} P(w | h)) / (1 - sum_{w seen after h} P(w | h'))

so the back-off model equals the interpolated one (as SRILM writes ``-wbdiscount
-interpolate`` models). ``<s>`` has no probability of its own (log10 -99).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from ..utils.atomic import atomic_write_text

BOS, EOS = "<s>", "</s>"


class WittenBellLM:
    """Interpolated Witten-Bell n-gram model estimated from tokenized sentences.

    Args:
        sentences: word sequences (without ``<s>``/``</s>``).
        order: n-gram order (>= 1).
        vocabulary: words that get probability mass even if unseen (default: the seen words).
    """

    def __init__(self, sentences: Iterable[Sequence[str]], order: int = 2, vocabulary: Iterable[str] = ()):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order = order
        self.counts: List[Counter] = [Counter() for _ in range(order + 1)]  # counts[k][(w1..wk)]
        for s in sentences:
            words = [BOS] + list(s) + [EOS]
            for i in range(1, len(words)):  # predicted word at position i (never <s>)
                for k in range(1, order + 1):
                    if i - k + 1 < 0:
                        break
                    self.counts[k][tuple(words[i - k + 1 : i + 1])] += 1
        self.vocab = sorted((set(vocabulary) | {g[0] for g in self.counts[1]} | {EOS}) - {BOS})
        self._prob_cache: Dict[Tuple[str, ...], float] = {}
        # history statistics per order: c(h) and T(h)
        self.hist_count: List[Counter] = [Counter() for _ in range(order + 1)]
        self.hist_types: List[Counter] = [Counter() for _ in range(order + 1)]
        self.followers: Dict[Tuple[str, ...], List[Tuple[str, ...]]] = defaultdict(list)
        for k in range(2, order + 1):
            for g, c in self.counts[k].items():
                self.hist_count[k][g[:-1]] += c
                self.hist_types[k][g[:-1]] += 1
                self.followers[g[:-1]].append(g)
        self.total1 = sum(self.counts[1].values())
        self.types1 = len(self.counts[1])

    def prob(self, ngram: Tuple[str, ...]) -> float:
        """Interpolated ``P(w | h)`` of ``ngram = (*h, w)`` (history truncated to the order)."""
        ngram = tuple(ngram[-self.order :])
        if ngram in self._prob_cache:
            return self._prob_cache[ngram]
        if len(ngram) == 1:
            p = (self.counts[1][ngram] + self.types1 / len(self.vocab)) / (self.total1 + self.types1)
        else:
            h = ngram[:-1]
            k = len(ngram)
            lower = self.prob(ngram[1:])
            ch = self.hist_count[k][h]
            if ch == 0:
                p = lower
            else:
                th = self.hist_types[k][h]
                p = (self.counts[k][ngram] + th * lower) / (ch + th)
        self._prob_cache[ngram] = p
        return p

    def backoff(self, history: Tuple[str, ...]) -> float:
        """Back-off weight ``alpha(history)`` (1 for histories never seen)."""
        followers = self.followers.get(tuple(history))
        if not followers:
            return 1.0
        num = 1.0 - sum(self.prob(g) for g in followers)
        den = 1.0 - sum(self.prob(g[1:]) for g in followers)
        return max(num, 1e-12) / max(den, 1e-12)

    def log10_prob_sentence(self, words: Sequence[str]) -> float:
        seq = [BOS] + list(words) + [EOS]
        return sum(math.log10(self.prob(tuple(seq[max(0, i - self.order + 1) : i + 1]))) for i in range(1, len(seq)))

    def to_arpa(self) -> str:
        # n-grams to write: all seen n-grams of each order; unigrams: the whole vocabulary and <s>
        grams: List[List[Tuple[str, ...]]] = [[] for _ in range(self.order + 1)]
        grams[1] = [(BOS,)] + [(w,) for w in self.vocab]
        for k in range(2, self.order + 1):
            grams[k] = sorted(self.counts[k])
        lines = ["\\data\\"] + [f"ngram {k}={len(grams[k])}" for k in range(1, self.order + 1)] + [""]
        for k in range(1, self.order + 1):
            lines.append(f"\\{k}-grams:")
            for g in grams[k]:
                lp = -99.0 if g == (BOS,) else math.log10(self.prob(g))
                b = math.log10(self.backoff(g)) if k < self.order and g in self.followers else None
                lines.append(f"{lp:.6f}\t{' '.join(g)}" + (f"\t{b:.6f}" if b is not None else ""))
            lines.append("")
        lines.append("\\end\\")
        return "\n".join(lines) + "\n"

    def write_arpa(self, path) -> None:
        atomic_write_text(Path(path), self.to_arpa())
