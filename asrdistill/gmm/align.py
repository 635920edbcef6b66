"""Forced alignment of whole splits with a trained GMM system: DNN frame targets + report.

For each split, writes into ``out_dir``:

* ``{prefix}_ali_{split}.npz``: ``ids`` (U,), ``offsets`` (U + 1,), ``tids`` and ``pdfs`` (N,)
  int32, ``num_pdfs`` (the model's output classes), in the order of the cut manifest: the targets of every cut, loadable in one go
  into a contiguous frame store (``pdfs[offsets[u]:offsets[u + 1]]`` is cut ``u``'s);
* ``{prefix}_cuts_{split}.jsonl.gz``: the aligned cuts (the same order);
* ``report_{split}.txt``: utterances aligned / failed (failed ones listed), average
  acoustic log-likelihood per frame, number of leaves, frames per leaf (min / median).

Nothing is dropped silently: a cut that fails to align is listed in the report and
left out of both files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.readers import read_cuts, reading, write_cuts
from .fmllr import FmllrOptions
from .model import GmmModel
from .shards import AlignOptions, AlignReport, ShardPool, make_shards

log = logging.getLogger(__name__)


@dataclass
class SplitAlignment:
    ids: List[str]
    offsets: np.ndarray
    tids: np.ndarray
    pdfs: np.ndarray
    num_pdfs: int

    @classmethod
    def load(cls, path) -> "SplitAlignment":
        with reading(path, "alignment"), np.load(path) as z:
            return cls(list(z["ids"]), z["offsets"], z["tids"], z["pdfs"], int(z["num_pdfs"]))

    def save(self, path) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, ids=np.array(self.ids), offsets=self.offsets, tids=self.tids, pdfs=self.pdfs,
                         num_pdfs=np.int64(self.num_pdfs))


def align_split(model_dir, cuts_path, cmvn_path, out_dir, prefix: str, split: str, opts: AlignOptions = AlignOptions(),
                num_jobs: int = 2, sat_options: Optional[FmllrOptions] = None) -> str:
    """Align every cut of ``cuts_path`` with the model in ``model_dir``; returns the report text.

    A SAT system aligns in two passes (Kaldi's ``align_fmllr.sh``): its speaker-independent
    model first, then per-speaker fMLLR from that alignment (``trans_{split}.npz``), then
    the adapted model on the adapted features. ``sat_options``: how fMLLR is estimated (default:
    the options the SAT system was trained with)."""
    from .transitions import TransitionTables

    model = GmmModel.load(model_dir)
    cuts = read_cuts(cuts_path).to_eager()
    ids = list(cuts.ids)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fmllr_line = ""
    with ShardPool(make_shards(cuts_path, ids, num_jobs, cmvn_path, model.lang_dir, model.feature_config)) as pool:
        if model.transform is not None:
            pool.call("set_front_end", model.feature_config, model.transform)
        pool.call("set_model", model.ctx_bytes, model.tm)
        if model.is_sat:  # two passes: speaker-independent alignment, fMLLR from it, adapted alignment
            from .trainer import two_pass_fmllr

            trans, impr, frames = two_pass_fmllr(pool, model, opts, sat_options or model.fmllr_opts)
            trans.save(out_dir / f"trans_{split}.npz")
            fmllr_line = (f"fMLLR (two-pass): {len(trans)} speakers, auxf +{impr:.4f} per frame over {frames:.0f} frames; "
                          f"transforms in trans_{split}.npz")
        reports = pool.call("align", model.gmm.state_dict(), opts)
        alis: Dict[str, np.ndarray] = {}
        for part in pool.call("alignments"):
            alis.update(part)
    rep = AlignReport()
    for r in reports:
        rep.add(r)
    aligned = [u for u in ids if u in alis]
    lengths = np.array([len(alis[u]) for u in aligned], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tids = np.concatenate([alis[u] for u in aligned]).astype(np.int32) if aligned else np.zeros(0, np.int32)
    from ..lang.lang_dir import LangDir

    tables = TransitionTables.from_model(model.tm, LangDir(model.lang_dir).topology())
    pdfs = tables.pdf[tids].astype(np.int32)
    SplitAlignment(aligned, offsets, tids, pdfs, model.num_pdfs).save(out_dir / f"{prefix}_ali_{split}.npz")
    write_cuts(cuts.subset(cut_ids=aligned), out_dir / f"{prefix}_cuts_{split}.jsonl.gz")
    per_leaf = np.bincount(pdfs, minlength=model.num_pdfs)
    phone_lengths = _phone_durations(tids, offsets, tables)
    failed = sorted(set(ids) - set(aligned))
    lines = [
        f"split: {split}  model: {model_dir} ({model.kind})",
        *([fmllr_line] if fmllr_line else []),
        f"utterances aligned: {len(aligned)} of {len(ids)}; failed: {len(failed)}",
        *(f"  failed: {u}" for u in failed),
        f"frames: {int(offsets[-1])}",
        f"average acoustic log-likelihood per frame: {rep.log_like / max(rep.frames, 1):.3f}",
        f"leaves (pdfs): {model.num_pdfs}",
        f"frames per leaf: min {int(per_leaf.min())}, median {float(np.median(per_leaf)):.0f}, "
        f"max {int(per_leaf.max())}; leaves with no frames: {int((per_leaf == 0).sum())}",
        f"phone durations (frames): mean {phone_lengths.mean():.1f}, min {int(phone_lengths.min()) if len(phone_lengths) else 0}, "
        f"max {int(phone_lengths.max()) if len(phone_lengths) else 0}",
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out_dir / f"report_{split}.txt", text)
    return text


def _phone_durations(tids: np.ndarray, offsets: np.ndarray, tables) -> np.ndarray:
    """Frames per phone instance over all utterances (vectorized)."""
    if len(tids) == 0:
        return np.zeros(0)
    starts = tables.is_phone_start[tids].copy()
    starts[offsets[:-1]] = True  # an utterance's first frame starts its first phone
    return np.diff(np.concatenate([np.nonzero(starts)[0], [len(tids)]]))
