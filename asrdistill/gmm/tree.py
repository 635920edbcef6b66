"""Decision-tree state tying for triphones (kaldi-hmm-gmm has no tree building).

Statistics: for every seen context ``(left, centre, right, pdf_class)`` the frame count
and the sums of features and squared features (:class:`ContextStats`), from an
alignment. A set of contexts is scored by the log-likelihood of one diagonal Gaussian
fitted to it,

    L(S) = -0.5 n (D (1 + log 2 pi) + sum_d log var_d),

and a question splits a leaf into "yes" and "no" halves with gain
``L(yes) + L(no) - L(leaf)``. Questions ask whether the left phone (key 0), the right
phone (key 2) or the centre phone of a shared root (key 1) is in a phone set, or
whether the HMM state's pdf class (key -1) is in a set of classes. Phone sets come from
top-down binary clustering of the phones' pooled Gaussians (as Kaldi's
``cluster-phones``), optionally plus user-given phonetic classes.

Building is greedy, as Kaldi's ``build-tree``: one root per phone (or per group of
phones sharing a root); by default each HMM state (pdf class) of the root first gets its
own subtree (``split_pdf_classes_first``; otherwise pdf-class questions compete with
context questions, which can tie different states of a phone); repeatedly split the leaf whose
best question gains most, with at least ``min_leaf_count`` frames on each side, until
``num_leaves`` leaves or no gain above ``min_gain``. All candidate questions of a leaf
are scored at once with one matrix product (questions x contexts) @ (contexts x stats).
Context-independent phones (``ci_phones``: silence and noise, Kaldi's ``--ci-phones``)
are never asked left/right-context questions, so their roots keep one leaf per HMM
state. Then, as Kaldi's ``build-tree`` does after splitting, the leaves of each root are
clustered bottom-up: the pair whose merge loses the least likelihood is merged while
the loss is below ``cluster_thresh`` (default: the smallest gain of an accepted split),
so leaves that split apart but model the same sound become one tied state again.

:meth:`DecisionTree.to_kaldi` writes the tree in Kaldi's binary ``ContextDependency``
format (a ``TableEventMap`` on the centre phone, ``SplitEventMap`` questions, and
``ConstantEventMap`` leaves = pdf ids), which kaldi-hmm-gmm loads through its pickle
support, so the TransitionModel, TrainingGraphCompiler and H transducer use our tree.
"""

from __future__ import annotations

import heapq
import math
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

LEFT, CENTRE, RIGHT, PDF_CLASS = 0, 1, 2, -1


@dataclass
class ContextStats:
    """Gaussian statistics per seen context. ``keys``: ``(K, 4)`` int64 ``[left, centre, right, pdf_class]``."""

    keys: np.ndarray
    count: np.ndarray  # (K,) float64
    x: np.ndarray  # (K, D)
    x2: np.ndarray  # (K, D)

    @classmethod
    def empty(cls, dim: int) -> "ContextStats":
        return cls(np.zeros((0, 4), np.int64), np.zeros(0), np.zeros((0, dim)), np.zeros((0, dim)))

    @classmethod
    def from_frames(cls, keys: np.ndarray, feats, chunk: int = 65536) -> "ContextStats":
        """Statistics of frames with context ``keys (T, 4)`` and features ``feats (T, D)`` (any float type).

        Accumulated ``chunk`` frames at a time in float64: no float64 copy (nor squares) of all the frames.
        """
        uniq, inv = _unique_rows(keys)
        inv = torch.from_numpy(inv.reshape(-1))
        f = torch.as_tensor(feats)
        k = uniq.shape[0]
        x = torch.zeros(k, f.shape[1], dtype=torch.float64)
        x2 = torch.zeros(k, f.shape[1], dtype=torch.float64)
        for s in range(0, f.shape[0], chunk):
            part, idx = f[s:s + chunk].double(), inv[s:s + chunk]
            x.index_add_(0, idx, part)
            x2.index_add_(0, idx, part * part)
        count = torch.bincount(inv, minlength=k).double()
        return cls(uniq.astype(np.int64), count.numpy(), x.numpy(), x2.numpy())

    @classmethod
    def from_chunks(cls, chunks, dim: int) -> "ContextStats":
        """Statistics of ``(keys, feats)`` chunks of frames (e.g. groups of utterances), merged chunk by chunk:
        memory of one chunk plus the contexts seen, whatever the number of frames."""
        out = cls.empty(dim)
        for keys, feats in chunks:
            out = out.merge(cls.from_frames(keys, feats))
        return out

    def merge(self, other: "ContextStats") -> "ContextStats":
        keys = np.concatenate([self.keys.reshape(-1, 4), other.keys.reshape(-1, 4)])
        uniq, inv = _unique_rows(keys)
        inv = torch.from_numpy(inv.reshape(-1))
        d = max(self.x.shape[1], other.x.shape[1])
        k = len(uniq)

        def add(a, b, shape):
            both = torch.from_numpy(np.concatenate([a.reshape(shape), b.reshape(shape)]).astype(np.float64))
            return torch.zeros((k,) + shape[1:], dtype=torch.float64).index_add_(0, inv, both).numpy()

        return ContextStats(uniq.astype(np.int64), add(self.count, other.count, (-1,)), add(self.x, other.x, (-1, d)),
                            add(self.x2, other.x2, (-1, d)))


