"""Lookup tables over transition ids, built once from a Kaldi ``TransitionModel``.

Kaldi answers "which pdf / phone / HMM state is transition id t" one id per call;
alignments have one transition id per frame, so we build numpy arrays indexed by
transition id (entry 0 unused, as in Kaldi) and index them with whole alignments.

Kaldi's graphs (and so its alignments) use *reordered* transitions: the first frame
spent in an HMM state carries the transition that leaves it, the remaining frames carry
the self-loop. A phone instance therefore starts at a frame in HMM state 0 that is not
a self-loop, whatever the topology.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np


@dataclass
class TransitionTables:
    pdf: np.ndarray  # (num_tids + 1,) pdf of the frame that takes this transition
    phone: np.ndarray
    hmm_state: np.ndarray
    pdf_class: np.ndarray  # pdf class of the HMM state (forward pdf class)
    trans_index: np.ndarray  # index of the transition within its transition state
    is_self_loop: np.ndarray
    is_phone_start: np.ndarray  # first frame of a phone instance (state 0, not a self-loop)
    tuple_to_state: Dict[Tuple[int, int, int, int], int]  # (phone, hmm_state, fwd pdf, loop pdf) -> trans state
    state_first_tid: np.ndarray  # (num_states + 1,) first transition id of each transition state

    @classmethod
    def from_model(cls, tm, topo) -> "TransitionTables":
        n = tm.num_transition_ids
        id2state = np.asarray(tm.id2state)
        state2id = np.asarray(tm.state2id)
        tuples = [t.__getstate__() for t in tm.tuples]  # (phone, hmm_state, forward_pdf, self_loop_pdf)
        topo_cache = {}
        arrays = {k: np.zeros(n + 1, dtype=np.int32) for k in ("pdf", "phone", "hmm_state", "pdf_class", "trans_index")}
        loop = np.zeros(n + 1, dtype=bool)
        pdf_of_tid = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32)
        for tid in range(1, n + 1):  # once per model, over transition ids (not frames)
            ts = int(id2state[tid])
            phone, hmm_state, _, _ = tuples[ts - 1]
            if phone not in topo_cache:
                topo_cache[phone] = topo.topology_for_phone(phone)
            states = topo_cache[phone]
            k = tid - int(state2id[ts])
            dest = states[hmm_state].transitions[k][0]
            arrays["pdf"][tid] = pdf_of_tid[tid]
            arrays["phone"][tid] = phone
            arrays["hmm_state"][tid] = hmm_state
            arrays["pdf_class"][tid] = states[hmm_state].forward_pdf_class
            arrays["trans_index"][tid] = k
            loop[tid] = dest == hmm_state
        return cls(
            is_self_loop=loop,
            is_phone_start=(arrays["hmm_state"] == 0) & ~loop & (np.arange(n + 1) > 0),
            tuple_to_state={tuple(t): i + 1 for i, t in enumerate(tuples)},
            state_first_tid=state2id.astype(np.int64),
            **arrays,
        )

    def phone_instances(self, tids: np.ndarray) -> np.ndarray:
        """Index of the phone instance each frame belongs to (0, 0, 0, 1, 1, 2, ...)."""
        starts = self.is_phone_start[tids].copy()
        starts[0] = True
        return (np.cumsum(starts) - 1).astype(np.int64)

    def contexts(self, tids: np.ndarray) -> np.ndarray:
        """``(T, 3)`` (left, centre, right) phones of each frame; 0 beyond the utterance."""
        inst = self.phone_instances(tids)
        starts = np.concatenate([[True], inst[1:] != inst[:-1]])
        seq = self.phone[tids][starts]  # phone of each instance
        padded = np.concatenate([[0], seq, [0]])
        return np.stack([padded[inst], padded[inst + 1], padded[inst + 2]], axis=1)


def pdf_phone_names(model_dir) -> list:
    """A readable name per pdf of a GMM system: the phones whose HMM states use it (``"AY/IH"``).

    With word-position dependent phones, a base phone all of whose variants share the pdf
    is named by the base phone (``"AH"``), otherwise by its variants (``"AH_B/AH_I"``).
    """
    from ..lang.lang_dir import LangDir, phone_group_name
    from .model import GmmModel

    model = GmmModel.load(model_dir)
    tm = model.tm
    lang = LangDir(model.lang_dir)
    phones = [set() for _ in range(tm.num_pdfs)]
    for t in range(1, tm.num_transition_ids + 1):
        phones[tm.transition_id_to_pdf(t)].add(lang.id_phone.get(tm.transition_id_to_phone(t), "?"))
    return [phone_group_name(p, lang.position_dependent) for p in phones]
