"""Frame accuracy above the tied states: the base phone and speech/silence of each pdf.

A network predicts one of the alignment system's pdfs (tied states) per frame. Tied-state
accuracy counts a frame right only when the predicted pdf is the aligned one; phone accuracy
counts it right when both pdfs belong to the same base phone (the tree root: word-position
variants ``AH_B``/``AH_I``/... of a phone are one class, and phones that share a pdf, such as
``SIL``/``SPN`` under a shared root, are one class); speech/silence accuracy when both are
speech or both silence.

The mapping comes from the tree directory (the GMM system whose alignments are the targets):
:func:`asrdistill.gmm.transitions.pdf_phone_names` names each pdf by the phones whose HMM
states use it, and the names are reduced to base phones here. Evaluation is vectorized: one
argmax per member (and per ensemble combination) for a batch of frames, then a table lookup
per level.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)

SPEECH, SILENCE = 1, 0


@dataclass
class PdfClasses:
    """Per pdf: its phone class and whether it is speech.

    ``phone[p]`` indexes ``phone_classes`` (names such as ``"AH"`` or ``"SIL/SPN"``);
    ``speech[p]`` is 1 for speech, 0 for silence.
    """

    pdf_names: List[str]
    phone: np.ndarray  # (num_pdfs,) int64
    phone_classes: List[str]
    speech: np.ndarray  # (num_pdfs,) int64, SPEECH or SILENCE

    @property
    def num_pdfs(self) -> int:
        return len(self.pdf_names)

    def tables(self) -> Dict[str, Tensor]:
        """The lookup tables of :func:`evaluate_levels`: ``{"phone": (P,), "speech_silence": (P,)}``."""
        return {"phone": torch.from_numpy(self.phone.astype(np.int64)),
                "speech_silence": torch.from_numpy(self.speech.astype(np.int64))}

    def summary(self) -> dict:
        return {"num_pdfs": self.num_pdfs, "num_phone_classes": len(self.phone_classes),
                "silence_pdfs": int((self.speech == SILENCE).sum()), "speech_pdfs": int((self.speech == SPEECH).sum())}


def classes_from_pdf_names(pdf_names: Sequence[str], silence_phones: Iterable[str] = ("SIL", "SPN"),
                           position_dependent: bool = True) -> PdfClasses:
    """Phone classes and speech/silence from per-pdf names (``"AH"``, ``"AH_B/AH_I"``, ``"SIL/SPN"``).

    Each name is split at ``/`` into phones, each phone reduced to its base phone
    (:func:`asrdistill.lang.lang_dir.base_phone_name`); base phones that share a pdf are
    merged into one class (union-find), so a class is a tree root. A pdf is silence when all
    its phones are silence phones.
    """
    from ..lang.lang_dir import base_phone_name

    silence = set(silence_phones)
    bases = [sorted({base_phone_name(p, position_dependent) for p in name.split("/") if p}) for name in pdf_names]
    parent: Dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for group in bases:
        for b in group:
            find(b)
        for b in group[1:]:
            ra, rb = find(group[0]), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    members: Dict[str, List[str]] = {}
    for b in parent:
        members.setdefault(find(b), []).append(b)
    names = sorted("/".join(sorted(m)) for m in members.values())
    class_of_root = {find(name.split("/")[0]): i for i, name in enumerate(names)}
    phone = np.array([class_of_root[find(g[0])] if g else -1 for g in bases], dtype=np.int64)
    if (phone < 0).any():
        raise ValueError(f"pdf {int(np.argmin(phone))} has no phone name")
    speech = np.array([SILENCE if all(p in silence for p in name.split("/") if p) else SPEECH for name in pdf_names],
                      dtype=np.int64)
    return PdfClasses(list(pdf_names), phone, names, speech)


def pdf_classes(tree_dir) -> PdfClasses:
    """:class:`PdfClasses` of the GMM system in ``tree_dir`` (its ``final.mdl`` and lang directory)."""
    from ..gmm.model import GmmModel
    from ..gmm.transitions import pdf_phone_names
    from ..lang.lang_dir import LangDir

    model = GmmModel.load(tree_dir)
    lang = LangDir(model.lang_dir)
    tm = model.tm
    model_phones = {tm.transition_id_to_phone(t) for t in range(1, tm.num_transition_ids + 1)}
    if model_phones != set(lang.phones):
        raise ValueError(f"{tree_dir}: the model's {len(model_phones)} phones are not those of its lang directory "
                         f"{model.lang_dir} ({len(lang.phones)}): the lang directory was prepared again since")
    silence = [lang.id_phone[i] for i in lang.silence_phones]
    return classes_from_pdf_names(pdf_phone_names(tree_dir), silence, lang.position_dependent)


def tree_dir_of(ali_dir) -> Optional[Path]:
    """The GMM system an alignment directory came from: ``ali_dir``'s parent (``exp/tri/ali`` ->
    ``exp/tri``) when it holds a ``final.mdl``, else None."""
    parent = Path(ali_dir).parent
    return parent if (parent / "final.mdl").exists() else None


def _fractions(correct: Tensor, arith: int, geo: int, total: int) -> dict:
    acc = (correct.double() / max(total, 1)).tolist()
    return {"members": acc, "mean_member": sum(acc) / max(len(acc), 1), "arithmetic": arith / max(total, 1),
            "geometric": geo / max(total, 1)}


@torch.no_grad()
def evaluate_levels(model, store, left: int, right: int, device, tables: Mapping[str, Tensor] = (),
                    bf16: bool = True, chunk: int = 8192) -> Dict[str, object]:
    """Frame accuracy of every member and of the ensemble, on the tied states and on each level of ``tables``.

    Returns :func:`asrdistill.nnet.trainer.evaluate`'s dict (``members``, ``mean_member``,
    ``arithmetic``, ``geometric``: tied-state accuracy, computed the same way) plus, for each
    ``name -> table`` (``table[pdf]``: the pdf's class at that level), ``name`` -> a dict with the
    same four keys, a frame counting as right when ``table[predicted] == table[aligned]``.
    """
    from .trainer import member_logits

    tables = dict(tables)
    for name, t in tables.items():
        if t.dim() != 1 or t.numel() < model.config.num_outputs:
            raise ValueError(f"table {name!r} has {t.numel()} entries for {model.config.num_outputs} network outputs")
    model.eval()
    n = model.num_members
    levels = {"": None, **{k: v.to(device) for k, v in tables.items()}}
    correct = {k: torch.zeros(n, dtype=torch.long) for k in levels}
    arith = dict.fromkeys(levels, 0)
    geo = dict.fromkeys(levels, 0)
    total = store.num_frames
    for s in range(0, total, chunk):
        frames = torch.arange(s, min(s + chunk, total), device=store.device)
        logp = torch.log_softmax(member_logits(model, store, frames, left, right, device, bf16), dim=-1)
        y = store.target_of(frames, logp.device)
        pred = logp.argmax(-1)  # (N, B)
        pred_a = torch.logsumexp(logp, 0).argmax(-1)  # (B,)
        pred_g = logp.mean(0).argmax(-1)
        for k, table in levels.items():
            if table is None:
                p, pa, pg, t = pred, pred_a, pred_g, y
            else:
                p, pa, pg, t = table[pred], table[pred_a], table[pred_g], table[y]
            correct[k] += (p == t).sum(1).cpu()
            arith[k] += int((pa == t).sum())
            geo[k] += int((pg == t).sum())
    model.train()
    out = _fractions(correct[""], arith[""], geo[""], total)
    for k in tables:
        out[k] = _fractions(correct[k], arith[k], geo[k], total)
    return out
