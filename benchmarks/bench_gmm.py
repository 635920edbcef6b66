"""GMM-HMM throughput: one EM iteration and forced alignment, in frames per second per core.

Real data: a trained system and its features (the FSDD recipe's exp/tri, data/fbank),
one shard in-process, one thread. Synthetic: the all-pdf likelihood computation that
dominates alignment, at LibriSpeech-like model sizes, for the 960 h projection.

    python benchmarks/bench_gmm.py --model-dir egs/fsdd/exp/tri --feature-dir egs/fsdd/data/fbank
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

LIBRISPEECH_960H_FRAMES = 345e6


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--feature-dir", type=Path, required=True)
    p.add_argument("--prefix", default="fsdd")
    p.add_argument("--num-utts", type=int, default=1000)
    args = p.parse_args()
    torch.set_num_threads(1)

    from asrdistill.utils.readers import read_cuts

    from asrdistill.gmm.diag_gmm import DiagGmmSet
    from asrdistill.gmm.model import GmmModel
    from asrdistill.gmm.shards import AlignOptions, Shard, make_shards

    model = GmmModel.load(args.model_dir)
    cuts = args.feature_dir / f"{args.prefix}_cuts_train.jsonl.gz"
    ids = [c.id for c in read_cuts(cuts)][: args.num_utts]
    spec = make_shards(cuts, ids, 1, args.feature_dir / f"{args.prefix}_cmvn_train.json", model.lang_dir,
                       model.feature_config)[0]
    shard = Shard(spec)
    shard.set_model(model.ctx_bytes, model.tm)
    state = model.gmm.state_dict()
    t = time.perf_counter()
    rep = shard.align(state, AlignOptions())
    t_align = time.perf_counter() - t
    t = time.perf_counter()
    stats, counts = shard.accumulate(state)
    t_acc = time.perf_counter() - t
    frames = rep.frames
    print(f"machine: {platform.machine()}, torch {torch.__version__}, 1 thread; model {args.model_dir}: "
          f"{model.num_pdfs} pdfs, {model.gmm.total_gauss()} Gaussians, dim {model.gmm.dim}; {len(ids)} utterances, {frames} frames")
    print("| step | frames/s (1 core) |\n|---|---|")
    print(f"| forced alignment (likelihoods of the graph's pdfs + Kaldi Viterbi) | {frames / t_align:,.0f} |")
    print(f"| EM statistics (Viterbi, aligned pdf's Gaussians) | {frames / t_acc:,.0f} |")

    print("\nSynthetic all-pdf likelihoods (the alignment's cost at larger models), 20k frames of dim 39:")
    print("| pdfs | Gaussians | frames/s (1 core) | 960 h, one alignment pass, core-hours |\n|---|---|---|---|")
    x = torch.randn(20000, 39)
    for pdfs, per in ((300, 8), (3000, 15), (14000, 10)):
        g = DiagGmmSet(torch.full((pdfs, per), 1.0 / per), torch.randn(pdfs, per, 39), torch.rand(pdfs, per, 39) + 0.5)
        t = time.perf_counter()
        g.log_likelihoods(x, chunk=2048)
        rate = x.shape[0] / (time.perf_counter() - t)
        print(f"| {pdfs} | {pdfs * per} | {rate:,.0f} | {LIBRISPEECH_960H_FRAMES / rate / 3600:,.0f} |")
    print(f"\nProjection for LibriSpeech 960 h ({LIBRISPEECH_960H_FRAMES:.3g} frames) at the measured FSDD-model rates, 1 core: "
          f"EM statistics {LIBRISPEECH_960H_FRAMES / (frames / t_acc) / 3600:.1f} h per iteration, "
          f"alignment {LIBRISPEECH_960H_FRAMES / (frames / t_align) / 3600:.1f} h per pass.")


if __name__ == "__main__":
    main()
