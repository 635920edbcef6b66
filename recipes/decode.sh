#!/usr/bin/env bash
# Stage: decode one split with one acoustic model. One call of `asrdistill decode run`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
split=test        # or dev,test[,...]: tune the acoustic scale on dev, decode the others at it, score (--out-dir with {split})
model_dir=exp/tri
model_kind=gmm
tree_dir=         # nnet, specialists: the GMM system of the network's outputs (default exp/tri)
members=          # nnet: comma-separated member indices (default: all)
combine=arithmetic
logit_bias=       # nnet: bias_WORD.json of `asrdistill distill bias`
top_n=1           # specialists: specialists of the generalist's top-n classes take part
scales_from=      # decode only the acoustic scale that is best in this (dev) decoding directory
each_member=false # nnet: decode each member of --members as a system of its own (--out-dir with {member})
graph_dir=        # default: $model_dir/graph
out_dir=          # default: $model_dir/decode_{split} ({member}: each member's directory)
nj=2
config=           # YAML with DecodeConfig values
help_message="Usage: $0 [options]  (decode a split; WER per acoustic scale, RTF)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

default_out_dir="$model_dir/decode_{split}"
out_dir=${out_dir:-$default_out_dir}
# one marker per call; with {member} or {split} in --out-dir, beside the directories it names
marker="$out_dir/.decode.done"
case "$out_dir" in *"{member}"*|*"{split}"*)
  name=${out_dir//\{member\}/${members//,/_}}; name=${name//\{split\}/${split//,/_}}
  marker="$(dirname "$out_dir")/.$(basename "$name").done" ;;
esac
stage_done "$marker" && exit 0
asrdistill decode run --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --model-dir "$model_dir" \
  --model-kind "$model_kind" ${tree_dir:+--tree-dir "$tree_dir"} ${members:+--members "$members"} --combine "$combine" \
  ${logit_bias:+--logit-bias "$logit_bias"} --top-n "$top_n" ${scales_from:+--scales-from "$scales_from"} \
  $([ "$each_member" = true ] && echo --each-member) \
  ${graph_dir:+--graph-dir "$graph_dir"} --out-dir "$out_dir" --num-jobs "$nj" \
  ${config:+--config "$config"}
mark_done "$marker"
