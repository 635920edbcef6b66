"""Acoustic scores computed once in the main process, batched over utterances, for workers that only search.

By default every decoding worker scores its own utterances with one torch thread
(``score_device: ""``), which keeps the workers independent. With ``score_device`` set
(``cpu``: this process with all its torch threads; ``cuda``/``cuda:N``: a GPU; ``auto``: a
GPU when there is one, else ``cpu``), the main process instead scores the utterances of a
task together, the context windows of all of them in one batch of at most ``max_frames``
frames per forward pass, and hands each task's score matrices to a worker, which only
searches (Kaldi decoders or our lattice decoder). Scoring of the next task overlaps the
search of the previous ones; at most ``2 * num_jobs`` scored tasks wait at a time, so the
memory held is bounded whatever the corpus size.

GMM systems and specialists are scored per utterance in the main process (no batching),
so the option mostly helps networks: the ensemble over LibriSpeech's evaluation audio is
about 13 PFLOP, hours on one thread per worker and minutes on a GPU.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, Future
from dataclasses import field
from typing import Callable, Iterable, List, Tuple

import numpy as np

BATCH_FRAMES = 5000  # frames per forward pass and per scored task

SCORE_DEVICE_HELP = ("Where the acoustic model scores: '' (each decoding worker, one thread), or in this process, "
                     "batched over utterances, on 'cpu' (all its threads), 'cuda', 'cuda:N' or 'auto' (a GPU if any).")


def score_device_field():
    """The ``score_device`` config field shared by the decoding configs."""
    return field(default="", metadata={"help": SCORE_DEVICE_HELP})


def resolve_score_device(name: str):
    """``torch.device`` for ``score_device`` (``auto``: cuda when available); ``None`` for ``''`` (in the workers)."""
    if not name:
        return None
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"score_device {name!r}: no CUDA device is available")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"score_device must be '', cpu, cuda, cuda:N or auto, got {name!r}")
    return device


def worker_context(device):
    """Multiprocessing context of the searching workers: the toolkit's (:mod:`asrdistill.utils.processes`),
    except ``spawn`` when this process scores on a GPU (a CUDA context must not be forked)."""
    import multiprocessing as mp

    from ..utils.processes import process_context

    return mp.get_context("spawn") if device is not None and device.type == "cuda" else process_context()


class MainProcessScorer:
    """The acoustic scorer of a spec held by the main process, scoring lists of cuts.

    Args:
        scorer_spec: as :func:`asrdistill.decode.runner.make_scorer`.
        device: where a network runs (see :func:`resolve_score_device`).
        max_frames: frames per forward pass (the windows of several utterances together).

    :meth:`__call__` returns one float32 array per cut, as the workers' own scoring would:
    ``(T, num_pdfs)``, or ``(N, T, num_pdfs)`` for ``each_member``.
    """

    def __init__(self, scorer_spec: dict, device, max_frames: int = BATCH_FRAMES):
        from .runner import make_scorer

        self.scorer = make_scorer(scorer_spec)
        self.device, self.max_frames = device, max(1, int(max_frames))
        if hasattr(self.scorer, "to"):
            self.scorer.to(device)

    def __call__(self, cuts) -> List[np.ndarray]:
        if hasattr(self.scorer, "score_batch"):
            return [s.numpy() for s in self.scorer.score_batch(cuts, self.max_frames)]
        return [self.scorer(c).numpy() for c in cuts]


def cuts_from_dicts(cut_dicts: List[dict]):
    """A CutSet of ``cut_dicts`` that leaves them intact (lhotse's ``from_dicts`` pops keys), so that the same
    dicts can still go to a worker."""
    import copy

    from lhotse import CutSet

    return CutSet.from_dicts(copy.deepcopy(cut_dicts))


class InlineExecutor:
    """A one-process stand-in for a process pool (``submit`` runs the call at once)."""

    def submit(self, fn, *args):
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def frame_bounded_tasks(cut_dicts: List[dict], max_frames: int, frame_shift: float = 0.01) -> List[List[dict]]:
    """Consecutive groups of cuts of at most ``max_frames`` frames each (a longer cut: a group of its own)."""
    tasks, current, frames = [], [], 0
    for d in cut_dicts:
        n = int(round(d["duration"] / frame_shift))
        if current and frames + n > max_frames:
            tasks.append(current)
            current, frames = [], 0
        current.append(d)
        frames += n
    return tasks + ([current] if current else [])


def _call_with_scores(fn_task_scores):
    fn, task, scores = fn_task_scores
    return fn(task, scores)


def pipelined_map(executor: "Executor | None", fn: Callable, tasks: Iterable, scorer: MainProcessScorer, in_flight: int,
                  cuts_of: Callable) -> List[dict]:
    """``fn(task, scores)`` on ``executor`` (``None``: in this process) for every task, the scores of
    ``cuts_of(task)`` computed here while earlier tasks are searched; the results in task order, each
    with this process's scoring seconds of its task added to its ``score_time``."""
    executor = executor or InlineExecutor()
    pending: List[Tuple[Future, float]] = []
    results: List[dict] = []

    def collect(future: Future, seconds: float) -> None:
        part = future.result()
        part["score_time"] += seconds
        results.append(part)

    for task in tasks:
        t0 = time.perf_counter()
        scores = scorer(cuts_of(task))
        seconds = time.perf_counter() - t0
        pending.append((executor.submit(_call_with_scores, (fn, task, scores)), seconds))
        while len(pending) >= max(1, in_flight):
            collect(*pending.pop(0))
    for future, seconds in pending:
        collect(future, seconds)
    return results
