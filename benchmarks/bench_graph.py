"""HCLG build time, peak memory and size at LibriSpeech's first-pass scale; decoding speed on it.

Inputs come from benchmarks/make_large_lm.py (CMU-dictionary lexicon, synthetic back-off
3-gram). The acoustic side is synthetic too: a triphone tree grown by the project's own
tree builder (asrdistill.gmm.tree) on random context statistics to ``--num-leaves``
leaves (LibriSpeech's tri4b has about 4,200), with the lang directory's topology. The
graph is built by ``asrdistill.decode.graph.build_hclg`` (the mkgraph.sh steps) and every
stage's size and seconds are printed. This script is the fresh process of one measurement:
its peak resident memory (and its children's: kaldilm's arpa2fst) is printed at the end.
With ``--decode-frames N`` it then decodes N frames of random acoustic scores (one
utterance, transition ids scored from ``num_pdfs`` random pdf scores) with Kaldi's
FasterDecoder and LatticeFasterDecoder and with k2 (``--decoders``), and prints each one's
set-up seconds, seconds per frame (real-time factor at 100 frames per second) and the peak
memory after it. ``--reuse-graph`` skips the build when the work directory already holds
``HCLG.fst`` (and its tree), so each decoder can be measured in a fresh process of its own:
at LibriSpeech's size the graph build's own peak and a decoder's set-up do not fit together.

    nice -n 10 python benchmarks/bench_graph.py --lm-dir /tmp/lm --work-dir /tmp/graph [--decode-frames 500]
    python benchmarks/bench_graph.py --lm-dir /tmp/lm --work-dir /tmp/graph --reuse-graph --decode-frames 300 --decoders k2
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np


def synthetic_tree(lang, num_leaves: int, cache: Path, seed: int = 0):
    """A ContextDependency (triphone, as Kaldi's) grown on random statistics: each (centre, HMM state)
    has its own mean and the left/right phones shift it, so context questions split. Kept in ``cache``."""
    import kaldi_hmm_gmm as khg

    from asrdistill.gmm.tree import ContextStats, DecisionTree, TreeConfig, context_dependency_from_bytes

    if cache.exists():
        ctx = context_dependency_from_bytes(cache.read_bytes())
        return ctx, khg.TransitionModel(ctx_dep=ctx, hmm_topo=lang.topology())
    rng = np.random.default_rng(seed)
    topo = lang.topology()
    phones = np.asarray(lang.phones)
    classes = {int(p): topo.num_pdf_classes(int(p)) for p in phones}
    n = 150_000
    keys = np.stack([rng.choice(phones, n), rng.choice(phones, n), rng.choice(phones, n), np.zeros(n, np.int64)], 1)
    keys[:, 3] = (rng.random(n) * np.vectorize(classes.get)(keys[:, 1])).astype(np.int64)
    dim = 4
    table = rng.normal(size=(int(phones.max()) + 1, dim))
    feats = (table[keys[:, 1]] * 3 + keys[:, 3:4] + 0.7 * table[keys[:, 0]] + 0.7 * table[keys[:, 2]]
             + rng.normal(size=(n, dim)))
    stats = ContextStats.from_frames(keys, feats)
    ci = sorted(set(lang.silence_phones) | set(lang.context_independent_phones))
    groups = [list(r) for r in lang.tree_roots() if len(r) > 1]
    tree = DecisionTree.build(stats, [int(p) for p in phones], classes,
                              TreeConfig(num_leaves=num_leaves, min_leaf_count=20.0, cluster_thresh=0.0), groups,
                              ci_phones=ci, phone_sets=lang.phone_sets())
    cache.write_bytes(tree.to_kaldi_bytes())
    ctx = context_dependency_from_bytes(tree.to_kaldi_bytes())
    return ctx, khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)


def _peak_mb() -> dict:
    return {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def decode_speed(hclg_path: Path, tm, frames: int, decoders=("faster", "lattice-faster", "k2"), seed: int = 0) -> dict:
    """Seconds per frame of each decoder on random scores (scale 0.1 on log-likelihoods ~ N(-60, 8))."""
    import kaldifst

    from asrdistill.decode.decoder import DecoderConfig, GraphDecoder

    rng = np.random.default_rng(seed)
    pdf_of = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]
    ll = rng.normal(-60, 8, size=(frames, tm.num_pdfs)).astype(np.float32)
    scores = np.ascontiguousarray(0.1 * ll[:, pdf_of])
    t0 = time.perf_counter()
    graph = kaldifst.StdVectorFst.read(str(hclg_path))
    out = {"graph_read_s": round(time.perf_counter() - t0, 2), "peak_mb_graph_read": _peak_mb()}
    print(out, flush=True)
    for name in decoders:
        t0 = time.perf_counter()
        dec = GraphDecoder(graph, tm, DecoderConfig(decoder=name, beam=13.0, max_active=7000, lattice_beam=6.0))
        setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = dec.decode(scores, "synthetic")
        search = time.perf_counter() - t0
        out[name] = {"setup_s": round(setup, 2), "search_s_per_frame": search / frames,
                     "rtf_at_100fps": 100 * search / frames, "words": len(res.words), "final": res.reached_final,
                     "peak_mb": _peak_mb()}
        print(name, out[name], flush=True)
        del dec
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lm-dir", type=Path, required=True, help="lexicon.txt and G.arpa of make_large_lm.py")
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--num-leaves", type=int, default=4200)
    ap.add_argument("--decode-frames", type=int, default=0)
    ap.add_argument("--decoders", default="faster,lattice-faster,k2", help="comma-separated, measured in this order")
    ap.add_argument("--reuse-graph", action="store_true", help="decode with the work directory's HCLG.fst, no build")
    args = ap.parse_args()
    import logging

    logging.basicConfig(format="%(asctime)s %(message)s")
    logging.getLogger("asrdistill.decode.graph").setLevel(logging.DEBUG)  # each step as it ends

    from asrdistill.decode.graph import GraphConfig, arpa_to_fst, build_hclg
    from asrdistill.lang.lang_dir import LangDir, prepare_lang
    from asrdistill.lang.lexicon import Lexicon

    times = {}
    t0 = time.perf_counter()
    lang_dir = args.work_dir / "lang"
    if (lang_dir / "L_disambig.fst").exists():
        lang = LangDir(lang_dir)
    else:
        lex = Lexicon()
        for line in (args.lm_dir / "lexicon.txt").read_text().splitlines():
            w, *pron = line.split()
            lex.add(w, pron)
        lang = prepare_lang(lex, lang_dir)
    times["lang"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ctx, tm = synthetic_tree(lang, args.num_leaves, args.work_dir / f"tree{args.num_leaves}.bin")
    times["tree"] = time.perf_counter() - t0
    print(f"lang {times['lang']:.1f} s, tree {times['tree']:.1f} s ({tm.num_pdfs} pdfs, {tm.num_transition_ids} "
          f"transition ids)", flush=True)
    path = args.work_dir / "HCLG.fst"
    if args.reuse_graph:
        if not path.exists():
            ap.error(f"--reuse-graph: no {path}")
        report = {"decode": decode_speed(path, tm, args.decode_frames, args.decoders.split(",")),
                  "num_pdfs": tm.num_pdfs, "hclg_file_mb": path.stat().st_size / 2**20}
        print(json.dumps(report, indent=1), flush=True)
        (args.work_dir / f"bench_decode_{args.decoders.replace(',', '_')}.json").write_text(json.dumps(report, indent=1))
        return
    t0 = time.perf_counter()
    G = arpa_to_fst(args.lm_dir / "G.arpa", lang.path / "words.txt")
    times["G"] = time.perf_counter() - t0
    print(f"G {times['G']:.1f} s; peak MB {_peak_mb()}", flush=True)
    t0 = time.perf_counter()
    HCLG, stats = build_hclg(lang, ctx, tm, G, GraphConfig())
    times["build_hclg"] = time.perf_counter() - t0
    HCLG.write(str(path))
    del HCLG
    report = {"sizes": {k: v for k, v in stats.items() if k != "seconds"}, "stage_seconds": stats["seconds"],
              "seconds": {k: round(v, 1) for k, v in times.items()}, "peak_mb": _peak_mb(),
              "num_pdfs": tm.num_pdfs, "hclg_file_mb": path.stat().st_size / 2**20}
    print(json.dumps(report, indent=1), flush=True)
    if args.decode_frames:
        report["decode"] = decode_speed(path, tm, args.decode_frames, args.decoders.split(","))
        report["peak_mb_after_decoding"] = _peak_mb()
    (args.work_dir / "bench_graph.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
