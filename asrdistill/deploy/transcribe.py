"""Offline transcription of audio with an exported network and an HCLG graph.

``Transcriber`` holds the onnxruntime model (:class:`~asrdistill.deploy.runtime.ExportedModel`),
the graph and Kaldi's FasterDecoder (the search of the recipe's network decoding, through
:class:`asrdistill.decode.decoder.GraphDecoder`); per utterance: samples (resampled to the
model's rate) -> fbank -> CMVN -> network -> transition-id scores -> best path -> words, with
word times from the best path's phones (word-position-dependent phones ``_B/_I/_E/_S``: a word
starts at a ``_B`` or ``_S`` phone and ends with an ``_E`` or ``_S`` one).

Inputs (:func:`iter_inputs`): audio files (anything soundfile reads: WAV, FLAC, ...), Kaldi
``wav.scp`` files (paths or piped commands, :mod:`asrdistill.data.kaldi_dir`), lhotse recording
or cut manifests (``.jsonl.gz``; a cut's speaker is known, for ``--cmvn speaker``).

Transcription needs no GMM model and no torch: the sidecar maps transition ids to pdfs and phones,
and the filterbank is the toolkit's extractor on its numpy backend (the training features' steps,
to float32 rounding, without dither). Only ``asrdistill export`` reads torch checkpoints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..decode.decoder import DecoderConfig
from ..utils.errors import UserError
from ..utils.readers import reading
from .runtime import CMVN_MODES, ExportedModel, fbank_extractor, make_cmvn, resample

log = logging.getLogger(__name__)


@dataclass
class TranscribeConfig(DecoderConfig):
    """Options of ``asrdistill transcribe`` (the search defaults are the FSDD recipe's ``conf/decode_nnet.yaml``)."""

    decoder: str = field(default="faster", metadata={"help": "Graph search (Kaldi's FasterDecoder; it also streams).",
                                                      "choices": ["faster"]})
    beam: float = field(default=8.0, metadata={"help": "Search beam.", "min_exclusive": 0})
    max_active: int = field(default=2000, metadata={"help": "Most active states per frame.", "min": 2})
    acoustic_scale: float = field(default=0.0, metadata={"help": "Acoustic scale; 0: the exported one.", "min": 0})
    cmvn: str = field(default="utterance", metadata={
        "help": "CMVN: utterance (its own statistics; offline only), stored (the exported training statistics), "
                "speaker (--cmvn-stats FILE, the speaker's statistics), running (online, from the stored ones as a "
                "prior). Streaming and offline give the same words with stored, speaker and running.",
        "choices": list(CMVN_MODES)})
    prior_frames: float = field(default=100.0, metadata={"help": "running CMVN: weight of the stored statistics, in "
                                                          "frames.", "min": 0})
    cmvn_carry: bool = field(default=True, metadata={
        "help": "running CMVN: carry the statistics over the utterances of a speaker (inputs without a speaker: over "
                "all inputs, in order), as Kaldi's online CMVN state; false: every utterance starts from the prior."})
    num_threads: int = field(default=1, metadata={"help": "onnxruntime threads.", "min": 1})
    chunk_ms: float = field(default=100.0, metadata={"help": "--streaming: audio per chunk (ms).", "min_exclusive": 0})


class WordTime(NamedTuple):
    word: str
    start: float
    end: float


class Result(NamedTuple):
    utt: str
    words: List[str]
    times: Optional[List[WordTime]]  # None where the phones do not mark word positions
    reached_final: bool
    duration: float


def word_segments(tids: Sequence[int], meta: dict) -> Optional[List[Tuple[int, int]]]:
    """``[(first frame, end frame)]`` of each word of a best path (one transition id per frame), or None.

    Phone instances start where the phone changes or a phone's first HMM state is entered again;
    a word spans from a ``_B``/``_S`` phone to the next ``_E``/``_S`` phone's end.
    """
    phones = meta.get("phones")
    if not phones or len(tids) == 0:
        return None if not phones else []
    tids = np.asarray(tids, dtype=np.int64)
    phone = np.asarray(meta["transition_phone"], dtype=np.int64)[tids]
    starts = np.asarray(meta["transition_starts_phone"], dtype=bool)[tids]
    new = np.ones(len(tids), dtype=bool)
    new[1:] = (phone[1:] != phone[:-1]) | (starts[1:] & ~starts[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(tids))
    segments, begin = [], None
    for f, e, p in zip(first.tolist(), last.tolist(), phone[first].tolist()):  # one step per phone, not per frame
        name = phones.get(str(p), "")
        pos = name.rsplit("_", 1)[1] if "_" in name else ""
        if pos in ("B", "S"):
            begin = f
        if pos in ("E", "S") and begin is not None:
            segments.append((begin, e))
            begin = None
    return segments


class Transcriber:
    """Exported network + graph + decoder, reused for every utterance (see the module doc)."""

    def __init__(self, export_dir, graph_dir, config: TranscribeConfig = TranscribeConfig(), cmvn_stats=None):
        import kaldifst

        from ..decode.decoder import GraphDecoder
        from ..lang.lang_dir import _symbols

        self.config = config
        self.model = ExportedModel(export_dir, config.num_threads, config.acoustic_scale)
        self.meta = self.model.meta
        graph_dir = Path(graph_dir)
        for name in ("HCLG.fst", "words.txt"):
            if not (graph_dir / name).exists():
                raise UserError(f"{graph_dir / name} does not exist: --graph must be a graph directory (exp/tri/graph)")
        with reading(graph_dir / "HCLG.fst", "decoding graph"):
            self.graph = kaldifst.StdVectorFst.read(str(graph_dir / "HCLG.fst"))
        with reading(graph_dir / "words.txt", "word symbol table"):
            self.id_word = {i: w for w, i in _symbols(graph_dir / "words.txt").items()}
        recorded = self.meta.get("graph", {}).get("words.txt")
        if recorded:
            from .export import sha256_file

            if sha256_file(graph_dir / "words.txt") != recorded:
                log.warning("%s is not the word list of the graph exported with the model (%s)",
                            graph_dir / "words.txt", self.meta["graph"]["dir"])
        self.decoder = GraphDecoder(self.graph, None, config)
        self.fbank = fbank_extractor(self.meta)
        self.cmvn_stats = cmvn_stats
        self._running = {}  # speaker -> RunningCmvn state (cmvn_carry)
        self.frame_shift = self.fbank.config.frame_shift_ms / 1000.0

    def cmvn(self, speaker: Optional[str] = None):
        """The CMVN of an utterance of ``speaker``: call ``normalize_utterance(feats)`` (whole) or ``start()``,
        then the result on consecutive chunks. With running CMVN carried over (``cmvn_carry``), both continue
        the speaker's statistics."""
        if self.config.cmvn == "running" and self.config.cmvn_carry:
            if speaker not in self._running:
                self._running[speaker] = make_cmvn("running", self.meta, prior_frames=self.config.prior_frames).start()
            return _Carried(self._running[speaker])
        return make_cmvn(self.config.cmvn, self.meta, self.cmvn_stats, speaker, self.config.prior_frames)

    def features(self, samples: np.ndarray, rate: int, what: str = "audio") -> np.ndarray:
        """Fbank frames ``(T, D)`` of float samples in [-1, 1] (resampled to the model's rate)."""
        samples = resample(np.asarray(samples, dtype=np.float32), rate, self.model.sampling_rate, what)
        return self.fbank.extract(samples, self.model.sampling_rate, scale_to_int16=True)

    def result(self, utt: str, tids, words, reached_final: bool, duration: float) -> Result:
        segments = word_segments(tids, self.meta)
        words = [self.id_word[w] for w in words]
        times = None
        if segments is not None and len(segments) == len(words):
            times = [WordTime(w, round(a * self.frame_shift, 3), round(b * self.frame_shift, 3))
                     for w, (a, b) in zip(words, segments)]
        return Result(utt, words, times, reached_final, duration)

    def loglik(self, samples: np.ndarray, rate: int, speaker: Optional[str] = None, what: str = "audio") -> np.ndarray:
        feats = self.features(samples, rate, what)
        return self.model.utterance_loglik(self.cmvn(speaker).normalize_utterance(feats))

    def transcribe(self, utt: str, samples: np.ndarray, rate: int, speaker: Optional[str] = None) -> Result:
        loglik = self.loglik(samples, rate, speaker, f"{utt}")
        res = self.decoder.decode(self.model.transition_scores(loglik), utt)
        return self.result(utt, res.tids, res.words, res.reached_final, len(samples) / rate)


class _Carried:
    """A speaker's running CMVN state, continued by whole utterances and by chunks alike."""

    streaming = True

    def __init__(self, state):
        self.state = state

    def start(self):
        return self.state

    def normalize_utterance(self, feats: np.ndarray) -> np.ndarray:
        return self.state(feats)


# ------------------------------------------------------------------------------------------- inputs
class AudioInput(NamedTuple):
    utt: str
    load: Callable[[], Tuple[np.ndarray, int]]  # -> (mono float32 samples, sampling rate)
    speaker: Optional[str]


def _is_manifest(path: Path) -> bool:
    return path.name.endswith((".jsonl.gz", ".jsonl", ".json"))


def iter_inputs(paths: Sequence[Path]) -> Iterator[AudioInput]:
    """Every utterance of the command line's inputs (see the module doc), in order."""
    from .runtime import read_audio_file

    for path in map(Path, paths):
        if not path.exists():
            raise UserError(f"{path} does not exist")
        if path.name.endswith(".scp"):
            from ..data.kaldi_dir import load_wav_scp_entry, read_wav_scp

            for utt, entry in read_wav_scp(path).items():
                yield AudioInput(utt, lambda e=entry, u=utt: load_wav_scp_entry(u, e, path), None)
        elif _is_manifest(path):
            from lhotse import load_manifest
            from lhotse.cut import CutSet

            with reading(path, "manifest"):
                manifest = load_manifest(path)
            for item in manifest:
                if isinstance(manifest, CutSet):
                    speakers = {s.speaker for s in item.supervisions}
                    speaker = speakers.pop() if len(speakers) == 1 else None
                else:
                    speaker = None
                yield AudioInput(item.id, lambda it=item: (it.load_audio()[0].astype(np.float32), it.sampling_rate),
                                 speaker)
        else:
            yield AudioInput(path.stem, lambda p=path: read_audio_file(p), None)


def result_json(result: Result, partials: Optional[list] = None) -> dict:
    out = {"id": result.utt, "text": " ".join(result.words), "reached_final": result.reached_final,
           "duration": round(result.duration, 3),
           "words": [t._asdict() for t in result.times] if result.times is not None else None}
    if partials is not None:
        out["partials"] = partials
    return out
