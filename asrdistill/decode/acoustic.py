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


class NnetScorer:
    """Scaled likelihoods of frame classifiers: ``log p(s | x) - log p(s)`` (the hybrid approach).

    Args:
        exp_dir: directory with ``member*.pt`` and ``log_priors.pt`` (an ensemble or a student).
        tree_dir: the GMM system whose tree and transition model define the pdfs (graph).
        cmvn_path: per-speaker CMVN statistics of the split.
        members: which members (indices into the sorted member files); default: all.
        combine: ``arithmetic`` (mean of posteriors) or ``geometric`` (normalized mean of log posteriors).
    """

    def __init__(self, exp_dir, tree_dir, cmvn_path=None, members=None, combine: str = "arithmetic"):
        from ..features.cmvn import CmvnStats
        from ..nnet.trainer import load_members

        _, self.tm = load_transition_model(tree_dir)
        model = load_members(exp_dir)
        if members is not None:
            from ..nnet.ensemble import StackedDnn

            nets = model.members()
            model = StackedDnn.from_members([nets[i] for i in members])
        self.model = model.eval()
        self.log_priors = torch.load(Path(exp_dir) / "log_priors.pt")
        self.cmvn = CmvnStats.load(cmvn_path) if cmvn_path else None
        if combine not in ("arithmetic", "geometric"):
            raise ValueError(f"combine must be arithmetic or geometric, got {combine!r}")
        self.combine = combine

    @torch.no_grad()
    def __call__(self, cut) -> torch.Tensor:
        from ..features.context_window import splice
        from ..features.loading import load_features
        from ..losses import combine_log_probs

        feats = torch.from_numpy(load_features(cut, self.cmvn))
        x = splice(feats, self.model.config.left_context, self.model.config.right_context)
        logp = torch.log_softmax(self.model(x), dim=-1)  # (N, T, C)
        return combine_log_probs(logp, self.combine) - self.log_priors
