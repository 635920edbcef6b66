#!/usr/bin/env bash
# Stage: 40-dim log-mel filterbank features. One call of `asrdistill features compute`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

manifest_dir=data/manifests
output_dir=data/fbank
prefix=fsdd
splits=train,dev,test
nj=2
config=           # YAML with FbankConfig values
help_message="Usage: $0 [options]  (compute features of every cut, resumable)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$output_dir/.fbank.done" && exit 0
asrdistill features compute --manifest-dir "$manifest_dir" --output-dir "$output_dir" \
  --prefix "$prefix" --splits "$splits" --num-jobs "$nj" ${config:+--config "$config"}
mark_done "$output_dir/.fbank.done"
