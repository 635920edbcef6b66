"""Data shards of a GMM system, each in its own worker process.

Like Kaldi's ``nj`` jobs, the training utterances are split into shards. A worker
loads its shard once (features through CMVN and the GMM front end, transcripts as
word ids), compiles the training graphs, and keeps alignments in memory; the trainer
broadcasts commands (align, accumulate, collect tree statistics, convert alignments
to a new tree) and sums what comes back. With one job everything runs in-process.

Per utterance, alignment is: all pdf log-likelihoods of all frames with one matrix
product (:class:`~asrdistill.gmm.diag_gmm.DiagGmmSet`), indexed into a
``(T, transition ids)`` score matrix, then Kaldi's Viterbi aligner on the training
graph (``DecodableCtc`` reads ``M[t, tid - 1]``). Statistics are accumulated over a shard's frames
in chunks (float64 per chunk only).

Memory: a worker keeps one float32 array of its shard's frames, the speaker-independent
model-space features (preallocated from the manifest's frame counts, filled utterance by
utterance), plus its alignments and graphs; no float64 copy or squares of all its frames.
The fbank they come from is read from the feature archives when the front end changes (and
for LDA statistics), then dropped; fMLLR-adapted features are computed per speaker on access
(:class:`AdaptedFeatures`), never stored.
"""

from __future__ import annotations

import logging
import math
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..features.cmvn_policy import CMVN_HELP
from ..utils.processes import process_context
from ..utils.readers import read_cuts
from .diag_gmm import DiagGmmSet, GmmStats
from .features import GmmFeatureConfig, GmmFrontEnd
from .transitions import TransitionTables
from .tree import ContextStats, context_dependency_from_bytes

log = logging.getLogger(__name__)

#: Frames gathered at a time by the statistics passes (a multiple of DiagGmmSet.accumulate's chunk, so that the
#: sums are those of one call over all the frames).
ROW_CHUNK = 1 << 16


@dataclass
class ShardSpec:
    """What a worker loads: cuts (by id) of a feature manifest, CMVN, lang, front end."""

    cuts_path: str
    cut_ids: List[str]
    cmvn_path: Optional[str]
    lang_dir: str
    feature_config: GmmFeatureConfig


@dataclass
class AlignOptions:
    beam: float = field(default=10.0, metadata={"help": "Alignment beam."})
    retry_beam: float = field(default=40.0, metadata={"help": "Beam of the second try when the first fails."})
    acoustic_scale: float = field(default=0.1, metadata={"help": "Acoustic likelihood scale."})
    transition_scale: float = field(default=1.0, metadata={"help": "Transition log-probability scale."})
    self_loop_scale: float = field(default=0.1, metadata={"help": "Self-loop log-probability scale."})
    boost_silence: float = field(default=1.0, metadata={"help": "Multiply silence likelihoods by this factor while aligning."})
    graph_pdfs_only: bool = field(
        default=True, metadata={"help": "Score only the pdfs of each utterance's training graph (the rest cannot be reached)."})
    cmvn: bool = field(default=True, metadata={"help": CMVN_HELP})


@dataclass
class AlignReport:
    aligned: int = 0
    failed: List[str] = field(default_factory=list)
    log_like: float = 0.0  # total acoustic log-likelihood of the aligned frames
    frames: int = 0

    def add(self, other: "AlignReport") -> "AlignReport":
        self.aligned += other.aligned
        self.failed += other.failed
        self.log_like += other.log_like
        self.frames += other.frames
        return self


