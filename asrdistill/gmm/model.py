"""A trained GMM-HMM system: tree, transition model, GMMs and front end.

Saved in ``exp/<name>/``: ``final.mdl`` (torch file with the tree and transition model
in Kaldi's binary serialization, the GMM tensors, the front-end config and, for LDA+MLLT
and SAT systems, the feature transform), ``tree`` (Kaldi's binary tree file, readable by
Kaldi tools) and, for LDA+MLLT systems, ``final.mat`` (the transform as text, one row per
line). A SAT system also holds its speaker-independent alignment model (Kaldi's
``final.alimdl``: same Gaussians, trained on unadapted features) for the first pass of
two-pass alignment and decoding.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

import torch

from ..utils.atomic import atomic_path
from ..utils.config import config_from_dict, config_to_dict
from ..utils.readers import reading
from .diag_gmm import DiagGmmSet
from .features import GmmFeatureConfig, GmmFrontEnd
from .fmllr import FmllrOptions
from .tree import context_dependency_from_bytes


@dataclass
class GmmModel:
    ctx_bytes: bytes
    tm: object  # kaldi_hmm_gmm.TransitionModel
    gmm: DiagGmmSet
    feature_config: GmmFeatureConfig
    lang_dir: str
    transform: Optional[np.ndarray] = None  # LDA+MLLT: (D, D_in + 1) on the spliced cepstra
    ali_gmm: Optional[DiagGmmSet] = None  # SAT: the speaker-independent alignment model
    fmllr_options: Optional[FmllrOptions] = None  # SAT: how its fMLLR transforms are estimated

    @property
    def front_end(self) -> GmmFrontEnd:
        return GmmFrontEnd(self.feature_config, self.transform)

    @property
    def is_sat(self) -> bool:
        return self.ali_gmm is not None

    @property
    def kind(self) -> str:
        return "sat" if self.is_sat else ("lda_mllt" if self.transform is not None else "deltas")

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
            "transform": None if self.transform is None else np.asarray(self.transform, dtype=np.float64),
            "ali_gmm": None if self.ali_gmm is None else self.ali_gmm.state_dict(),
            "fmllr_options": None if self.fmllr_options is None else config_to_dict(self.fmllr_options),
        }
        with atomic_path(exp_dir / "final.mdl") as tmp:
            torch.save(state, tmp)
        with atomic_path(exp_dir / "tree") as tmp:
            self.ctx.write(True, str(tmp))
        if self.transform is not None:
            with atomic_path(exp_dir / "final.mat") as tmp:
                np.savetxt(tmp, self.transform)

    @classmethod
    def load(cls, exp_dir) -> "GmmModel":
        path = Path(exp_dir) / "final.mdl"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; train the model first")
        with reading(path, "GMM system"):
            state = torch.load(path, weights_only=False)
            return cls(
                ctx_bytes=state["ctx"],
                tm=pickle.loads(state["tm"]),
                gmm=DiagGmmSet.from_state_dict(state["gmm"]),
                feature_config=config_from_dict(GmmFeatureConfig, state["feature_config"]),
                lang_dir=state["lang_dir"],
                transform=state.get("transform"),
                ali_gmm=DiagGmmSet.from_state_dict(state["ali_gmm"]) if state.get("ali_gmm") is not None else None,
                fmllr_options=config_from_dict(FmllrOptions, state["fmllr_options"]) if state.get("fmllr_options") else None,
            )

    def si_model(self) -> "GmmModel":
        """The speaker-independent first-pass model of a SAT system (itself otherwise)."""
        if self.ali_gmm is None:
            return self
        return GmmModel(self.ctx_bytes, self.tm, self.ali_gmm, self.feature_config, self.lang_dir, self.transform)

    @property
    def fmllr_opts(self) -> FmllrOptions:
        """How this SAT system estimates fMLLR (its training options; the defaults for older models)."""
        return self.fmllr_options or FmllrOptions()
