"""Free Spoken Digit Dataset (FSDD): download and lhotse manifests.

Files are ``recordings/{digit}_{speaker}_{take}.wav`` (8 kHz, 16-bit, mono, one
spoken digit each). :func:`prepare_fsdd` writes, for each split,

* ``fsdd_recordings_{split}.jsonl.gz`` and ``fsdd_supervisions_{split}.jsonl.gz``
  (one supervision per take, text ``SEVEN`` etc., ``custom.split`` = the split);
* ``fsdd_cuts_{split}.jsonl.gz``: the isolated takes (``MonoCut``) followed by the
  connected-digit utterances (``MixedCut``, see :mod:`asrdistill.data.connected_digits`;
  by default their pauses are filled with the speaker's recorded non-speech);

and ``prepare_config.yaml`` with the options (speaker split, seed) that produced them.
Splits are speaker-independent: each speaker belongs to exactly one split.

With ``speed_perturb`` (e.g. ``0.9,1.0,1.1``), a split ``train_sp`` is written beside
``train`` (Kaldi's ``data/train_sp``: the GMMs train on ``train``, the DNNs on the
alignments of ``train_sp``; :mod:`asrdistill.data.speed_perturb`, which does the same for any
corpus). It holds the original train cuts and, after them, a
speed-perturbed copy of every train cut for each factor other than 1.0
(lhotse ``perturb_speed``: resampled on loading, durations and word times scaled by
1/factor). As in Kaldi, the copy's ids are prefixed ``sp{factor}-`` (cut, track cuts,
recordings, supervisions) and so is its speaker (``sp0.9-george``), so per-speaker CMVN
treats each perturbed copy as a speaker of its own. The original cuts are always kept;
factor 1.0 stands for them. The recordings/supervisions manifests list the files on disk
only, and dev/test are never perturbed.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.audio import AudioSource
from lhotse.cut import MonoCut
from ..utils.progress import progress as tqdm

from ..utils.atomic import atomic_path
from ..utils.config import save_config
from ..utils.download import download_file, extract_archive
from .audio_check import AudioError, SkipCounter, check_audio_file
from .connected_digits import ConnectedDigitsConfig, build_connected_digits
from .cuts import SplitSummary, summarize
from .speed_perturb import check_factors, speed_perturbed

log = logging.getLogger(__name__)

FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
SPLITS = ("train", "dev", "test")
_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9]+)_(?P<take>[0-9]+)$")


@dataclass
class FsddConfig(ConnectedDigitsConfig):
    """How FSDD is split and which utterances are built (connected-digit options inherited)."""

    train_speakers: Tuple[str, ...] = field(
        default=("george", "jackson", "yweweler"), metadata={"help": "Speakers of the training split."}
    )
    dev_speakers: Tuple[str, ...] = field(default=("nicolas",), metadata={"help": "Speakers of the dev split."})
    test_speakers: Tuple[str, ...] = field(default=("theo",), metadata={"help": "Speakers of the test split."})
    sampling_rate: int = field(default=8000, metadata={"help": "Expected sampling rate; other rates are an error."})
    include_isolated: bool = field(default=True, metadata={"help": "Keep the isolated-digit takes as cuts."})
    seed: int = field(default=0, metadata={"help": "Seed of the connected-digit construction."})
    skip_bad: bool = field(
        default=False, metadata={"help": "Skip (log and count) bad audio files instead of stopping."}
    )
    speed_perturb: Tuple[float, ...] = field(
        default=(),
        metadata={
            "help": "Speed-perturbation factors, e.g. 0.9,1.0,1.1: a split train_sp with the train cuts and a copy of "
            "every train cut per factor other than 1.0, ids and speakers prefixed sp{factor}- (originals always kept; "
            "dev/test never perturbed). Empty = off. 0.9,1.0,1.1 triples the training data and so "
            "GMM/DNN training time."
        },
    )

    def split_of(self) -> Dict[str, str]:
        mapping: Dict[str, str] = {}
        for split in SPLITS:
            for spk in getattr(self, f"{split}_speakers"):
                if spk in mapping:
                    raise ValueError(f"speaker {spk!r} is in both the {mapping[spk]} and {split} splits")
                mapping[spk] = split
        return mapping


def download_fsdd(target_dir, url: str = FSDD_URL, force: bool = False) -> Path:
    """Download and unpack the public FSDD; returns the corpus directory (with ``recordings/``)."""
    target_dir = Path(target_dir)
    archive = download_file(url, target_dir / "fsdd-master.zip", force=force)
    extract_archive(archive, target_dir)
    found = sorted(p.parent for p in target_dir.glob("*/recordings"))
    if not found:
        raise FileNotFoundError(f"{archive}: no recordings/ directory inside the archive")
    return found[0]


def find_recordings_dir(corpus_dir) -> Path:
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise FileNotFoundError(f"FSDD corpus directory {corpus_dir} does not exist")
    rec = corpus_dir / "recordings"
    return rec if rec.is_dir() else corpus_dir


def parse_take_name(path: Path) -> Tuple[str, str, int]:
    """``7_jackson_32.wav`` -> (``SEVEN``, ``jackson``, 32); AudioError if it has no label."""
    m = _NAME.match(path.stem)
    if m is None:
        raise AudioError(path, "no label: file name is not {digit}_{speaker}_{take}.wav", "no_label")
    return DIGIT_WORDS[int(m["digit"])], m["speaker"], int(m["take"])


def prepare_fsdd(corpus_dir, output_dir, config: FsddConfig = FsddConfig()) -> Dict[str, CutSet]:
    """Write the FSDD manifests (see module doc) and return the cuts of each split."""
    rec_dir = find_recordings_dir(corpus_dir)
    output_dir = Path(output_dir)
    split_of = config.split_of()
    check_factors(config.speed_perturb)
    files = sorted(rec_dir.glob("*.wav"))
    if not files:
        raise FileNotFoundError(f"no .wav files in {rec_dir}")
    bad = SkipCounter(config.skip_bad, what="audio file")
    recordings: Dict[str, List[Recording]] = defaultdict(list)
    supervisions: Dict[str, List[SupervisionSegment]] = defaultdict(list)
    unused = set()
    for path in tqdm(files, desc="scanning FSDD", unit="file"):
        try:
            word, speaker, _ = parse_take_name(path)
            split = split_of.get(speaker)
            if split is None:
                unused.add(speaker)
                continue
            info = check_audio_file(path, expected_sampling_rate=config.sampling_rate)
        except AudioError as e:
            bad.handle(e)
            continue
        rid = path.stem
        recordings[split].append(
            Recording(
                id=rid,
                sources=[AudioSource(type="file", channels=[0], source=str(path.resolve()))],
                sampling_rate=info.sampling_rate,
                num_samples=info.num_samples,
                duration=info.duration,
            )
        )
        supervisions[split].append(
            SupervisionSegment(
                id=rid,
                recording_id=rid,
                start=0.0,
                duration=info.duration,
                channel=0,
                text=word,
                speaker=speaker,
                language="English",
                custom={"split": split},
            )
        )
    bad.report()  # every bad file in one error (or, with skip_bad, a summary per reason)
    if unused:
        log.info("speakers in %s not assigned to any split (ignored): %s", rec_dir, sorted(unused))
    missing = sorted(set(split_of) - {s.speaker for sups in supervisions.values() for s in sups})
    if missing:
        raise ValueError(f"speaker(s) {missing} of the configured splits have no usable files in {rec_dir}")

    output_dir.mkdir(parents=True, exist_ok=True)
    result: Dict[str, CutSet] = {}
    for split in SPLITS:
        recs = RecordingSet.from_recordings(recordings[split])
        sups = SupervisionSet.from_segments(supervisions[split])
        takes = [
            MonoCut(
                id=r.id,
                start=0.0,
                duration=r.duration,
                channel=0,
                recording=r,
                supervisions=[sups[r.id]],
                custom={"kind": "isolated", "split": split},
            )
            for r in recs
        ]
        by_speaker: Dict[str, List[MonoCut]] = defaultdict(list)
        for c in takes:
            by_speaker[c.supervisions[0].speaker].append(c)
        connected = build_connected_digits(by_speaker, config, config.seed, config.sampling_rate)
        split_cuts = (takes if config.include_isolated else []) + connected
        cuts = CutSet.from_cuts(split_cuts)
        for name, manifest in (("recordings", recs), ("supervisions", sups), ("cuts", cuts)):
            with atomic_path(output_dir / f"fsdd_{name}_{split}.jsonl.gz") as tmp:
                manifest.to_file(tmp)
        result[split] = cuts
        if split == "train" and config.speed_perturb:  # Kaldi's data/train_sp, beside data/train
            sp = CutSet.from_cuts(speed_perturbed(split_cuts, config.speed_perturb))
            for name, manifest in (("recordings", recs), ("supervisions", sups), ("cuts", sp)):
                with atomic_path(output_dir / f"fsdd_{name}_train_sp.jsonl.gz") as tmp:
                    manifest.to_file(tmp)
            result["train_sp"] = sp
    save_config(config, output_dir / "prepare_config.yaml")
    return result


def summarize_splits(cuts: Dict[str, CutSet]) -> Dict[str, SplitSummary]:
    return {split: summarize(split, c) for split, c in cuts.items()}
