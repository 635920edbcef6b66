"""``asrdistill gmm``: the GMM-HMM system (monophone, deltas triphone, LDA+MLLT, SAT) and forced alignment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..gmm.shards import AlignOptions
from ..gmm.trainer import LdaMlltConfig, MonoConfig, SatConfig, TriConfig
from ..utils.config import with_config

_feature_dir = click.option(
    "--feature-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/fbank"),
    help="Directory with {prefix}_cuts_{split}.jsonl.gz and {prefix}_cmvn_{split}.json.",
)
_prefix = click.option("--prefix", default="fsdd", help="Corpus prefix of the manifest file names.")
_lang = click.option("--lang-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/lang"),
                     help="Lang directory from 'asrdistill prepare lang'.")
_jobs = click.option("--num-jobs", "-j", type=int, default=2, help="Parallel worker processes.")


def _inputs(feature_dir: Path, prefix: str, split: str, use_cmvn: bool = True, model_dir: Optional[Path] = None):
    """The split's feature cuts and CMVN statistics (required unless --no-cmvn); ``model_dir``: a system
    the features go through, which must have been trained with the same normalization."""
    from ..features.cmvn_policy import check_cmvn_matches, cmvn_file

    cuts = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    if not cuts.exists():
        raise click.ClickException(f"{cuts} does not exist; run the features stage first")
    try:
        if model_dir is not None:
            check_cmvn_matches(model_dir, use_cmvn)
        return cuts, cmvn_file(feature_dir, prefix, split, use_cmvn)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e))


@click.group()
def gmm() -> None:
    """GMM-HMM systems (Kaldi's mono -> deltas -> LDA+MLLT -> SAT schedule, our decision trees) and forced alignment."""


@gmm.command("mono")
@_feature_dir
@_prefix
@_lang
@click.option("--split", default="train", help="Split to train on.")
@click.option("--exp-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("exp/mono"), help="Output directory.")
@_jobs
@with_config(MonoConfig)
def mono_cmd(config, feature_dir, prefix, lang_dir, split, exp_dir, num_jobs):
    """Monophone training: flat start, equal alignment, EM with realignment and mixing up."""
    from ..gmm.trainer import train_mono

    cuts, cmvn = _inputs(feature_dir, prefix, split, config.cmvn)
    model = train_mono(cuts, cmvn, lang_dir, exp_dir, config, num_jobs)
    click.echo(f"monophone system: {model.num_pdfs} pdfs, {model.gmm.total_gauss()} Gaussians -> {exp_dir}")


def _tree_system_command(name: str, config_cls, trainer: str, src_default: str, exp_default: str, src_help: str,
                         doc: str, label: str):
    """``asrdistill gmm NAME``: a triphone system trained from a source system's alignments."""

    @gmm.command(name, help=doc)
    @_feature_dir
    @_prefix
    @_lang
    @click.option("--split", default="train", help="Split to train on.")
    @click.option("--src-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path(src_default),
                  help=src_help)
    @click.option("--exp-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(exp_default),
                  help="Output directory.")
    @_jobs
    @with_config(config_cls)
    def command(config, feature_dir, prefix, lang_dir, split, src_dir, exp_dir, num_jobs):
        from ..gmm import trainer as trainers

        cuts, cmvn = _inputs(feature_dir, prefix, split, config.cmvn, src_dir)
        try:
            model = getattr(trainers, trainer)(cuts, cmvn, lang_dir, src_dir, exp_dir, config, num_jobs)
        except ValueError as e:
            raise click.ClickException(str(e))
        click.echo(f"{label}: {model.num_pdfs} leaves, {model.gmm.total_gauss()} Gaussians -> {exp_dir}")

    return command


tri_cmd = _tree_system_command(
    "tri", TriConfig, "train_tri", "exp/mono", "exp/tri1", "Model whose alignments build the tree.",
    "Triphone training with decision-tree state tying, on the source system's features (deltas).", "triphone system")
lda_mllt_cmd = _tree_system_command(
    "lda-mllt", LdaMlltConfig, "train_lda_mllt", "exp/tri1", "exp/tri2",
    "Model whose alignments give the LDA classes and build the tree.",
    "LDA+MLLT triphone training (spliced cepstra, LDA, MLLT estimated during EM).", "LDA+MLLT system")
sat_cmd = _tree_system_command(
    "sat", SatConfig, "train_sat", "exp/tri2", "exp/tri3",
    "Speaker-independent model (LDA+MLLT) whose front end and alignments SAT starts from.",
    "Speaker adaptive training: per-speaker fMLLR, a new tree on adapted features, fMLLR re-estimated during EM.",
    "SAT system")


@gmm.command("align")
@_feature_dir
@_prefix
@click.option("--splits", default="train,dev,test", help="Comma-separated splits to align.")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri"),
              help="GMM system to align with.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where targets go (default: MODEL_DIR/ali).")
@_jobs
@with_config(AlignOptions)
def ali_cmd(config, feature_dir, prefix, splits, model_dir, out_dir, num_jobs):
    """Forced alignment: per-frame pdf targets (+ transition ids) and an alignment report per split.

    A SAT system aligns in two passes: its speaker-independent model first, then per-speaker
    fMLLR from that alignment (written to OUT_DIR/trans_{split}.npz) and the adapted model."""
    from ..gmm.align import align_split

    out_dir = out_dir or model_dir / "ali"
    for i, split in enumerate(s for s in splits.split(",") if s):
        cuts, cmvn = _inputs(feature_dir, prefix, split, config.cmvn, model_dir if i == 0 else None)
        click.echo(align_split(model_dir, cuts, cmvn, out_dir, prefix, split, config, num_jobs))


@gmm.command("select")
@click.option("--systems", required=True, help="Comma-separated GMM directories, e.g. exp/tri1,exp/tri2,exp/tri3.")
@click.option("--decode-dir", default="decode_test", help="Decoding directory (with best.json) inside each system.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("exp/gmm_selection.json"),
              help="Where the choice and every system's WERs are written.")
@click.option("--link", type=click.Path(path_type=Path), default=None,
              help="Make this a symbolic link to the chosen system (e.g. exp/tri: the DNN stages read exp/tri/ali).")
def select_cmd(systems, decode_dir, out, link):
    """The system with the lowest dev WER (test WER recorded, never used) gives the DNN targets."""
    from ..gmm.selection import select_gmm

    try:
        record = select_gmm([s for s in systems.split(",") if s], decode_dir, out, link)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise click.ClickException(str(e))
    for system, r in record["systems"].items():
        click.echo(f"{system}: dev {r['dev']:.2f}  test {r['test']:.2f}{'   <- chosen' if system == record['chosen'] else ''}")
