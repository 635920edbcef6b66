"""Decoding a split in parallel worker processes, and tuning the acoustic scale on dev.

Each worker (:class:`DecodingPool`: forked, one per job) loads the graph and the acoustic
model once and serves every split of the call (dev, then test), taking tasks of cuts,
longest first.
Acoustic scores are computed once per utterance (for all members of a network at once
when each member is decoded as a system of its own) and decoded for every acoustic scale
asked for; the best scale on the dev split is then applied to the test split
(:func:`tune_and_score`). The real-time factor (scoring + search time over audio
duration, one thread per worker) is measured per setting. With ``score_device`` set, the
main process scores instead, batched over utterances on a GPU or with all CPU threads, and
the workers only search (:mod:`.batch_scoring`).
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from ..features.cmvn_policy import CMVN_HELP
from ..utils.atomic import atomic_write_text
from ..utils.config import command_line, save_config
from ..utils.readers import read_cuts, reading
from .batch_scoring import (MainProcessScorer, cuts_from_dicts, frame_bounded_tasks, pipelined_map, resolve_score_device,
                            score_device_field, worker_context)
from .decoder import DecoderConfig, GraphDecoder
from .scoring import write_results

log = logging.getLogger(__name__)


@dataclass
class DecodeConfig(DecoderConfig):
    cmvn: bool = field(default=True, metadata={"help": CMVN_HELP})
    acoustic_scales: Tuple[float, ...] = field(
        default=(0.03, 0.04, 0.05, 0.067, 0.083, 0.1, 0.125),
        metadata={"help": "Acoustic scales to decode with (tuned on dev).", "min_exclusive": 0},
    )
    score_device: str = score_device_field()


def setting_name(split: str, scale: float, config: DecoderConfig) -> str:
    return f"{split}-ac{scale:g}-{config.decoder}-beam{config.beam:g}"


_state: dict = {}


def load_worker_model(scorer_spec: dict, graph_path: str, with_scorer: bool = True):
    """What a decoding worker holds: ``(scorer, transition model, HCLG, pdf of each transition id)``; one torch
    thread per worker. ``with_scorer=False`` (the main process scores): no acoustic model, scorer ``None``."""
    import kaldifst
    import torch

    torch.set_num_threads(1)
    if with_scorer:
        scorer = make_scorer(scorer_spec)
        tm = scorer.tm
    else:
        from .acoustic import load_transition_model

        scorer, (_, tm) = None, load_transition_model(scorer_spec.get("tree_dir") or scorer_spec["model_dir"])
    with reading(graph_path, "decoding graph"):
        graph = kaldifst.StdVectorFst.read(graph_path)
    pdf_of = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]
    return scorer, tm, graph, pdf_of


def _init_worker(scorer_spec: dict, graph_path: str, config: DecodeConfig) -> None:
    scorer, tm, graph, pdf_of = load_worker_model(scorer_spec, graph_path, with_scorer=not config.score_device)
    _state.update(scorer=scorer, decoder=GraphDecoder(graph, tm, config), pdf_of=pdf_of, config=config,
                  keep_tids=bool(scorer_spec.get("keep_tids")))


def make_scorer(spec: dict):
    """The acoustic scorer of ``spec`` (``kind`` gmm, nnet or specialists; ``cmvn``: one path or a list)."""
    if spec["kind"] == "gmm":
        from .acoustic import GmmScorer

        return GmmScorer(spec["model_dir"], spec.get("cmvn"), spec.get("speaker_independent", False), spec.get("fmllr"))
    if spec["kind"] == "nnet":
        from .acoustic import NnetScorer

        return NnetScorer(spec["model_dir"], spec["tree_dir"], spec.get("cmvn"), spec.get("members"),
                          spec.get("combine", "arithmetic"), spec.get("logit_bias"), spec.get("each_member", False))
    if spec["kind"] == "specialists":
        from .acoustic import SpecialistScorer

        return SpecialistScorer(spec["model_dir"], spec["tree_dir"], spec.get("cmvn"), spec.get("top_n", 1))
    raise ValueError(f"unknown acoustic model kind {spec['kind']!r}")


def _decode_shard(task: Tuple[List[dict], List[Tuple[float, ...]]], precomputed: "List[np.ndarray] | None" = None) -> dict:
    """Decode cuts for every system and its acoustic scales; keys ``(system, scale)``. ``precomputed``: the
    cuts' acoustic scores, computed by the main process (else this worker's scorer computes them)."""
    import torch
    from lhotse import CutSet

    cut_dicts, scales = task
    s = _state
    keys = [(m, a) for m, system_scales in enumerate(scales) for a in system_scales]
    out = {"hyps": {k: {} for k in keys}, "failed": {k: [] for k in keys}, "score_time": 0.0,
           "search_time": {k: 0.0 for k in keys}, "audio": 0.0, "tids": {k: {} for k in keys}}
    for i, cut in enumerate(CutSet.from_dicts(cut_dicts)):
        t0 = time.perf_counter()
        ll = torch.from_numpy(precomputed[i]) if precomputed is not None else s["scorer"](cut)
        lls = ll if ll.dim() == 3 else ll[None]  # (systems, T, pdfs)
        out["score_time"] += time.perf_counter() - t0
        out["audio"] += cut.duration
        for m, a in keys:
            t0 = time.perf_counter()
            scores = (a * lls[m][:, s["pdf_of"]]).numpy()
            res = s["decoder"].decode(scores, cut.id)
            out["search_time"][(m, a)] += time.perf_counter() - t0
            out["hyps"][(m, a)][cut.id] = res.words
            if s["keep_tids"]:
                out["tids"][(m, a)][cut.id] = np.asarray(res.tids, dtype=np.int32)
            if not res.reached_final:
                out["failed"][(m, a)].append(cut.id)
    return out


class DecodingPool:
    """Worker processes that each hold the graph and the acoustic model, for one or more splits.

    ``scorer_spec["cmvn"]`` may list the CMVN statistics of every split to be decoded (their
    speakers must not clash), so that one pool decodes dev and test. With ``num_jobs == 1`` the
    work runs in this process. Use as a context manager.
    """

    def __init__(self, scorer_spec: dict, graph_path, config: DecodeConfig, num_jobs: int = 2):
        self.num_jobs = max(1, num_jobs)
        device = resolve_score_device(config.score_device)
        self.main_scorer = MainProcessScorer(scorer_spec, device) if device is not None else None
        args = (scorer_spec, str(graph_path), config)
        self.pool = None
        if self.num_jobs == 1:
            _init_worker(*args)
        else:
            self.pool = ProcessPoolExecutor(self.num_jobs, mp_context=worker_context(device), initializer=_init_worker,
                                            initargs=args)

    def map(self, cut_dicts: List[dict], scales: List[Tuple[float, ...]], tasks_per_job: int = 8) -> List[dict]:
        """Decode ``cut_dicts``, each system ``m`` at ``scales[m]``.

        The cuts go out in their order (longest first balances the load best) in
        ``tasks_per_job`` tasks per worker, so that the workers finish together: a worker
        that is done takes the next task.
        """
        if self.main_scorer is not None:  # scored here in batches of cuts, searched in the workers
            tasks = [(t, scales) for t in frame_bounded_tasks(cut_dicts, self.main_scorer.max_frames)]
            return pipelined_map(self.pool, _decode_shard, tasks, self.main_scorer, 2 * self.num_jobs,
                                 lambda task: cuts_from_dicts(task[0]))
        if self.pool is None:
            return [_decode_shard((cut_dicts, scales))]
        n = max(1, min(self.num_jobs * tasks_per_job, len(cut_dicts)))
        size = -(-len(cut_dicts) // n)
        tasks = [(cut_dicts[i : i + size], scales) for i in range(0, len(cut_dicts), size)]
        return list(self.pool.map(_decode_shard, tasks))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def __enter__(self) -> "DecodingPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_split(scorer_spec: dict, graph_dir, cuts_path, out_dir, split: str, config: DecodeConfig = DecodeConfig(),
                 num_jobs: int = 2, scales_from=None, pool: "DecodingPool | None" = None,
                 best_paths: "Dict[float, Dict[str, np.ndarray]] | None" = None) -> List[Dict[float, dict]]:
    """Decode every cut of ``cuts_path``; writes recogs/errs per setting and ``results.json``.

    With ``scorer_spec["each_member"]`` every selected member of a network directory is decoded
    as a system of its own (one forward pass for all); ``out_dir`` (and ``scales_from``, if
    given) then contain ``{member}``, replaced by each member's index. ``scales_from``: decode
    only the acoustic scale that is best in that (dev) decoding directory. ``pool``: a
    :class:`DecodingPool` of the same spec and graph to use (default: one for this call).
    ``best_paths``: filled with ``{scale: {cut id: best-path transition ids}}`` of the first
    system (needs ``scorer_spec["keep_tids"]``), e.g. for fMLLR from a first pass.
    Returns one ``{scale: result}`` per system.
    """
    from ..data.cuts import cut_text
    from ..lang.lang_dir import _symbols

    graph_dir = Path(graph_dir)
    members = scorer_spec.get("members") or []
    systems = [str(m) for m in members] if scorer_spec.get("each_member") else [""]
    if scorer_spec.get("each_member") and not members:
        raise ValueError("each_member needs the member indices (members)")
    out_dirs = [Path(str(out_dir).format(member=m)) for m in systems]
    if len(set(out_dirs)) != len(out_dirs):
        raise ValueError(f"--out-dir {out_dir} must contain {{member}} to decode each member separately")
    scales = [(float(best_scale(str(scales_from).format(member=m))),) if scales_from else tuple(config.acoustic_scales)
              for m in systems]
    cuts = read_cuts(cuts_path).to_eager()
    id_word = {i: w for w, i in _symbols(graph_dir / "words.txt").items()}
    refs = {c.id: cut_text(c).split() for c in cuts}
    dicts = [c.to_dict() for c in sorted(cuts, key=lambda c: -c.duration)]  # longest first
    if pool is None:
        with DecodingPool(scorer_spec, graph_dir / "HCLG.fst", config, num_jobs) as own:
            parts = own.map(dicts, scales)
    else:
        parts = pool.map(dicts, scales)
    if best_paths is not None:
        for a in scales[0]:
            best_paths[a] = {u: t for p in parts for u, t in p["tids"][(0, a)].items()}
    audio = sum(p["audio"] for p in parts)
    score_time = sum(p["score_time"] for p in parts) / len(systems)  # one forward pass scores all systems
    all_results = []
    for m, system_dir in enumerate(out_dirs):
        system_dir.mkdir(parents=True, exist_ok=True)
        save_config(replace(config, acoustic_scales=scales[m]), system_dir / "config.yaml")
        results = {}
        for a in scales[m]:
            hyps = {u: [id_word[w] for w in ws] for p in parts for u, ws in p["hyps"][(m, a)].items()}
            failed = sorted(u for p in parts for u in p["failed"][(m, a)])
            name = setting_name(split, a, config)
            stats = write_results(system_dir, name, refs, hyps, failed)
            rtf = (score_time + sum(p["search_time"][(m, a)] for p in parts)) / max(audio, 1e-9)
            results[a] = {"name": name, "wer": stats.wer, "line": stats.line(), "ins": stats.ins, "del": stats.dels,
                          "sub": stats.sub, "words": stats.words, "failed": failed, "rtf": rtf}
            log.info("%s%s: %s (RTF %.4f)", f"member {systems[m]} " if systems[m] else "", name, stats.line(), rtf)
        spec = {**scorer_spec, "members": [int(systems[m])]} if systems[m] else scorer_spec
        summary = {"split": split, "graph": str(graph_dir), "acoustic_model": spec, "audio_seconds": audio,
                   "command": command_line(), "results": {str(a): r for a, r in results.items()}}
        atomic_write_text(system_dir / "results.json", json.dumps(summary, indent=1))
        atomic_write_text(system_dir / "wer_summary.tsv", "setting\tWER\tRTF\n" + "".join(
            f"{r['name']}\t{r['wer']:.2f}\t{r['rtf']:.4f}\n" for r in results.values()))
        all_results.append(results)
    return all_results


def best_scale(dev_dir) -> str:
    """The acoustic scale with the lowest WER in a decoding directory (ties: the one nearest 0.1)."""
    path = Path(dev_dir) / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: decode the dev split first")
    dev = json.loads(path.read_text())
    return min(dev["results"], key=lambda a: (dev["results"][a]["wer"], abs(float(a) - 0.1)))


def tune_and_score(dev_dir, test_dir) -> dict:
    """Pick the acoustic scale with the lowest dev WER; report dev and test at that scale."""
    dev = json.loads((Path(dev_dir) / "results.json").read_text())
    test = json.loads((Path(test_dir) / "results.json").read_text())
    best = best_scale(dev_dir)
    if best not in test["results"]:
        raise ValueError(f"acoustic scale {best} (best on dev) was not decoded on {test_dir}")
    out = {"acoustic_scale": float(best), "dev": dev["results"][best], "test": test["results"][best],
           "dev_command": dev["command"], "test_command": test["command"], "command": command_line()}
    atomic_write_text(Path(test_dir) / "best.json", json.dumps(out, indent=1))
    return out
