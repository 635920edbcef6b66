"""The generalist + specialists KL combination against brute force and the closed forms."""

import itertools

import pytest
import torch

from asrdistill.nnet.specialist_combination import (active_specialists, combination_objective,
                                                    combine_with_specialists)


def _problem(b, c, subsets, seed):
    g = torch.Generator().manual_seed(seed)
    s = max(len(x) for x in subsets)
    classes = torch.full((len(subsets), s), -1)
    for m, x in enumerate(subsets):
        classes[m, : len(x)] = torch.tensor(x)
    pg = torch.log_softmax(2 * torch.randn(b, c, generator=g, dtype=torch.float64), -1)
    logits = 2 * torch.randn(b, len(subsets), s + 1, generator=g, dtype=torch.float64)
    pad = torch.cat([torch.zeros(len(subsets), 1, dtype=torch.bool), classes < 0], 1)
    ps = torch.log_softmax(logits.masked_fill(pad, float("-inf")), -1)
    return pg, ps, classes


def _simplex_grid(c, steps):
    pts = [p for p in itertools.product(range(steps + 1), repeat=c - 1) if sum(p) <= steps]
    q = torch.tensor([list(p) + [steps - sum(p)] for p in pts], dtype=torch.float64) / steps
    return q.clamp(min=1e-12)


@pytest.mark.parametrize("solver", ["gradient", "em"])
@pytest.mark.parametrize("c,subsets,steps", [(3, [[0], [1, 2]], 300), (4, [[0, 1], [1, 2], [3]], 60)])
def test_solver_reaches_the_brute_force_minimum(solver, c, subsets, steps):
    k = len(subsets)
    pg, ps, classes = _problem(6, c, subsets, seed=c)
    active = torch.rand(6, k, generator=torch.Generator().manual_seed(c)) < 0.7
    active[0] = True
    log_q = combine_with_specialists(pg, ps, classes, active, solver=solver, max_steps=20000, tol=1e-10)
    assert torch.allclose(log_q.exp().sum(1), torch.ones(6, dtype=torch.float64))
    grid = _simplex_grid(c, steps)  # every q on a 1/steps lattice of the simplex
    for i in range(6):
        j = combination_objective(grid.log(), pg[i].expand(len(grid), -1), ps[i].expand(len(grid), -1, -1), classes,
                                  active[i].expand(len(grid), -1))
        best = int(j.argmin())
        mine = float(combination_objective(log_q[i : i + 1], pg[i : i + 1], ps[i : i + 1], classes, active[i : i + 1]))
        assert mine <= float(j[best]) + 1e-9  # never worse than the best lattice point
        assert (log_q[i].exp() - grid[best]).abs().max() <= 2 / steps  # and within two lattice steps of it


def test_gradient_and_em_agree_and_the_gradient_is_zero_at_the_optimum():
    subsets = [[0, 1, 2], [2, 3], [5, 6, 7, 8], [0, 9]]
    pg, ps, classes = _problem(50, 10, subsets, seed=2)
    active = torch.rand(50, 4, generator=torch.Generator().manual_seed(3)) < 0.6
    a = combine_with_specialists(pg, ps, classes, active, solver="em", max_steps=1000, tol=1e-12)
    b = combine_with_specialists(pg, ps, classes, active, solver="gradient", max_steps=2000, tol=1e-12)
    # gradient descent approaches the EM fixed point from above (slowly along small-q directions)
    fa, fb = (combination_objective(x, pg, ps, classes, active) for x in (a, b))
    assert (fa <= fb + 1e-12).all() and (fb - fa).max() < 2e-3
    torch.testing.assert_close(a.exp(), b.exp(), atol=1e-2, rtol=0)
    # autograd of the objective at the solution is zero (float64)
    z = a.clone().requires_grad_(True)
    combination_objective(torch.log_softmax(z, 1), pg, ps, classes, active).sum().backward()
    assert z.grad.abs().max() < 1e-7
    # and moving away increases the objective
    f1 = combination_objective(torch.log_softmax(a + 0.05 * torch.randn_like(a), 1), pg, ps, classes, active)
    assert (f1 >= fa - 1e-12).all()


def test_closed_forms():
    subsets = [[0, 1], [2, 3, 4]]
    pg, ps, classes = _problem(4, 5, subsets, seed=4)
    # no active specialist: the generalist itself
    none = torch.zeros(4, 2, dtype=torch.bool)
    torch.testing.assert_close(combine_with_specialists(pg, ps, classes, none), pg)
    # specialists with no dustbin mass: the arithmetic mean of the full-space distributions
    ps0 = ps.clone()
    ps0[:, :, 0] = float("-inf")
    ps0 = torch.log_softmax(ps0, -1)
    act = torch.tensor([[1, 0], [0, 1], [1, 1], [1, 1]], dtype=torch.bool)
    log_q = combine_with_specialists(pg, ps0, classes, act, solver="gradient")
    for i in range(4):
        w = pg[i].exp().clone()
        for m in range(2):
            if act[i, m]:
                cls = classes[m][classes[m] >= 0]
                w[cls] += ps0[i, m, 1 : 1 + len(cls)].exp()
        torch.testing.assert_close(log_q[i].exp(), w / (1 + act[i].sum()))
    # the iterative solver reaches the same point when started from scratch on that problem
    it = combine_with_specialists(pg, ps0, classes, act, solver="gradient", max_steps=5000, tol=1e-12)
    torch.testing.assert_close(it, log_q)


def test_active_specialists_from_the_generalists_top_classes():
    membership = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.bool)
    pg = torch.log(torch.tensor([[0.5, 0.3, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]]))
    assert active_specialists(pg, membership, 1).tolist() == [[True, False, False], [False, False, True]]
    assert active_specialists(pg, membership, 2).tolist() == [[True, False, True], [False, True, True]]
