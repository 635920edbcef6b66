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
from pathlib import Path
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
    from ..gmm.fmllr import FmllrStats, SpeakerTransforms, estimate_fmllr
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
    stats: Dict[str, FmllrStats] = {}
    skipped = 0
    for cut in read_cuts(cuts_path):
        tids = best_paths.get(cut.id)
        feats = front(load_features(cut, cmvn, norm_vars=False))
        if tids is None or len(tids) != feats.shape[0]:
            skipped += 1
            continue
        pdfs = torch.from_numpy(tables.pdf[tids].astype(np.int64))
        weights = torch.from_numpy(np.where(silence[tids], options.silence_weight, 1.0))
        st = stats.setdefault(cut_speaker(cut), FmllrStats.zeros(feats.shape[1]))
        st.accumulate_gmm(model.gmm, feats, pdfs, weights)
    trans = SpeakerTransforms()
    for spk in sorted(stats):
        trans[spk], impr, count = estimate_fmllr(stats[spk], num_iters=options.update_iters, min_count=options.min_count)
        log.info("fMLLR for speaker %s: auxf +%.4f per frame over %.0f frames", spk, impr, count)
    if skipped:
        log.warning("%s: %d cut(s) without a complete first-pass path left out of the fMLLR statistics", cuts_path, skipped)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    trans.save(out_path)
    return trans
