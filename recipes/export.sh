#!/usr/bin/env bash
# Stage: export a network (student, or an ensemble as one graph) to ONNX + JSON sidecar. One call of `asrdistill export`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

model_dir=exp/student
members=          # comma-separated member indices (default: all; several are averaged in one graph)
tree_dir=exp/tri  # the GMM system of the network's outputs
feature_dir=data/fbank
prefix=fsdd
lang_dir=data/lang
out_dir=          # default: $model_dir/export
help_message="Usage: $0 [options]  (ONNX export of a network: model.onnx, model.json)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

out_dir=${out_dir:-$model_dir/export}
stage_done "$out_dir/.export.done" && exit 0
asrdistill export --model-dir "$model_dir" ${members:+--members "$members"} --tree-dir "$tree_dir" \
  --feature-dir "$feature_dir" --prefix "$prefix" --lang-dir "$lang_dir" --out-dir "$out_dir" --format onnx
mark_done "$out_dir/.export.done"
