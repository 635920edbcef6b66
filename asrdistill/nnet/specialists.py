"""Specialist models with a dustbin class (Hinton et al., 2015, section 5).

Specialist ``m`` separates the classes of one confusable subset :math:`S_m`
(:mod:`asrdistill.nnet.class_clusters`) and lumps all other classes into a dustbin. All
specialists train together as the members of one :class:`StackedDnn` through the shared
engine (:func:`train_stacked`: checkpoints, resume, early stopping); their output layers
are padded to the largest subset and the padding columns are masked out. Output column
0 is the dustbin, columns ``1..|S_m|`` the subset's classes.

* **Initialization**: every layer but the last is the generalist's; the output rows of a
  subset's classes are the generalist's rows for them, and the dustbin row is the mean
  of the other classes' rows with bias ``mean + log(count)`` (so its logit starts near
  the log of their summed probability).
* **Data**: each step, a fraction ``1 - dustbin_fraction`` of a specialist's batch comes
  from frames of its own classes (its own shuffle of them, epoch by epoch) and the rest
  is drawn uniformly from all other frames (:class:`SpecialistSampler`).
* **Loss**: cross-entropy with the specialist's targets (the class, or the dustbin), plus,
  if ``soft_weight > 0``, the paper's section 6.1 proposal: ``T^2``-scaled cross-entropy
  with the generalist's soft targets collapsed to the specialist's classes and dustbin.
* **Dustbin correction**: training oversamples the subset's classes. With :math:`\\pi` the
  dustbin's share of the natural (training-set) frames and :math:`\\rho` its share of the
  specialist's batches, Bayes' rule gives the natural posterior by adding
  :math:`\\log(\\pi / (1 - \\pi)) - \\log(\\rho / (1 - \\rho))` to the dustbin logit
  (:func:`dustbin_correction`). That is the log of the factor by which the subset's
  classes were oversampled, :math:`\\log((1 - \\rho) / (1 - \\pi))`, the paper's correction,
  plus the log of the factor by which the dustbin was undersampled, :math:`\\log(\\pi / \\rho)`,
  which the paper leaves out (it is small when :math:`\\pi` is near 1, as with thousands of
  classes).

Specialists are independent: ``member_offset`` / ``num_members`` train a slice of them per
process or GPU into the same directory, as for ensembles.

Imports torch only (lhotse to read the alignments).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..losses import soft_cross_entropy
from ..utils.atomic import atomic_write_text
from .class_clusters import ClassClusters
from .configs import SpecialistConfig
from .dnn import FrameDnn
from .ensemble import StackedDnn
from .frame_store import FrameStore
from .trainer import load_members, member_logits, permutation, resolve_device, save_members, train_stacked

log = logging.getLogger(__name__)


def dustbin_correction(natural_fraction: Tensor, train_fraction: float) -> Tensor:
    """Log-odds shift of the dustbin from the training batches' prior to the natural one.

    Args:
        natural_fraction: ``(K,)`` share of the natural frames outside each subset (:math:`\\pi`).
        train_fraction: share of a specialist's batch drawn from outside its subset (:math:`\\rho`).

    Returns:
        ``(K,)`` value to add to each dustbin logit.
    """
    pi = natural_fraction.double().clamp(1e-12, 1 - 1e-12)
    rho = min(max(train_fraction, 1e-12), 1 - 1e-12)
    return (torch.log(pi / (1 - pi)) - math.log(rho / (1 - rho))).float()


def subset_table(clusters: ClassClusters) -> Tuple[Tensor, Tensor]:
    """``classes (K, S)``: class of each subset column (``-1``: padding); ``local (K, C)``: each
    class's output column in each specialist (0 = dustbin)."""
    k, s = len(clusters.subsets), max(len(x) for x in clusters.subsets)
    classes = torch.full((k, s), -1, dtype=torch.long)
    local = torch.zeros(k, clusters.num_classes, dtype=torch.long)
    for m, subset in enumerate(clusters.subsets):
        classes[m, : len(subset)] = torch.tensor(subset)
        local[m, subset] = torch.arange(1, len(subset) + 1)
    return classes, local


