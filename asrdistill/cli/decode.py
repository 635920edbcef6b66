"""``asrdistill decode`` and ``asrdistill score``: LM, HCLG graphs, decoding, WER."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from ..decode.graph import GraphConfig
from ..decode.runner import DecodeConfig
from ..utils.config import with_config
from ..utils.readers import read_cuts

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
    from ..data.cuts import cut_text
    from ..decode.ngram import WittenBellLM

    path = feature_dir / f"{prefix}_cuts_{split}.jsonl.gz"
    if not path.exists():
        raise click.ClickException(f"{path} does not exist")
    sentences = [cut_text(c).split() for c in read_cuts(path)]
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
    click.echo(" ".join(f"{k}: {v['states']} states, {v['arcs']} arcs;" for k, v in stats.items() if isinstance(v, dict) and "states" in v)
               + f" -> {out_dir}")


@decode.command("run")
@_feature_dir
@_prefix
@click.option("--split", default="test", help="Split to decode; or several, e.g. dev,test,test_other: tune on the first, "
              "decode the others at the tuned scale, score each (--out-dir with {split}).")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri"),
              help="Acoustic model.")
@click.option("--model-kind", type=click.Choice(["gmm", "nnet", "specialists"]), default="gmm",
              help="Kind of acoustic model (specialists: MODEL_DIR holds specialists of a generalist).")
@click.option("--tree-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="nnet, specialists: the GMM system whose tree defines the network's outputs (and the graph) "
              "[default: exp/tri].")
@click.option("--members", default="", help="nnet: comma-separated member indices to use (default: all).")
@click.option("--combine", type=click.Choice(["arithmetic", "geometric"]), default="arithmetic",
              help="nnet: how members' posteriors are combined.")
@click.option("--logit-bias", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="nnet: bias_WORD.json of 'asrdistill distill bias', added to the word's classes' logits.")
@click.option("--top-n", type=int, default=1, help="specialists: specialists of the generalist's top-n classes take part.")
@click.option("--each-member/--combined", default=False, show_default=True,
              help="nnet: decode every member (of --members) as a system of its own; --out-dir (and --scales-from) then "
              "contain {member}. --combined: one system, the members' combination.")
@click.option("--scales-from", default=None,
              help="Decode only the acoustic scale that is best in this (dev) decoding directory.")
@click.option("--graph-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Default: MODEL_DIR/graph.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Default: MODEL_DIR/decode_SPLIT.")
@click.option("--num-jobs", "-j", type=int, default=2, help="Parallel worker processes.")
@with_config(DecodeConfig)
def run_cmd(config, feature_dir, prefix, split, model_dir, model_kind, tree_dir, members, combine, logit_bias, top_n,
            each_member, scales_from, graph_dir, out_dir, num_jobs) -> None:
    """Decode a split for each acoustic scale: recogs/errs files, WER and RTF.

    With --split dev,test[,...] the first split is decoded at every acoustic scale, the others
    at the scale that is best on the first only, and each one's TEST_DIR/best.json is written
    (as 'asrdistill score'); --out-dir then contains {split}. One pool of workers serves all.
    """
    from ..features.cmvn import load_cmvn

    splits = [x for x in split.split(",") if x]
    out_tpl = str(out_dir) if out_dir else str(model_dir / "decode_{split}")
    if not splits or len(set(splits)) != len(splits) or (len(splits) > 1 and "{split}" not in out_tpl):
        raise click.UsageError("--split takes one split, or several distinct ones (tuning first, then the evaluation "
                               "splits) with {split} in --out-dir")
    if each_member and not members:
        from ..nnet.trainer import load_members

        members = ",".join(map(str, range(load_members(model_dir).num_members)))
    tree_dir, graph, cuts = _decode_inputs(feature_dir, prefix, splits, model_dir, model_kind, tree_dir, graph_dir)
    # one pool of workers (graph and model loaded once) for every split: CMVN statistics of all
    from ..features.cmvn_policy import check_cmvn_matches, cmvn_file

    try:
        cmvn = [str(cmvn_file(feature_dir, prefix, sp, config.cmvn)) for sp in splits] if config.cmvn else []
        check_cmvn_matches(model_dir, config.cmvn)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e))
    member_ids = _member_indices(members, model_dir) if members and model_kind == "nnet" else None
    spec = {"kind": model_kind, "model_dir": str(model_dir), "cmvn": cmvn or None, "tree_dir": str(tree_dir),
            "combine": combine, "members": member_ids,
            "logit_bias": str(logit_bias) if logit_bias else None, "top_n": top_n, "each_member": each_member}
    from ..utils.logfile import attach_experiment_log

    # the call's log, in the directory of its tuning split (of the first member, with --each-member)
    first = out_tpl.replace("{split}", splits[0]).replace("{member}", str(member_ids[0]) if member_ids else "")
    attach_experiment_log(Path(first) / "log.txt")
    try:
        load_cmvn(cmvn)  # a speaker clash between the splits' statistics is reported here, not in a worker
        if model_kind == "gmm" and _is_sat(model_dir):
            _decode_two_pass(spec, graph, cuts, splits, out_tpl, config, num_jobs, scales_from, feature_dir, prefix)
            return
        _decode_splits(spec, graph, cuts, splits, out_tpl, config, num_jobs, scales_from)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e))
    for sp in splits[1:]:
        _score_members(out_tpl.replace("{split}", splits[0]), out_tpl.replace("{split}", sp), members if each_member else "")


def _decode_inputs(feature_dir: Path, prefix: str, splits, model_dir: Path, model_kind: str, tree_dir, graph_dir):
    """``(tree_dir, graph_dir, {split: cut manifest})`` of a decoding call, checked: a network's tree directory
    (default exp/tri) and every split's manifest must exist; the graph defaults to the model's (a network's:
    its tree's)."""
    if model_kind != "gmm":
        tree_dir = tree_dir or Path("exp/tri")
        if not tree_dir.is_dir():
            raise click.UsageError(f"--tree-dir {tree_dir} does not exist (the GMM system of the network's outputs)")
    graph = graph_dir or (model_dir if model_kind == "gmm" else tree_dir) / "graph"
    cuts = {sp: feature_dir / f"{prefix}_cuts_{sp}.jsonl.gz" for sp in splits}
    for path in cuts.values():
        if not path.exists():
            raise click.ClickException(f"{path} does not exist")
    return tree_dir, graph, cuts


def _member_indices(members: str, model_dir: Path) -> list:
    """``--members`` as indices into MODEL_DIR's member files, checked here (not in a worker)."""
    count = len(list(Path(model_dir).glob("member*.pt")))
    try:
        ids = [int(m) for m in members.split(",") if m.strip()]
    except ValueError:
        raise click.BadParameter(f"{members!r} is not a comma-separated list of member indices", param_hint="--members")
    bad = [i for i in ids if not 0 <= i < count]
    if bad:
        raise click.BadParameter(f"{bad} out of range: {model_dir} has {count} member(s), indices 0..{count - 1}",
                                 param_hint="--members")
    return ids


def _decode_splits(spec, graph, cuts, splits, out_tpl, config, num_jobs, scales_from) -> None:
    """One pool for all splits: the first at every scale (or ``scales_from``'s best), the others at its best."""
    from ..decode.runner import DecodingPool, decode_split

    with DecodingPool(spec, graph / "HCLG.fst", config, num_jobs) as pool:
        for i, sp in enumerate(splits):
            tuned_on = scales_from if i == 0 else out_tpl.replace("{split}", splits[0])
            systems = decode_split(spec, graph, cuts[sp], out_tpl.replace("{split}", sp), sp, config, num_jobs,
                                   tuned_on, pool=pool)
            for results in systems:
                for r in results.values():
                    click.echo(f"{r['name']}: {r['line']}  RTF {r['rtf']:.4f}")


def _is_sat(model_dir: Path) -> bool:
    from ..gmm.model import GmmModel

    return GmmModel.load(model_dir).is_sat


def _decode_two_pass(spec, graph, cuts, splits, out_tpl, config, num_jobs, scales_from, feature_dir, prefix) -> None:
    """A SAT system: pass 1 speaker-independent (``OUT.si``), fMLLR from its best paths at the
    first split's best scale, pass 2 adapted; tuned on the first split as single-pass decoding."""
    from ..decode.runner import DecodingPool, best_scale, decode_split
    from ..decode.two_pass import fmllr_from_best_paths
    from ..features.cmvn_policy import cmvn_file

    si_tpl = out_tpl + ".si"
    si_spec = {**spec, "speaker_independent": True, "keep_tids": True}
    trans = {}
    with DecodingPool(si_spec, graph / "HCLG.fst", config, num_jobs) as pool:
        for i, sp in enumerate(splits):
            paths: dict = {}
            tuned_on = scales_from + ".si" if (i == 0 and scales_from) else (si_tpl.replace("{split}", splits[0]) if i else None)
            decode_split(si_spec, graph, cuts[sp], si_tpl.replace("{split}", sp), sp, config, num_jobs, tuned_on,
                         pool=pool, best_paths=paths)
            scale = float(best_scale(si_tpl.replace("{split}", splits[0])))
            trans[sp] = Path(out_tpl.replace("{split}", sp)) / "trans.npz"
            fmllr_from_best_paths(spec["model_dir"], cuts[sp], cmvn_file(feature_dir, prefix, sp, config.cmvn),
                                  paths[scale], trans[sp])
            click.echo(f"{sp}: speaker-independent pass at acoustic scale {scale:g}; fMLLR -> {trans[sp]}")
    _decode_splits({**spec, "fmllr": [str(trans[sp]) for sp in splits]}, graph, cuts, splits, out_tpl, config, num_jobs,
                   scales_from)
    for sp in splits[1:]:
        _score_members(out_tpl.replace("{split}", splits[0]), out_tpl.replace("{split}", sp), "")
        _score_members(si_tpl.replace("{split}", splits[0]), si_tpl.replace("{split}", sp), "")


def _score_members(dev_dir: str, test_dir: str, members: str) -> None:
    """``tune_and_score`` for each member's pair of directories (``{member}`` in the names), or the one pair."""
    from ..decode.runner import tune_and_score

    for m in [x for x in members.split(",") if x] or [""]:
        dev, test = Path(dev_dir.format(member=m)), Path(test_dir.format(member=m))
        for d in (dev, test):
            if not (d / "results.json").exists():
                raise click.ClickException(f"{d}/results.json does not exist: decode first")
        out = tune_and_score(dev, test)
        click.echo(f"{test}: acoustic scale {out['acoustic_scale']:g} (best on dev): dev {out['dev']['line']}\n"
                   f"test {out['test']['line']}  RTF {out['test']['rtf']:.4f}")


@click.command()
@click.option("--dev-dir", required=True, help="Decoding directory of the dev split (tunes the acoustic scale).")
@click.option("--test-dir", required=True, help="Decoding directory of the test split.")
@click.option("--members", default="", help="Comma-separated member indices: the directories contain {member}.")
def score(dev_dir: str, test_dir: str, members: str) -> None:
    """Apply the acoustic scale that is best on dev to test; writes TEST_DIR/best.json."""
    _score_members(dev_dir, test_dir, members)


# --- lattices (issue 14): decode once, score a grid of LM weights x penalties, rescore --------------------------------
from ..decode.lattice_decoder import LatticeDecodeConfig  # noqa: E402
from ..decode.lattice_scoring import LatticeScoringConfig  # noqa: E402


@decode.command("lattices")
@_feature_dir
@_prefix
@click.option("--split", default="dev,test", help="Comma-separated splits to decode (--out-dir with {split}).")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("exp/tri"),
              help="Acoustic model (a GMM system without SAT, or a network).")
