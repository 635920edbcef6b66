"""Decision trees: a synthetic problem with a known split; Kaldi round trip of the tree."""

import itertools

import numpy as np
import pytest

from asrdistill.gmm.tree import ContextStats, DecisionTree, TreeConfig, cluster_phones, gaussian_log_likelihood

khg = pytest.importorskip("kaldi_hmm_gmm")

PHONES = [1, 2, 3, 4, 5, 6]


def synthetic_stats(seed=0, n=60):
    """Phone c, pdf class pc has mean (3c + pc, 0, 0); for c=3, pc=1 the 2nd dim is 5 when the left phone is 4 or 5."""
    rng = np.random.default_rng(seed)
    keys, feats = [], []
    for l, c, r in itertools.product([0] + PHONES, PHONES, [0] + PHONES):
        for pc in range(3):
            mu = np.array([3.0 * c + pc, 0.0, 0.0])
            if c == 3 and pc == 1 and l in (4, 5):
                mu[1] = 5.0
            keys.append(np.tile([l, c, r, pc], (n, 1)))
            feats.append(rng.normal(mu, 1.0, (n, 3)))
    return ContextStats.from_frames(np.concatenate(keys), np.concatenate(feats))


def test_known_split_is_found():
    stats = synthetic_stats()
    # 6 phones x 3 pdf classes need 18 leaves; one more leaf allows exactly the one real context split
    tree = DecisionTree.build(stats, PHONES, {p: 3 for p in PHONES}, TreeConfig(num_leaves=19, min_leaf_count=50, cluster_thresh=0),
                              extra_questions=[(4, 5)])
    assert tree.num_leaves == 19
    for l, c, r, pc in itertools.product([0] + PHONES, PHONES, [0] + PHONES, range(3)):
        same_state = tree.leaf(l, c, r, pc)
        if (c, pc) != (3, 1):
            assert same_state == tree.leaf(0, c, 0, pc)  # context never matters elsewhere
    a, b = tree.leaf(4, 3, 1, 1), tree.leaf(1, 3, 1, 1)
    assert a != b and tree.leaf(5, 3, 6, 1) == a and tree.leaf(6, 3, 2, 1) == b and tree.leaf(0, 3, 0, 1) == b


def test_shared_root_without_forced_state_split_can_tie_states():
    stats = synthetic_stats()
    tree = DecisionTree.build(stats, PHONES, {p: 3 for p in PHONES},
                              TreeConfig(num_leaves=19, min_leaf_count=50, split_pdf_classes_first=False, cluster_thresh=0), extra_questions=[(4, 5)])
    # the greedy choice on phone 3's shared root asks about the left context first and ties two of its states
    assert tree.num_leaves == 19 and tree.roots[(3,)].key == 0


def test_split_gain_is_the_likelihood_increase():
    stats = synthetic_stats()
    m = (stats.keys[:, 1] == 3) & (stats.keys[:, 3] == 1)
    yes = m & np.isin(stats.keys[:, 0], [4, 5])
    no = m & ~yes
    import torch

    def ll(mask):
        return float(gaussian_log_likelihood(torch.tensor(stats.count[mask].sum()), torch.tensor(stats.x[mask].sum(0)),
                                             torch.tensor(stats.x2[mask].sum(0))))

    gain = ll(yes) + ll(no) - ll(m)
    n = stats.count[m].sum()
    # the split separates two Gaussians 5 apart in one dimension: gain ~ n/2 * log(var_pooled / var_within)
    assert gain > 0.5 * n * 0.5


def test_kaldi_context_dependency_maps_contexts_to_our_leaves():
    stats = synthetic_stats()
    tree = DecisionTree.build(stats, PHONES, {p: 3 for p in PHONES}, TreeConfig(num_leaves=40, min_leaf_count=20, cluster_thresh=0),
                              phone_groups=[(5, 6)])
    ctx = tree.to_kaldi()
    assert (ctx.context_width, ctx.central_position, ctx.num_pdfs) == (3, 1, tree.num_leaves)
    for l, c, r, pc in itertools.product([0] + PHONES, PHONES, [0] + PHONES, range(3)):
        ok, pdf = ctx.compute([l, c, r], pc)
        assert ok and pdf == tree.leaf(l, c, r, pc)
    from asrdistill.lang.topology import make_topology

    topo = khg.HmmTopology()
    topo.read(make_topology(PHONES, []))
    tm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)
    assert tm.num_pdfs == tree.num_leaves


