#!/usr/bin/env bash
# Stage: frame accuracy with and without specialists. One call of `asrdistill specialists evaluate`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ali_dir=exp/tri/ali
feature_dir=data/fbank
prefix=fsdd
exp_dir=exp/specialists
splits=dev,test
top_n=1           # specialists of the generalist's top-n classes take part
solver=em         # em or gradient
help_message="Usage: $0 [options]  (-> EXP_DIR/specialist_accuracy.json)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

asrdistill specialists evaluate --ali-dir "$ali_dir" --feature-dir "$feature_dir" --prefix "$prefix" --exp-dir "$exp_dir" \
  --splits "$splits" --top-n "$top_n" --solver "$solver"
