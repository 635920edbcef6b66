"""``asrdistill prepare``: corpus download and lhotse manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..data.fsdd import FsddConfig
from ..data.kaldi_dir import KaldiImportConfig
from ..data.librispeech import LibriSpeechConfig
from ..lang.lang_dir import LangConfig
from ..utils.config import with_config
from ..utils.readers import read_cuts


@click.group()
def prepare() -> None:
    """Prepare corpora as lhotse manifests (recordings, supervisions, cuts)."""


@prepare.command("fsdd")
@click.option(
    "--corpus-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="An existing FSDD copy (with recordings/); if not given, the corpus is downloaded to --download-dir.",
)
@click.option(
    "--download-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("download"),
    help="Where to download FSDD when --corpus-dir is not given.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/manifests"),
    help="Where the manifests are written.",
)
@click.option("--folds", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A leave-one-speaker-out folds file (asrdistill.data.folds); with --fold, its split replaces "
                   "the train/dev/test speakers.")
@click.option("--fold", type=click.IntRange(min=0), default=None, help="The fold of --folds to prepare.")
@with_config(FsddConfig)
def prepare_fsdd_cmd(config: FsddConfig, corpus_dir: Optional[Path], download_dir: Path, output_dir: Path,
                     folds: Optional[Path], fold: Optional[int]) -> None:
    """Free Spoken Digit Dataset: speaker-independent splits plus connected-digit utterances."""
    import dataclasses

    from ..data.audio_check import AudioError
    from ..data.cuts import format_summary
    from ..data.folds import FoldsError, fold_speakers
    from ..data.fsdd import download_fsdd, prepare_fsdd, summarize_splits

    if (folds is None) != (fold is None):
        raise click.UsageError("--folds and --fold go together")
    if folds is not None:
        try:  # the saved prepare_config.yaml holds the fold's speakers as plain lists
            config = dataclasses.replace(config, **fold_speakers(folds, fold))
        except FoldsError as e:
            raise click.ClickException(str(e))
    if corpus_dir is None:
        corpus_dir = download_fsdd(download_dir)
    try:
        cuts = prepare_fsdd(corpus_dir, output_dir, config)
    except (AudioError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e))
    click.echo(format_summary(summarize_splits(cuts)))


@prepare.command("lang")
@click.option(
    "--feature-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/fbank"),
    help="Directory with {prefix}_cuts_{split}.jsonl.gz (their transcripts give the vocabulary).",
)
@click.option("--prefix", default="fsdd", help="Corpus prefix of the manifest file names.")
@click.option("--splits", default="train,dev,test", help="Splits whose words enter the lexicon; the first is the training split.")
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A lexicon file (WORD PH PH ...); default: the CMU dictionary for the transcripts' words.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/lang"), help="The lang directory.")
@with_config(LangConfig)
def prepare_lang_cmd(config, feature_dir: Path, prefix: str, splits: str, lexicon: Optional[Path], output_dir: Path) -> None:
    """Lang directory: phones, words, topology, lexicon FSTs (OOVs reported by name and count)."""
    from ..data.cuts import cut_text
    from ..lang.lang_dir import prepare_lang
    from ..lang.lexicon import Lexicon, OovError, check_oovs, cmudict_lexicon

    split_list = [s for s in splits.split(",") if s]
    transcripts = {}
    for split in split_list:
        path = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
        if not path.exists():
            raise click.ClickException(f"{path} does not exist")
        transcripts[split] = {c.id: cut_text(c) for c in read_cuts(path)}
    words = sorted({w for t in transcripts.values() for text in t.values() for w in text.split()})
    if lexicon is not None:
        lex = Lexicon.read(lexicon, keep_stress=config.keep_stress)
    else:
        lex, _ = cmudict_lexicon(words, keep_stress=config.keep_stress, max_prons=config.max_prons)
    with_oov = Lexicon({w: list(p) for w, p in lex.prons.items()})
    if config.oov_word:
        with_oov.add(config.oov_word, ["SPN"])
    for i, split in enumerate(split_list):
        try:
            check_oovs(transcripts[split], with_oov, f"{split} transcripts", config.oov_word or None)
        except OovError as e:
            if i == 0:
                raise click.ClickException(str(e))
            click.echo(f"warning: {e}", err=True)
    lang = prepare_lang(lex, output_dir, config)
    click.echo(f"lang: {len(lang.phones)} phones, {len(lang.word_id)} words (incl. special symbols) -> {output_dir}")


@prepare.command("librispeech")
@click.option("--corpus-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="An existing LibriSpeech directory (holding dev-clean/, train-clean-100/, ...); if not given, the "
                   "configured parts are downloaded to --download-dir.")
@click.option("--download-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("download"),
              help="Where to download the parts and the resource files (lexicon, LMs).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/manifests"),
              help="Where the manifests are written.")
@with_config(LibriSpeechConfig)
def prepare_librispeech_cmd(config, corpus_dir, download_dir, output_dir) -> None:
    """LibriSpeech: train (the training parts), dev, test and extra evaluation splits as lhotse manifests."""
    from ..data.cuts import format_summary, summarize
    from ..data.librispeech import download_librispeech, download_resources, prepare_librispeech
    from ..utils.download import DownloadError

    try:
        if corpus_dir is None:
            parts = sorted({p for ps in config.split_parts().values() for p in ps})
            corpus_dir = download_librispeech(download_dir, parts, config.base_url)
            if config.resource_files:
                download_resources(download_dir, config.resource_files, config.resources_url)
        cuts = prepare_librispeech(corpus_dir, output_dir, config)
    except (DownloadError, FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e))
    click.echo(format_summary({split: summarize(split, c) for split, c in cuts.items()}))


@prepare.command("kaldi")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A Kaldi data directory (wav.scp; text, utt2spk, spk2utt, segments, reco2dur as present).")
@click.option("--split", required=True, help="The split it becomes (train, dev, test, ...).")
@click.option("--prefix", default="corpus", help="Corpus prefix of the manifest file names.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/manifests"),
              help="Where the manifests are written.")
@with_config(KaldiImportConfig)
def prepare_kaldi_cmd(config, data_dir: Path, split: str, prefix: str, output_dir: Path) -> None:
    """A Kaldi data directory as a split's manifests (checked as validate_data_dir.sh; --skip-bad drops bad entries)."""
    from ..data.cuts import format_summary, summarize
    from ..data.kaldi_dir import import_kaldi_dir

    cuts = import_kaldi_dir(data_dir, output_dir, prefix, split, config)
    click.echo(format_summary({split: summarize(split, cuts)}))


