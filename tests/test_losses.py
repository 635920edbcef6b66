"""Distillation losses: gradients against autograd and a float64 reference, and the paper's eq. 4."""

import math

import pytest
import torch

from asrdistill.losses import (DistillationLoss, LogitMatchingLoss, combine_log_probs, ensemble_soft_targets,
                               soft_cross_entropy, softmax_with_temperature, topk_cache, topk_soft_targets)


def reference_distillation(z, v, y, t, ws, wh):
    """Naive float64 reference, frame by frame."""
    total = 0.0
    for zb, vb, yb in zip(z, v, y):
        p = [math.exp(x / t) for x in vb]
        q = [math.exp(x / t) for x in zb]
        soft = -sum(pi / sum(p) * math.log(qi / sum(q)) for pi, qi in zip(p, q))
        e = [math.exp(x) for x in zb]
        hard = -math.log(e[int(yb)] / sum(e))
        total += ws * t * t * soft + wh * hard
    return total / len(z)


@pytest.mark.parametrize("t", [1.0, 2.0, 5.0])
def test_value_matches_float64_reference(t):
    g = torch.Generator().manual_seed(0)
    z, v = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 5, (6,), generator=g)
    loss = DistillationLoss(t, 0.7, 0.3)(z, v, y)
    assert loss.item() == pytest.approx(reference_distillation(z.tolist(), v.tolist(), y.tolist(), t, 0.7, 0.3), rel=1e-10)


def test_gradient_is_the_closed_form_and_passes_gradcheck():
    t = 3.0
    z = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    v = torch.randn(4, 7, dtype=torch.float64)
    soft_cross_entropy(z, softmax_with_temperature(v, t), t).sum().backward()
    q, p = softmax_with_temperature(z.detach(), t), softmax_with_temperature(v, t)
    torch.testing.assert_close(z.grad, (q - p) / t)  # eq. 2
    y = torch.randint(0, 7, (4,))
    mask = torch.tensor([True, True, False, True])
    assert torch.autograd.gradcheck(lambda a: DistillationLoss(t, 0.5, 0.5)(a, v, y, mask), (z.detach().requires_grad_(),))
    assert torch.autograd.gradcheck(lambda a: LogitMatchingLoss()(a, v, mask), (z.detach().requires_grad_(),))


@pytest.mark.parametrize("t", [20.0, 100.0, 1000.0])
def test_high_temperature_gradient_approaches_logit_matching(t):
    """Eq. 4: for zero-mean logits, dC/dz_i -> (z_i - v_i) / (N T^2), N classes."""
    g = torch.Generator().manual_seed(1)
    n = 10
    z = torch.randn(3, n, generator=g, dtype=torch.float64)
    v = torch.randn(3, n, generator=g, dtype=torch.float64) * 2
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    z.requires_grad_()
    soft_cross_entropy(z, softmax_with_temperature(v, t), t).sum().backward()
    approx = (z.detach() - v) / (n * t * t)
    rel = ((z.grad - approx).norm() / approx.norm()).item()
    assert rel < 3.0 / t  # the error of the first-order expansion shrinks like 1/T
    # and T^2 * soft CE has the logit-matching gradient (z - v) / N in the limit
    z2 = z.detach().clone().requires_grad_()
    (t * t * soft_cross_entropy(z2, softmax_with_temperature(v, t), t)).sum().backward()
    z3 = z.detach().clone().requires_grad_()
    LogitMatchingLoss().per_frame(z3, v).sum().backward()
    assert ((z2.grad - z3.grad / n).norm() / (z3.grad / n).norm()).item() < 3.0 / t


def test_mask_ignores_padded_frames():
    z, v, y = torch.randn(5, 4), torch.randn(5, 4), torch.randint(0, 4, (5,))
    mask = torch.tensor([1, 1, 0, 1, 0], dtype=torch.bool)
    loss = DistillationLoss(2.0)
    assert loss(z, v, y, mask).item() == pytest.approx(loss(z[mask], v[mask], y[mask]).item(), rel=1e-6)


def test_ensemble_combinations():
    logp = torch.log_softmax(torch.randn(3, 4, 6), -1)
    arith = combine_log_probs(logp, "arithmetic").exp()
    torch.testing.assert_close(arith, logp.exp().mean(0))
    geo = combine_log_probs(logp, "geometric").exp()
    ref = logp.exp().prod(0) ** (1 / 3)
    torch.testing.assert_close(geo, ref / ref.sum(-1, keepdim=True))
    torch.testing.assert_close(ensemble_soft_targets(torch.zeros(2, 1, 4), 3.0), torch.full((1, 4), 0.25))
    with pytest.raises(ValueError):
        combine_log_probs(logp, "median")


def test_topk_soft_targets():
    logits = torch.tensor([[5.0, 1.0, 3.0, -2.0]])
    values, index, lse = topk_cache(logits, 2)
    assert index.tolist() == [[0, 2]] and lse.item() == pytest.approx(torch.logsumexp(logits, -1).item())
    p = topk_soft_targets(values, index, 4, temperature=2.0)
    full = softmax_with_temperature(logits, 2.0)
    torch.testing.assert_close(p[0, [0, 2]], full[0, [0, 2]] / full[0, [0, 2]].sum())
    assert p[0, 1] == 0 and p[0, 3] == 0
    # with the log-normalizer: the top-k log-probabilities are exact at T = 1, the tail shares the rest evenly
    q1 = topk_soft_targets(values, index, 4, temperature=1.0, log_norm=lse)
    exact = softmax_with_temperature(logits, 1.0)
    torch.testing.assert_close(q1[0, [0, 2]], exact[0, [0, 2]])
    torch.testing.assert_close(q1[0, 1], q1[0, 3])
    torch.testing.assert_close(q1[0, [1, 3]].sum(), exact[0, [1, 3]].sum())
    # k = C: exact at any temperature
    v4, i4, l4 = topk_cache(logits, 4)
    torch.testing.assert_close(topk_soft_targets(v4, i4, 4, 3.0, l4), softmax_with_temperature(logits, 3.0))
