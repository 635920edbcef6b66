"""Scoring stored lattices over a grid of LM weights and word insertion penalties (Kaldi's ``score.sh``).

For LM weight ``w`` and penalty ``p`` the hypothesis of an utterance is the best path of
its lattice under ``w * (graph + p * num_words) + acoustic`` (Kaldi: ``lattice-scale
--inv-acoustic-scale=w | lattice-add-penalty --word-ins-penalty=p | lattice-best-path``),
i.e. decoding at acoustic scale ``1 / w`` with a penalty, without re-decoding. All
settings and all utterances of a split go through one vectorized shortest-path pass
(:func:`.lattice.best_paths`). Each split's directory gets the ``recogs-*``/``errs-*``
files of :mod:`.scoring` per setting and a ``results.json``; the setting with the lowest
dev WER (ties: the first in grid order, as ``score.sh``'s sort) is applied to the other
splits, whose ``best.json`` has the fields :func:`.runner.tune_and_score` writes
(``acoustic_scale`` is ``1 / w``) plus ``lm_weight`` and ``word_ins_penalty``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Tuple

from ..utils.atomic import atomic_write_text
from ..utils.config import command_line, save_config
from .lattice import Lattices, best_paths
from .scoring import write_results

log = logging.getLogger(__name__)


@dataclass
class LatticeScoringConfig:
    lm_weights: Tuple[float, ...] = field(default=tuple(float(w) for w in range(4, 21)), metadata={
        "help": "LM weights (inverse acoustic scales) to score with.", "min_exclusive": 0})
    word_ins_penalties: Tuple[float, ...] = field(default=(0.0, 0.5, 1.0), metadata={
        "help": "Word insertion penalties (added to each word's graph cost)."})


def setting_name(split: str, w: float, p: float) -> str:
    return f"{split}-ac{1 / w:.4g}-lmwt{w:g}-wip{p:g}-lattice"


def score_split(lat_dir, cuts_path, words_txt, split: str, config: LatticeScoringConfig = LatticeScoringConfig()) -> dict:
    """Score ``lat_dir/lat.npz`` at every setting; writes recogs/errs per setting and ``results.json``.
    Returns ``{(w, p): result}``."""
    from ..data.cuts import cut_text
    from ..lang.lang_dir import _symbols
    from ..utils.readers import read_cuts

    lat_dir = Path(lat_dir)
    lat = Lattices.load(lat_dir / "lat.npz")
    refs = {c.id: cut_text(c).split() for c in read_cuts(cuts_path)}
    missing = sorted(set(refs) - set(lat.ids))
    if missing:
        raise ValueError(f"{lat_dir / 'lat.npz'} has no lattice for {len(missing)} cut(s) of {cuts_path}, e.g. {missing[0]}")
    id_word = {i: w for w, i in _symbols(Path(words_txt)).items()}
    t0 = time.perf_counter()
    _, words = best_paths(lat, config.lm_weights, config.word_ins_penalties)
    sweep = time.perf_counter() - t0
    info_path = lat_dir / "lattices.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    decode_rtf = info.get("score_rtf", 0.0) + info.get("search_rtf", 0.0)
    audio = info.get("audio_seconds", 0.0)
    failed = sorted(u for u, ok in zip(lat.ids, lat.reached_final) if not ok)
    settings = [(w, p) for w in config.lm_weights for p in config.word_ins_penalties]
    results = {}
    for g, (w, p) in enumerate(settings):
        hyps = {u: [id_word[x] for x in ws] for u, ws in zip(lat.ids, words[g])}
        name = setting_name(split, w, p)
        stats = write_results(lat_dir, name, refs, hyps, failed)
        results[(w, p)] = {"name": name, "wer": stats.wer, "line": stats.line(), "ins": stats.ins, "del": stats.dels,
                           "sub": stats.sub, "words": stats.words, "failed": failed, "rtf": decode_rtf,
                           "lm_weight": w, "word_ins_penalty": p}
    summary = {"split": split, "lattices": str(lat_dir / "lat.npz"), "decoding": info.get("command"),
               "acoustic_model": info.get("acoustic_model"), "audio_seconds": audio, "sweep_seconds": sweep,
               "command": command_line(), "results": {r["name"]: r for r in results.values()}}
    atomic_write_text(lat_dir / "results.json", json.dumps(summary, indent=1))
    save_config(config, lat_dir / "scoring_config.yaml")
    log.info("%s: %d settings scored in %.2f s", lat_dir, len(settings), sweep)
    return results


def best_setting(results: Dict[Tuple[float, float], dict]) -> Tuple[float, float]:
    """The setting with the lowest WER (ties: the first in grid order)."""
    return min(results, key=lambda k: results[k]["wer"])


def tune_and_apply(dev_dir, test_dir, dev_results: dict, test_results: dict) -> dict:
    """``test_dir/best.json``: the dev-best setting and its dev and test results."""
    w, p = best_setting(dev_results)
    dev_cmd = json.loads((Path(dev_dir) / "results.json").read_text())["command"]
    out = {"acoustic_scale": 1.0 / w, "lm_weight": w, "word_ins_penalty": p, "dev": dev_results[(w, p)],
           "test": test_results[(w, p)], "dev_command": dev_cmd, "test_command": command_line(), "command": command_line()}
    atomic_write_text(Path(test_dir) / "best.json", json.dumps(out, indent=1))
    return out