@prepare.command("manifests")
@click.option("--recordings", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="A lhotse recordings manifest.")
@click.option("--supervisions", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="A lhotse supervisions manifest (text and speaker of each utterance).")
@click.option("--split", required=True, help="The split it becomes (train, dev, test, ...).")
@click.option("--prefix", default="corpus", help="Corpus prefix of the manifest file names.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/manifests"),
              help="Where the manifests are written.")
def prepare_manifests_cmd(recordings: Path, supervisions: Path, split: str, prefix: str, output_dir: Path) -> None:
    """Existing lhotse recordings/supervisions manifests as a split's manifests (one cut per supervision)."""
    from ..data.cuts import format_summary, summarize
    from ..data.kaldi_dir import import_manifests

    cuts = import_manifests(recordings, supervisions, output_dir, prefix, split)
    click.echo(format_summary({split: summarize(split, cuts)}))


@prepare.command("to-kaldi")
@click.option("--recordings", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A lhotse recordings manifest (with --supervisions).")
@click.option("--supervisions", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A lhotse supervisions manifest (with --recordings).")
@click.option("--cuts", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A lhotse cuts manifest instead: one utterance per cut (mixed or transformed cuts written as "
                   "audio to --audio-dir).")
@click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --cuts: where the audio of cuts that are not a plain span of one file goes (WAV, 16 bit).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The Kaldi data directory to write.")
def prepare_to_kaldi_cmd(recordings: Optional[Path], supervisions: Optional[Path], cuts: Optional[Path],
                         audio_dir: Optional[Path], data_dir: Path) -> None:
    """Manifests as a Kaldi data directory (wav.scp, text, utt2spk, spk2utt, reco2dur; segments if needed)."""
    from ..data.kaldi_dir import export_cuts_kaldi_dir, export_kaldi_dir

    if (cuts is None) == (recordings is None or supervisions is None) or (cuts and (recordings or supervisions)):
        raise click.UsageError("give either --recordings and --supervisions, or --cuts")
    if cuts is None and audio_dir is not None:
        raise click.UsageError("--audio-dir goes with --cuts")
    if cuts is not None:
        click.echo(f"-> {export_cuts_kaldi_dir(cuts, data_dir, audio_dir)}")
    else:
        click.echo(f"-> {export_kaldi_dir(recordings, supervisions, data_dir)}")


@prepare.command("speed-perturb")
@click.option("--manifest-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("data/manifests"), help="Where the split's manifests are (and the new split's go).")
@click.option("--prefix", default="corpus", help="Corpus prefix of the manifest file names.")
@click.option("--split", default="train", show_default=True, help="The split to perturb.")
@click.option("--factors", default="0.9,1.1", show_default=True,
              help="Comma-separated speed factors (1.0, the original cuts, is always kept).")
@click.option("--out-split", default="train_sp", show_default=True, help="The new split.")
def prepare_speed_perturb_cmd(manifest_dir: Path, prefix: str, split: str, factors: str, out_split: str) -> None:
    """Kaldi's train_sp: the split's cuts and a speed-perturbed copy per factor (ids and speakers sp{factor}-)."""
    from ..data.speed_perturb import write_speed_perturbed

    try:
        values = [float(f) for f in factors.replace(" ", ",").split(",") if f]
    except ValueError:
        raise click.BadParameter(f"not numbers: {factors!r}", param_hint="--factors")
    n = write_speed_perturbed(manifest_dir, prefix, split, values, out_split)
    click.echo(f"{out_split}: {n} cuts -> {manifest_dir}/{prefix}_cuts_{out_split}.jsonl.gz")