def test_phone_clustering_groups_similar_phones():
    rng = np.random.default_rng(1)
    keys, feats = [], []
    centres = {1: 0.0, 2: 0.3, 3: 10.0, 4: 10.4, 5: 20.0}
    for p, mu in centres.items():
        keys.append(np.tile([0, p, 0, 0], (200, 1)))
        feats.append(rng.normal(mu, 1.0, (200, 2)))
    qs = cluster_phones(ContextStats.from_frames(np.concatenate(keys), np.concatenate(feats)), [1, 2, 3, 4, 5, 6])
    assert (1, 2) in qs and (3, 4) in qs and (6,) in qs  # 6 has no data: its own set


def test_questions_file(tmp_path):
    from asrdistill.gmm.tree import read_questions

    (tmp_path / "q.txt").write_text("AA AE\nS Z SH\n\n")
    ids = {"AA": 3, "AE": 4, "S": 7, "Z": 9, "SH": 8}
    assert read_questions(tmp_path / "q.txt", ids) == [(3, 4), (7, 8, 9)]
    (tmp_path / "bad.txt").write_text("AA XX\n")
    with pytest.raises(ValueError, match="bad.txt:1: unknown phone"):
        read_questions(tmp_path / "bad.txt", ids)


def test_context_independent_phones_keep_one_leaf_per_state():
    """Phone 3's state 1 depends on its left context, but as a CI phone it is never split by context."""
    stats = synthetic_stats()
    tree = DecisionTree.build(stats, PHONES, {p: 3 for p in PHONES}, TreeConfig(num_leaves=40, min_leaf_count=20,
                              cluster_thresh=0), extra_questions=[(4, 5)], ci_phones=[3], phone_groups=[(5, 6)])
    leaves_of_3 = {tree.leaf(l, 3, r, pc) for l, r in itertools.product([0] + PHONES, repeat=2) for pc in range(3)}
    assert len(leaves_of_3) == 3  # exactly one per HMM state
    assert tree.num_leaves == 40  # the other roots took the remaining splits
    free = DecisionTree.build(stats, PHONES, {p: 3 for p in PHONES}, TreeConfig(num_leaves=19, min_leaf_count=20, cluster_thresh=0),
                              extra_questions=[(4, 5)])
    assert free.leaf(4, 3, 0, 1) != free.leaf(1, 3, 0, 1)  # without the CI flag, phone 3 splits on its left context


def test_bottom_up_clustering_merges_identical_leaves():
    """Two phones with the same distribution, split apart greedily, end up as one tied state per state."""
    rng = np.random.default_rng(0)
    keys, feats = [], []
    for c in (1, 2):  # identical sounds
        for l in (0, 1, 2):
            keys.append(np.tile([l, c, 0, 0], (300, 1)))
            feats.append(rng.normal([0.0, 0.0], 1.0, (300, 2)))
    keys.append(np.tile([0, 3, 0, 0], (300, 1)))  # a different sound
    feats.append(rng.normal([6.0, 0.0], 1.0, (300, 2)))
    stats = ContextStats.from_frames(np.concatenate(keys), np.concatenate(feats))
    config = TreeConfig(num_leaves=10, min_leaf_count=100, cluster_thresh=0)
    # phones 1 and 2 share a root; greedy splitting alone separates them (any split of noise gains a little)
    greedy = DecisionTree.build(stats, [1, 2, 3], {1: 1, 2: 1, 3: 1}, config, phone_groups=[(1, 2)])
    assert greedy.num_leaves > 2
    # a threshold above those noise gains merges them back: one leaf for the (1, 2) root, one for phone 3
    clustered = DecisionTree.build(stats, [1, 2, 3], {1: 1, 2: 1, 3: 1}, TreeConfig(num_leaves=10, min_leaf_count=100,
                                   cluster_thresh=50.0), phone_groups=[(1, 2)])
    assert clustered.num_leaves == 2
    assert clustered.leaf(0, 1, 0, 0) == clustered.leaf(2, 2, 0, 0) != clustered.leaf(0, 3, 0, 0)
    # the merge cost is the likelihood loss L(a) + L(b) - L(a + b): merging 3 with the others would cost far more
    import torch

    def ll(mask):
        return float(gaussian_log_likelihood(torch.tensor(stats.count[mask].sum()), torch.tensor(stats.x[mask].sum(0)),
                                             torch.tensor(stats.x2[mask].sum(0))))

    a, b = stats.keys[:, 1] < 3, stats.keys[:, 1] == 3
    assert ll(a) + ll(b) - ll(a | b) > 1000
    ctx = clustered.to_kaldi()  # shared leaf numbers serialize
    assert ctx.num_pdfs == 2