@click.option("--model-kind", type=click.Choice(["gmm", "nnet"]), default="gmm", help="Kind of acoustic model.")
@click.option("--tree-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="nnet: the GMM system of the network's outputs [default: exp/tri].")
@click.option("--members", default="", help="nnet: comma-separated member indices to combine (default: all).")
@click.option("--combine", type=click.Choice(["arithmetic", "geometric"]), default="arithmetic",
              help="nnet: how members' posteriors are combined.")
@click.option("--graph-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Default: the model's (nnet: the tree's) graph directory.")
@click.option("--out-dir", default=None, help="Default: MODEL_DIR/decode_lat_{split}.")
@click.option("--transform-dir", default=None,
              help="SAT GMM: a two-pass 'decode run' directory per split ({split}), e.g. MODEL_DIR/decode_{split}: its "
              "trans.npz (fMLLR from the speaker-independent pass) adapts the features, as Kaldi's --transform-dir.")
@click.option("--num-jobs", "-j", type=int, default=2, help="Parallel worker processes.")
@with_config(LatticeDecodeConfig)
def lattices_cmd(config, feature_dir, prefix, split, model_dir, model_kind, tree_dir, members, combine, graph_dir, out_dir,
                 transform_dir, num_jobs) -> None:
    """Decode each split once into lattices (OUT_DIR/lat.npz, see asrdistill.decode.lattice).

    A SAT system needs --transform-dir: the fMLLR transforms that its two-pass 'decode run' estimated
    from the speaker-independent pass (unsupervised); the lattices are those of the adapted pass."""
    from ..decode.lattice_decoder import decode_lattices
    from ..features.cmvn_policy import check_cmvn_matches, cmvn_file

    splits = [x for x in split.split(",") if x]
    out_tpl = out_dir or str(model_dir / "decode_lat_{split}")
    if not splits or (len(splits) > 1 and "{split}" not in out_tpl):
        raise click.UsageError("several splits need {split} in --out-dir")
    sat = model_kind == "gmm" and _is_sat(model_dir)
    if sat and not transform_dir:
        raise click.UsageError(f"{model_dir} is a SAT system: give --transform-dir (its two-pass 'decode run' "
                               "directories, e.g. MODEL_DIR/decode_{split}, whose trans.npz adapt the features)")
    if transform_dir and not sat:
        raise click.UsageError("--transform-dir is for a SAT GMM system")
    if transform_dir and len(splits) > 1 and "{split}" not in transform_dir:
        raise click.UsageError("several splits need {split} in --transform-dir")
    tree_dir, graph, cut_paths = _decode_inputs(feature_dir, prefix, splits, model_dir, model_kind, tree_dir, graph_dir)
    from ..utils.logfile import attach_experiment_log

    attach_experiment_log(Path(out_tpl.replace("{split}", splits[0])) / "log.txt")  # the call's log, as decode run's
    try:
        check_cmvn_matches(model_dir, config.cmvn)
        for sp in splits:
            cuts = cut_paths[sp]
            spec = {"kind": model_kind, "model_dir": str(model_dir),
                    "cmvn": str(cmvn_file(feature_dir, prefix, sp, config.cmvn)) if config.cmvn else None,
                    "tree_dir": str(tree_dir) if tree_dir else None, "combine": combine,
                    "members": _member_indices(members, model_dir) if members and model_kind == "nnet" else None}
            if transform_dir:
                trans = Path(transform_dir.replace("{split}", sp)) / "trans.npz"
                if not trans.is_file():
                    raise FileNotFoundError(f"{trans} does not exist: decode {sp} with 'decode run' (two passes) first")
                spec["fmllr"] = str(trans)
            s = decode_lattices(spec, graph, cuts, out_tpl.replace("{split}", sp), config, num_jobs)
            click.echo(f"{sp}: {s['utterances']} lattices, {s['arcs_per_frame']:.1f} arcs/frame, "
                       f"RTF {s['score_rtf'] + s['search_rtf']:.4f} -> {out_tpl.replace('{split}', sp)}/lat.npz")
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e))


