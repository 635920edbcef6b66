"""``asrdistill decode`` and ``asrdistill score``: LM, HCLG graphs, decoding, WER."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click

from ..decode.graph import GraphConfig
from ..decode.runner import DecodeConfig
from ..utils.config import with_config

_feature_dir = click.option(
    "--feature-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/fbank"),
    help="Directory with {prefix}_cuts_{split}.jsonl.gz and {prefix}_cmvn_{split}.json.",
)
_prefix = click.option("--prefix", default="fsdd", help="Corpus prefix of the manifest file names.")


@click.group()
def decode() -> None:
    """Language models, decoding graphs and decoding."""


@decode.command("lm")
@_feature_dir
@_prefix
@click.option("--split", default="train", help="Split whose transcripts train the LM.")
@click.option("--order", type=int, default=2, help="N-gram order.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("data/lm/G.arpa"), help="ARPA file to write.")
def lm_cmd(feature_dir: Path, prefix: str, split: str, order: int, out: Path) -> None:
    """Estimate an interpolated Witten-Bell n-gram LM from a split's transcripts (ARPA)."""
    from lhotse import CutSet

    from ..data.cuts import cut_text
    from ..decode.ngram import WittenBellLM

    path = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    if not path.exists():
        raise click.ClickException(f"{path} does not exist")
    sentences = [cut_text(c).split() for c in CutSet.from_file(path)]
    lm = WittenBellLM(sentences, order)
    lm.write_arpa(out)
    tokens = sum(len(s) + 1 for s in sentences)
    logprob = sum(lm.log10_prob_sentence(s) for s in sentences)
    click.echo(f"{order}-gram LM over {len(lm.vocab)} words from {len(sentences)} sentences; "
               f"training perplexity {10 ** (-logprob / tokens):.2f} -> {out}")


@decode.command("graph")
@click.option("--lang-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("data/lang"),
              help="Lang directory.")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri"),
              help="Model whose tree and transition model the graph uses.")
@click.option("--arpa", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=Path("data/lm/G.arpa"),
              help="ARPA language model.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: MODEL_DIR/graph.")
@with_config(GraphConfig)
def graph_cmd(config, lang_dir: Path, model_dir: Path, arpa: Path, out_dir: Optional[Path]) -> None:
    """Build HCLG (Kaldi's mkgraph.sh) and print its statistics."""
    from ..decode.graph import make_graph

    out_dir = out_dir or model_dir / "graph"
    stats = make_graph(lang_dir, model_dir, arpa, out_dir, config)
    click.echo(" ".join(f"{k}: {v['states']} states, {v['arcs']} arcs;" for k, v in stats.items() if isinstance(v, dict))
               + f" -> {out_dir}")


@decode.command("run")
@_feature_dir
@_prefix
@click.option("--split", default="test", help="Split to decode.")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri"),
              help="Acoustic model.")
@click.option("--model-kind", type=click.Choice(["gmm", "nnet"]), default="gmm", help="Kind of acoustic model.")
@click.option("--tree-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri"),
              help="nnet: the GMM system whose tree defines the network's outputs (and the graph).")
@click.option("--members", default="", help="nnet: comma-separated member indices to use (default: all).")
@click.option("--combine", type=click.Choice(["arithmetic", "geometric"]), default="arithmetic",
              help="nnet: how members' posteriors are combined.")
@click.option("--graph-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Default: MODEL_DIR/graph.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Default: MODEL_DIR/decode_SPLIT.")
@click.option("--num-jobs", "-j", type=int, default=2, help="Parallel worker processes.")
@with_config(DecodeConfig)
def run_cmd(config, feature_dir, prefix, split, model_dir, model_kind, tree_dir, members, combine, graph_dir, out_dir,
            num_jobs) -> None:
    """Decode a split for each acoustic scale: recogs/errs files, WER and RTF."""
    from ..decode.runner import decode_split

    cuts = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    if not cuts.exists():
        raise click.ClickException(f"{cuts} does not exist")
    cmvn = feature_dir / f"{prefix}_cmvn_{split}.json"
    spec = {"kind": model_kind, "model_dir": str(model_dir), "cmvn": str(cmvn) if cmvn.exists() else None,
            "tree_dir": str(tree_dir), "combine": combine,
            "members": [int(m) for m in members.split(",")] if members else None}
    default_graph = (tree_dir if model_kind == "nnet" else model_dir) / "graph"
    results = decode_split(spec, graph_dir or default_graph, cuts, out_dir or model_dir / f"decode_{split}", split,
                           config, num_jobs)
    for r in results.values():
        click.echo(f"{r['name']}: {r['line']}  RTF {r['rtf']:.4f}")


@click.command()
@click.option("--dev-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Decoding directory of the dev split (tunes the acoustic scale).")
@click.option("--test-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Decoding directory of the test split.")
def score(dev_dir: Path, test_dir: Path) -> None:
    """Apply the acoustic scale that is best on dev to test; writes TEST_DIR/best.json."""
    from ..decode.runner import tune_and_score

    out = tune_and_score(dev_dir, test_dir)
    click.echo(f"acoustic scale {out['acoustic_scale']:g} (best on dev): dev {out['dev']['line']}\n"
               f"test {out['test']['line']}  RTF {out['test']['rtf']:.4f}")
