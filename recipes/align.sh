#!/usr/bin/env bash
# Stage: forced alignment of splits (DNN targets + report). One call of `asrdistill gmm align` (two-pass fMLLR for a SAT system).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
splits=train,dev,test
model_dir=exp/tri
out_dir=          # default: $model_dir/ali
nj=2
help_message="Usage: $0 [options]  (forced alignment with a GMM system)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

out_dir=${out_dir:-$model_dir/ali}
stage_done "$out_dir/.ali.done" && exit 0
asrdistill gmm align --feature-dir "$feature_dir" --prefix "$prefix" --splits "$splits" \
  --model-dir "$model_dir" --out-dir "$out_dir" --num-jobs "$nj"
mark_done "$out_dir/.ali.done"
