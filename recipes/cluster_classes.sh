#!/usr/bin/env bash
# Stage: confusable class subsets from the generalist's predictions. One call of `asrdistill specialists cluster`.
# Extra arguments after the options go to the CLI unchanged (e.g. -- --overlap-margin 0.3).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ali_dir=exp/tri/ali
feature_dir=data/fbank
prefix=fsdd
generalist_dir=exp/ensemble
generalist_member=0
split=dev         # held-out split whose predictions give the covariance
tree_dir=exp/tri  # names the pdfs by phone in the listing
out=exp/specialists/clusters.json
config=           # YAML with ClusterConfig values
help_message="Usage: $0 [options] [-- extra asrdistill specialists cluster options]"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$out.done" && exit 0
asrdistill specialists cluster --ali-dir "$ali_dir" --feature-dir "$feature_dir" --prefix "$prefix" \
  --generalist-dir "$generalist_dir" --generalist-member "$generalist_member" --split "$split" --tree-dir "$tree_dir" \
  --out "$out" ${config:+--config "$config"} "$@"
mark_done "$out.done"