class AdaptedFeatures:
    """Per-speaker fMLLR-adapted features, computed on access from the speaker-independent ones.

    Indexed like the ``(N, D)`` tensor it stands for (``[a:b]`` or ``[rows]``, rows an index tensor),
    it groups the requested rows by speaker and applies each speaker's ``W = [A b]``
    (:func:`~asrdistill.gmm.fmllr.apply_fmllr`, in float64), so no adapted copy of the shard is kept.

    Args:
        si: ``(N, D)`` speaker-independent features.
        offsets: ``(U + 1,)`` first row of each utterance.
        utt_speaker: ``(U,)`` index into ``transforms`` of each utterance's speaker.
        transforms: one ``(D, D + 1)`` transform per speaker.
    """

    def __init__(self, si: torch.Tensor, offsets: np.ndarray, utt_speaker: np.ndarray, transforms: Sequence):
        self.si, self.offsets, self.utt_speaker, self.transforms = si, offsets, utt_speaker, list(transforms)

    @property
    def shape(self) -> torch.Size:
        return self.si.shape

    def __len__(self) -> int:
        return self.si.shape[0]

    def new_zeros(self, *size, **kwargs) -> torch.Tensor:
        return self.si.new_zeros(*size, **kwargs)

    def __getitem__(self, index) -> torch.Tensor:
        from .fmllr import apply_fmllr

        if isinstance(index, slice):
            start, stop, step = index.indices(self.si.shape[0])
            if step != 1:
                raise IndexError("AdaptedFeatures: slices with a step are not supported")
            x, rows = self.si[start:stop], np.arange(start, stop)
        else:
            rows = torch.as_tensor(index, dtype=torch.long).numpy()
            x = self.si[torch.from_numpy(rows)]
        speaker = self.utt_speaker[np.searchsorted(self.offsets, rows, side="right") - 1]
        kinds = np.unique(speaker)
        if len(kinds) == 1:
            return apply_fmllr(x, self.transforms[int(kinds[0])])
        out = torch.empty_like(x)
        for k in kinds:
            sel = torch.from_numpy(speaker == k)
            out[sel] = apply_fmllr(x[sel], self.transforms[int(k)])
        return out


