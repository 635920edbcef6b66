"""LibriSpeech (OpenSLR 12) and its lexicon and language models (OpenSLR 11).

The corpus as distributed::

    LibriSpeech/{part}/{speaker}/{chapter}/{speaker}-{chapter}-{utt:04d}.flac
    LibriSpeech/{part}/{speaker}/{chapter}/{speaker}-{chapter}.trans.txt   # "UTT-ID WORD WORD ..." per line

:func:`download_librispeech` fetches parts (``train-clean-100.tar.gz``, ...) and the
resource files (``librispeech-lexicon.txt``, ``3-gram.pruned.1e-7.arpa.gz``, ...) with
:func:`asrdistill.utils.download.download_file`: resumable, size-checked against the
server's ``Content-Length``, renamed into place only when complete, and unpacked atomically.
``base_url`` may be a ``file://`` mirror.

:func:`prepare_librispeech` reads the parts with lhotse and writes the manifests in the
toolkit's naming, ``librispeech_{recordings,supervisions,cuts}_{split}.jsonl.gz``, for the
splits the recipes use: ``train`` (the union of the training parts), ``dev`` (tunes and
early-stops), ``test``, and any extra evaluation parts (``dev_other``, ``test_other``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from ..utils.atomic import atomic_path
from ..utils.config import save_config
from ..utils.download import download_file, extract_archive

log = logging.getLogger(__name__)

PARTS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100", "train-clean-360", "train-other-500")
CORPUS_URL = "https://www.openslr.org/resources/12"
RESOURCES_URL = "https://www.openslr.org/resources/11"
#: The lexicon and the official n-gram LMs of OpenSLR 11 the recipe uses.
#: the lexicon, the first-pass LM (Kaldi's tgsmall) and the rescoring LMs (tglarge, fglarge)
RESOURCE_FILES = ("librispeech-lexicon.txt", "3-gram.pruned.1e-7.arpa.gz", "3-gram.arpa.gz", "4-gram.arpa.gz")


@dataclass
class LibriSpeechConfig:
    train_parts: Tuple[str, ...] = field(default=("train-clean-100",), metadata={"help": "Parts forming the train split."})
    dev_part: str = field(default="dev-clean", metadata={"help": "Part forming the dev split (tuning, early stopping)."})
    test_part: str = field(default="test-clean", metadata={"help": "Part forming the test split."})
    extra_parts: Tuple[str, ...] = field(
        default=("dev-other", "test-other"), metadata={"help": "More evaluation parts, each a split of its own (dev_other, ...)."})
    num_jobs: int = field(default=4, metadata={"help": "Threads reading audio headers."})
    base_url: str = field(default=CORPUS_URL, metadata={"help": "Where parts are downloaded from (a mirror, or file://)."})
    resources_url: str = field(default=RESOURCES_URL, metadata={"help": "Where the lexicon and LMs are downloaded from."})
    resource_files: Tuple[str, ...] = field(
        default=RESOURCE_FILES, metadata={"help": "Lexicon and LM files downloaded with the parts (OpenSLR 11)."})

    def split_parts(self) -> Dict[str, List[str]]:
        out = {"train": list(self.train_parts), "dev": [self.dev_part], "test": [self.test_part]}
        out.update({p.replace("-", "_"): [p] for p in self.extra_parts})
        check_parts(p for parts in out.values() for p in parts)
        return out


def check_parts(parts) -> None:
    """A ``ValueError`` naming the first of ``parts`` that is not a LibriSpeech part."""
    for p in parts:
        if p not in PARTS:
            raise ValueError(f"unknown LibriSpeech part {p!r}; known: {', '.join(PARTS)}")


def download_librispeech(target_dir, parts: Sequence[str], base_url: str = CORPUS_URL, progress: bool = True) -> Path:
    """Download and unpack ``parts`` into ``target_dir``; returns the corpus directory (``.../LibriSpeech``)."""
    target_dir = Path(target_dir)
    check_parts(parts)
    for part in parts:
        if (target_dir / "LibriSpeech" / part).is_dir() and (target_dir / f".{part}.tar.gz.extracted").exists():
            continue
        archive = download_file(f"{base_url.rstrip('/')}/{part}.tar.gz", target_dir / f"{part}.tar.gz", progress=progress)
        extract_archive(archive, target_dir)
    return target_dir / "LibriSpeech"


def download_resources(target_dir, files: Sequence[str] = RESOURCE_FILES, base_url: str = RESOURCES_URL,
                       progress: bool = True) -> Dict[str, Path]:
    """Download the lexicon and language models (kept as distributed, ``.gz`` included)."""
    target_dir = Path(target_dir)
    return {name: download_file(f"{base_url.rstrip('/')}/{name}", target_dir / name, progress=progress) for name in files}


def prepare_librispeech(corpus_dir, output_dir, config: LibriSpeechConfig = LibriSpeechConfig()) -> Dict[str, object]:
    """Write the manifests of every split (see the module doc); returns the cuts of each."""
    from lhotse import CutSet, RecordingSet, SupervisionSet
    from lhotse.recipes.librispeech import prepare_librispeech as lhotse_prepare

    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    split_parts = config.split_parts()
    needed = sorted({p for parts in split_parts.values() for p in parts})
    missing = [p for p in needed if not (corpus_dir / p).is_dir()]
    if missing:
        raise FileNotFoundError(f"{corpus_dir}: no directory for part(s) {', '.join(missing)} "
                                "(download them, or change the parts of the configuration)")
    for p in needed:
        if not any((corpus_dir / p).rglob("*.trans.txt")):
            raise FileNotFoundError(f"{corpus_dir / p}: no *.trans.txt transcripts (not a LibriSpeech part?)")
    manifests = lhotse_prepare(corpus_dir, dataset_parts=needed, num_jobs=config.num_jobs)
    output_dir.mkdir(parents=True, exist_ok=True)
    result = {}
    for split, parts in split_parts.items():
        recs = RecordingSet.from_recordings(r for p in parts for r in manifests[p]["recordings"])
        sups = SupervisionSet.from_segments(s for p in parts for s in manifests[p]["supervisions"])
        unmatched = sorted(set(recs.ids) ^ {s.recording_id for s in sups})
        if unmatched:
            raise ValueError(f"{corpus_dir}: {len(unmatched)} utterance(s) with audio but no transcript or the "
                             f"reverse, e.g. {', '.join(unmatched[:5])}")
        # one cut per utterance, named after it (lhotse numbers the cuts of a recording otherwise)
        cuts = CutSet.from_cuts(c.with_id(c.recording_id) for c in CutSet.from_manifests(recordings=recs, supervisions=sups))
        for name, manifest in (("recordings", recs), ("supervisions", sups), ("cuts", cuts)):
            with atomic_path(output_dir / f"librispeech_{name}_{split}.jsonl.gz") as tmp:
                manifest.to_file(tmp)
        result[split] = cuts
        log.info("%s: %d utterances from %s", split, len(recs), ", ".join(parts))
    save_config(config, output_dir / "prepare_config.yaml")
    return result
