"""Monophone and triphone GMM-HMM training (Kaldi's ``train_mono.sh`` / ``train_deltas.sh``).

Monophone: flat start (every pdf one Gaussian with the global mean and variance), equal
alignment, then EM iterations (Viterbi statistics from the current alignment), with
realignment on a schedule and Gaussians added each iteration up to ``total_gauss``.

Triphone: align with the source model, collect tree statistics, build the decision
tree (:mod:`asrdistill.gmm.tree`), convert the alignments to the new tree, initialise
one Gaussian per leaf from the tree statistics, then EM as above.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from ..utils.progress import progress as tqdm

from ..utils.atomic import atomic_write_text
from ..utils.config import save_config
from .diag_gmm import DiagGmmSet, GmmStats
from .features import GmmFeatureConfig
from .model import GmmModel
from .shards import AlignOptions, AlignReport, ShardPool, make_shards
from .tree import (ContextStats, DecisionTree, TreeConfig, context_dependency_from_bytes, context_dependency_to_bytes,
                   read_questions)

log = logging.getLogger(__name__)


@dataclass
class GmmTrainConfig(AlignOptions):
    num_iters: int = field(default=40, metadata={"help": "EM iterations."})
    max_iter_inc: int = field(default=30, metadata={"help": "Add Gaussians until this iteration."})
    total_gauss: int = field(default=1000, metadata={"help": "Target number of Gaussians."})
    realign_iters: Tuple[int, ...] = field(
        default=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38),
        metadata={"help": "Iterations that start with a realignment."},
    )
    power: float = field(default=0.25, metadata={"help": "Occupancy power when allocating Gaussians to pdfs."})
    perturb: float = field(default=0.01, metadata={"help": "Mean perturbation (in standard deviations) when splitting."})
    min_count: float = field(default=20.0, metadata={"help": "Fewest frames per Gaussian when mixing up."})
    min_gaussian_occupancy: float = field(default=3.0, metadata={"help": "Gaussians with fewer frames keep their parameters."})
    min_gaussian_weight: float = field(default=1e-5, metadata={"help": "Gaussians lighter than this are removed."})
    var_floor: float = field(default=0.01, metadata={"help": "Variance floor, relative to the global variance."})
    seed: int = field(default=0, metadata={"help": "Seed of the equal alignment."})


@dataclass
class MonoConfig(GmmFeatureConfig, GmmTrainConfig):
    beam: float = field(default=6.0, metadata={"help": "Alignment beam."})
    retry_beam: float = field(default=24.0, metadata={"help": "Beam of the second try when the first fails."})


@dataclass
class TriConfig(TreeConfig, GmmTrainConfig):
    num_iters: int = field(default=35, metadata={"help": "EM iterations."})
    max_iter_inc: int = field(default=25, metadata={"help": "Add Gaussians until this iteration."})
    total_gauss: int = field(default=3000, metadata={"help": "Target number of Gaussians."})
    realign_iters: Tuple[int, ...] = field(default=(10, 20, 30), metadata={"help": "Iterations that start with a realignment."})


def _sum_stats(results) -> Tuple[GmmStats, np.ndarray]:
    stats, counts = results[0]
    for s, c in results[1:]:
        stats.add_(s)
        counts = counts + c
    return stats, counts


def _report(reports: Sequence[AlignReport]) -> AlignReport:
    total = AlignReport()
    for r in reports:
        total.add(r)
    return total


class _Log:
    def __init__(self, path: Path):
        self.path = path
        self.lines: List[str] = []

    def __call__(self, msg: str) -> None:
        log.info(msg)
        self.lines.append(msg)
        atomic_write_text(self.path, "\n".join(self.lines) + "\n")


def _em(pool: ShardPool, tm, gmm: DiagGmmSet, config: GmmTrainConfig, var_floor: torch.Tensor, first_iter: int,
        start_gauss: int, write) -> Tuple[object, DiagGmmSet]:
    import kaldi_hmm_gmm as khg

    inc = max(0, (config.total_gauss - start_gauss) // max(1, config.max_iter_inc))
    target = start_gauss
    for it in tqdm(range(first_iter, config.num_iters), desc="EM", unit="iter"):
        if it in config.realign_iters:
            pool.call("set_transitions", tm)
            rep = _report(pool.call("align", gmm.state_dict(), config))
            write(f"iter {it}: realigned {rep.aligned} utterances, {len(rep.failed)} failed, "
                  f"acoustic log-like/frame {rep.log_like / max(rep.frames, 1):.3f}")
        stats, counts = _sum_stats(pool.call("accumulate", gmm.state_dict()))
        impr, n = tm.mle_update(counts, khg.MleTransitionUpdateConfig())
        info = gmm.update(stats, config.min_gaussian_occupancy, config.min_gaussian_weight, var_floor)
        target = min(config.total_gauss, target + inc) if it < config.max_iter_inc else target
        total = gmm.mix_up(stats.pdf_occupancy(), target, config.power, config.min_count, config.perturb)
        write(f"iter {it}: log-like/frame {stats.log_like / max(stats.frames, 1):.4f} over {stats.frames} frames, "
              f"{total} Gaussians, {info['pdfs_without_data']} pdfs without data")
    pool.call("set_transitions", tm)
    return tm, gmm


def _setup(exp_dir, config, cuts_path, cut_ids):
    """Output directory, saved config, log, and the utterances to train on."""
    from lhotse import CutSet

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, exp_dir / "config.yaml")
    ids = list(cut_ids) if cut_ids is not None else [c.id for c in CutSet.from_file(cuts_path)]
    return exp_dir, _Log(exp_dir / "log.txt"), ids


def _global_stats(pool: ShardPool, var_floor: float):
    """Frame count, sum, sum of squares of all shards; global mean, variance and the variance floor."""
    n, s, ss = [sum(x) for x in zip(*pool.call("feature_stats"))]
    mean = s / n
    var = ss / n - mean * mean
    return n, s, ss, mean, var, var_floor * var


def train_mono(cuts_path, cmvn_path, lang_dir, exp_dir, config: MonoConfig = MonoConfig(), num_jobs: int = 2,
               cut_ids: Optional[Sequence[str]] = None) -> GmmModel:
    """Train a monophone system on the cuts of ``cuts_path``; writes ``exp_dir``."""
    import kaldi_hmm_gmm as khg

    from ..lang.lang_dir import LangDir

    exp_dir, write, ids = _setup(exp_dir, config, cuts_path, cut_ids)
    t0 = time.time()
    lang = LangDir(lang_dir)
    topo = lang.topology()
    ctx = khg.monophone_context_dependency(phones=topo.phones, phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)
    ctx_bytes = context_dependency_to_bytes(ctx)
    feature_config = GmmFeatureConfig(config.num_ceps, config.cepstral_lifter, config.delta_order, config.delta_window)
    with ShardPool(make_shards(cuts_path, ids, num_jobs, cmvn_path, lang_dir, feature_config)) as pool:
        n, _, _, mean, var, var_floor = _global_stats(pool, config.var_floor)
        gmm = DiagGmmSet.single_gaussian(tm.num_pdfs, mean, var)
        pool.call("set_model", ctx_bytes, tm)
        rep = _report(pool.call("equal_align", config.seed))
        write(f"monophone: {tm.num_pdfs} pdfs, {len(ids)} utterances, {n} frames of dim {mean.shape[0]}; "
              f"equal alignment: {rep.aligned} aligned, {len(rep.failed)} failed {rep.failed[:10]}")
        tm, gmm = _em(pool, tm, gmm, config, var_floor, 0, tm.num_pdfs, write)
    model = GmmModel(ctx_bytes, tm, gmm, feature_config, str(Path(lang_dir).resolve()))
    model.save(exp_dir)
    write(f"done in {time.time() - t0:.1f} s")
    return model


def train_tri(cuts_path, cmvn_path, lang_dir, src_dir, exp_dir, config: TriConfig = TriConfig(), num_jobs: int = 2,
              cut_ids: Optional[Sequence[str]] = None) -> GmmModel:
    """Train a triphone system with a decision tree built from ``src_dir``'s alignments."""
    import kaldi_hmm_gmm as khg

    from ..lang.lang_dir import LangDir

    exp_dir, write, ids = _setup(exp_dir, config, cuts_path, cut_ids)
    t0 = time.time()
    lang = LangDir(lang_dir)
    topo = lang.topology()
    src = GmmModel.load(src_dir)
    groups = [[lang.phone_id[p] for p in g.split(",") if p in lang.phone_id] for g in config.shared_roots]
    groups = [g for g in groups if g]
    with ShardPool(make_shards(cuts_path, ids, num_jobs, cmvn_path, lang_dir, src.feature_config)) as pool:
        n, s, ss, mean, var, var_floor = _global_stats(pool, config.var_floor)
        pool.call("set_model", src.ctx_bytes, src.tm)
        rep = _report(pool.call("align", src.gmm.state_dict(), config))
        write(f"aligned with {src_dir}: {rep.aligned} utterances, {len(rep.failed)} failed {rep.failed[:10]}")
        stats = ContextStats.empty(mean.shape[0])
        for part in pool.call("tree_stats"):
            stats = stats.merge(part)
        num_classes = {p: topo.num_pdf_classes(p) for p in lang.phones}
        extra = read_questions(config.questions_file, lang.phone_id) if config.questions_file else []
        tree = DecisionTree.build(stats, lang.phones, num_classes, config, groups, extra)
        ctx_bytes = tree.to_kaldi_bytes()
        tm = khg.TransitionModel(ctx_dep=context_dependency_from_bytes(ctx_bytes), hmm_topo=topo)
        write(f"tree: {tree.num_leaves} leaves from {len(stats.count)} seen contexts ({int(stats.count.sum())} frames)")
        pool.call("convert", ctx_bytes, tm)
        leaves = torch.from_numpy(tree.leaves(stats.keys))
        count = torch.zeros(tree.num_leaves, dtype=torch.float64).index_add_(0, leaves, torch.from_numpy(stats.count))
        x = torch.zeros(tree.num_leaves, mean.shape[0], dtype=torch.float64).index_add_(0, leaves, torch.from_numpy(stats.x))
        x2 = torch.zeros_like(x).index_add_(0, leaves, torch.from_numpy(stats.x2))
        empty = count == 0
        count[empty], x[empty], x2[empty] = n, s, ss  # leaves without data start from the global Gaussian
        gmm = DiagGmmSet.from_stats(count, x, x2, var_floor)
        tm, gmm = _em(pool, tm, gmm, config, var_floor, 0, tree.num_leaves, write)
    model = GmmModel(ctx_bytes, tm, gmm, src.feature_config, str(Path(lang_dir).resolve()))
    model.save(exp_dir)
    write(f"done in {time.time() - t0:.1f} s")
    return model