def output_mask(classes: Tensor) -> Tensor:
    """``(K, S + 1)`` bool: the real output columns (dustbin and subset classes)."""
    return torch.cat([torch.ones(classes.shape[0], 1, dtype=torch.bool), classes >= 0], 1)


def init_from_generalist(generalist: FrameDnn, classes: Tensor, seeds: List[int]) -> StackedDnn:
    """Specialists (one per row of ``classes``) starting from the generalist's weights."""
    from .dnn import DnnConfig

    cfg = DnnConfig(**{**asdict(generalist.config), "num_outputs": classes.shape[1] + 1})
    nets = []
    w_g, b_g = generalist.layers[-1].weight.detach(), generalist.layers[-1].bias.detach()
    for row in classes:
        net = FrameDnn(cfg)
        with torch.no_grad():
            for src, dst in zip(generalist.layers[:-1], net.layers[:-1]):
                dst.weight.copy_(src.weight)
                dst.bias.copy_(src.bias)
            out = net.layers[-1]
            out.weight.zero_()
            out.bias.zero_()
            cls = row[row >= 0]
            others = torch.ones(w_g.shape[0], dtype=torch.bool)
            others[cls] = False
            out.weight[1 : 1 + len(cls)] = w_g[cls]
            out.bias[1 : 1 + len(cls)] = b_g[cls]
            out.weight[0] = w_g[others].mean(0)
            out.bias[0] = b_g[others].mean() + math.log(int(others.sum()))
        nets.append(net)
    return StackedDnn.from_members(nets, seeds)