@decode.command("score-lattices")
@_feature_dir
@_prefix
@click.option("--split", default="dev,test", help="Comma-separated splits: tune on the first, apply to the others.")
@click.option("--lat-dir", default="exp/tri/decode_lat_{split}", show_default=True,
              help="Directory of each split's lat.npz ({split} replaced).")
@click.option("--words", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=Path("exp/tri/graph/words.txt"),
              show_default=True, help="Word symbol table of the graph.")
@with_config(LatticeScoringConfig)
def score_lattices_cmd(config, feature_dir, prefix, split, lat_dir, words) -> None:
    """Best paths over LM weight x word insertion penalty (Kaldi's score.sh); best on the first split applied
    to the others (their best.json)."""
    from ..decode.lattice_scoring import score_split, tune_and_apply

    splits = [x for x in split.split(",") if x]
    if len(splits) > 1 and "{split}" not in lat_dir:
        raise click.UsageError("several splits need {split} in --lat-dir")
    try:
        res = {sp: score_split(lat_dir.replace("{split}", sp), feature_dir / f"{prefix}_cuts_{sp}.jsonl.gz", words, sp,
                               config) for sp in splits}
        for sp in splits[1:]:
            out = tune_and_apply(lat_dir.replace("{split}", splits[0]), lat_dir.replace("{split}", sp), res[splits[0]],
                                 res[sp])
            click.echo(f"{sp}: LM weight {out['lm_weight']:g}, penalty {out['word_ins_penalty']:g} (best on "
                       f"{splits[0]}): {splits[0]} {out['dev']['line']}\n{sp} {out['test']['line']}")
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e))