def _unique_rows(keys: np.ndarray):
    """``np.unique(keys, axis=0, return_inverse=True)`` of ``(T, 4)`` context keys; small non-negative keys are
    packed into one int64 per frame first (the same sorted order, without ``axis=0``'s row copies)."""
    keys = np.asarray(keys)
    if keys.size and keys.min() >= 0 and keys.max() < (1 << 15):
        packed = np.zeros(len(keys), np.int64)
        for c in range(keys.shape[1]):
            packed = (packed << 15) | keys[:, c].astype(np.int64)
        uniq, inv = np.unique(packed, return_inverse=True)
        cols = [(uniq >> (15 * (keys.shape[1] - 1 - c))) & ((1 << 15) - 1) for c in range(keys.shape[1])]
        return np.stack(cols, 1).astype(np.int64), inv
    return np.unique(keys, axis=0, return_inverse=True)


def gaussian_log_likelihood(count: torch.Tensor, x: torch.Tensor, x2: torch.Tensor, var_floor: float = 1e-3) -> torch.Tensor:
    """Log-likelihood of the data under its own ML diagonal Gaussian (batched over leading dims)."""
    n = count.clamp(min=1e-10)[..., None]
    mean = x / n
    var = (x2 / n - mean * mean).clamp(min=var_floor)
    d = x.shape[-1]
    ll = -0.5 * count * (d * (1.0 + math.log(2 * math.pi)) + var.log().sum(-1))
    return torch.where(count > 0, ll, torch.zeros_like(ll))


