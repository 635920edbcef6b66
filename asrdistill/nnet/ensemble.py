"""N frame classifiers trained in one step: parameters stacked along a member dimension.

Layer ``l`` of all members is one batched matrix product,

    H_l[n] = dropout(ReLU(H_{l-1}[n] @ W_l[n] + b_l[n])),   n = 1..N,

so a step over N members of batch B each is ``torch.baddbmm`` on ``(N, B, d)`` tensors:
large, GPU-friendly products instead of N small models. Each member starts from the
initialization of a :class:`~asrdistill.nnet.dnn.FrameDnn` built with its own seed
(``torch.manual_seed(seed); FrameDnn(config)``, so ``DnnConfig.init``, Kaiming by default,
applies to every member exactly as to a standalone network), and
:meth:`StackedDnn.member` / :meth:`StackedDnn.from_members` convert both ways, so a
stacked ensemble and N separately trained networks are interchangeable.

Imports torch only.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor, nn

from .dnn import DnnConfig, FrameDnn


class StackedDnn(nn.Module):
    """``N`` :class:`FrameDnn` members with stacked parameters.

    Member ``n`` is initialized as ``torch.manual_seed(seeds[n]); FrameDnn(config)``
    (``config.init``: see :class:`FrameDnn`), so ``member(n)`` equals that network
    parameter for parameter. ``weights[l]`` is ``(N, in, out)`` (``FrameDnn``'s weight
    transposed), ``biases[l]`` is ``(N, 1, out)``. Dropout (``config.dropout``) is applied
    after every hidden ReLU in training mode, as in :class:`FrameDnn`: independent masks
    for every member, frame and unit (a 2-D input shared by all members still gets one
    mask per member), none in evaluation mode.

    Args:
        config: architecture shared by all members.
        seeds: one initialization seed per member.

    Shape:
        - Input: ``(N, B, input_dim)`` (each member its own batch) or ``(B, input_dim)``
          (the same frames for every member, e.g. evaluation or an online teacher).
        - Output: ``(N, B, num_outputs)`` logits.

    Example::

        >>> ens = StackedDnn(DnnConfig(hidden_layers=2, hidden_dim=64, num_outputs=10), seeds=[0, 1, 2])
        >>> ens(torch.randn(3, 8, 26 * 40)).shape
        torch.Size([3, 8, 10])
    """

    def __init__(self, config: DnnConfig, seeds: Sequence[int]):
        super().__init__()
        self.config = config
        self.seeds = list(seeds)
        members = []
        for s in self.seeds:
            torch.manual_seed(s)
            members.append(FrameDnn(config))
        self._load_members(members)
        self.dropout = nn.Dropout(config.dropout)

    def _load_members(self, members: Sequence[FrameDnn]) -> None:
        n_layers = len(members[0].layers)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([m.layers[l].weight.detach().T.contiguous() for m in members])) for l in range(n_layers)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([m.layers[l].bias.detach()[None, :].clone() for m in members])) for l in range(n_layers)
        )

    @property
    def num_members(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.num_members, -1, -1)
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b.to(x.dtype), x, w.to(x.dtype))  # .to is free when the dtype already matches
            if l + 1 < len(self.weights):
                x = self.dropout(torch.relu(x))
        return x

    def member(self, i: int) -> FrameDnn:
        """Member ``i`` as a standalone :class:`FrameDnn` (a copy)."""
        net = FrameDnn(self.config)
        with torch.no_grad():
            for l, layer in enumerate(net.layers):
                layer.weight.copy_(self.weights[l][i].T)
                layer.bias.copy_(self.biases[l][i, 0])
        return net

    def members(self) -> List[FrameDnn]:
        return [self.member(i) for i in range(self.num_members)]

    @classmethod
    def from_members(cls, members: Sequence[FrameDnn], seeds: Sequence[int] = ()) -> "StackedDnn":
        obj = cls.__new__(cls)
        nn.Module.__init__(obj)
        obj.config = members[0].config
        obj.seeds = list(seeds) or list(range(len(members)))
        obj._load_members(members)
        obj.dropout = nn.Dropout(obj.config.dropout)
        return obj

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        if self.config.max_norm > 0:
            for w in self.weights:  # (N, in, out): each output unit's incoming weights are w[n, :, j]
                norms = w.norm(dim=1, keepdim=True)
                w.mul_(torch.clamp(self.config.max_norm / norms.clamp(min=1e-12), max=1.0))

    def member_grad_norms(self) -> Tensor:
        """``(N,)`` gradient norm of each member over all its parameters."""
        sq = None
        for p in list(self.weights) + list(self.biases):
            if p.grad is not None:
                g = p.grad.float().pow(2).flatten(1).sum(1)
                sq = g if sq is None else sq + g
        return sq.sqrt()

    @torch.no_grad()
    def clip_member_grads_(self, max_norm: float) -> Tensor:
        """Clip each member's gradient to ``max_norm`` independently; returns the norms before clipping."""
        norms = self.member_grad_norms()
        scale = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
        for p in list(self.weights) + list(self.biases):
            if p.grad is not None:
                p.grad.mul_(scale.view(-1, *([1] * (p.grad.dim() - 1))).to(p.grad.dtype))
        return norms
