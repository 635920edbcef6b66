#!/usr/bin/env bash
# Stage: decode one split with one acoustic model. One call of `asrdistill decode run`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
split=test
model_dir=exp/tri
model_kind=gmm
members=          # nnet: comma-separated member indices (default: all)
combine=arithmetic
graph_dir=        # default: $model_dir/graph
out_dir=          # default: $model_dir/decode_$split
nj=2
config=           # YAML with DecodeConfig values
help_message="Usage: $0 [options]  (decode a split; WER per acoustic scale, RTF)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

out_dir=${out_dir:-$model_dir/decode_$split}
stage_done "$out_dir/.decode.done" && exit 0
asrdistill decode run --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --model-dir "$model_dir" \
  --model-kind "$model_kind" ${members:+--members "$members"} --combine "$combine" ${graph_dir:+--graph-dir "$graph_dir"} --out-dir "$out_dir" --num-jobs "$nj" \
  ${config:+--config "$config"}
mark_done "$out_dir/.decode.done"
