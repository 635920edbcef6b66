"""Streaming transcription: audio in chunks, partial hypotheses as they change, the offline result at the end.

One :class:`StreamingSession` per utterance, over a :class:`~asrdistill.deploy.transcribe.Transcriber`:

1. **online fbank**: the samples not yet framed are kept; each chunk yields the frames whose
   25 ms window is complete (``snip_edges``: Kaldi's frames, the same frames as offline, since
   every frame is computed from its own samples; dither is off);
2. **CMVN** per chunk: stored or speaker statistics, or running statistics
   (:class:`~asrdistill.deploy.runtime.RunningCmvn`, cumulative sums carried over);
3. **network**: frame ``t`` is scored once frame ``t + R`` exists (``R = 5``, the network's
   right context, is the only look-ahead); the first frame is replicated ``L`` times before
   the utterance and, at the end, the last ``R`` times after it, as offline (so the scores
   equal offline's);
4. **search**: Kaldi's FasterDecoder advanced over the new frames; its best partial path
   (without final weights) is the partial hypothesis; at the end, the best path as offline.

With the same CMVN (stored, speaker or running) the final words equal offline decoding's
(tested). Cost: the decoder reads its scores through a matrix of all frames so far, handed over again
each chunk (the bindings have no growing decodable: one copy of the utterance's scores per chunk).
"""

from __future__ import annotations

import time
from typing import List, Optional

import numpy as np

from ..utils.errors import UserError
from .transcribe import Result, Transcriber


class StreamingSession:
    """Decode one utterance fed chunk by chunk (see the module doc).

    ``accept(samples)`` returns the partial hypothesis (list of words) when it changed, else None;
    ``finish()`` returns the final :class:`~asrdistill.deploy.transcribe.Result`. ``partials``
    records ``(audio seconds fed, words)`` at each change; ``compute_seconds`` the time spent. A session
    uses its transcriber's decoder: one session at a time per :class:`Transcriber`.
    """

    def __init__(self, transcriber: Transcriber, utt: str = "", speaker: Optional[str] = None):
        t = transcriber
        if not t.fbank.config.snip_edges:
            raise UserError("streaming needs features with snip_edges=true (the exported fbank has snip_edges=false)")
        self.t, self.utt = t, utt
        self.cmvn = t.cmvn(speaker).start()
        self.rate = t.model.sampling_rate
        c = t.fbank.config
        self.length, self.shift = c.frame_length(self.rate), c.frame_shift(self.rate)
        self.pending = np.zeros(0, np.float32)  # samples from the first unframed frame's start
        self.samples_fed = 0
        self.context = None  # normalized frames (padded at the start) not yet needed no more
        self.scores: List[np.ndarray] = []  # transition-id scores of each chunk (as the decoder read them)
        self.num_scored = 0
        self._buffer, self._filled, self._pending = None, 0, 0
        self.decoder = t.decoder.decoder  # Kaldi FasterDecoder
        self.decoder.init_decoding()
        self.last_partial: List[str] = []
        self.partials: List[tuple] = []
        self.compute_seconds = 0.0
        self.finish_seconds = 0.0  # compute after the last sample: the final result's latency
        self.finished = False

    # -- stages
    def _new_frames(self, samples: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, samples])
        n = 0 if len(self.pending) < self.length else 1 + (len(self.pending) - self.length) // self.shift
        if n == 0:
            return np.zeros((0, self.t.fbank.dim), np.float32)
        feats = self.t.fbank.extract(self.pending[: (n - 1) * self.shift + self.length], self.rate, scale_to_int16=True)
        self.pending = self.pending[n * self.shift:]
        return feats

    def _score(self, feats: np.ndarray, last: bool) -> None:
        m = self.t.model
        if feats.shape[0]:
            feats = self.cmvn(feats)
            if self.context is None:
                self.context = np.repeat(feats[:1], m.left, 0)
            self.context = np.concatenate([self.context, feats])
        if self.context is None:
            return
        if last:
            self.context = np.concatenate([self.context, np.repeat(self.context[-1:], m.right, 0)])
        ready = self.context.shape[0] - m.left - m.right  # frames whose right context is there
        if ready <= 0:
            return
        loglik = m.loglik(self.context)
        self.context = self.context[ready:]
        self.scores.append(m.transition_scores(loglik))
        self.num_scored += ready

    def _advance(self) -> None:
        import kaldi_hmm_gmm as khg

        if self.num_scored > self.decoder.num_frames_decoded():
            new = np.concatenate(self.scores[self._pending:]) if len(self.scores) - self._pending > 1 else \
                self.scores[-1]
            self._pending = len(self.scores)
            n = self._filled + len(new)
            if self._buffer is None or n > len(self._buffer):  # grows by doubling: no copy of all frames per chunk
                grown = np.zeros((max(2 * n, 256), new.shape[1]), np.float32)
                if self._buffer is not None:
                    grown[: self._filled] = self._buffer[: self._filled]
                self._buffer = grown
            self._buffer[self._filled:n] = new
            self._filled = n
            self.decoder.advanced_decoding(khg.DecodableCtc(self._buffer[:n]))

    def _best(self, use_final_probs: bool):
        import kaldifst

        if self.decoder.num_frames_decoded() == 0:
            return [], [], False
        got, best = self.decoder.get_best_path(use_final_probs)
        ok, tids, words, _ = kaldifst.get_linear_symbol_sequence(best) if got else (False, [], [], None)
        return (list(words), list(tids), True) if ok else ([], [], False)

    # -- interface
    def accept(self, samples: np.ndarray) -> Optional[List[str]]:
        if self.finished:
            raise RuntimeError("accept() after finish()")
        t0 = time.perf_counter()
        samples = np.asarray(samples, dtype=np.float32)
        self.samples_fed += len(samples)
        self._score(self._new_frames(samples), last=False)
        self._advance()
        words, _, _ = self._best(use_final_probs=False)
        self.compute_seconds += time.perf_counter() - t0
        text = [self.t.id_word[w] for w in words]
        if text != self.last_partial:
            self.last_partial = text
            self.partials.append((self.samples_fed / self.rate, text))
            return text
        return None

    def finish(self) -> Result:
        t0 = time.perf_counter()
        self.finished = True
        self._score(np.zeros((0, self.t.fbank.dim), np.float32), last=True)
        self._advance()
        final = self.decoder.num_frames_decoded() > 0 and self.decoder.reached_final()
        words, tids, ok = self._best(use_final_probs=True)
        self.finish_seconds = time.perf_counter() - t0
        self.compute_seconds += self.finish_seconds
        return self.t.result(self.utt, tids, words, bool(final and ok), self.samples_fed / self.rate)


def stream_utterance(transcriber: Transcriber, utt: str, samples: np.ndarray, rate: int, chunk_ms: float = 100.0,
                     speaker: Optional[str] = None, on_partial=None):
    """Feed ``samples`` in chunks of ``chunk_ms``; returns ``(result, session)``. Audio at another rate is
    resampled whole first (a chunked resampler would give slightly other samples than offline's)."""
    from .runtime import resample

    samples = resample(np.asarray(samples, np.float32), rate, transcriber.model.sampling_rate, utt)
    rate = transcriber.model.sampling_rate
    session = StreamingSession(transcriber, utt, speaker)
    step = max(1, int(round(rate * chunk_ms / 1000.0)))
    for i in range(0, len(samples), step):
        partial = session.accept(samples[i:i + step])
        if partial is not None and on_partial is not None:
            on_partial(utt, partial)
    return session.finish(), session
