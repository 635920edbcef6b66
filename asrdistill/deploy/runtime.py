"""onnxruntime inference of an exported network, CMVN at deployment, audio input.

:class:`ExportedModel` runs ``model.onnx`` (see :mod:`asrdistill.deploy.export` for its input
contract) on onnxruntime's CPU provider with a fixed number of threads, and maps its pdf
log-likelihoods to the transition-id scores the Kaldi decoders read.

CMVN at deployment (:func:`make_cmvn`), one of

* ``utterance``: the utterance's own mean and standard deviation (offline only: it needs the
  whole utterance; the closest to the recipe's per-speaker statistics for a one-utterance speaker);
* ``stored``: the exported statistics (the training split's speakers pooled);
* ``speaker``: one speaker's statistics from a CMVN file of the toolkit (``{prefix}_cmvn_{split}.json``),
  exactly as the recipe normalizes that speaker;
* ``running``: Kaldi-style online CMVN: frame ``t`` is normalized with the statistics of frames
  ``0..t`` plus the stored statistics weighted as ``prior_frames`` frames (so the first frames
  are not normalized with almost no data). Computed with cumulative sums, chunk by chunk, so an
  utterance gives the same result whole or in chunks.

The feature extractor is the toolkit's own Kaldi-compatible fbank
(:class:`asrdistill.features.fbank.Fbank`, with dither off) on its numpy backend (the training
features' steps, to float32 rounding), so inference imports no torch; the network runs on
onnxruntime and the search on Kaldi's decoders.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..utils.errors import UserError
from ..utils.readers import reading

log = logging.getLogger(__name__)

CMVN_MODES = ("utterance", "stored", "speaker", "running")


def pad_edges(feats: np.ndarray, left: int, right: int) -> np.ndarray:
    """``left`` copies of the first frame, the frames, ``right`` copies of the last: the model input of an utterance.

    The result fed to the exported graph gives, for every frame, the window of
    :func:`asrdistill.features.context_window.splice` (frames beyond the ends replicate the edge frames).
    """
    if feats.shape[0] == 0:
        return feats
    return np.concatenate([np.repeat(feats[:1], left, 0), feats, np.repeat(feats[-1:], right, 0)])


def load_sidecar(export_dir) -> dict:
    path = Path(export_dir) / "model.json"
    if not path.exists():
        raise UserError(f"{path} does not exist: --model must be a directory written by 'asrdistill export'")
    with reading(path, "export sidecar"):
        return json.loads(path.read_text())


class ExportedModel:
    """An exported network on onnxruntime (CPU).

    Args:
        export_dir: directory of ``model.onnx`` and ``model.json``.
        num_threads: onnxruntime intra-op threads (1: one core, as the deployment table measures).

    Shape:
        - ``loglik(padded)``: ``(T + L + R, D)`` -> ``(T, num_pdfs)``.
        - ``utterance_loglik(feats)``: ``(T, D)`` -> ``(T, num_pdfs)``.
        - ``transition_scores(loglik)``: ``(T, num_pdfs)`` -> ``(T, num_transition_ids)`` scaled by the acoustic
          scale (column ``j``: transition id ``j + 1``), the decoders' input.
    """

    def __init__(self, export_dir, num_threads: int = 1, acoustic_scale: float = 0.0):
        import onnxruntime as ort

        self.dir = Path(export_dir)
        self.meta = load_sidecar(self.dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        with reading(self.dir / self.meta["model"], "ONNX model"):
            self.session = ort.InferenceSession(str(self.dir / self.meta["model"]), opts,
                                                providers=["CPUExecutionProvider"])
        self.left, self.right = int(self.meta["context"]["left"]), int(self.meta["context"]["right"])
        self.feature_dim = int(self.meta["input"]["dim"])
        self.sampling_rate = int(self.meta["sampling_rate"])
        self.pdf_of = np.asarray(self.meta["transition_pdf"], dtype=np.int64)[1:]
        self.acoustic_scale = float(acoustic_scale or self.meta["acoustic_scale"])

    def loglik(self, padded: np.ndarray) -> np.ndarray:
        if padded.shape[0] <= self.left + self.right:
            return np.zeros((0, int(self.meta["num_pdfs"])), np.float32)
        return self.session.run(["loglik"], {"feats": np.ascontiguousarray(padded, dtype=np.float32)})[0]

    def utterance_loglik(self, feats: np.ndarray) -> np.ndarray:
        return self.loglik(pad_edges(feats, self.left, self.right))

    def transition_scores(self, loglik: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.acoustic_scale * loglik[:, self.pdf_of], dtype=np.float32)


# ------------------------------------------------------------------------------------------- CMVN
class FixedCmvn:
    """``(x - mean) / std`` with given statistics (``stored`` and ``speaker`` modes); stateless."""

    streaming = True

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def start(self) -> "FixedCmvn":
        return self

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        return (feats - self.mean) / self.std

    normalize_utterance = __call__


class UtteranceCmvn:
    """The utterance's own statistics (offline only)."""

    streaming = False

    def normalize_utterance(self, feats: np.ndarray) -> np.ndarray:
        from ..features.cmvn import VAR_FLOOR

        f = feats.astype(np.float64)
        mean = f.mean(0)
        std = np.sqrt(np.maximum((f * f).mean(0) - mean * mean, VAR_FLOOR))
        return ((f - mean) / std).astype(np.float32)

    def start(self):
        raise UserError("--cmvn utterance needs the whole utterance: use stored, speaker or running with --streaming")