@decode.command("rescore")
@click.option("--lat-dir", required=True, help="Directory of lat.npz decoded with the old LM's graph ({split} allowed).")
@click.option("--out-dir", required=True, help="Directory of the rescored lat.npz ({split} allowed).")
@click.option("--split", default="", help="Comma-separated splits replacing {split} in the directories.")
@click.option("--old-lm", type=click.Path(exists=True, path_type=Path), required=True,
              help="ARPA LM of the decoding graph (or its const form, decode const-arpa).")
@click.option("--new-lm", type=click.Path(exists=True, path_type=Path), required=True,
              help="ARPA LM to rescore with (plain or .gz), or its const form (a directory of decode const-arpa: "
                   "memory-mapped, for models too large to parse in each process).")
@click.option("--words", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=Path("exp/tri/graph/words.txt"),
              show_default=True, help="Word symbol table of the graph.")
def rescore_cmd(lat_dir, out_dir, split, old_lm, new_lm, words) -> None:
    """Replace the old LM's cost in each lattice by the new LM's (Kaldi's lmrescore.sh); score with score-lattices."""
    from ..decode.arpa_lm import ArpaLM
    from ..decode.rescore import rescore_dir

    splits = [x for x in split.split(",") if x] or [""]
    try:
        old, new = ArpaLM(old_lm), ArpaLM(new_lm)  # once for all splits
        for sp in splits:
            src, dst = lat_dir.replace("{split}", sp), out_dir.replace("{split}", sp)
            info = rescore_dir(src, dst, old, new, words)
            click.echo(f"{src} -> {dst}/lat.npz ({info['arcs_per_frame']:.1f} arcs/frame, {info['rescore_seconds']:.1f} s)")
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e))


@decode.command("const-arpa")
@click.option("--arpa", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="ARPA LM (plain or .gz).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory of the const form (Kaldi's arpa-to-const-arpa; decode rescore memory-maps it).")
def const_arpa_cmd(arpa: Path, out: Path) -> None:
    """An ARPA LM as sorted arrays on disk (16 bytes per n-gram), memory-mapped by decode rescore."""
    import time

    from ..decode.arpa_lm import ArpaLM

    t0 = time.perf_counter()
    try:
        lm = ArpaLM(arpa)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e))
    lm.save(out)
    size = sum(f.stat().st_size for f in out.iterdir())
    click.echo(f"{arpa}: n-grams {lm.num_ngrams} -> {out} ({size / 2**20:.1f} MiB, {time.perf_counter() - t0:.1f} s)")
