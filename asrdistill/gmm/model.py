"""A trained GMM-HMM system: tree, transition model, GMMs and front-end config.

Saved in ``exp/<name>/``: ``final.mdl`` (torch file with the tree and transition model
in Kaldi's binary serialization and the GMM tensors) and ``tree`` (Kaldi's binary tree
file, readable by Kaldi tools).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from ..utils.atomic import atomic_path
from ..utils.config import config_from_dict, config_to_dict
from .diag_gmm import DiagGmmSet
from .features import GmmFeatureConfig
from .tree import context_dependency_from_bytes


@dataclass
class GmmModel:
    ctx_bytes: bytes
    tm: object  # kaldi_hmm_gmm.TransitionModel
    gmm: DiagGmmSet
    feature_config: GmmFeatureConfig
    lang_dir: str

    @property
    def ctx(self):
        return context_dependency_from_bytes(self.ctx_bytes)

    @property
    def num_pdfs(self) -> int:
        return self.tm.num_pdfs

    def save(self, exp_dir) -> None:
        exp_dir = Path(exp_dir)
        exp_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "ctx": self.ctx_bytes,
            "tm": pickle.dumps(self.tm),
            "gmm": self.gmm.state_dict(),
            "feature_config": config_to_dict(self.feature_config),
            "lang_dir": self.lang_dir,
        }
        with atomic_path(exp_dir / "final.mdl") as tmp:
            torch.save(state, tmp)
        with atomic_path(exp_dir / "tree") as tmp:
            self.ctx.write(True, str(tmp))

    @classmethod
    def load(cls, exp_dir) -> "GmmModel":
        path = Path(exp_dir) / "final.mdl"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; train the model first")
        state = torch.load(path, weights_only=False)
        return cls(
            ctx_bytes=state["ctx"],
            tm=pickle.loads(state["tm"]),
            gmm=DiagGmmSet.from_state_dict(state["gmm"]),
            feature_config=config_from_dict(GmmFeatureConfig, state["feature_config"]),
            lang_dir=state["lang_dir"],
        )