class RunningCmvn:
    """Online CMVN: frame ``t`` with the statistics of frames ``0..t`` plus a prior of ``prior_frames`` frames.

    ``start()`` gives a fresh state per utterance; calling it on consecutive chunks equals calling it on
    their concatenation (cumulative sums carried over).
    """

    streaming = True

    def __init__(self, mean, std, prior_frames: float = 100.0):
        from ..features.cmvn import VAR_FLOOR

        self.floor = VAR_FLOOR
        mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
        self.prior = (float(prior_frames), prior_frames * mean, prior_frames * (std * std + mean * mean))
        self.count, self.sum, self.sumsq = self.prior

    def start(self) -> "RunningCmvn":
        new = RunningCmvn.__new__(RunningCmvn)
        new.floor, new.prior = self.floor, self.prior
        new.count, new.sum, new.sumsq = self.prior
        return new

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        if feats.shape[0] == 0:
            return feats.astype(np.float32)
        f = feats.astype(np.float64)
        count = self.count + np.arange(1, f.shape[0] + 1, dtype=np.float64)[:, None]
        total = self.sum + np.cumsum(f, 0)
        sumsq = self.sumsq + np.cumsum(f * f, 0)
        self.count, self.sum, self.sumsq = float(count[-1, 0]), total[-1], sumsq[-1]
        mean = total / count
        std = np.sqrt(np.maximum(sumsq / count - mean * mean, self.floor))
        return ((f - mean) / std).astype(np.float32)

    def normalize_utterance(self, feats: np.ndarray) -> np.ndarray:
        return self.start()(feats)


def make_cmvn(mode: str, meta: dict, stats_file=None, speaker: Optional[str] = None, prior_frames: float = 100.0):
    """The CMVN of ``mode`` (see the module doc) for an exported model's sidecar ``meta``."""
    stored = meta["cmvn"]
    if mode == "utterance":
        return UtteranceCmvn()
    if mode == "stored":
        return FixedCmvn(stored["mean"], stored["std"])
    if mode == "running":
        return RunningCmvn(stored["mean"], stored["std"], prior_frames)
    if mode == "speaker":
        from ..features.cmvn import CmvnStats

        if not stats_file or not speaker:
            raise UserError("--cmvn speaker needs --cmvn-stats FILE and --speaker ID")
        stats = CmvnStats.load(stats_file)
        if speaker not in stats.count:
            raise UserError(f"speaker {speaker!r} has no statistics in {stats_file} (it has {sorted(stats.count)[:10]})")
        mean, std = stats.mean_std(speaker)
        return FixedCmvn(mean, std)
    raise UserError(f"unknown CMVN mode {mode!r}; choose one of {list(CMVN_MODES)}")


# ------------------------------------------------------------------------------------------- audio
def resample(samples: np.ndarray, rate: int, target: int, what: str = "audio") -> np.ndarray:
    """``samples`` at ``target`` Hz (soxr, high quality); an error naming ``what`` if soxr is missing."""
    if rate == target:
        return samples
    try:
        import soxr
    except ImportError as e:
        raise UserError(f"{what} is {rate} Hz but the model takes {target} Hz audio; install soxr to resample") from e
    return soxr.resample(samples, rate, target).astype(np.float32)


def read_audio_file(path) -> Tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sampling rate of a WAV/FLAC/... file (first channel if several)."""
    import soundfile as sf

    with reading(path, "audio file"):
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if data.shape[1] > 1:
        log.warning("%s has %d channels: using the first", path, data.shape[1])
    return np.ascontiguousarray(data[:, 0]), int(rate)


def fbank_extractor(meta: dict):
    """The toolkit's fbank with the exported options and dither off, numpy backend (no torch; see the module doc)."""
    from ..features.fbank import Fbank, FbankConfig
    from ..utils.config import config_from_dict

    config = config_from_dict(FbankConfig, {**meta["fbank"], "dither": 0.0}, "model.json fbank")
    return Fbank(config, backend="numpy")
