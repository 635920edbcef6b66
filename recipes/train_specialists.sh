#!/usr/bin/env bash
# Stage: train specialists (subset classes + dustbin) from the generalist. One call of `asrdistill specialists train`.
# One slice per process or GPU: -- --member-offset M --num-members K (same --exp-dir).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ali_dir=exp/tri/ali
feature_dir=data/fbank
prefix=fsdd
generalist_dir=exp/ensemble
clusters=exp/specialists/clusters.json
exp_dir=exp/specialists
config=           # YAML with SpecialistConfig values
help_message="Usage: $0 [options] [-- extra asrdistill specialists train options]"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$exp_dir/.train.done" && exit 0
asrdistill specialists train --ali-dir "$ali_dir" --feature-dir "$feature_dir" --prefix "$prefix" \
  --generalist-dir "$generalist_dir" --clusters "$clusters" --exp-dir "$exp_dir" ${config:+--config "$config"} "$@"
mark_done "$exp_dir/.train.done"
