"""GMM-HMM training: Kaldi's ``train_mono.sh``, ``train_deltas.sh``, ``train_lda_mllt.sh``, ``train_sat.sh``.

Monophone: flat start (every pdf one Gaussian with the global mean and variance), equal
alignment, then EM iterations (Viterbi statistics from the current alignment), with
realignment on a schedule and Gaussians added each iteration up to ``total_gauss``.

Triphone: align with the source model, collect tree statistics, build the decision
tree (:mod:`asrdistill.gmm.tree`), convert the alignments to the new tree, initialise
one Gaussian per leaf from the tree statistics, then EM as above.

LDA+MLLT: align with the source model; LDA statistics of the spliced cepstra (``+-4``
frames) with the source model's pdfs as classes and silence frames weighted by
``silence_weight`` (Kaldi: 0); LDA to ``lda_dim`` dimensions (:mod:`asrdistill.gmm.lda`);
a new tree on the LDA features; then EM, where the iterations in ``mllt_iters`` first
estimate an MLLT (semi-tied covariance, :mod:`asrdistill.gmm.mllt`) from the current model,
compose it into the transform and rotate the model's means.

SAT: align with the source (LDA+MLLT) model; per-speaker fMLLR from it
(:mod:`asrdistill.gmm.fmllr`, silence weighted by ``silence_weight``); a new tree on the
adapted features; EM, where the iterations in ``fmllr_iters`` re-estimate every
speaker's transform with the current model; finally the speaker-independent alignment
model (Kaldi's ``final.alimdl``: statistics of the unadapted features under the
adapted features' posteriors) for the first pass of two-pass alignment and decoding.
The training speakers' transforms are written to ``trans_train.npz``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from ..utils.progress import progress as tqdm

from ..utils.atomic import atomic_write_text
from ..utils.config import save_config
from ..utils.readers import read_cuts
from .diag_gmm import DiagGmmSet, GmmStats
from .features import GmmFeatureConfig
from .fmllr import FmllrOptions
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
    mixup_min_count: float = field(default=20.0, metadata={"help": "Fewest frames per Gaussian when mixing up."})
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


@dataclass
class LdaMlltConfig(TriConfig):
    splice_context: int = field(default=4, metadata={"help": "Cepstra spliced over +-N frames before LDA (Kaldi: 4)."})
    lda_dim: int = field(default=40, metadata={"help": "Dimension after LDA."})
    mllt_iters: Tuple[int, ...] = field(default=(2, 4, 6, 12), metadata={"help": "Iterations that start with an MLLT update."})
    silence_weight: float = field(default=0.0, metadata={"help": "Weight of silence frames in the LDA and MLLT statistics."})
    mllt_rand_prune: float = field(
        default=4.0, metadata={"help": "Randomized (unbiased) pruning of small posteriors in the MLLT statistics (Kaldi: 4)."})


@dataclass
class SatConfig(TriConfig):
    fmllr_iters: Tuple[int, ...] = field(default=(2, 4, 6, 12), metadata={"help": "Iterations that start by re-estimating fMLLR."})
    silence_weight: float = field(default=0.0, metadata={"help": "Weight of silence frames in the fMLLR statistics."})
    fmllr_update_iters: int = field(default=40, metadata={"help": "Row-update sweeps of one fMLLR estimation."})
    fmllr_min_count: float = field(default=500.0, metadata={"help": "Speakers with fewer frames keep the identity transform."})


def _add_all(parts):
    """The sum of statistics objects with an in-place ``add_`` (one per shard)."""
    total = parts[0]
    for p in parts[1:]:
        total.add_(p)
    return total


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
        start_gauss: int, write, hook=None) -> Tuple[object, DiagGmmSet]:
    """EM iterations; ``hook(it, gmm) -> (gmm, var_floor or None)`` runs after any realignment
    (MLLT or fMLLR updates change the features there)."""
    import kaldi_hmm_gmm as khg

    inc = max(0, (config.total_gauss - start_gauss) // max(1, config.max_iter_inc))
    target = start_gauss
    for it in tqdm(range(first_iter, config.num_iters), desc="EM", unit="iter"):
        if it in config.realign_iters:
            pool.call("set_transitions", tm)
            rep = _report(pool.call("align", gmm.state_dict(), config))
            write(f"iter {it}: realigned {rep.aligned} utterances, {len(rep.failed)} failed, "
                  f"acoustic log-like/frame {rep.log_like / max(rep.frames, 1):.3f}")
        if hook is not None:
            gmm, new_floor = hook(it, gmm)
            var_floor = var_floor if new_floor is None else new_floor
        stats, counts = _sum_stats(pool.call("accumulate", gmm.state_dict()))
        impr, n = tm.mle_update(counts, khg.MleTransitionUpdateConfig())
        info = gmm.update(stats, config.min_gaussian_occupancy, config.min_gaussian_weight, var_floor)
        target = min(config.total_gauss, target + inc) if it < config.max_iter_inc else target
        total = gmm.mix_up(stats.pdf_occupancy(), target, config.power, config.mixup_min_count, config.perturb)
        write(f"iter {it}: log-like/frame {stats.log_like / max(stats.frames, 1):.4f} over {stats.frames} frames, "
              f"{total} Gaussians, {info['pdfs_without_data']} pdfs without data")
    pool.call("set_transitions", tm)
    return tm, gmm


def _setup(exp_dir, config, cuts_path, cut_ids):
    """Output directory, saved config, log, and the utterances to train on."""
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, exp_dir / "config.yaml")
    ids = list(cut_ids) if cut_ids is not None else [c.id for c in read_cuts(cuts_path)]
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
    # one set of pdfs per base phone: its word-position variants share them (Kaldi's gmm-init-mono --shared-phones)
    ctx = khg.monophone_context_dependency_shared(phone_classes=lang.phone_sets(),
                                                  phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
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


def _align_with_source(pool: ShardPool, src: GmmModel, src_dir, config: AlignOptions, write,
                       allow_sat: bool = False) -> None:
    """Load the source system into the shards (front end, graphs) and align with it (a SAT source,
    where allowed: two passes, leaving its fMLLR transforms on the shards' features)."""
    if src.is_sat and not allow_sat:
        raise ValueError(f"{src_dir} is a SAT system; train from a speaker-independent system (deltas or LDA+MLLT)")
    if src.transform is not None:
        pool.call("set_front_end", src.feature_config, src.transform)
    pool.call("set_model", src.ctx_bytes, src.tm)
    if src.is_sat:
        trans, impr, _ = two_pass_fmllr(pool, src, config, src.fmllr_opts)
        write(f"{src_dir} is a SAT system: speaker-independent alignment, fMLLR for {len(trans)} speakers "
              f"(auxf +{impr:.4f} per frame), then:")
    rep = _report(pool.call("align", src.gmm.state_dict(), config))
    write(f"aligned with {src_dir}: {rep.aligned} utterances, {len(rep.failed)} failed {rep.failed[:10]}")


def two_pass_fmllr(pool: ShardPool, model: GmmModel, opts: AlignOptions, fmllr: FmllrOptions):
    """First pass of a SAT system (Kaldi's ``align_fmllr.sh``): align with its speaker-independent model,
    estimate every speaker's fMLLR with the SAT model and put it on the shards' features.
    Returns ``(SpeakerTransforms, auxf improvement per frame, frames)``; the caller aligns again."""
    pool.call("set_fmllr", None)
    pool.call("align", model.ali_gmm.state_dict(), opts)
    trans, impr, frames = estimate_speaker_transforms(pool, model.gmm, fmllr)
    pool.call("set_fmllr", dict(trans.items()))
    return trans, impr, frames


def _phone_ids(lang, names: Sequence[str]) -> List[int]:
    """Ids of phone names; a base name stands for all its word-position variants."""
    return lang.phone_ids([n.strip() for n in names if n.strip()], missing_ok=True)


def _build_tree(pool: ShardPool, lang, topo, config: TriConfig, write):
    """Tree statistics of the current features and alignments, the tree, converted alignments and
    one Gaussian per leaf. Returns ``(ctx_bytes, tm, gmm, var_floor)``."""
    import kaldi_hmm_gmm as khg

    n, s, ss, mean, var, var_floor = _global_stats(pool, config.var_floor)
    stats = ContextStats.empty(mean.shape[0])
    for part in pool.call("tree_stats"):
        stats = stats.merge(part)
    groups = [g for g in (_phone_ids(lang, g.split(",")) for g in config.shared_roots) if g]
    grouped = {p for g in groups for p in g}
    groups += [list(r) for r in lang.tree_roots() if len(r) > 1 and not set(r) & grouped]
    ci = sorted(set(_phone_ids(lang, config.ci_phones)) | set(lang.context_independent_phones))
    num_classes = {p: topo.num_pdf_classes(p) for p in lang.phones}
    extra = [list(q) for q in lang.extra_questions()]
    extra += read_questions(config.questions_file, lang.phone_id) if config.questions_file else []
    tree = DecisionTree.build(stats, lang.phones, num_classes, config, groups, extra, ci_phones=ci,
                              phone_sets=lang.phone_sets())
    ctx_bytes = tree.to_kaldi_bytes()
    tm = khg.TransitionModel(ctx_dep=context_dependency_from_bytes(ctx_bytes), hmm_topo=topo)
    silence = set(lang.silence_phones)
    sil_leaves = sum(1 for root in tree.leaf_roots().values() if set(root) <= silence)
    write(f"tree: {tree.num_leaves} leaves ({sil_leaves} silence, {tree.num_leaves - sil_leaves} speech) from "
          f"{len(stats.count)} seen contexts ({int(stats.count.sum())} frames); context-independent phones "
          f"{[lang.id_phone[p] for p in ci]}")
    pool.call("convert", ctx_bytes, tm)
    leaves = torch.from_numpy(tree.leaves(stats.keys))
    count = torch.zeros(tree.num_leaves, dtype=torch.float64).index_add_(0, leaves, torch.from_numpy(stats.count))
    x = torch.zeros(tree.num_leaves, mean.shape[0], dtype=torch.float64).index_add_(0, leaves, torch.from_numpy(stats.x))
    x2 = torch.zeros_like(x).index_add_(0, leaves, torch.from_numpy(stats.x2))
    empty = count == 0
    count[empty], x[empty], x2[empty] = n, s, ss  # leaves without data start from the global Gaussian
    gmm = DiagGmmSet.from_stats(count, x, x2, var_floor)
    return ctx_bytes, tm, gmm, var_floor


def _start(exp_dir, config, cuts_path, cut_ids, lang_dir, src_dir):
    from ..lang.lang_dir import LangDir

    exp_dir, write, ids = _setup(exp_dir, config, cuts_path, cut_ids)
    lang = LangDir(lang_dir)
    return exp_dir, write, ids, lang, lang.topology(), GmmModel.load(src_dir)


def train_tri(cuts_path, cmvn_path, lang_dir, src_dir, exp_dir, config: TriConfig = TriConfig(), num_jobs: int = 2,
              cut_ids: Optional[Sequence[str]] = None) -> GmmModel:
    """Train a triphone system with a decision tree built from ``src_dir``'s alignments (same front end)."""
    exp_dir, write, ids, lang, topo, src = _start(exp_dir, config, cuts_path, cut_ids, lang_dir, src_dir)
    t0 = time.time()
    with ShardPool(make_shards(cuts_path, ids, num_jobs, cmvn_path, lang_dir, src.feature_config)) as pool:
        _align_with_source(pool, src, src_dir, config, write)
        ctx_bytes, tm, gmm, var_floor = _build_tree(pool, lang, topo, config, write)
        tm, gmm = _em(pool, tm, gmm, config, var_floor, 0, gmm.num_pdfs, write)
    model = GmmModel(ctx_bytes, tm, gmm, src.feature_config, str(Path(lang_dir).resolve()), src.transform)
    model.save(exp_dir)
    write(f"done in {time.time() - t0:.1f} s")
    return model


def train_lda_mllt(cuts_path, cmvn_path, lang_dir, src_dir, exp_dir, config: LdaMlltConfig = LdaMlltConfig(),
                   num_jobs: int = 2, cut_ids: Optional[Sequence[str]] = None) -> GmmModel:
    """Train an LDA+MLLT triphone system from ``src_dir``'s alignments (Kaldi's ``train_lda_mllt.sh``)."""
    from .lda import compose_affine, estimate_lda
    from .mllt import estimate_mllt, transform_gmm_means

    exp_dir, write, ids, lang, topo, src = _start(exp_dir, config, cuts_path, cut_ids, lang_dir, src_dir)
    t0 = time.time()
    feature_config = replace(src.feature_config, splice_context=config.splice_context)
    with ShardPool(make_shards(cuts_path, ids, num_jobs, cmvn_path, lang_dir, src.feature_config)) as pool:
        _align_with_source(pool, src, src_dir, config, write)
        lda_stats = _add_all(pool.call("lda_stats", feature_config, src.num_pdfs, config.silence_weight))
        transform = estimate_lda(lda_stats, config.lda_dim)
        write(f"LDA: {lda_stats.dim} -> {config.lda_dim} dims from {src.num_pdfs} classes, "
              f"{float(lda_stats.count.sum()):.0f} frames (silence weight {config.silence_weight:g})")
        pool.call("set_front_end", feature_config, transform)
        ctx_bytes, tm, gmm, var_floor = _build_tree(pool, lang, topo, config, write)
        current = {"transform": transform}

        def mllt(it, gmm):
            if it not in config.mllt_iters:
                return gmm, None
            st = _add_all(pool.call("mllt_stats", gmm.state_dict(), config.silence_weight, config.mllt_rand_prune, it))
            a, impr = estimate_mllt(st)
            current["transform"] = compose_affine(a, current["transform"])
            pool.call("set_front_end", feature_config, current["transform"])
            write(f"iter {it}: MLLT, objective +{impr / max(st.beta, 1e-10):.4f} per frame over {st.beta:.0f} frames")
            return transform_gmm_means(gmm, a), _global_stats(pool, config.var_floor)[-1]

        tm, gmm = _em(pool, tm, gmm, config, var_floor, 0, gmm.num_pdfs, write, hook=mllt)
    model = GmmModel(ctx_bytes, tm, gmm, feature_config, str(Path(lang_dir).resolve()), current["transform"])
    model.save(exp_dir)
    write(f"done in {time.time() - t0:.1f} s")
    return model


def estimate_speaker_transforms(pool: ShardPool, gmm: DiagGmmSet, options: FmllrOptions, init=None):
    """Per-speaker fMLLR of the shards' speaker-independent features under ``gmm`` and the
    current alignments (speakers split over shards are summed). Returns
    ``(SpeakerTransforms, mean auxf improvement per frame, frames)``."""
    from .fmllr import estimate_transforms

    merged = {}
    for part in pool.call("fmllr_stats", gmm.state_dict(), options.silence_weight):
        for spk, st in part.items():
            if spk in merged:
                merged[spk].add_(st)
            else:
                merged[spk] = st
    return estimate_transforms(merged, options, init)


def train_sat(cuts_path, cmvn_path, lang_dir, src_dir, exp_dir, config: SatConfig = SatConfig(), num_jobs: int = 2,
              cut_ids: Optional[Sequence[str]] = None) -> GmmModel:
    """Speaker adaptive training on ``src_dir``'s front end and alignments (Kaldi's ``train_sat.sh``;
    a SAT source aligns in two passes, as Kaldi's ``align_fmllr.sh`` before tri4b)."""
    exp_dir, write, ids, lang, topo, src = _start(exp_dir, config, cuts_path, cut_ids, lang_dir, src_dir)
    t0 = time.time()
    fmllr_options = FmllrOptions(config.silence_weight, config.fmllr_update_iters, config.fmllr_min_count)
    with ShardPool(make_shards(cuts_path, ids, num_jobs, cmvn_path, lang_dir, src.feature_config)) as pool:
        _align_with_source(pool, src, src_dir, config, write, allow_sat=True)
        trans, impr, frames = estimate_speaker_transforms(pool, src.gmm, fmllr_options)
        write(f"fMLLR from {src_dir}: {len(trans)} speakers, auxf +{impr:.4f} per frame over {frames:.0f} frames")
        pool.call("set_fmllr", dict(trans.items()))
        ctx_bytes, tm, gmm, var_floor = _build_tree(pool, lang, topo, config, write)
        current = {"trans": trans}

        def fmllr(it, gmm):
            if it not in config.fmllr_iters:
                return gmm, None
            trans, impr, frames = estimate_speaker_transforms(pool, gmm, fmllr_options, init=current["trans"])
            current["trans"] = trans
            pool.call("set_fmllr", dict(trans.items()))
            write(f"iter {it}: fMLLR re-estimated for {len(trans)} speakers, auxf +{impr:.4f} per frame")
            return gmm, None

        tm, gmm = _em(pool, tm, gmm, config, var_floor, 0, gmm.num_pdfs, write, hook=fmllr)
        # the speaker-independent alignment model: unadapted features, adapted posteriors, same Gaussians
        total = _add_all(pool.call("accumulate_two_feats", gmm.state_dict()))
        ali_gmm = DiagGmmSet.from_state_dict(gmm.state_dict())
        si_floor = _si_var_floor(pool, config.var_floor)
        ali_gmm.update(total, config.min_gaussian_occupancy, 0.0, si_floor)
        write(f"alignment model: log-like/frame {total.log_like / max(total.frames, 1):.4f} (adapted posteriors)")
    model = GmmModel(ctx_bytes, tm, gmm, src.feature_config, str(Path(lang_dir).resolve()), src.transform, ali_gmm,
                     fmllr_options)
    model.save(exp_dir)
    current["trans"].save(exp_dir / "trans_train.npz")
    write(f"done in {time.time() - t0:.1f} s")
    return model


def _si_var_floor(pool: ShardPool, var_floor: float) -> torch.Tensor:
    """The variance floor of the speaker-independent features."""
    n, s, ss = [sum(x) for x in zip(*pool.call("feature_stats", True))]
    mean = s / n
    return var_floor * (ss / n - mean * mean)
