"""Distillation losses (Hinton, Vinyals & Dean, 2015), importable with torch alone.

Notation: student logits ``z``, teacher logits ``v``, temperature ``T``, classes ``C``;
``q = softmax(z / T)`` (student), ``p = softmax(v / T)`` (soft targets).

* :func:`softmax_with_temperature` / :func:`log_softmax_with_temperature`: ``softmax(z / T)``.
* :func:`soft_cross_entropy`: ``-sum_i p_i log q_i`` per frame. Its gradient is
  ``dC/dz_i = (q_i - p_i) / T`` (the paper's eq. 2), which for large ``T`` and zero-mean
  logits approaches ``(z_i - v_i) / (C T^2)`` (eq. 4): matching logits.
* :class:`DistillationLoss`: ``w_soft T^2 CE(p, q) + w_hard CE(y, softmax(z))``; the ``T^2``
  keeps the soft term's gradients on the scale of the hard term's when ``T`` changes.
* :class:`LogitMatchingLoss`: ``0.5 sum_i ((z_i - mean z) - (v_i - mean v))^2``, the
  high-temperature limit.
* :func:`combine_log_probs`: an ensemble's distribution, arithmetic or geometric mean.
* :func:`topk_soft_targets`: soft targets from cached top-k teacher logits (+ log-normalizer).

Every per-frame loss accepts a ``mask`` (``True`` = real frame) for padded batches and
averages over the real frames.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_temperature(temperature) -> None:
    if isinstance(temperature, Tensor):
        if (temperature <= 0).any():
            raise ValueError("temperatures must be positive")
    elif temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def softmax_with_temperature(logits: Tensor, temperature: float = 1.0, dim: int = -1) -> Tensor:
    """``softmax(logits / T)``: higher ``T`` gives a softer distribution.

    Example::

        >>> softmax_with_temperature(torch.tensor([2.0, 0.0]), 1.0)
        tensor([0.8808, 0.1192])
        >>> softmax_with_temperature(torch.tensor([2.0, 0.0]), 4.0)
        tensor([0.6225, 0.3775])

    ``temperature`` may be a tensor broadcastable to ``logits`` (one per row or member).
    """
    _check_temperature(temperature)
    return torch.softmax(logits / temperature, dim=dim)


def log_softmax_with_temperature(logits: Tensor, temperature: float = 1.0, dim: int = -1) -> Tensor:
    _check_temperature(temperature)
    return torch.log_softmax(logits / temperature, dim=dim)


def _masked_mean(per_frame: Tensor, mask: Optional[Tensor]) -> Tensor:
    if mask is None:
        return per_frame.mean()
    mask = mask.to(per_frame.dtype)
    return (per_frame * mask).sum() / mask.sum().clamp(min=1)


def soft_cross_entropy(student_logits: Tensor, soft_targets: Tensor, temperature: float = 1.0) -> Tensor:
    """Per-frame ``-sum_i p_i log softmax(z / T)_i``.

    Args:
        student_logits: ``(..., C)`` logits ``z``.
        soft_targets: ``(..., C)`` target distribution ``p`` (rows sum to one).
        temperature: ``T`` applied to the student.

    Returns:
        ``(...)`` cross-entropy per frame.
    """
    return -(soft_targets * log_softmax_with_temperature(student_logits, temperature)).sum(-1)


class DistillationLoss(nn.Module):
    r"""Weighted sum of soft-target and hard-label cross-entropy.

    .. math::
        \mathcal{L} = w_{soft}\, T^2\, \mathrm{CE}\big(\mathrm{softmax}(v/T), \mathrm{softmax}(z/T)\big)
                    + w_{hard}\, \mathrm{CE}\big(y, \mathrm{softmax}(z)\big)

    averaged over (unmasked) frames.

    Args:
        temperature: ``T`` for both teacher and student in the soft term.
        soft_weight: ``w_soft``.
        hard_weight: ``w_hard`` (0 disables the hard term; then ``targets`` may be None).
        scale_by_t2: multiply the soft term by ``T^2`` (the paper's prescription).

    Shape:
        - student_logits: ``(B, C)`` or ``(..., C)``.
        - teacher: ``(B, C)`` teacher logits (``teacher_is_logits=True``) or soft targets
          already at temperature ``T``.
        - targets: ``(B,)`` hard labels, or None.
        - mask: ``(B,)`` bool, True for real frames, or None.
        - Output: scalar.

    Example::

        >>> loss = DistillationLoss(temperature=2.0, soft_weight=0.5, hard_weight=0.5)
        >>> z = torch.randn(8, 10, requires_grad=True)
        >>> loss(z, torch.randn(8, 10), torch.randint(0, 10, (8,))).backward()
    """

    def __init__(self, temperature: float = 2.0, soft_weight: float = 0.5, hard_weight: float = 0.5,
                 scale_by_t2: bool = True):
        super().__init__()
        _check_temperature(temperature)
        self.temperature = temperature
        self.soft_weight = soft_weight
        self.hard_weight = hard_weight
        self.scale_by_t2 = scale_by_t2

    def per_frame(self, student_logits: Tensor, teacher: Tensor, targets: Optional[Tensor] = None,
                  teacher_is_logits: bool = True) -> Tensor:
        t = self.temperature
        p = softmax_with_temperature(teacher, t) if teacher_is_logits else teacher
        loss = self.soft_weight * (t * t if self.scale_by_t2 else 1.0) * soft_cross_entropy(student_logits, p, t)
        if self.hard_weight:
            if targets is None:
                raise ValueError("hard_weight > 0 needs hard targets")
            loss = loss + self.hard_weight * F.cross_entropy(
                student_logits.reshape(-1, student_logits.shape[-1]), targets.reshape(-1), reduction="none"
            ).view(targets.shape)
        return loss

    def forward(self, student_logits: Tensor, teacher: Tensor, targets: Optional[Tensor] = None,
                mask: Optional[Tensor] = None, teacher_is_logits: bool = True) -> Tensor:
        return _masked_mean(self.per_frame(student_logits, teacher, targets, teacher_is_logits), mask)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, soft_weight={self.soft_weight}, hard_weight={self.hard_weight}"


class LogitMatchingLoss(nn.Module):
    r"""Squared error between zero-meaned logits, the high-temperature limit of distillation.

    .. math::
        \mathcal{L} = \frac{1}{2} \sum_i \big((z_i - \bar z) - (v_i - \bar v)\big)^2

    per frame, averaged over (unmasked) frames. Subtracting the means makes it invariant
    to a constant shift of either set of logits, as softmax is.

    Shape:
        ``(B, C)`` student and teacher logits, optional ``(B,)`` mask -> scalar.

    Example::

        >>> LogitMatchingLoss()(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 2.0]]))
        tensor(0.)
    """

    def per_frame(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        z = student_logits - student_logits.mean(-1, keepdim=True)
        v = teacher_logits - teacher_logits.mean(-1, keepdim=True)
        return 0.5 * (z - v).pow(2).sum(-1)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        return _masked_mean(self.per_frame(student_logits, teacher_logits), mask)


def combine_log_probs(log_probs: Tensor, method: str = "arithmetic", dim: int = 0) -> Tensor:
    """Combine members' log distributions ``(N, ..., C)`` (along ``dim``) into one ``(..., C)``.

    ``arithmetic``: ``log mean_n p_n``. ``geometric``: ``log`` of the renormalized
    ``prod_n p_n^{1/N}``.
    """
    n = log_probs.shape[dim]
    if method == "arithmetic":
        return torch.logsumexp(log_probs, dim=dim) - math.log(n)
    if method == "geometric":
        m = log_probs.mean(dim=dim)
        return m - torch.logsumexp(m, dim=-1, keepdim=True)
    raise ValueError(f"unknown combination {method!r} (arithmetic or geometric)")


def ensemble_soft_targets(member_logits: Tensor, temperature: float = 1.0, method: str = "arithmetic") -> Tensor:
    """Soft targets of an ensemble at temperature ``T``: combine the members' ``softmax(v / T)``.

    ``member_logits``: ``(N, B, C)`` -> ``(B, C)`` probabilities.
    """
    return combine_log_probs(log_softmax_with_temperature(member_logits, temperature), method).exp()


def topk_soft_targets(top_logits: Tensor, top_index: Tensor, num_classes: int, temperature=1.0,
                      log_norm: Optional[Tensor] = None) -> Tensor:
    """Dense soft targets from cached top-k teacher logits.

    With the log-normalizer ``log_norm = logsumexp(v)`` of the full logits, the teacher's
    probability mass outside the top ``k`` (at ``T = 1``) is known exactly,
    ``m = 1 - sum_top exp(v_i - log_norm)``; it is spread evenly over the other ``C - k``
    classes, whose log-probabilities are then ``log(m / (C - k))``, and all ``C``
    log-probabilities are divided by ``T`` and renormalized. Without ``log_norm`` the top
    ``k`` are renormalized among themselves (the tail is dropped).

    Args:
        top_logits: ``(B, k)`` the largest teacher logits.
        top_index: ``(B, k)`` their classes.
        num_classes: ``C``.
        temperature: ``T`` (a number, or a tensor broadcastable to ``(B, 1)``).
        log_norm: ``(B,)`` ``logsumexp`` of all ``C`` teacher logits, or None.

    Returns:
        ``(B, C)`` probabilities.
    """
    top = top_logits.float()
    if log_norm is None:
        p = softmax_with_temperature(top, temperature)
        return torch.zeros(top.shape[0], num_classes, device=top.device).scatter_(1, top_index.long(), p)
    _check_temperature(temperature)
    k = top.shape[1]
    top_logp = top - log_norm.float()[:, None]
    tail = (1.0 - top_logp.exp().sum(1, keepdim=True)).clamp(min=1e-12) / max(num_classes - k, 1)
    dense = tail.log().expand(-1, num_classes).clone().scatter_(1, top_index.long(), top_logp)
    return torch.softmax(dense / temperature, dim=-1)


def topk_cache(logits: Tensor, k: int) -> Tuple[Tensor, Tensor, Tensor]:
    """What a cached teacher stores per frame: top-k logits, their classes, and ``log sum exp`` of all logits."""
    values, index = logits.topk(k, dim=-1)
    return values, index, torch.logsumexp(logits, dim=-1)
