"""Decoding a split in parallel worker processes, and tuning the acoustic scale on dev.

Each worker loads the graph and the acoustic model once and decodes its shard of cuts.
Acoustic scores are computed once per utterance and decoded for every acoustic scale
asked for; the best scale on the dev split is then applied to the test split
(:func:`tune_and_score`). The real-time factor (scoring + search time over audio
duration, one thread per worker) is measured per setting.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import multiprocessing as mp
import numpy as np

from ..utils.atomic import atomic_write_text
from ..utils.config import command_line, save_config
from .decoder import DecoderConfig, GraphDecoder
from .scoring import WerStats, write_results

log = logging.getLogger(__name__)


@dataclass
class DecodeConfig(DecoderConfig):
    acoustic_scales: Tuple[float, ...] = field(
        default=(0.03, 0.04, 0.05, 0.067, 0.083, 0.1, 0.125), metadata={"help": "Acoustic scales to decode with (tuned on dev)."}
    )


def setting_name(split: str, scale: float, config: DecoderConfig) -> str:
    return f"{split}-ac{scale:g}-{config.decoder}-beam{config.beam:g}"


_state: dict = {}


def _init_worker(scorer_spec: dict, graph_path: str, config: DecodeConfig) -> None:
    import kaldifst
    import torch

    torch.set_num_threads(1)
    scorer = make_scorer(scorer_spec)
    graph = kaldifst.StdVectorFst.read(graph_path)
    pdf_of = np.asarray(scorer.tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]
    _state.update(scorer=scorer, decoder=GraphDecoder(graph, scorer.tm, config), pdf_of=pdf_of, config=config)


def make_scorer(spec: dict):
    if spec["kind"] == "gmm":
        from .acoustic import GmmScorer

        return GmmScorer(spec["model_dir"], spec.get("cmvn"))
    if spec["kind"] == "nnet":
        from .acoustic import NnetScorer

        return NnetScorer(spec["model_dir"], spec["tree_dir"], spec.get("cmvn"), spec.get("members"),
                          spec.get("combine", "arithmetic"))
    raise ValueError(f"unknown acoustic model kind {spec['kind']!r}")


def _decode_shard(cut_dicts: List[dict]) -> dict:
    from lhotse import CutSet

    s = _state
    out = {"hyps": {a: {} for a in s["config"].acoustic_scales}, "failed": {a: [] for a in s["config"].acoustic_scales},
           "score_time": 0.0, "search_time": {a: 0.0 for a in s["config"].acoustic_scales}, "audio": 0.0}
    for cut in CutSet.from_dicts(cut_dicts):
        t0 = time.perf_counter()
        ll = s["scorer"](cut)
        out["score_time"] += time.perf_counter() - t0
        out["audio"] += cut.duration
        for a in s["config"].acoustic_scales:
            t0 = time.perf_counter()
            scores = (a * ll[:, s["pdf_of"]]).numpy()
            res = s["decoder"].decode(scores, cut.id)
            out["search_time"][a] += time.perf_counter() - t0
            out["hyps"][a][cut.id] = res.words
            if not res.reached_final:
                out["failed"][a].append(cut.id)
    return out


def decode_split(scorer_spec: dict, graph_dir, cuts_path, out_dir, split: str, config: DecodeConfig = DecodeConfig(),
                 num_jobs: int = 2) -> Dict[float, dict]:
    """Decode every cut of ``cuts_path``; writes recogs/errs per setting and ``results.json``."""
    from lhotse import CutSet

    from ..data.cuts import cut_text
    from ..lang.lang_dir import _symbols

    graph_dir, out_dir = Path(graph_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, out_dir / "config.yaml")
    cuts = CutSet.from_file(cuts_path).to_eager()
    id_word = {i: w for w, i in _symbols(graph_dir / "words.txt").items()}
    refs = {c.id: cut_text(c).split() for c in cuts}
    dicts = [c.to_dict() for c in cuts]
    n = max(1, min(num_jobs, len(dicts)))
    shards = [dicts[j::n] for j in range(n)]
    args = (scorer_spec, str(graph_dir / "HCLG.fst"), config)
    if n == 1:
        _init_worker(*args)
        parts = [_decode_shard(shards[0])]
    else:
        with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=args) as pool:
            parts = list(pool.map(_decode_shard, shards))
    audio = sum(p["audio"] for p in parts)
    score_time = sum(p["score_time"] for p in parts)
    results = {}
    for a in config.acoustic_scales:
        hyps = {u: [id_word[w] for w in ws] for p in parts for u, ws in p["hyps"][a].items()}
        failed = sorted(u for p in parts for u in p["failed"][a])
        name = setting_name(split, a, config)
        stats = write_results(out_dir, name, refs, hyps, failed)
        rtf = (score_time + sum(p["search_time"][a] for p in parts)) / max(audio, 1e-9)
        results[a] = {"name": name, "wer": stats.wer, "line": stats.line(), "ins": stats.ins, "del": stats.dels,
                      "sub": stats.sub, "words": stats.words, "failed": failed, "rtf": rtf}
        log.info("%s: %s (RTF %.4f)", name, stats.line(), rtf)
    summary = {"split": split, "graph": str(graph_dir), "acoustic_model": scorer_spec, "audio_seconds": audio,
               "command": command_line(), "results": {str(a): r for a, r in results.items()}}
    atomic_write_text(out_dir / "results.json", json.dumps(summary, indent=1))
    atomic_write_text(out_dir / "wer_summary.tsv", "setting\tWER\tRTF\n" + "".join(
        f"{r['name']}\t{r['wer']:.2f}\t{r['rtf']:.4f}\n" for r in results.values()))
    return results


def tune_and_score(dev_dir, test_dir) -> dict:
    """Pick the acoustic scale with the lowest dev WER; report dev and test at that scale."""
    dev = json.loads((Path(dev_dir) / "results.json").read_text())
    test = json.loads((Path(test_dir) / "results.json").read_text())
    best = min(dev["results"], key=lambda a: (dev["results"][a]["wer"], abs(float(a) - 0.1)))
    if best not in test["results"]:
        raise ValueError(f"acoustic scale {best} (best on dev) was not decoded on {test_dir}")
    out = {"acoustic_scale": float(best), "dev": dev["results"][best], "test": test["results"][best],
           "dev_command": dev["command"], "test_command": test["command"], "command": command_line()}
    atomic_write_text(Path(test_dir) / "best.json", json.dumps(out, indent=1))
    return out