# --------------------------------------------------------------------- questions
def cluster_phones(stats: ContextStats, phones: Sequence[int],
                   phone_sets: Sequence[Sequence[int]] = ()) -> List[Tuple[int, ...]]:
    """Phone sets from top-down binary clustering of the phones' pooled Gaussians.

    The units clustered are ``phone_sets`` (for example each base phone with its
    word-position variants, Kaldi's ``phones/sets.txt``) or, by default, single phones;
    a question is the union of its units' phones. Each set splits into two by 2-means
    (likelihood of one Gaussian per cluster, deterministic start from the two units
    farthest apart); every set of the resulting hierarchy except the root, down to
    single units, is a question. Units without data form one extra set.
    """
    units = [tuple(sorted(u)) for u in phone_sets] if phone_sets else [(p,) for p in phones]
    covered = {p for u in units for p in u}
    units += [(p,) for p in phones if p not in covered]
    pooled = {}
    for u in units:
        m = np.isin(stats.keys[:, 1], u)
        if stats.count[m].sum() > 0:
            pooled[u] = (stats.count[m].sum(), stats.x[m].sum(0), stats.x2[m].sum(0))
    questions: List[Tuple[int, ...]] = []

    def ll_of(members):
        c = sum(pooled[p][0] for p in members)
        x = sum(pooled[p][1] for p in members)
        x2 = sum(pooled[p][2] for p in members)
        return float(gaussian_log_likelihood(torch.tensor(c), torch.as_tensor(x), torch.as_tensor(x2)))

    def phones_of(members) -> Tuple[int, ...]:
        return tuple(sorted(p for u in members for p in u))

    def split(members: List[Tuple[int, ...]]):
        if len(members) < 2:
            return
        means = np.stack([pooled[p][1] / pooled[p][0] for p in members])
        dist = ((means[:, None, :] - means[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(np.argmax(dist), dist.shape)
        a, b = [members[i]], [members[j]]
        assign = {}
        for _ in range(10):
            new = {}
            for p in members:
                if p in (members[i], members[j]) and not assign:
                    new[p] = 0 if p == members[i] else 1
                    continue
                ga = ll_of(a + [p]) - ll_of(a) if p not in a else ll_of(a) - ll_of([q for q in a if q != p] or [p])
                gb = ll_of(b + [p]) - ll_of(b) if p not in b else ll_of(b) - ll_of([q for q in b if q != p] or [p])
                new[p] = 0 if ga >= gb else 1
            if new == assign:
                break
            assign = new
            a = [p for p in members if assign[p] == 0]
            b = [p for p in members if assign[p] == 1]
            if not a or not b:
                a, b = [members[i]], [members[j]]
                break
        for part in (a, b):
            questions.append(phones_of(part))
            split(part)

    split(sorted(pooled))
    unseen = phones_of([u for u in units if u not in pooled])
    if unseen:
        questions.append(unseen)
    return sorted(set(q for q in questions if q), key=lambda q: (len(q), q))


# --------------------------------------------------------------------- clustering
def _cluster_leaves(leaves, k_stats: torch.Tensor, ll, thresh: float) -> Dict[int, int]:
    """Bottom-up clustering of each root's leaves (Kaldi's ``ClusterEventMapRestrictedByMap``).

    ``leaves``: ``(node, root, contexts)`` of every leaf. Within one root, the two clusters
    whose merge loses the least log-likelihood, ``L(a) + L(b) - L(a + b)``, are merged while
    that cost is below ``thresh``. Returns ``id(node) -> cluster number``. The cost matrix of
    a root is computed once and updated by one row per merge.
    """
    by_root: Dict[Tuple[int, ...], list] = {}
    for node, root, items in leaves:
        by_root.setdefault(root, []).append((node, items))
    cluster_of: Dict[int, int] = {}
    next_id = 0
    for root in sorted(by_root):
        members = by_root[root]
        s = torch.stack([k_stats[items].sum(0) for _, items in members])  # (n, 1 + 2D)
        own = ll(s)
        groups = [[i] for i in range(len(members))]
        alive = torch.ones(len(members), dtype=torch.bool)
        if thresh > 0 and len(members) > 1:
            cost = own[:, None] + own[None, :] - ll(s[:, None, :] + s[None, :, :])
            cost.fill_diagonal_(math.inf)
            while True:
                flat = int(torch.argmin(cost))
                i, j = divmod(flat, cost.shape[1])
                if not cost[i, j] < thresh:
                    break
                s[i] += s[j]
                own[i] = ll(s[i])
                groups[i] += groups[j]
                groups[j] = []
                alive[j] = False
                cost[j, :] = math.inf
                cost[:, j] = math.inf
                row = own[i] + own - ll(s[i][None, :] + s)
                row[~alive] = math.inf
                row[i] = math.inf
                cost[i, :] = row
                cost[:, i] = row
        for g in groups:
            for k in g:
                cluster_of[id(members[k][0])] = next_id
            if g:
                next_id += 1
    return cluster_of


# --------------------------------------------------------------------- tree
@dataclass
class Node:
    key: Optional[int] = None  # None: leaf
    yes_set: Tuple[int, ...] = ()
    yes: Optional["Node"] = None
    no: Optional["Node"] = None
    leaf: int = -1


@dataclass
class TreeConfig:
    num_leaves: int = field(default=300, metadata={"help": "Target number of tied states (pdfs)."})
    min_leaf_count: float = field(default=50.0, metadata={"help": "Fewest frames on each side of a split (Kaldi's --min-count)."})
    min_gain: float = field(default=0.0, metadata={"help": "Smallest log-likelihood gain worth a split."})
    shared_roots: Tuple[str, ...] = field(
        default=("SIL,SPN",),
        metadata={"help": "Groups of phones sharing one root, each comma-separated inside (e.g. 'SIL,SPN;AA,AE')",
                  "separator": ";"}
    )
    split_var_floor: float = field(default=1e-3, metadata={"help": "Absolute variance floor in the split likelihoods."})
    questions_file: str = field(
        default="", metadata={"help": "Extra phone-set questions (phonetic classes): one set of phone names per line."}
    )
    split_pdf_classes_first: bool = field(
        default=True,
        metadata={"help": "Give every HMM state (pdf class) of a root its own subtree before any context question."},
    )
    ci_phones: Tuple[str, ...] = field(
        default=("SIL", "SPN"),
        metadata={"help": "Context-independent phones (Kaldi's --ci-phones), besides the lang's own "
                          "(phones/context_indep: silence and noise): their roots get no left/right-context "
                          "questions, so they keep one leaf per HMM state."},
    )
    cluster_thresh: float = field(
        default=-1.0,
        metadata={"help": "After splitting, merge leaves of one root bottom-up while a merge costs less than this "
                          "log-likelihood (Kaldi's --cluster-thresh); negative: the smallest gain of an accepted "
                          "split; 0: no clustering."},
    )


@dataclass
class DecisionTree:
    """Roots (one per phone or phone group) with binary question nodes and numbered leaves."""

    roots: Dict[Tuple[int, ...], Node]
    num_leaves: int
    num_pdf_classes: Dict[int, int]

    # ------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        stats: ContextStats,
        phones: Sequence[int],
        num_pdf_classes: Dict[int, int],
        config: TreeConfig,
        phone_groups: Sequence[Sequence[int]] = (),
        extra_questions: Sequence[Sequence[int]] = (),
        ci_phones: Sequence[int] = (),
        phone_sets: Sequence[Sequence[int]] = (),
    ) -> "DecisionTree":
        """Grow the tree greedily, then cluster its leaves bottom-up (see the module doc).

        ``phone_groups``: phones sharing one root; ``ci_phones``: context-independent phones
        (a root made only of them gets no left/right questions); ``phone_sets``: the units
        of the phone clustering that makes the questions (default: single phones).
        """
        ci = set(int(p) for p in ci_phones)
        questions = cluster_phones(stats, phones, phone_sets) + [tuple(sorted(q)) for q in extra_questions]
        questions = sorted(set(questions), key=lambda q: (len(q), q))
        grouped = {p for g in phone_groups for p in g}
        root_sets = [tuple(sorted(g)) for g in phone_groups] + [(p,) for p in phones if p not in grouped]
        k_stats = torch.from_numpy(np.concatenate([stats.count[:, None], stats.x, stats.x2], 1))
        d = stats.x.shape[1]
        keys = torch.from_numpy(stats.keys)
        phone_tab = int(max(max(phones), int(stats.keys.max()) if len(stats.keys) else 0)) + 1
        q_member = torch.zeros(len(questions), phone_tab, dtype=torch.float64)
        for i, q in enumerate(questions):
            q_member[i, list(q)] = 1.0

        def ll(s):  # s: (..., 1 + 2D)
            return gaussian_log_likelihood(s[..., 0], s[..., 1 : 1 + d], s[..., 1 + d :], config.split_var_floor)

        def best_split(items: torch.Tensor, root: Tuple[int, ...]):
            """(gain, key, yes_set, yes_items, no_items) of the best question for a leaf."""
            if len(items) < 2:
                return None
            s = k_stats[items]
            total = s.sum(0)
            base = ll(total)
            cands = []  # (key, sets (Q, K) membership)
            if not set(root) <= ci:  # context-independent roots are never split by context
                for key, col in ((LEFT, 0), (RIGHT, 2)):
                    cands.append((key, questions, q_member[:, keys[items, col]]))
            classes = sorted(set(keys[items, 3].tolist()))
            if len(classes) > 1:
                sets = [tuple(classes[: k + 1]) for k in range(len(classes) - 1)] + [(c,) for c in classes]
                m = torch.stack([torch.isin(keys[items, 3], torch.tensor(q)).double() for q in sets])
                cands.append((PDF_CLASS, sets, m))
            if len(root) > 1:
                sets = [(p,) for p in root]
                m = torch.stack([(keys[items, 1] == p).double() for p in root])
                cands.append((CENTRE, sets, m))
            best = None
            for key, sets, member in cands:
                yes = member @ s
                no = total[None, :] - yes
                gain = ll(yes) + ll(no) - base
                ok = (yes[:, 0] >= config.min_leaf_count) & (no[:, 0] >= config.min_leaf_count)
                gain = torch.where(ok, gain, torch.full_like(gain, -math.inf))
                i = int(torch.argmax(gain))
                if gain[i] > -math.inf and (best is None or gain[i] > best[0]):
                    mask = member[i] > 0
                    best = (float(gain[i]), key, tuple(sets[i]), items[mask], items[~mask])
            return best

        nodes: Dict[Tuple[int, ...], Node] = {}
        heap = []
        counter = 0
        n_leaves = 0
        leaf_items: Dict[int, Tuple[Node, Tuple[int, ...], torch.Tensor]] = {}  # id(node) -> (node, root, contexts)
        split_gains: List[float] = []
        for root in root_sets:
            items = torch.nonzero(torch.isin(keys[:, 1], torch.tensor(root))).flatten()
            node = Node()
            nodes[root] = node
            # (node, items) to grow greedily: the root, or one subtree per pdf class
            start = [(node, items)]
            classes = sorted({c for p in root for c in range(num_pdf_classes.get(p, 1))})
            if config.split_pdf_classes_first and len(classes) > 1:
                start = []
                for c in classes[:-1]:
                    node.key, node.yes_set, node.yes, node.no = PDF_CLASS, (c,), Node(), Node()
                    start.append((node.yes, items[keys[items, 3] == c]))
                    items = items[keys[items, 3] != c]
                    node = node.no
                start.append((node, items))
            n_leaves += len(start)
            for leaf_node, leaf_items_ in start:
                leaf_items[id(leaf_node)] = (leaf_node, root, leaf_items_)
                b = best_split(leaf_items_, root)
                if b is not None:
                    heapq.heappush(heap, (-b[0], counter, leaf_node, root, b))
                    counter += 1
        while heap and n_leaves < config.num_leaves:
            neg_gain, _, node, root, (gain, key, yes_set, yes_items, no_items) = heapq.heappop(heap)
            if gain <= config.min_gain:
                break
            node.key, node.yes_set, node.yes, node.no = key, yes_set, Node(), Node()
            n_leaves += 1
            split_gains.append(gain)
            del leaf_items[id(node)]
            for child, child_items in ((node.yes, yes_items), (node.no, no_items)):
                leaf_items[id(child)] = (child, root, child_items)
                b = best_split(child_items, root)
                if b is not None:
                    heapq.heappush(heap, (-b[0], counter, child, root, b))
                    counter += 1
        tree = cls(nodes, 0, dict(num_pdf_classes))
        thresh = config.cluster_thresh
        if thresh < 0:
            thresh = min(split_gains) if split_gains else 0.0
        tree._number_leaves(_cluster_leaves(list(leaf_items.values()), k_stats, ll, thresh))
        return tree

    def _number_leaves(self, cluster_of: Optional[Dict[int, int]] = None) -> None:
        """Number the leaves in root order; leaves of one cluster (``id(node) -> cluster``) share a number."""
        n = 0
        number: Dict[int, int] = {}
        for root in sorted(self.roots):
            stack = [self.roots[root]]
            while stack:
                node = stack.pop()
                if node.key is None:
                    c = cluster_of.get(id(node), ("leaf", id(node))) if cluster_of else ("leaf", id(node))
                    if c not in number:
                        number[c] = n
                        n += 1
                    node.leaf = number[c]
                else:
                    stack.extend([node.no, node.yes])
        self.num_leaves = n

    def leaf_roots(self) -> Dict[int, Tuple[int, ...]]:
        """The root (phone group) of every leaf."""
        out = {}
        for root, node in self.roots.items():
            stack = [node]
            while stack:
                n = stack.pop()
                if n.key is None:
                    out[n.leaf] = root
                else:
                    stack.extend([n.no, n.yes])
        return out

    # ------------------------------------------------------------- lookup
    def root_of(self, phone: int) -> Tuple[int, ...]:
        for root in self.roots:
            if phone in root:
                return root
        raise KeyError(f"phone {phone} has no root in the tree")

    def leaf(self, left: int, centre: int, right: int, pdf_class: int) -> int:
        event = {LEFT: left, CENTRE: centre, RIGHT: right, PDF_CLASS: pdf_class}
        node = self.roots[self.root_of(centre)]
        while node.key is not None:
            node = node.yes if event[node.key] in node.yes_set else node.no
        return node.leaf

    def leaves(self, keys: np.ndarray) -> np.ndarray:
        """Leaves of ``(K, 4)`` contexts (computed once per distinct context)."""
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        mapped = np.array([self.leaf(*map(int, k)) for k in uniq], dtype=np.int64)
        return mapped[inv.reshape(-1)]

    # ------------------------------------------------------------- Kaldi format
    def to_kaldi_bytes(self) -> bytes:
        """Kaldi's binary serialization of the ``ContextDependency`` (N=3, P=1)."""
        out = bytearray()

        def token(t: str):
            out.extend(t.encode() + b" ")

        def int32(v: int):
            out.extend(b"\x04" + struct.pack("<i", v))

        def write(node: Node):
            if node.key is None:
                token("CE")
                int32(node.leaf)
                return
            token("SE")
            int32(node.key)
            vals = sorted(node.yes_set)
            out.extend(b"\x04" + struct.pack("<i", len(vals)) + struct.pack(f"<{len(vals)}i", *vals))
            token("{")
            write(node.yes)
            write(node.no)
            token("}")

        max_phone = max(p for root in self.roots for p in root)
        token("ContextDependency")
        int32(3)
        int32(1)
        token("ToPdf")
        token("TE")
        int32(CENTRE)
        out.extend(b"\xfc" + struct.pack("<I", max_phone + 1))
        token("(")
        for phone in range(max_phone + 1):
            root = next((r for r in self.roots if phone in r), None)
            if root is None:
                token("NULL")
            else:
                write(self.roots[root])
        token(")")
        token("EndContextDependency")
        return bytes(out)

    def to_kaldi(self):
        """A kaldi-hmm-gmm ``ContextDependency`` object of this tree."""
        return context_dependency_from_bytes(self.to_kaldi_bytes())


def context_dependency_from_bytes(data: bytes):
    import kaldi_hmm_gmm as khg

    ctx = khg.ContextDependency.__new__(khg.ContextDependency)
    ctx.__setstate__((list(struct.unpack(f"{len(data)}b", data)),))
    return ctx


def context_dependency_to_bytes(ctx) -> bytes:
    state = ctx.__getstate__()[0]
    return struct.pack(f"{len(state)}b", *state)


def read_questions(path, phone_id: Dict[str, int]) -> List[Tuple[int, ...]]:
    """Phone sets from a file with one whitespace-separated set of phone names per line."""
    sets = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            names = line.split()
            if not names:
                continue
            # a base phone stands for its word-position variants (P_B, P_E, P_I, P_S)
            ids = {p: [phone_id[p]] if p in phone_id else [phone_id[p + s] for s in ("_B", "_E", "_I", "_S") if p + s in phone_id]
                   for p in names}
            unknown = [p for p in names if not ids[p]]
            if unknown:
                raise ValueError(f"{path}:{n}: unknown phone(s) {unknown}")
            sets.append(tuple(sorted(i for p in names for i in ids[p])))
    return sets
