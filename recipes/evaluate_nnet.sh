#!/usr/bin/env bash
# Stage: frame accuracy of every member and of the ensemble. One call of `asrdistill train evaluate`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ali_dir=exp/tri/ali
feature_dir=data/fbank
prefix=fsdd
exp_dir=exp/ensemble
splits=dev,test
help_message="Usage: $0 [options]  (frame accuracy -> EXP_DIR/frame_accuracy.json)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

asrdistill train evaluate --ali-dir "$ali_dir" --feature-dir "$feature_dir" --prefix "$prefix" --exp-dir "$exp_dir" \
  --splits "$splits"
