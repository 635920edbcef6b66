"""How far two alignment directories agree (e.g. a corpus run through two recipes): per split, the utterances
both align, how many have identical tied-state sequences, and the share of frames with the same tied state
(utterances of equal length).

    python benchmarks/compare_alignments.py --a egs/fsdd/exp/tri/ali --b /work/kdrun/exp/tri/ali --prefix fsdd \
        --splits train,train_sp,dev,test
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from asrdistill.gmm.align import SplitAlignment


def per_utterance(path: Path) -> dict:
    a = SplitAlignment.load(path)
    return {u: a.pdfs[a.offsets[k]:a.offsets[k + 1]] for k, u in enumerate(a.ids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, required=True)
    ap.add_argument("--b", type=Path, required=True)
    ap.add_argument("--prefix", default="fsdd")
    ap.add_argument("--splits", default="train,dev,test")
    args = ap.parse_args()
    for split in args.splits.split(","):
        A, B = (per_utterance(d / f"{args.prefix}_ali_{split}.npz") for d in (args.a, args.b))
        both = sorted(set(A) & set(B))
        equal_len = [u for u in both if len(A[u]) == len(B[u])]
        same = sum(np.array_equal(A[u], B[u]) for u in equal_len)
        frames = sum(len(A[u]) for u in equal_len)
        agree = sum(int((A[u] == B[u]).sum()) for u in equal_len)
        print(f"{split}: {len(A)} / {len(B)} aligned, {len(both)} in both, {same} identical, {len(equal_len)} of "
              f"equal length, frames agreeing {100 * agree / max(frames, 1):.2f}%")


if __name__ == "__main__":
    main()
