"""Frame-classification DNNs: context window in, tied HMM-state (pdf) posteriors out.

Imports torch only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import torch
from torch import Tensor, nn


@dataclass
class DnnConfig:
    """Architecture of a frame classifier (ReLU MLP over a context window)."""

    feature_dim: int = field(default=40, metadata={"help": "Features per frame."})
    left_context: int = field(default=20, metadata={"help": "Frames of left context."})
    right_context: int = field(default=5, metadata={"help": "Frames of right context."})
    hidden_layers: int = field(default=4, metadata={"help": "Hidden layers."})
    hidden_dim: int = field(default=512, metadata={"help": "Units per hidden layer."})
    num_outputs: int = field(default=0, metadata={"help": "Output classes (pdfs); 0: from the alignments."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout after each hidden layer (training only)."})
    max_norm: float = field(
        default=0.0, metadata={"help": "Max L2 norm of each unit's incoming weights, as the paper's dropout nets (0: off)."}
    )

    @property
    def input_dim(self) -> int:
        return (self.left_context + 1 + self.right_context) * self.feature_dim

    def num_parameters(self) -> int:
        dims = [self.input_dim] + [self.hidden_dim] * self.hidden_layers + [self.num_outputs]
        return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


#: Named architectures. ``paper``: Hinton et al.'s speech DNN (8 x 2560 ReLU, 26 x 40 input,
#: about 14,000 outputs: 85M parameters). The others are for CPU recipes.
PRESETS: Dict[str, dict] = {
    "paper": dict(hidden_layers=8, hidden_dim=2560, num_outputs=14000),
    "medium": dict(hidden_layers=6, hidden_dim=1024),
    "small": dict(hidden_layers=4, hidden_dim=512),
    "tiny": dict(hidden_layers=2, hidden_dim=128),
    "micro": dict(hidden_layers=1, hidden_dim=32),
}


def preset(name: str, **overrides) -> DnnConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown DNN preset {name!r}; known: {sorted(PRESETS)}")
    values = dict(PRESETS[name])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return DnnConfig(**values)


class FrameDnn(nn.Module):
    """ReLU MLP frame classifier.

    .. math::
        h_0 = x,\\quad h_l = \\mathrm{dropout}(\\mathrm{ReLU}(W_l h_{l-1} + b_l)),\\quad z = W_{L+1} h_L + b_{L+1}

    Args:
        config: :class:`DnnConfig` (``num_outputs`` must be set).

    Shape:
        - Input: ``(B, (left + 1 + right) * feature_dim)`` context windows
          (:func:`asrdistill.features.context_window.gather_context_windows`).
        - Output: ``(B, num_outputs)`` logits.

    Example::

        >>> net = FrameDnn(DnnConfig(hidden_layers=2, hidden_dim=64, num_outputs=10))
        >>> net(torch.randn(8, 26 * 40)).shape
        torch.Size([8, 10])
    """

    def __init__(self, config: DnnConfig):
        super().__init__()
        if config.num_outputs <= 0:
            raise ValueError("DnnConfig.num_outputs must be set (the number of pdfs)")
        self.config = config
        dims = [config.input_dim] + [config.hidden_dim] * config.hidden_layers + [config.num_outputs]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers[:-1]:
            x = self.dropout(torch.relu(layer(x)))
        return self.layers[-1](x)

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        if self.config.max_norm > 0:
            for layer in self.layers:
                norms = layer.weight.norm(dim=1, keepdim=True)
                layer.weight.mul_(torch.clamp(self.config.max_norm / norms.clamp(min=1e-12), max=1.0))
