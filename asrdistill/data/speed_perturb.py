"""Kaldi's speed perturbation (``utils/data/perturb_data_dir_speed_3way.sh``) on lhotse cuts.

:func:`speed_perturbed` returns the cuts followed by a copy of every cut for each factor other
than 1.0 (lhotse ``perturb_speed``: resampled on loading, durations and word times scaled by
1/factor). As in Kaldi, each copy's ids are prefixed ``sp{factor}-`` (cut, track cuts of a
``MixedCut``, recordings, supervisions) and so is its speaker (``sp0.9-george``), so
per-speaker CMVN treats each perturbed copy as a speaker of its own. :func:`write_speed_perturbed`
does it for a split's manifests (``train`` -> ``train_sp``), as the FSDD preparer does for its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import List

from lhotse.cut import Cut, MixedCut, PaddingCut
from lhotse.utils import fastcopy

from ..utils.atomic import atomic_path
from ..utils.errors import UserError


def _prefixed(cut: Cut, prefix: str, factor: float) -> Cut:
    """``cut`` (already speed-perturbed, ids unchanged) with ``prefix`` on every id and speaker."""
    if isinstance(cut, MixedCut):
        tracks = [fastcopy(t, cut=_prefixed(t.cut, prefix, factor)) for t in cut.tracks]
        return fastcopy(cut, id=prefix + cut.id, tracks=tracks)
    if isinstance(cut, PaddingCut):
        return fastcopy(cut, id=prefix + cut.id)
    sups = [
        fastcopy(
            s,
            id=prefix + s.id,
            recording_id=prefix + s.recording_id,
            speaker=prefix + s.speaker if s.speaker is not None else None,
        )
        for s in cut.supervisions
    ]
    custom = dict(cut.custom or {})
    custom["speed"] = factor
    return fastcopy(
        cut,
        id=prefix + cut.id,
        recording=fastcopy(cut.recording, id=prefix + cut.recording.id),
        supervisions=sups,
        custom=custom,
    )


def check_factors(factors) -> List[float]:
    factors = [float(f) for f in factors]
    if any(not f > 0 for f in factors) or len(set(factors)) != len(factors):
        raise UserError(f"speed_perturb factors must be distinct and positive, got {factors}")
    return factors


def speed_perturbed(cuts: List[Cut], factors) -> List[Cut]:
    """``cuts`` followed by a copy perturbed by each factor other than 1.0 (ids/speakers ``sp{factor}-``)."""
    factors = check_factors(factors)
    out = list(cuts)
    for factor in factors:
        if factor == 1.0:
            continue
        prefix = f"sp{factor}-"
        out.extend(_prefixed(c.perturb_speed(factor, affix_id=False), prefix, factor) for c in cuts)
    return out


def write_speed_perturbed(manifest_dir, prefix: str, split: str, factors, out_split: str) -> int:
    """``{prefix}_cuts_{out_split}`` from ``{prefix}_cuts_{split}`` (:func:`speed_perturbed`), with the split's
    recordings and supervisions manifests beside it (the files on disk, as for FSDD's ``train_sp``).
    Returns the number of cuts written."""
    from lhotse import CutSet

    d = Path(manifest_dir)
    if out_split == split:
        raise UserError(f"the speed-perturbed split must have a name of its own, not {split!r}")
    sources = {kind: d / f"{prefix}_{kind}_{split}.jsonl.gz" for kind in ("recordings", "supervisions", "cuts")}
    missing = [str(p) for p in sources.values() if not p.exists()]
    if missing:
        raise UserError(f"no manifests of split {split!r}: {', '.join(missing)}")
    cuts = list(CutSet.from_file(sources["cuts"]))
    sp = CutSet.from_cuts(speed_perturbed(cuts, factors))
    for kind in ("recordings", "supervisions"):  # the same files on disk: the manifests as they are
        with atomic_path(d / f"{prefix}_{kind}_{out_split}.jsonl.gz") as tmp:
            shutil.copyfile(sources[kind], tmp)
    with atomic_path(d / f"{prefix}_cuts_{out_split}.jsonl.gz") as tmp:
        sp.to_file(tmp)
    return len(sp)
