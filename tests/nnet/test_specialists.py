"""Class clustering, specialist initialization, sampling and the dustbin correction."""

import math

import torch

from asrdistill.nnet.class_clusters import ClassClusters, ClusterConfig, cluster_classes, kmeans, prediction_covariance
from asrdistill.nnet.dnn import DnnConfig, FrameDnn
from asrdistill.nnet.specialists import (SpecialistSampler, collapse_to_subsets, dustbin_correction,
                                         init_from_generalist, output_mask, subset_table)


def _confusable_predictions(groups, num_classes, frames=3000, seed=0):
    """A generalist that is sure of the group of a frame but not of the class within it."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.full((frames, num_classes), -6.0)
    which = torch.randint(len(groups), (frames,), generator=g)
    for k, grp in enumerate(groups):
        rows = torch.nonzero(which == k).flatten()
        logits[rows[:, None], torch.tensor(grp)[None, :]] = 2 * torch.randn(len(rows), len(grp), generator=g)
    return torch.softmax(logits + 0.1 * torch.randn(frames, num_classes, generator=g), -1)


def test_covariance_equals_the_textbook_formula():
    p = torch.softmax(torch.randn(200, 6, dtype=torch.float64), -1)
    ref = torch.cov(p.T)
    torch.testing.assert_close(prediction_covariance(p), ref)


def test_clustering_puts_correlated_classes_together():
    groups = [[0, 5, 9], [1, 2], [3, 7, 8, 11], [4, 6, 10]]
    probs = _confusable_predictions(groups, 12)
    clusters = cluster_classes(probs, ClusterConfig(num_clusters=4, min_size=1, max_size=10))
    assert sorted(sorted(s) for s in clusters.subsets) == sorted(sorted(g) for g in groups)
    assert clusters.info["coverage_histogram"] == [0, 12]
    # the most confused pairs come from the true classes of the frames
    targets = probs.argmax(1)
    with_pairs = cluster_classes(probs, ClusterConfig(num_clusters=4, min_size=1), targets)
    for subset, pairs in zip(with_pairs.subsets, with_pairs.info["pairs"]):
        assert all(a in subset and b in subset for a, b, _ in pairs["covariance"])


def test_overlap_size_limits_and_round_trip(tmp_path):
    groups = [[0, 1, 2, 3], [4, 5, 6], [7, 8]]
    probs = _confusable_predictions(groups, 9)
    part = cluster_classes(probs, ClusterConfig(num_clusters=3, min_size=3, max_size=3))
    assert sorted(len(s) for s in part.subsets) == [3, 3]  # the pair is too small; the 4-group is cut to 3
    wide = cluster_classes(probs, ClusterConfig(num_clusters=3, min_size=1, overlap_margin=100.0))
    assert (wide.coverage() >= 1).all() and (wide.coverage() > 1).any()
    wide.save(tmp_path / "c.json")
    back = ClassClusters.load(tmp_path / "c.json")
    assert back.subsets == wide.subsets and torch.equal(back.membership(), wide.membership())


def test_kmeans_finds_separated_blobs():
    g = torch.Generator().manual_seed(1)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pts = torch.cat([c + 0.5 * torch.randn(30, 2, generator=g) for c in centers])
    cent, assign, dist = kmeans(pts, 3, seed=2)
    assert len(set(assign[:30].tolist())) == 1 and len(set(assign.tolist())) == 3
    assert torch.equal(dist.argmin(1), assign)
    torch.testing.assert_close(cent[assign[:30][0]].float(), pts[:30].mean(0), atol=1e-5, rtol=0)


def test_dustbin_correction_recovers_the_natural_posterior():
    """A classifier that is exact under the oversampled training prior, corrected, is exact under
    the natural prior (Bayes' rule): checked on a discrete input with known likelihoods."""
    g = torch.Generator().manual_seed(3)
    c, x_values = 6, 5
    subset = [1, 4]
    lik = torch.softmax(torch.randn(c, x_values, generator=g, dtype=torch.float64), 1)  # p(x | c)
    prior = torch.softmax(torch.randn(c, generator=g, dtype=torch.float64), 0)  # natural p(c)
    inside = torch.zeros(c, dtype=torch.bool)
    inside[subset] = True
    pi = float(prior[~inside].sum())
    rho = 0.5  # half of each batch from the subset, half from the rest (each part in natural proportions)
    train_prior = torch.where(inside, (1 - rho) * prior / (1 - pi), rho * prior / pi)

    def specialist_posterior(p_c):  # over [dustbin, subset...]: what a perfectly trained specialist outputs
        joint = p_c[:, None] * lik  # (C, X)
        post = joint / joint.sum(0)
        return torch.cat([post[~inside].sum(0, keepdim=True), post[inside]], 0)  # (1 + |S|, X)

    trained = specialist_posterior(train_prior).log()
    corrected = trained.clone()
    corrected[0] += dustbin_correction(torch.tensor([pi]), rho).double()
    torch.testing.assert_close(torch.softmax(corrected, 0), specialist_posterior(prior))
    # the paper's rule alone (log of the oversampling ratio) is not exact, but close for a large dustbin
    paper = trained.clone()
    paper[0] += math.log((1 - rho) / (1 - pi))
    assert (torch.softmax(paper, 0) - specialist_posterior(prior)).abs().max() > 1e-3


def test_specialists_start_as_the_generalist_on_their_classes():
    cfg = DnnConfig(feature_dim=3, left_context=1, right_context=1, hidden_layers=2, hidden_dim=16, num_outputs=7)
    torch.manual_seed(0)
    gen = FrameDnn(cfg)
    clusters = ClassClusters([[2, 5], [0, 1, 6]], 7)
    classes, local = subset_table(clusters)
    assert classes.tolist() == [[2, 5, -1], [0, 1, 6]] and local[0].tolist() == [0, 0, 1, 0, 0, 2, 0]
    spec = init_from_generalist(gen, classes, [10, 11])
    x = torch.randn(20, cfg.input_dim)
    z_g, z_s = gen(x), spec(x)
    assert z_s.shape == (2, 20, 4) and output_mask(classes).tolist() == [[True, True, True, False], [True] * 4]
    torch.testing.assert_close(z_s[0, :, 1:3], z_g[:, [2, 5]])
    torch.testing.assert_close(z_s[1, :, 1:4], z_g[:, [0, 1, 6]])
    # the dustbin starts near the log of the other classes' summed probability (exact when they are equal)
    others = torch.logsumexp(z_g[:, [0, 1, 3, 4, 6]], 1)
    assert (z_s[0, :, 0] - others).abs().mean() < (z_s[0, :, 0] - z_g[:, [0, 1, 3, 4, 6]].mean(1)).abs().mean()


def test_collapse_to_subsets():
    p = torch.softmax(torch.randn(2, 3, 5), -1)
    classes = torch.tensor([[1, 3, -1], [0, 2, 4]])
    q = collapse_to_subsets(p, classes)
    torch.testing.assert_close(q[0, :, 1:3], p[0][:, [1, 3]])
    assert (q[0, :, 3] == 0).all()
    torch.testing.assert_close(q.sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(q[1, :, 0], p[1][:, [1, 3]].sum(-1))


def test_sampler_balances_and_replays():
    targets = torch.tensor([0, 1, 2, 3, 4, 5] * 50)
    frames = torch.arange(len(targets))
    membership = torch.zeros(2, 6, dtype=torch.bool)
    membership[0, [1, 2]] = True
    membership[1, [5]] = True
    s = SpecialistSampler(targets, frames, membership, [7, 8], batch_size=20, dustbin_fraction=0.5)
    seen = [set(), set()]
    for step in range(12):
        b = s(step)
        assert b.shape == (2, 20)
        for m in range(2):
            inside = membership[m, targets[b[m]]]
            assert inside[:10].all() and not inside[10:].any()
            seen[m] |= set(b[m, :10].tolist())
    # an epoch of a specialist's own frames visits each once: 100 frames of classes 1, 2 in 10 steps
    assert seen[0] == set(torch.nonzero(membership[0, targets]).flatten().tolist())
    again = SpecialistSampler(targets, frames, membership, [7, 8], batch_size=20, dustbin_fraction=0.5)
    assert torch.equal(again(9), s(9))  # a restart recomputes any step's batch
