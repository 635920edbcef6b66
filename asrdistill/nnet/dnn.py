"""Frame-classification DNNs: context window in, tied HMM-state (pdf) posteriors out.

Imports torch only.
"""

from __future__ import annotations

import functools
import math
from typing import Iterable

import torch
from torch import Tensor, nn

from .configs import INIT_CHOICES, PRESETS, DnnConfig, preset

#: The configs live in :mod:`.configs` (torch-free); re-exported here.
__all__ = ["INIT_CHOICES", "PRESETS", "DnnConfig", "preset", "FrameDnn", "init_linear_", "init_layers_"]


@torch.no_grad()
def init_linear_(weight: Tensor, bias: Tensor, gain: float) -> None:
    """He/Kaiming normal initialization of one linear layer: ``W ~ N(0, gain^2 / fan_in)``, ``b = 0``.

    ``weight`` is ``(..., out, in)`` (``nn.Linear`` layout, optionally with leading dims);
    ``fan_in = in``. Same as ``nn.init.kaiming_normal_(weight, mode="fan_in")`` with
    ``gain = sqrt(2)`` (ReLU) or ``1`` (linear).
    """
    weight.normal_(0.0, gain / math.sqrt(weight.shape[-1]))
    bias.zero_()


def init_layers_(layers: Iterable[nn.Linear]) -> None:
    """``kaiming`` initialization of an MLP: ReLU gain on all but the last layer, gain 1 on the last."""
    layers = list(layers)
    for i, layer in enumerate(layers):
        init_linear_(layer.weight, layer.bias, math.sqrt(2.0) if i + 1 < len(layers) else 1.0)


class FrameDnn(nn.Module):
    r"""ReLU MLP frame classifier.

    .. math::
        h_0 = x,\quad h_l = \mathrm{dropout}(\mathrm{ReLU}(W_l h_{l-1} + b_l)),\quad z = W_{L+1} h_L + b_{L+1}

    Initialization (``config.init``):

    * ``"kaiming"`` (default; He et al., 2015, "Delving deep into rectifiers"). Hidden layers
      :math:`l = 1..L`:

      .. math::
          W_l \sim \mathcal{N}\left(0, \frac{2}{n_{l-1}}\right),\quad b_l = 0,

      with :math:`n_{l-1}` the layer's fan-in. With zero-mean, symmetric pre-activations
      :math:`a_l = W_l h_{l-1}`, :math:`\mathrm{Var}(a_l) = n_{l-1}\,\mathrm{Var}(W_l)\,
      \mathbb{E}[h_{l-1}^2] = 2\,\mathbb{E}[h_{l-1}^2]` and the ReLU keeps half of it,
      :math:`\mathbb{E}[h_l^2] = \tfrac12 \mathrm{Var}(a_l) = \mathbb{E}[h_{l-1}^2]`: the RMS of
      the activations is the same at every depth. The inputs are CMVN-normalized spliced
      fbank (:math:`\mathbb{E}[x_i^2] = 1`), so every hidden layer starts at RMS about 1 and
      the gradients reaching the first layer of a deep (``paper``: 8 x 2560) stack are
      neither vanishing nor exploding. Output layer:

      .. math::
          W_{L+1} \sim \mathcal{N}\left(0, \frac{1}{n_L}\right),\quad b_{L+1} = 0,

      the same rule with gain 1 (no ReLU follows; LeCun's init): the logits start with
      variance :math:`\mathbb{E}[h_L^2] \approx 1`, so the initial posteriors are close to
      uniform without being flat (initial cross-entropy about :math:`\ln C + \tfrac12`).
      The ReLU gain there would double the logit variance, i.e. confident random
      predictions, for no benefit.

    * ``"torch"``: ``nn.Linear``'s default, :math:`W, b \sim \mathcal{U}(-1/\sqrt{n}, 1/\sqrt{n})`,
      :math:`\mathrm{Var}(W) = 1/(3n)`: each ReLU layer multiplies :math:`\mathbb{E}[h^2]` by
      :math:`1/6` (RMS by 0.41) until the bias term :math:`\mathrm{Var}(b) = 1/(3n)` takes
      over; through the ``paper`` preset the hidden RMS falls from 0.41 to about 0.009
      (fixed point :math:`\mathbb{E}[h^2] = 1/(5n)`). Kept so old behaviour can be reproduced.

    Both are deterministic given the global RNG state (``torch.manual_seed``), which is how
    :class:`~asrdistill.nnet.ensemble.StackedDnn` seeds its members. Dropout (``config.dropout``
    = p) is inverted dropout after every hidden ReLU, in training mode only.

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
        if config.init == "torch":
            linear = nn.Linear
        else:  # allocate only (no wasted default draw): reset_parameters draws the parameters once
            linear = functools.partial(nn.utils.skip_init, nn.Linear, device=torch.get_default_device())
        self.layers = nn.ModuleList(linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        if config.init != "torch":
            self.reset_parameters()
        self.dropout = nn.Dropout(config.dropout)

    def reset_parameters(self) -> None:
        """Draw all parameters afresh with ``config.init`` (from the global RNG)."""
        if self.config.init == "torch":
            for layer in self.layers:
                layer.reset_parameters()
        else:
            init_layers_(self.layers)

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
