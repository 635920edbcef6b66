#!/usr/bin/env bash
# Stage: HCLG decoding graph. One call of `asrdistill decode graph`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

lang_dir=data/lang
model_dir=exp/tri
arpa=data/lm/G.arpa
out_dir=          # default: $model_dir/graph
help_message="Usage: $0 [options]  (HCLG = H o C o L o G)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

out_dir=${out_dir:-$model_dir/graph}
stage_done "$out_dir/.graph.done" && exit 0
asrdistill decode graph --lang-dir "$lang_dir" --model-dir "$model_dir" --arpa "$arpa" --out-dir "$out_dir"
mark_done "$out_dir/.graph.done"
