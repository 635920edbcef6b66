"""Acoustic scorers: per-frame pdf log-likelihoods of a cut, for decoding.

A scorer turns a cut into a ``(T, num_pdfs)`` matrix of log-likelihoods; the decoder
scales it (acoustic scale) and indexes it by transition id. GMM systems give
log-likelihoods directly; a network gives log posteriors minus log priors (scaled
likelihoods, the hybrid approach), added by the network issues through the same
interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import torch

from ..utils.readers import reading
from .batch_scoring import BATCH_FRAMES


def load_transition_model(model_dir) -> Tuple[object, object]:
    """(ContextDependency, TransitionModel) of a model directory."""
    from ..gmm.model import GmmModel

    model = GmmModel.load(model_dir)
    return model.ctx, model.tm


class GmmScorer:
    """Log-likelihoods of a GMM system (``exp/mono``, ``exp/tri1``, ...); ``cmvn_path``: one statistics
    file or a list of them (their union), as :func:`asrdistill.features.cmvn.load_cmvn`.

    A SAT system is scored in one of two ways: ``speaker_independent=True`` uses its
    alignment model on unadapted features (the first pass of two-pass decoding), or
    ``fmllr`` (one ``trans.npz`` of :class:`~asrdistill.gmm.fmllr.SpeakerTransforms`, or a
    list: their union) adapts each cut's features with its speaker's transform (the
    second pass). Scoring a SAT system with neither is an error, not a silent fallback.
    """

    def __init__(self, model_dir, cmvn_path=None, speaker_independent: bool = False, fmllr=None):
        from ..features.cmvn import load_cmvn
        from ..gmm.model import GmmModel

        model = GmmModel.load(model_dir)
        if model.is_sat and not speaker_independent and not fmllr:
            raise ValueError(f"{model_dir} is a SAT system: decode it in two passes (speaker-independent, then fMLLR)")
        self.model = model.si_model() if speaker_independent else model
        self.front_end = self.model.front_end
        self.cmvn = load_cmvn(cmvn_path)
        self.fmllr = None
        if fmllr and not speaker_independent:
            from ..gmm.fmllr import SpeakerTransforms

            paths = [fmllr] if isinstance(fmllr, (str, Path)) else list(fmllr)
            self.fmllr = SpeakerTransforms()
            for path in paths:
                for spk, w in SpeakerTransforms.load(path).items():
                    if spk in self.fmllr:
                        raise ValueError(f"speaker {spk!r} has fMLLR transforms in two files ({path})")
                    self.fmllr[spk] = w

    @property
    def tm(self):
        return self.model.tm

    def features(self, cut) -> torch.Tensor:
        """The model-space features of ``cut`` (adapted with its speaker's fMLLR where given)."""
        from ..data.cuts import cut_speaker
        from ..features.loading import load_features

        fbank = load_features(cut, self.cmvn, norm_vars=False)
        return self.front_end(fbank, fmllr=self.fmllr[cut_speaker(cut)] if self.fmllr is not None else None)

    def __call__(self, cut) -> torch.Tensor:
        return self.model.gmm.log_likelihoods(self.features(cut))


class NnetScorer:
    """Scaled likelihoods of frame classifiers: ``log p(s | x) - log p(s)`` (the hybrid approach).

    Args:
        exp_dir: directory with ``member*.pt`` and ``log_priors.pt`` (an ensemble or a student).
        tree_dir: the GMM system whose tree and transition model define the pdfs (graph).
        cmvn_path: per-speaker CMVN statistics of the split (or a list of files: their union).
        members: which members (indices into the sorted member files); default: all.
        combine: ``arithmetic`` (mean of posteriors) or ``geometric`` (normalized mean of log posteriors).
        logit_bias: a ``bias_WORD.json`` of ``asrdistill distill bias``: its dev-tuned bias is added to
            the logits of the omitted word's classes.
        each_member: return every member's scores, ``(N, T, num_pdfs)``, instead of combining them.
    """

    def __init__(self, exp_dir, tree_dir, cmvn_path=None, members=None, combine: str = "arithmetic", logit_bias=None,
                 each_member: bool = False):
        import json

        from ..features.cmvn import load_cmvn
        from ..nnet.trainer import load_members

        _, self.tm = load_transition_model(tree_dir)
        model = load_members(exp_dir)
        if members is not None:
            from ..nnet.ensemble import StackedDnn

            nets = model.members()
            model = StackedDnn.from_members([nets[i] for i in members])
        self.model = model.eval()
        with reading(Path(exp_dir) / "log_priors.pt", "prior file"):
            self.log_priors = torch.load(Path(exp_dir) / "log_priors.pt")
        self.cmvn = load_cmvn(cmvn_path)
        if combine not in ("arithmetic", "geometric"):
            raise ValueError(f"combine must be arithmetic or geometric, got {combine!r}")
        self.combine, self.each_member = combine, each_member
        self.bias = torch.zeros(self.model.config.num_outputs)
        if logit_bias:
            b = json.loads(Path(logit_bias).read_text())
            self.bias[b["classes"]] = float(b["best_delta"])

    def to(self, device) -> "NnetScorer":
        """Score on ``device`` (features are read on the CPU and moved there per batch)."""
        self.model.to(device)
        self.log_priors, self.bias = self.log_priors.to(device), self.bias.to(device)
        return self

    def _scores(self, windows: torch.Tensor) -> torch.Tensor:
        from ..losses import combine_log_probs

        logp = torch.log_softmax(self.model(windows) + self.bias, dim=-1)  # (N, T, C)
        return (logp if self.each_member else combine_log_probs(logp, self.combine)) - self.log_priors

    @torch.no_grad()
    def __call__(self, cut) -> torch.Tensor:
        return self._scores(windows_of(cut, self.cmvn, self.model.config))

    @torch.no_grad()
    def score_batch(self, cuts, max_frames: int = BATCH_FRAMES) -> list:
        """The scores of several cuts (each as :meth:`__call__` gives it, on the CPU), the context windows of
        all of them in forward passes of at most ``max_frames`` frames on the scorer's device."""
        windows = [windows_of(c, self.cmvn, self.model.config) for c in cuts]
        lengths = [w.shape[0] for w in windows]
        x = torch.cat(windows)
        device = self.log_priors.device
        out = [self._scores(x[i : i + max_frames].to(device)).cpu() for i in range(0, x.shape[0], max_frames)]
        return list(torch.cat(out, dim=-2).split(lengths, dim=-2))


def windows_of(cut, cmvn, config) -> torch.Tensor:
    """``(T, (left + 1 + right) * D)`` context windows of every frame of a cut (CMVN applied)."""
    from ..features.context_window import splice
    from ..features.loading import load_features

    return splice(torch.from_numpy(load_features(cut, cmvn)), config.left_context, config.right_context)


class SpecialistScorer:
    """Scaled likelihoods of a generalist combined with its specialists: ``log q(s | x) - log p(s)``.

    Args:
        exp_dir: trained specialists (``specialists.json`` names the generalist).
        tree_dir, cmvn_path: as :class:`NnetScorer`.
        top_n: specialists of the generalist's ``top_n`` classes take part in each frame.
    """

    def __init__(self, exp_dir, tree_dir, cmvn_path=None, top_n: int = 1):
        from ..features.cmvn import load_cmvn
        from ..nnet.specialists import SpecialistSystem

        _, self.tm = load_transition_model(tree_dir)
        self.system = SpecialistSystem(exp_dir, top_n)
        self.log_priors = torch.load(self.system.generalist_dir / "log_priors.pt")
        self.cmvn = load_cmvn(cmvn_path)

    @torch.no_grad()
    def __call__(self, cut) -> torch.Tensor:
        _, log_q, _ = self.system.log_probs(windows_of(cut, self.cmvn, self.system.config))
        return log_q - self.log_priors
