"""Loading stored features with CMVN applied."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..utils.readers import reading

from .cmvn import CmvnStats


def load_features(cut, cmvn: Optional[CmvnStats] = None, norm_vars: bool = True) -> np.ndarray:
    """``(T, D)`` float32 features of ``cut``, normalized with its speaker's CMVN if given.

    ``T`` is the stored frame count (Kaldi's, with ``snip_edges``), which can differ by a
    frame or two from lhotse's duration-based ``cut.num_frames`` estimate.
    """
    if cut.features is None:
        raise ValueError(f"cut {cut.id} has no features; run the features stage first")
    with reading(cut.features.storage_path, "feature archive", f"cut {cut.id}, key {cut.features.storage_key}"):
        feats = cut.features.load().astype(np.float32, copy=False)
    if cmvn is not None:
        from ..data.cuts import cut_speaker

        feats = cmvn.apply(feats, cut_speaker(cut), norm_vars=norm_vars)
    return feats