class PerUtterance:
    """The rows of each utterance of ``store`` (a tensor or :class:`AdaptedFeatures`), made on access."""

    def __init__(self, store, offsets: np.ndarray):
        self.store, self.offsets = store, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.store[int(self.offsets[i]):int(self.offsets[i + 1])]

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class Shard:
    """One shard's utterances, graphs and alignments (lives in a worker).

    It keeps the model-space features of its utterances computed by the current front end
    (``si_store``: cepstra + deltas, or spliced cepstra through the LDA+MLLT transform), and
    ``store``: the same, or with per-speaker fMLLR computed on access where set. A trainer can
    change the front end (``set_front_end``: the fbank is read again from the archives) or the
    transforms (``set_fmllr``).
    """

    def __init__(self, spec: ShardSpec):
        from ..data.cuts import cut_speaker, cut_text
        from ..features.cmvn import CmvnStats
        from ..lang.lang_dir import LangDir

        self.spec = spec
        self.lang = LangDir(spec.lang_dir)
        self._cmvn = CmvnStats.load(spec.cmvn_path) if spec.cmvn_path else None
        cuts = self._cuts()
        self.ids: List[str] = [cut.id for cut in cuts]
        self.speakers: List[str] = [cut_speaker(cut) for cut in cuts]  # the key of CMVN and fMLLR statistics
        self.words: List[List[int]] = [self.lang.word_ids(cut_text(cut), where=f"cut {cut.id}") for cut in cuts]
        lengths = [cut.features.num_frames if cut.features is not None else 0 for cut in cuts]
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.front_end = GmmFrontEnd(spec.feature_config)
        self.fmllr = None
        self._compute_features(self._read_fbank(cuts))
        self.ali: Dict[str, np.ndarray] = {}
        self.graphs: Dict[str, Any] = {}
        self._graph_pdf_cache: Dict[str, torch.Tensor] = {}  # per compiled graph; cleared with the graphs
        self.tm = None
        self.ctx = None
        self.tables: Optional[TransitionTables] = None

    # ------------------------------------------------------------------ front end
    def _spans(self):
        return zip(self.offsets[:-1], self.offsets[1:])

    def _cuts(self) -> list:
        """The shard's cuts, in manifest order."""
        wanted = set(self.spec.cut_ids)
        return [cut for cut in read_cuts(self.spec.cuts_path) if cut.id in wanted]

    def _read_fbank(self, cuts=None) -> torch.Tensor:
        """The shard's CMVN-normalized fbank from the feature archives: one float32 array, preallocated from
        the stored frame counts and filled cut by cut."""
        from ..features.loading import load_features

        cuts = self._cuts() if cuts is None else cuts
        if not cuts:
            return torch.zeros(0, 0)
        dim = cuts[0].features.num_features if cuts[0].features is not None else 0
        out = torch.empty(int(self.offsets[-1]), dim, dtype=torch.float32)
        for i, cut in enumerate(cuts):
            f = load_features(cut, self._cmvn, norm_vars=False)
            n = int(self.offsets[i + 1] - self.offsets[i])
            if f.shape != (n, dim):
                raise ValueError(f"{self.spec.cuts_path}: cut {cut.id} has {f.shape} stored features, its manifest says "
                                 f"{(n, dim)}")
            out[self.offsets[i]:self.offsets[i + 1]] = torch.from_numpy(f)
        return out

    def _compute_features(self, fbank: Optional[torch.Tensor] = None) -> None:
        """``si_store``: speaker-independent model features of ``fbank`` (default: read from the archives);
        ``store``: with fMLLR where set. The fbank is dropped afterwards."""
        self.si_store = self.store = self.feats = None  # the old features go before the new ones are made
        fbank = self._read_fbank() if fbank is None else fbank
        self.si_store = self._per_utterance(lambda u, a, b: self.front_end(fbank[a:b]))
        self._apply_fmllr()  # the fbank goes with this frame

    def _per_utterance(self, fn) -> torch.Tensor:
        """``(N, D)`` float32 of ``fn(u, start, end)`` over the utterances, written into one preallocated array."""
        spans = list(self._spans())
        if not spans:
            return torch.zeros(0, 0)
        first = fn(0, *spans[0])
        out = torch.empty(int(self.offsets[-1]), first.shape[1], dtype=torch.float32)
        out[spans[0][0]:spans[0][1]] = first
        for u, (a, b) in enumerate(spans[1:], start=1):
            out[a:b] = fn(u, a, b)
        return out

    def _apply_fmllr(self) -> None:
        if self.fmllr is None or not self.ids:
            self.store = self.si_store
        else:
            names = sorted(set(self.speakers))
            index = {n: k for k, n in enumerate(names)}
            self.store = AdaptedFeatures(self.si_store, self.offsets, np.array([index[s] for s in self.speakers]),
                                         [self.fmllr[n] for n in names])
        self.feats = PerUtterance(self.store, self.offsets)

    def set_front_end(self, feature_config: GmmFeatureConfig, transform=None) -> int:
        """Use another front end (e.g. LDA+MLLT): recompute the features; fMLLR is dropped."""
        self.front_end = GmmFrontEnd(feature_config, None if transform is None else np.asarray(transform))
        self.fmllr = None
        self._compute_features()
        return int(self.store.shape[1])

    def set_fmllr(self, transforms) -> None:
        """Per-speaker fMLLR transforms (``speaker -> (D, D + 1)``) on top of the front end; None: off."""
        if transforms is not None:
            missing = sorted(set(self.speakers) - set(transforms))
            if missing:
                raise KeyError(f"no fMLLR transform for speaker(s) {missing[:5]}")
        self.fmllr = None if transforms is None else dict(transforms)
        self._apply_fmllr()

    # ------------------------------------------------------------------ model
    def set_model(self, ctx_bytes: bytes, tm) -> int:
        """Use a new tree and transition model: recompile the training graphs."""
        import kaldi_hmm_gmm as khg

        self.ctx = context_dependency_from_bytes(ctx_bytes)
        self.tm = tm
        self.tables = TransitionTables.from_model(tm, self.lang.topology())
        opts = khg.TrainingGraphCompilerOptions()
        opts.transition_scale = 0.0  # probabilities are added at alignment time (they change)
        opts.self_loop_scale = 0.0
        compiler = khg.TrainingGraphCompiler(
            trans_model=tm, ctx_dep=self.ctx, lex_fst=self.lang.lexicon_fst(), disambig_syms=self.lang.disambig_phones,
            opts=opts,
        )
        self.graphs = {u: compiler.compile_graph_from_text(w) for u, w in zip(self.ids, self.words)}
        self._graph_pdf_cache = {}
        return len(self.graphs)

    def set_transitions(self, tm) -> None:
        self.tm = tm

    def feature_stats(self, speaker_independent: bool = False, chunk: int = 65536) -> Tuple[int, torch.Tensor, torch.Tensor]:
        """Frame count, sum and sum of squares (float64) of the features, ``chunk`` frames at a time."""
        feats = self.si_store if speaker_independent else self.store
        s = torch.zeros(feats.shape[1], dtype=torch.float64)
        ss = torch.zeros(feats.shape[1], dtype=torch.float64)
        for a in range(0, feats.shape[0], chunk):
            part = feats[a:a + chunk].double()
            s += part.sum(0)
            ss += (part * part).sum(0)
        return feats.shape[0], s, ss

    # ------------------------------------------------------------------ alignment
    def equal_align(self, seed: int) -> AlignReport:
        import kaldifst

        report = AlignReport()
        for u, f in zip(self.ids, self.feats):
            ok, fst = kaldifst.equal_align(ifst=self.graphs[u], length=f.shape[0], rand_seed=seed, num_retries=10)
            tids = kaldifst.get_linear_symbol_sequence(fst)[1] if ok else []
            if not ok or len(tids) != f.shape[0]:
                report.failed.append(u)
                self.ali.pop(u, None)
                continue
            self.ali[u] = np.asarray(tids, dtype=np.int32)
            report.aligned += 1
            report.frames += f.shape[0]
        return report

    def align(self, gmm_state: dict, opts: AlignOptions) -> AlignReport:
        import kaldi_hmm_gmm as khg

        gmm = DiagGmmSet.from_state_dict(gmm_state)
        pdf_of = torch.from_numpy(self.tables.pdf[1:].astype(np.int64))
        sil_pdfs = torch.from_numpy(np.unique(self.tables.pdf[1:][np.isin(self.tables.phone[1:], self.lang.silence_phones)]))
        config = khg.AlignConfig(beam=opts.beam, retry_beam=opts.retry_beam, careful=False)
        report = AlignReport()
        # every pdf for every frame of the shard in large chunks, or per utterance only the pdfs of its graph
        all_ll = None if opts.graph_pdfs_only else gmm.log_likelihoods(self.store)
        start = 0
        for u, f in zip(self.ids, self.feats):
            if all_ll is None:
                ll = gmm.log_likelihoods(f, pdfs=self._graph_pdfs(u))  # f: the rows start..start + len of store
            else:
                ll = all_ll[start : start + f.shape[0]]
            start += f.shape[0]
            if opts.boost_silence != 1.0:
                ll = ll.clone()
                ll[:, sil_pdfs] += math.log(opts.boost_silence)
            scores = (opts.acoustic_scale * ll)[:, pdf_of].contiguous().numpy()
            graph = self.graphs[u].copy()
            khg.add_transition_probs(trans_model=self.tm, transition_scale=opts.transition_scale,
                                     self_loop_scale=opts.self_loop_scale, fst=graph)
            out = khg.align_utterance_wrapper(
                config=config, utt=u, acoustic_scale=opts.acoustic_scale, fst=graph, decodable=khg.DecodableCtc(scores),
                num_done=0, num_error=0, num_retried=0, tot_like=0.0, frame_count=0,
            )
            tids = out[5]
            if len(tids) != f.shape[0]:
                report.failed.append(u)
                self.ali.pop(u, None)
                continue
            ali = np.asarray(tids, dtype=np.int32)
            self.ali[u] = ali
            report.aligned += 1
            report.frames += f.shape[0]
            report.log_like += float(ll[torch.arange(f.shape[0]), torch.from_numpy(self.tables.pdf[ali].astype(np.int64))].sum())
        return report

    def _graph_pdfs(self, u: str) -> torch.Tensor:
        """The pdfs of the transition ids on the input side of utterance ``u``'s training graph
        (read once per compiled graph: realignments reuse it)."""
        if u in self._graph_pdf_cache:
            return self._graph_pdf_cache[u]
        arcs = (line.split() for line in self.graphs[u].to_str().splitlines())  # src dst ilabel olabel [weight]
        tids = np.array([int(a[2]) for a in arcs if len(a) >= 4], dtype=np.int64)
        tids = tids[tids > 0]  # 0: epsilon
        pdfs = torch.from_numpy(np.unique(self.tables.pdf[tids]).astype(np.int64))
        self._graph_pdf_cache[u] = pdfs
        return pdfs

    def _aligned_rows(self):
        """``(utterance indices, their frames' rows, their transition ids)`` of the aligned utterances."""
        us = [i for i, u in enumerate(self.ids) if u in self.ali]
        tids = np.concatenate([self.ali[self.ids[i]] for i in us]) if us else np.zeros(0, np.int32)
        rows = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in us]) if us else np.zeros(0, np.int64)
        return us, torch.from_numpy(rows.astype(np.int64)), tids

    def _aligned(self):
        if len(self.ali) == len(self.ids) and all(u in self.ali for u in self.ids):  # the usual case: no copy
            return self.store, np.concatenate([self.ali[u] for u in self.ids]) if self.ids else np.zeros(0, np.int32)
        _, rows, tids = self._aligned_rows()
        return self.store[rows], tids

    def accumulate(self, gmm_state: dict) -> Tuple[GmmStats, np.ndarray]:
        gmm = DiagGmmSet.from_state_dict(gmm_state)
        stats = GmmStats.zeros(gmm.num_pdfs, gmm.max_gauss, gmm.dim)
        if len(self.ali) == len(self.ids) and all(u in self.ali for u in self.ids):  # the usual case: no copy
            feats, tids = self._aligned()
            gmm.accumulate(feats, torch.from_numpy(self.tables.pdf[tids].astype(np.int64)), stats)
        else:  # the aligned utterances' rows, a chunk at a time (a multiple of accumulate's own chunk)
            _, rows, tids = self._aligned_rows()
            pdfs = torch.from_numpy(self.tables.pdf[tids].astype(np.int64))
            for a in range(0, len(rows), ROW_CHUNK):
                gmm.accumulate(self.store[rows[a:a + ROW_CHUNK]], pdfs[a:a + ROW_CHUNK], stats)
        counts = np.bincount(tids, minlength=self.tm.num_transition_ids + 1).astype(np.float64)
        return stats, counts

    def frame_keys(self, tids: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        """``(T, 4)`` [left, centre, right, pdf class] of concatenated alignments."""
        parts, start = [], 0
        for n in lengths:
            t = tids[start : start + n]
            parts.append(np.concatenate([self.tables.contexts(t), self.tables.pdf_class[t][:, None]], 1))
            start += n
        return np.concatenate(parts) if parts else np.zeros((0, 4), np.int64)

    def tree_stats(self, chunk_frames: int = 1 << 18) -> ContextStats:
        """Context statistics of the aligned frames, accumulated over groups of about ``chunk_frames`` frames
        of whole utterances (contexts need an utterance's neighbouring phones): no copy of all the frames."""
        aligned = [i for i, u in enumerate(self.ids) if u in self.ali]

        def chunks():
            group, size = [], 0
            for k, i in enumerate(aligned):
                group.append(i)
                size += int(self.offsets[i + 1] - self.offsets[i])
                if size >= chunk_frames or k == len(aligned) - 1:
                    alis = [self.ali[self.ids[j]] for j in group]
                    keys = self.frame_keys(np.concatenate(alis), [len(a) for a in alis])
                    feats = torch.cat([self.store[self.offsets[j]:self.offsets[j + 1]] for j in group])
                    yield keys, feats
                    group, size = [], 0

        return ContextStats.from_chunks(chunks(), int(self.store.shape[1]))

    def convert(self, ctx_bytes: bytes, tm) -> int:
        """Map the alignments onto a new tree and transition model (Kaldi's convert-ali)."""
        old = self.tables
        _, _, tids = self._aligned_rows()  # the transition ids only: no features
        aligned = [u for u in self.ids if u in self.ali]
        lengths = [len(self.ali[u]) for u in aligned]
        keys = self.frame_keys(tids, lengths)
        self.set_model(ctx_bytes, tm)
        new = self.tables
        topo = self.lang.topology()
        ctx = self.ctx
        # (left, centre, right, hmm state) -> new transition state; once per distinct context
        ctx_keys = np.concatenate([keys[:, :3], old.hmm_state[tids][:, None]], 1)
        uniq, inv = np.unique(ctx_keys, axis=0, return_inverse=True)
        state_of = np.zeros(len(uniq), np.int64)
        for i, (l, c, r, s) in enumerate(uniq.tolist()):
            hs = topo.topology_for_phone(c)[s]
            fwd = ctx.compute([l, c, r], hs.forward_pdf_class)[1]
            loop = ctx.compute([l, c, r], hs.self_loop_pdf_class)[1]
            state_of[i] = new.tuple_to_state[(c, s, fwd, loop)]
        new_tids = new.state_first_tid[state_of[inv.reshape(-1)]] + old.trans_index[tids]
        start = 0
        for u, n in zip(aligned, lengths):
            self.ali[u] = new_tids[start : start + n].astype(np.int32)
            start += n
        return len(aligned)

    def alignments(self) -> Dict[str, np.ndarray]:
        return dict(self.ali)

    # ------------------------------------------------------------------ transform statistics
    def _aligned_frames(self, silence_weight: float):
        """Rows of the aligned utterances' frames, their pdfs and weights (``silence_weight`` on silence)."""
        us, rows, tids = self._aligned_rows()
        pdfs = torch.from_numpy(self.tables.pdf[tids].astype(np.int64))
        sil = np.isin(self.tables.phone[tids], self.lang.silence_phones)
        weights = torch.from_numpy(np.where(sil, silence_weight, 1.0))
        return us, rows, pdfs, weights

    def lda_stats(self, feature_config: GmmFeatureConfig, num_classes: int, silence_weight: float):
        """LDA statistics of the spliced features of ``feature_config``, classes = aligned pdfs (the fbank
        is read from the archives for this, then dropped)."""
        from .lda import LdaStats

        front = GmmFrontEnd(feature_config)
        us, rows, pdfs, weights = self._aligned_frames(silence_weight)
        fbank = self._read_fbank()
        stats = None
        start = 0
        for i in us:
            x = front(fbank[self.offsets[i] : self.offsets[i + 1]])
            if stats is None:
                stats = LdaStats.zeros(num_classes, x.shape[1])
            n = x.shape[0]
            stats.accumulate(x, pdfs[start : start + n], weights[start : start + n])
            start += n
        return stats if stats is not None else LdaStats.zeros(num_classes, feature_config.dim(fbank.shape[1]))

    def mllt_stats(self, gmm_state: dict, silence_weight: float, rand_prune: float = 0.0, seed: int = 0):
        """MLLT statistics of the current (speaker-independent) features under the aligned pdfs
        (``rand_prune``: unbiased random pruning of small posteriors, seeded)."""
        from .mllt import MlltStats

        gmm = DiagGmmSet.from_state_dict(gmm_state)
        us, rows, pdfs, weights = self._aligned_frames(silence_weight)
        stats = MlltStats.zeros(gmm.dim)
        keep = weights > 0
        gen = torch.Generator().manual_seed(seed)
        rows, pdfs, weights = rows[keep], pdfs[keep], weights[keep]
        # a multiple of accumulate_gmm's own chunk of frames: the same chunks, the same random draws, as one call
        inner = max(1, 32768 // max(1, gmm.max_gauss))
        step = inner * max(1, ROW_CHUNK // inner)
        for a in range(0, len(rows), step):
            stats.accumulate_gmm(gmm, self.si_store[rows[a:a + step]], pdfs[a:a + step], weights[a:a + step],
                                 rand_prune=rand_prune, generator=gen, max_pairs=32768)
        return stats

    def fmllr_stats(self, gmm_state: dict, silence_weight: float) -> dict:
        """Per-speaker fMLLR statistics of the speaker-independent features under the aligned pdfs,
        with the Gaussian posteriors of the current features (adapted, where fMLLR is set)."""
        from .fmllr import FmllrStats

        gmm = DiagGmmSet.from_state_dict(gmm_state)
        us, rows, pdfs, weights = self._aligned_frames(silence_weight)
        speaker_of_row = np.repeat([self.speakers[i] for i in us], [self.offsets[i + 1] - self.offsets[i] for i in us])
        out: Dict[str, FmllrStats] = {}
        for spk in sorted(set(speaker_of_row)):  # one accumulation over all of a speaker's frames
            sel = torch.from_numpy(speaker_of_row == spk)
            r = rows[sel]
            out[spk] = FmllrStats.zeros(gmm.dim)
            out[spk].accumulate_gmm(gmm, self.si_store[r], pdfs[sel], weights[sel], post_feats=self.store[r])
        return out

    def accumulate_two_feats(self, gmm_state: dict) -> GmmStats:
        """Statistics on the speaker-independent features with the posteriors of the adapted ones
        (Kaldi's ``gmm-acc-stats-twofeats``: the alignment model of a SAT system)."""
        gmm = DiagGmmSet.from_state_dict(gmm_state)
        stats = GmmStats.zeros(gmm.num_pdfs, gmm.max_gauss, gmm.dim)
        us, rows, pdfs, _ = self._aligned_frames(1.0)
        for a in range(0, len(rows), ROW_CHUNK):  # no copy of all the frames (twice)
            r = rows[a:a + ROW_CHUNK]
            gmm.accumulate(self.store[r], pdfs[a:a + ROW_CHUNK], stats, stats_feats=self.si_store[r])
        return stats


# ---------------------------------------------------------------------- workers
def _worker(conn, spec: ShardSpec) -> None:
    torch.set_num_threads(1)
    try:
        shard = Shard(spec)
        conn.send(("ok", len(shard.ids)))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        msg = conn.recv()
        if msg is None:
            return
        method, args = msg
        try:
            conn.send(("ok", getattr(shard, method)(*args)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class ShardPool:
    """``num_jobs`` shards; :meth:`call` runs a :class:`Shard` method on all and returns the results."""

    def __init__(self, specs: Sequence[ShardSpec]):
        self.specs = list(specs)
        self.local: Optional[List[Shard]] = None
        self.procs = []
        if len(self.specs) == 1:
            self.local = [Shard(self.specs[0])]
            return
        ctx = process_context()
        self.conns = []
        for spec in self.specs:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, spec), daemon=True)
            p.start()
            self.procs.append(p)
            self.conns.append(parent)
        for c in self.conns:
            self._receive(c)

    @staticmethod
    def _receive(conn):
        status, value = conn.recv()
        if status != "ok":
            raise RuntimeError(f"GMM shard worker failed:\n{value}")
        return value

    def call(self, method: str, *args) -> list:
        if self.local is not None:
            return [getattr(s, method)(*args) for s in self.local]
        for c in self.conns:
            c.send((method, args))
        return [self._receive(c) for c in self.conns]

    def close(self) -> None:
        for c in getattr(self, "conns", []):
            try:
                c.send(None)
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_shards(cuts_path, cut_ids: Sequence[str], num_jobs: int, cmvn_path, lang_dir, feature_config) -> List[ShardSpec]:
    ids = list(cut_ids)
    n = max(1, min(num_jobs, len(ids)))
    return [ShardSpec(str(cuts_path), ids[j::n], str(cmvn_path) if cmvn_path else None, str(lang_dir), feature_config)
            for j in range(n)]