class SpecialistSampler:
    """Batches of each specialist: ``B_in`` frames of its own classes, ``B - B_in`` of the others.

    Frames of the subset come in the specialist's own shuffle of them, epoch after epoch
    (a permutation seeded by ``(seed, epoch)``); the others are drawn uniformly, with a
    generator seeded by ``(seed, step)``. Any step's batch can be recomputed after a restart.
    """

    def __init__(self, targets: Tensor, frames: Tensor, membership: Tensor, seeds: List[int], batch_size: int,
                 dustbin_fraction: float):
        self.seeds, self.batch_size = list(seeds), batch_size
        self.b_in = max(1, int(round(batch_size * (1 - dustbin_fraction))))
        inside = membership[:, targets[frames]]  # (K, F)
        self.inside = [frames[row] for row in inside]
        self.outside = [frames[~row] for row in inside]
        for m, (a, o) in enumerate(zip(self.inside, self.outside)):
            if not len(a) or not len(o):
                raise ValueError(f"specialist {m}: no training frames {'of its classes' if not len(a) else 'outside them'}")
        # an epoch: every specialist's own frames once, on average
        mean_inside = sum(len(a) for a in self.inside) / len(self.inside)
        self.steps_per_epoch = max(1, int(mean_inside // self.b_in))
        self._perms: Dict[Tuple[int, int], Tensor] = {}

    def _own(self, m: int, step: int) -> Tensor:
        pool, n = self.inside[m], len(self.inside[m])
        pos = step * self.b_in + torch.arange(self.b_in)
        epochs, at = pos // n, pos % n
        out = torch.empty(self.b_in, dtype=torch.long)
        for e in epochs.unique().tolist():
            key = (m, e)
            if key not in self._perms:
                self._perms = {k: v for k, v in self._perms.items() if k[0] != m or k[1] >= e - 1}
                self._perms[key] = pool[permutation(n, self.seeds[m], e)]
            sel = epochs == e
            out[sel] = self._perms[key][at[sel]]
        return out

    def __call__(self, step: int) -> Tensor:
        rows = []
        for m, seed in enumerate(self.seeds):
            gen = torch.Generator().manual_seed((seed * 1_000_003 + 7919 * step) & 0x7FFFFFFF)
            other = self.outside[m][torch.randint(len(self.outside[m]), (self.batch_size - self.b_in,), generator=gen)]
            rows.append(torch.cat([self._own(m, step), other]))
        return torch.stack(rows)


def _masked(logits: Tensor, mask: Tensor) -> Tensor:
    return logits.masked_fill(~mask[:, None, :].to(logits.device), float("-inf"))


def specialist_loss(mask: Tensor, local: Tensor, soft_weight: float = 0.0, temperature: float = 2.0,
                    generalist_logits=None, classes: Optional[Tensor] = None):
    """Loss function for :func:`train_stacked`: ``(N, B, S + 1)`` logits -> ``(N,)``.

    ``local`` and ``mask`` hold the rows of the specialists being trained;
    ``generalist_logits(frame_index (N, B)) -> (N, B, C)`` and ``classes`` are needed for the
    soft-target term.
    """

    def loss_fn(logits: Tensor, idx: Tensor, y: Tensor) -> Tensor:
        z = _masked(logits, mask)
        tgt = local.to(z.device).gather(1, y)  # (N, B) output column of each frame's class
        n, b, s = z.shape
        loss = F.cross_entropy(z.reshape(n * b, s), tgt.reshape(-1), reduction="none").view(n, b).mean(1)
        if soft_weight:
            p = torch.softmax(generalist_logits(idx) / temperature, -1)  # (N, B, C)
            q = collapse_to_subsets(p, classes.to(p.device))
            loss = loss + soft_weight * temperature ** 2 * soft_cross_entropy(z, q, temperature).nan_to_num().mean(1)
        return loss

    return loss_fn


def collapse_to_subsets(probs: Tensor, classes: Tensor) -> Tensor:
    """``(N, B, C)`` distributions -> ``(N, B, S + 1)``: mass outside subset ``n`` in column 0, the
    subset's classes after it (padding 0)."""
    valid = (classes >= 0)[:, None, :]
    inside = probs.gather(2, classes.clamp(min=0)[:, None, :].expand(-1, probs.shape[1], -1)) * valid
    return torch.cat([(1 - inside.sum(2, keepdim=True)).clamp(min=0), inside], 2)


@torch.no_grad()
def balanced_accuracy(model: StackedDnn, store: FrameStore, mask: Tensor, local: Tensor, device, bf16: bool = True,
                      chunk: int = 8192) -> Dict[str, object]:
    """Per specialist: the mean of its accuracy on frames of its classes and on all other frames
    (the dustbin), i.e. accuracy under its training distribution (half and half)."""
    model.eval()
    n = model.num_members
    hits = torch.zeros(n, 2, dtype=torch.float64)
    counts = torch.zeros(n, 2, dtype=torch.float64)
    cfg = model.config
    for s in range(0, store.num_frames, chunk):
        frames = torch.arange(s, min(s + chunk, store.num_frames), device=store.device)
        z = _masked(member_logits(model, store, frames, cfg.left_context, cfg.right_context, device, bf16), mask)
        y = local[:, store.target_of(frames, "cpu")].to(z.device)  # (N, B)
        own = (y > 0).cpu()
        ok = (z.argmax(-1) == y).cpu()
        hits[:, 0] += (ok & own).sum(1)
        hits[:, 1] += (ok & ~own).sum(1)
        counts[:, 0] += own.sum(1)
        counts[:, 1] += (~own).sum(1)
    model.train()
    acc = (hits / counts.clamp(min=1)).mean(1)
    return {"members": acc.tolist(), "mean_member": float(acc.mean())}


def train_specialists(generalist_dir, clusters_path, ali_dir, feature_dir, prefix: str, exp_dir,
                      config: SpecialistConfig, overwrite: bool = False) -> Dict[str, object]:
    """Train (a slice of) the specialists of ``clusters_path`` into ``exp_dir``.

    Writes ``member{m}.pt`` per specialist ``m``, ``specialists.json`` (subsets, dustbin
    corrections, generalist), ``config.yaml`` and the usual checkpoint and scalars. A folder
    holding a run with other settings is refused unless ``overwrite`` (:func:`start_experiment`).
    """
    from .ensemble_training import is_main_process, load_split, start_experiment

    exp_dir = Path(exp_dir)
    device = resolve_device(config.device)
    clusters = ClassClusters.load(clusters_path)
    k_all = len(clusters.subsets)
    count = config.num_members or k_all - config.member_offset
    if not 0 <= config.member_offset < k_all or config.member_offset + count > k_all:
        raise ValueError(f"{clusters_path} has {k_all} subsets; cannot train {count} from {config.member_offset}")
    config = SpecialistConfig(**{**asdict(config), "num_members": count})
    rows = slice(config.member_offset, config.member_offset + count)
    generalist = load_members(generalist_dir).member(config.generalist_member)
    train = load_split(ali_dir, feature_dir, prefix, config.train_split, config.cmvn)
    dev = load_split(ali_dir, feature_dir, prefix, "dev", config.cmvn)
    if train.num_classes != clusters.num_classes or generalist.config.num_outputs != clusters.num_classes:
        raise ValueError(f"{clusters_path}: {clusters.num_classes} classes, but the alignments have {train.num_classes} "
                         f"and the generalist {generalist.config.num_outputs}")
    classes_all, local_all = subset_table(clusters)
    classes, local = classes_all[rows], local_all[rows]  # padded to the largest subset: slices load together
    mask = output_mask(classes)
    membership = clusters.membership()[rows]
    start_experiment(exp_dir, overwrite, specialists=config)
    model = init_from_generalist(generalist, classes, config.seeds)
    sampler = SpecialistSampler(train.targets, train.trainable(), membership, config.seeds, config.batch_size,
                                config.dustbin_fraction)
    gen_stack = StackedDnn.from_members([generalist]).to(device).eval() if config.soft_weight else None

    def gen_logits(idx):
        """The generalist's logits for the frames of a step (the soft-target term)."""
        cfg = generalist.config
        flat = member_logits(gen_stack, train, idx.reshape(-1), cfg.left_context, cfg.right_context, device, config.bf16)
        return flat[0].view(*idx.shape, -1)

    loss_fn = specialist_loss(mask, local, config.soft_weight, config.temperature, gen_logits, classes)
    result = train_stacked(model, train, dev, config, exp_dir, loss_fn, sampler=sampler,
                           evaluate_fn=lambda mdl, st: balanced_accuracy(mdl, st, mask, local, device, config.bf16))
    if is_main_process():
        save_members(model, exp_dir, config)
        natural = 1 - membership[:, train.targets].double().mean(1)
        write_specialist_info(exp_dir, clusters_path, generalist_dir, config, clusters, natural)
    return result


def write_specialist_info(exp_dir: Path, clusters_path, generalist_dir, config: SpecialistConfig, clusters: ClassClusters,
                          natural: Tensor) -> None:
    """``specialists.json``: one entry per trained specialist, merged with entries written by other slices."""
    path = exp_dir / "specialists.json"
    info = json.loads(path.read_text()) if path.exists() else {"specialists": {}}
    info.update(clusters=str(clusters_path), generalist_dir=str(generalist_dir),
                generalist_member=config.generalist_member, num_classes=clusters.num_classes,
                dustbin_fraction=config.dustbin_fraction)
    corr = dustbin_correction(natural, config.dustbin_fraction)
    for k in range(config.num_members):
        m = config.member_offset + k
        info["specialists"][str(m)] = {"classes": clusters.subsets[m], "natural_dustbin_fraction": float(natural[k]),
                                       "dustbin_correction": float(corr[k])}
    atomic_write_text(path, json.dumps(info, indent=1))


class SpecialistSystem:
    """A generalist and its trained specialists, combined per frame (:func:`combine_with_specialists`).

    Args:
        exp_dir: directory of the specialists (``member*.pt``, ``specialists.json``).
        top_n: a specialist takes part when one of the generalist's ``top_n`` classes is in its subset.
        solver, max_steps: of :func:`~asrdistill.nnet.specialist_combination.combine_with_specialists`.

    Shape (``log_probs``): ``(B, input_dim)`` windows -> ``(B, C)`` generalist and combined log-probabilities.
    """

    def __init__(self, exp_dir, top_n: int = 1, solver: str = "em", max_steps: int = 200):
        info = json.loads((Path(exp_dir) / "specialists.json").read_text())
        self.generalist_dir = Path(info["generalist_dir"])  # its log_priors.pt serve decoding
        self.generalist = load_members(info["generalist_dir"]).member(info["generalist_member"]).eval()
        specs = load_members(exp_dir)
        order = sorted(int(m) for m in info["specialists"])
        if len(order) != specs.num_members:
            raise ValueError(f"{exp_dir}: {specs.num_members} member files but {len(order)} specialists in specialists.json")
        self.specialists = specs.eval()
        subsets = [info["specialists"][str(m)]["classes"] for m in order]
        self.clusters = ClassClusters(subsets, info["num_classes"])
        self.classes, _ = subset_table(self.clusters)
        if self.classes.shape[1] + 1 != specs.config.num_outputs:
            raise ValueError(f"{exp_dir}: the specialists have {specs.config.num_outputs} outputs, their subsets "
                             f"need {self.classes.shape[1] + 1}")
        self.mask = output_mask(self.classes)
        self.correction = torch.tensor([info["specialists"][str(m)]["dustbin_correction"] for m in order])
        self.membership = self.clusters.membership()
        self.top_n, self.solver, self.max_steps = top_n, solver, max_steps

    @property
    def config(self):
        return self.generalist.config

    @torch.no_grad()
    def specialist_log_probs(self, x: Tensor) -> Tensor:
        """``(B, K, S + 1)`` corrected log-probabilities of every specialist (dustbin first)."""
        z = _masked(self.specialists(x), self.mask)  # (K, B, S + 1)
        z[:, :, 0] += self.correction[:, None].to(z.device)
        return torch.log_softmax(z, -1).transpose(0, 1)

    @torch.no_grad()
    def log_probs(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``(generalist log p, combined log q, active (B, K))`` for windows ``x``."""
        from .specialist_combination import active_specialists, combine_with_specialists

        log_pg = torch.log_softmax(self.generalist(x), -1)
        active = active_specialists(log_pg, self.membership.to(x.device), self.top_n)
        log_q = combine_with_specialists(log_pg, self.specialist_log_probs(x), self.classes.to(x.device), active,
                                         self.solver, self.max_steps)
        return log_pg, log_q, active


@torch.no_grad()
def evaluate_specialists(exp_dir, ali_dir, feature_dir, prefix: str, splits=("dev", "test"), top_n: int = 1,
                         solver: str = "em", chunk: int = 4096) -> Dict[str, object]:
    """Frame accuracy of the generalist alone and combined with the specialists, per split.

    Also the conditional accuracy (frames whose correct class is in at least one
    specialist's subset) and the paper's Table 4: frames grouped by how many specialists
    cover their correct class, with the change in correctly classified frames. Written to
    ``exp_dir/specialist_accuracy.json``.
    """
    from ..utils.config import command_line
    from .ensemble_training import load_split_for

    system = SpecialistSystem(exp_dir, top_n, solver)
    cfg = system.config
    coverage = system.membership.sum(0)  # (C,)
    out: Dict[str, object] = {"top_n": top_n, "solver": solver, "specialists": system.membership.shape[0],
                              "command": command_line()}
    for split in splits:
        store = load_split_for(exp_dir, ali_dir, feature_dir, prefix, split)
        before, after, n_active = [], [], 0
        for s in range(0, store.num_frames, chunk):
            frames = torch.arange(s, min(s + chunk, store.num_frames))
            log_pg, log_q, active = system.log_probs(store.windows(frames, cfg.left_context, cfg.right_context))
            before.append(log_pg.argmax(1))
            after.append(log_q.argmax(1))
            n_active += int(active.any(1).sum())
        y = store.targets
        ok_b, ok_a = torch.cat(before) == y, torch.cat(after) == y
        cov = coverage[y]
        table = []
        for c in range(int(cov.max()) + 1):
            sel = cov == c
            if int(sel.sum()) == 0:
                continue
            nb, na = int(ok_b[sel].sum()), int(ok_a[sel].sum())
            table.append({"covering": c, "frames": int(sel.sum()), "correct_before": nb, "correct_after": na,
                          "change": na - nb, "relative": (na - nb) / max(nb, 1)})
        covered = cov > 0
        out[split] = {"frames": len(y), "frames_with_active_specialists": n_active,
                      "accuracy_generalist": float(ok_b.double().mean()), "accuracy_combined": float(ok_a.double().mean()),
                      "conditional_frames": int(covered.sum()),
                      "conditional_generalist": float(ok_b[covered].double().mean()),
                      "conditional_combined": float(ok_a[covered].double().mean()), "by_coverage": table}
        log.info("%s: frame accuracy %.4f -> %.4f with specialists (conditional %.4f -> %.4f)", split,
                 out[split]["accuracy_generalist"], out[split]["accuracy_combined"], out[split]["conditional_generalist"],
                 out[split]["conditional_combined"])
    atomic_write_text(Path(exp_dir) / "specialist_accuracy.json", json.dumps(out, indent=1))
    return out


@torch.no_grad()
def cluster_generalist_classes(generalist_dir, member: int, ali_dir, feature_dir, prefix: str, split: str, out,
                               config=None, tree_dir=None) -> ClassClusters:
    """The generalist's predictions on an aligned held-out split -> :func:`cluster_classes` -> ``out``
    (JSON) and a readable listing ``out.with_suffix('.txt')`` (subsets, most confused pairs)."""
    from ..utils.config import command_line
    from .class_clusters import ClusterConfig, cluster_classes
    from .ensemble_training import load_split_for

    config = config or ClusterConfig()
    net = load_members(generalist_dir).member(member).eval()
    store = load_split_for(generalist_dir, ali_dir, feature_dir, prefix, split)
    cfg = net.config
    probs = torch.cat([torch.softmax(net(store.windows(torch.arange(s, min(s + 8192, store.num_frames)), cfg.left_context,
                                                       cfg.right_context)), -1) for s in range(0, store.num_frames, 8192)])
    clusters = cluster_classes(probs, config, store.targets)
    clusters.info.update(generalist_dir=str(generalist_dir), generalist_member=member, split=split, command=command_line())
    out = Path(out)
    clusters.save(out)
    names = None
    if tree_dir is not None:
        from ..gmm.transitions import pdf_phone_names

        names = pdf_phone_names(tree_dir)
    name = (lambda c: f"{c}:{names[c]}") if names else str  # noqa: E731
    lines = [f"# {len(clusters.subsets)} subsets of {clusters.num_classes} classes from the covariance of "
             f"{generalist_dir} member {member}'s predictions on {split} ({store.num_frames} frames)",
             f"# classes covered by 0, 1, 2, ... subsets: {clusters.info['coverage_histogram']}"]
    for m, (subset, pairs) in enumerate(zip(clusters.subsets, clusters.info["pairs"])):
        lines.append(f"subset {m} ({len(subset)} classes): " + " ".join(name(c) for c in subset))
        for a, b, n in pairs.get("confusions", []):
            lines.append(f"  confused {n} times: {name(a)} <-> {name(b)}")
    atomic_write_text(out.with_suffix(".txt"), "\n".join(lines) + "\n")
    return clusters
