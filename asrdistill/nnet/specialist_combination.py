r"""Combining a generalist with specialists that have a dustbin class (Hinton et al., 2015, section 5.4).

For a frame, the generalist gives a full distribution :math:`p^g` over the ``C`` classes;
each active specialist :math:`m` gives a distribution :math:`p^m` over its subset
:math:`S_m` plus one dustbin class that stands for all the others (probability
:math:`d_m`). The combined distribution is

.. math::
    q = \mathrm{softmax}(z),\qquad
    z^\star = \arg\min_z \; \mathrm{KL}(p^g \,\|\, q) + \sum_{m \in A} \mathrm{KL}(p^m \,\|\, q^{(m)}),

where :math:`q^{(m)}` is :math:`q` seen through specialist :math:`m`: its classes of
:math:`S_m` as they are, and the dustbin with :math:`q`'s mass outside :math:`S_m`,
:math:`Q_m = \sum_{c \notin S_m} q_c`. Dropping constants the objective is

.. math::
    J = -\sum_c w_c \log q_c - \sum_{m \in A} d_m \log Q_m,\qquad
    w = p^g + \sum_{m \in A} p^m \text{ (each } p^m \text{ placed on its classes)},

which is convex in :math:`q` (each term is minus the log of a linear function of
:math:`q`), so the minimum is unique. Its gradient with respect to the logits is

.. math::
    \frac{\partial J}{\partial z} = (1 + |A|)\, q - w - \sum_{m \in A} d_m\, r^{(m)},\qquad
    r^{(m)}_c = \frac{q_c [c \notin S_m]}{Q_m},

(the specialist's dustbin mass shared out over the classes it stands for, in
proportion to :math:`q`). Two batched solvers use it:

* ``gradient``: gradient descent on ``z`` with step ``lr / (1 + |A|)`` (the inverse of the
  gradient's Lipschitz bound), the method of the paper. Its steps along classes of small
  probability are small (the curvature there is about :math:`(1 + |A|) q_c`), so it needs
  thousands of iterations for three-digit agreement;
* ``em`` (the default): the fixed-point iteration
  :math:`q \leftarrow (w + \sum_m d_m r^{(m)}) / (1 + |A|)` (where the gradient is zero),
  which is EM for a multinomial observed partly through the dustbins: it decreases
  :math:`J` monotonically, reaches the same minimum and needs tens of iterations.

Closed forms are used where they apply: a frame with no active specialist gets
:math:`q = p^g`, and a frame whose active specialists put no mass on their dustbins gets
the arithmetic mean :math:`q = w / (1 + |A|)`, the minimizer of a sum of
:math:`\mathrm{KL}(p_i \,\|\, q)` over full distributions. (The geometric mean,
:func:`asrdistill.losses.combine_log_probs` with ``geometric``, is the closed form of the
reverse divergences :math:`\sum_i \mathrm{KL}(q \,\|\, p_i)`.)

Imports torch only.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def _pairs(active: Tensor) -> Tuple[Tensor, Tensor]:
    frames, specs = torch.nonzero(active, as_tuple=True)
    return frames, specs


def _placed(spec_log_probs: Tensor, classes: Tensor, frames: Tensor, specs: Tensor, num_classes: int):
    """Per active (frame, specialist) pair: its class probabilities placed in ``C`` (``(E, C)``),
    its dustbin probability ``(E,)`` and the mask of the classes it does *not* cover ``(E, C)``."""
    e = len(frames)
    local = spec_log_probs[frames, specs].exp()  # (E, S + 1), dustbin first
    cls = classes[specs]  # (E, S), -1 = padding
    valid = cls >= 0
    placed = torch.zeros(e, num_classes + 1, dtype=local.dtype, device=local.device)
    placed.scatter_add_(1, torch.where(valid, cls, num_classes), torch.where(valid, local[:, 1:], 0))
    outside = torch.ones(e, num_classes + 1, dtype=torch.bool, device=local.device)
    outside.scatter_(1, torch.where(valid, cls, num_classes), False)
    return placed[:, :num_classes], local[:, 0], outside[:, :num_classes]


def combination_objective(log_q: Tensor, gen_log_probs: Tensor, spec_log_probs: Tensor, classes: Tensor,
                          active: Tensor) -> Tensor:
    r"""``(B,)`` value of :math:`\mathrm{KL}(p^g\|q) + \sum_{m \in A} \mathrm{KL}(p^m\|q^{(m)})` per frame.

    Args:
        log_q: ``(B, C)`` log of the combined distribution.
        gen_log_probs: ``(B, C)`` generalist log-probabilities.
        spec_log_probs: ``(B, K, S + 1)`` specialist log-probabilities, dustbin in column 0,
            classes of subset ``m`` in columns ``1..|S_m|`` (padding: ``-inf``).
        classes: ``(K, S)`` class of each specialist column (``-1``: padding).
        active: ``(B, K)`` bool, the specialists that take part for each frame.
    """
    pg = gen_log_probs.exp()
    out = (pg * (gen_log_probs - log_q)).nan_to_num().sum(1)
    frames, specs = _pairs(active)
    if len(frames):
        lp = spec_log_probs[frames, specs]
        cls = classes[specs]
        valid = cls >= 0
        lq = log_q[frames].gather(1, cls.clamp(min=0))
        terms = torch.where(valid, lp[:, 1:].exp() * (lp[:, 1:] - lq), 0).nan_to_num().sum(1)
        _, _, outside = _placed(spec_log_probs, classes, frames, specs, log_q.shape[1])
        log_dust = torch.logsumexp(log_q[frames].masked_fill(~outside, float("-inf")), 1)
        d = lp[:, 0].exp()
        terms = terms + torch.where(d > 0, d * (lp[:, 0] - log_dust), 0)
        out = out.index_add(0, frames, terms)
    return out


@torch.no_grad()
def combine_with_specialists(gen_log_probs: Tensor, spec_log_probs: Tensor, classes: Tensor, active: Tensor,
                             solver: str = "em", max_steps: int = 200, lr: float = 1.0,
                             tol: float = 1e-4) -> Tensor:
    r"""The distribution ``q`` closest (in the summed KL above) to a generalist and its active specialists.

    Args:
        gen_log_probs: ``(B, C)`` generalist log-probabilities :math:`\log p^g`.
        spec_log_probs: ``(B, K, S + 1)`` specialist log-probabilities, dustbin in column 0
            (after the dustbin correction), subset classes in columns ``1..|S_m|``, padding ``-inf``.
        classes: ``(K, S)`` int, the class of each subset column, ``-1`` for padding.
        active: ``(B, K)`` bool, which specialists take part for each frame.
        solver: ``em`` (the fixed-point iteration) or ``gradient`` (gradient descent on ``z``).
        max_steps: iterations at most.
        lr: step of ``gradient``, in units of ``1 / (1 + |A|)``.
        tol: a frame is done when no log-probability changed by more than this in a step.

    Returns:
        ``(B, C)`` :math:`\log q`.

    Example::

        >>> pg = torch.log_softmax(torch.randn(2, 5), -1)
        >>> classes = torch.tensor([[0, 1]])                        # one specialist for classes 0 and 1
        >>> ps = torch.log_softmax(torch.randn(2, 1, 3), -1)       # its dustbin, class 0, class 1
        >>> log_q = combine_with_specialists(pg, ps, classes, torch.tensor([[True], [False]]))
        >>> torch.allclose(log_q[1], pg[1])                         # no active specialist: the generalist
        True
    """
    if solver not in ("gradient", "em"):
        raise ValueError(f"solver must be gradient or em, got {solver!r}")
    b, c = gen_log_probs.shape
    dtype = torch.float64
    log_q = gen_log_probs.to(dtype).clone()
    frames, specs = _pairs(active)
    if not len(frames):
        return log_q.to(gen_log_probs.dtype)
    placed, dust, outside = _placed(spec_log_probs.to(dtype), classes, frames, specs, c)
    n_active = active.sum(1).to(dtype)  # (B,)
    w = gen_log_probs.to(dtype).exp().index_add(0, frames, placed)
    with_dust = torch.zeros(b, dtype=torch.bool, device=log_q.device).index_fill_(0, frames[dust > 0], True)
    # closed form (arithmetic mean) for frames with active specialists but no dustbin mass
    mean_only = (n_active > 0) & ~with_dust
    log_q[mean_only] = (w[mean_only] / (1 + n_active[mean_only, None])).log()
    rows = torch.nonzero(with_dust).flatten()
    if not len(rows):
        return log_q.to(gen_log_probs.dtype)
    # iterate on the frames that need it, dropping each frame from the working set once it has converged
    row_of = torch.full((b,), -1, dtype=torch.long, device=log_q.device)
    row_of[rows] = torch.arange(len(rows), device=log_q.device)
    keep = with_dust[frames]
    pf, d, out_mask = row_of[frames[keep]], dust[keep], outside[keep]
    w, scale = w[rows], (1 + n_active[rows])[:, None]
    z = torch.log_softmax((w / scale).log(), 1)  # start: the arithmetic mean, ignoring the dustbins
    for _ in range(max_steps):
        r = torch.softmax(z[pf].masked_fill(~out_mask, float("-inf")), 1)  # (E, C)
        target = w.index_add(0, pf, d[:, None] * r)  # w + sum_m d_m r^(m); the gradient is scale * q - target
        new = target.log() if solver == "em" else z - lr * (z.exp() - target / scale)
        new = torch.log_softmax(new, 1)
        done = (new - z).abs().amax(1) < tol
        z = new
        if bool(done.any()):
            log_q[rows[done]] = z[done]
            live = ~done
            if not bool(live.any()):
                break
            remap = torch.cumsum(live, 0) - 1
            pair_live = live[pf]
            pf, d, out_mask = remap[pf[pair_live]], d[pair_live], out_mask[pair_live]
            rows, w, scale, z = rows[live], w[live], scale[live], z[live]
    else:
        log_q[rows] = z
    return log_q.to(gen_log_probs.dtype)


def active_specialists(gen_log_probs: Tensor, membership: Tensor, top_n: int = 1) -> Tensor:
    """``(B, K)`` bool: specialists whose subset holds one of the generalist's ``top_n`` classes.

    Args:
        gen_log_probs: ``(B, C)``.
        membership: ``(K, C)`` bool, class ``c`` in subset ``m``.
    """
    top = gen_log_probs.topk(top_n, dim=1).indices  # (B, n)
    return membership.T[top].any(1)  # (B, n, K) -> (B, K)
