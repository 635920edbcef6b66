"""Acoustic scorers: per-frame pdf log-likelihoods of a cut, for decoding.

A scorer turns a cut into a ``(T, num_pdfs)`` matrix of log-likelihoods; the decoder
scales it (acoustic scale) and indexes it by transition id. GMM systems give
log-likelihoods directly; a network gives log posteriors minus log priors (scaled
likelihoods, the hybrid approach), added by the network issues through the same
interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import torch


def load_transition_model(model_dir) -> Tuple[object, object]:
    """(ContextDependency, TransitionModel) of a model directory."""
    from ..gmm.model import GmmModel

    model = GmmModel.load(model_dir)
    return model.ctx, model.tm


class GmmScorer:
    """Log-likelihoods of a GMM system (``exp/mono``, ``exp/tri``)."""

    def __init__(self, model_dir, cmvn_path: Optional[Path] = None):
        from ..features.cmvn import CmvnStats
        from ..gmm.model import GmmModel

        self.model = GmmModel.load(model_dir)
        self.cmvn = CmvnStats.load(cmvn_path) if cmvn_path else None

    @property
    def tm(self):
        return self.model.tm

    def __call__(self, cut) -> torch.Tensor:
        from ..features.loading import load_features
        from ..gmm.features import gmm_features

        feats = gmm_features(load_features(cut, self.cmvn, norm_vars=False), self.model.feature_config)
        return self.model.gmm.log_likelihoods(feats)
