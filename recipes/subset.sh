#!/usr/bin/env bash
# Stage: a subset of a split's feature cuts as a split of its own. One call of `asrdistill features subset`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
split=train
num_cuts=2000
select=shortest   # shortest | random
seed=0
out_split=train_short
help_message="Usage: $0 [options]  (FEATURE_DIR/{prefix}_cuts_{out_split}.jsonl.gz: a subset of a split)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$feature_dir/.subset_$out_split.done" && exit 0
asrdistill features subset --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --num-cuts "$num_cuts" \
  --select "$select" --seed "$seed" --out-split "$out_split"
mark_done "$feature_dir/.subset_$out_split.done"
