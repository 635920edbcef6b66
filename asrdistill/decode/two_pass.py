"""Two-pass decoding of a SAT system (Kaldi's ``decode_fmllr.sh``).

Pass 1 decodes with the system's speaker-independent alignment model on unadapted
features (``decode_{split}.si``). Its best paths (transition ids, one per frame) give,
per speaker, fMLLR statistics of the unadapted features under the SAT model (silence
frames weighted by ``silence_weight``, Kaldi: 0), from which each speaker's transform
is estimated (``trans.npz`` in the pass-2 directory). Pass 2 decodes the adapted
features with the SAT model. No reference transcript is used: the adaptation is
unsupervised, as in Kaldi.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

import numpy as np
import torch

from ..gmm.fmllr import FmllrOptions
from ..utils.readers import read_cuts

log = logging.getLogger(__name__)


def fmllr_from_best_paths(model_dir, cuts_path, cmvn_path, best_paths: Dict[str, np.ndarray], out_path,
                          options: Optional[FmllrOptions] = None):
    """Per-speaker fMLLR of a SAT system from first-pass best paths; saved to ``out_path``.

    ``best_paths``: cut id -> transition ids (a cut whose path does not cover all its
    frames is left out and counted in the log). ``options``: default, those the system was
    trained with. Returns the
    :class:`~asrdistill.gmm.fmllr.SpeakerTransforms`.
    """
    from ..data.cuts import cut_speaker
    from ..features.cmvn import load_cmvn
    from ..features.loading import load_features
    from ..gmm.fmllr import FmllrStats, estimate_transforms
    from ..gmm.model import GmmModel
    from ..gmm.transitions import TransitionTables
    from ..lang.lang_dir import LangDir

    model = GmmModel.load(model_dir)
    if not model.is_sat:
        raise ValueError(f"{model_dir} is not a SAT system")
    options = options or model.fmllr_opts
    lang = LangDir(model.lang_dir)
    tables = TransitionTables.from_model(model.tm, lang.topology())
    silence = np.isin(tables.phone, lang.silence_phones)
    cmvn = load_cmvn(cmvn_path)
    front = model.front_end
    by_speaker: Dict[str, list] = {}  # speaker -> [(features, transition ids)]
    skipped = 0
    for cut in read_cuts(cuts_path):
        tids = best_paths.get(cut.id)
        if tids is None:
            skipped += 1
            continue
        feats = front(load_features(cut, cmvn, norm_vars=False))
        if len(tids) != feats.shape[0]:
            skipped += 1
            continue
        by_speaker.setdefault(cut_speaker(cut), []).append((feats, tids))
    stats: Dict[str, FmllrStats] = {}
    for spk, parts in by_speaker.items():  # one accumulation over all of a speaker's frames
        tids = np.concatenate([t for _, t in parts])
        stats[spk] = FmllrStats.zeros(model.gmm.dim)
        stats[spk].accumulate_gmm(model.gmm, torch.cat([f for f, _ in parts]),
                                  torch.from_numpy(tables.pdf[tids].astype(np.int64)),
                                  torch.from_numpy(np.where(silence[tids], options.silence_weight, 1.0)))
    trans, impr, frames = estimate_transforms(stats, options)
    log.info("fMLLR for %d speaker(s): auxf +%.4f per frame over %.0f frames", len(trans), impr, frames)
    if skipped:
        log.warning("%s: %d cut(s) without a complete first-pass path left out of the fMLLR statistics", cuts_path, skipped)
    trans.save(out_path)  # (atomic: creates the directory)
    return trans
