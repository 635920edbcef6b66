#!/usr/bin/env bash
# Stage: corpus manifests (lhotse). One call of `asrdistill prepare <corpus>`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

corpus=fsdd
corpus_dir=       # existing copy of the corpus; empty: download to download_dir
download_dir=download
output_dir=data/manifests
config=           # YAML with the corpus preparation options
folds=            # a leave-one-speaker-out folds file (with --fold: prepare that fold's split)
fold=
help_message="Usage: $0 [options]  (prepare lhotse manifests of a corpus)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$output_dir/.prepare.done" && exit 0
asrdistill prepare "$corpus" \
  ${corpus_dir:+--corpus-dir "$corpus_dir"} --download-dir "$download_dir" \
  --output-dir "$output_dir" ${config:+--config "$config"} ${folds:+--folds "$folds" --fold "$fold"}
mark_done "$output_dir/.prepare.done"
