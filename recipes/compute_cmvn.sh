#!/usr/bin/env bash
# Stage: per-speaker CMVN statistics. One call of `asrdistill features cmvn`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
splits=train,dev,test
help_message="Usage: $0 [options]  (per-speaker CMVN statistics)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$feature_dir/.cmvn.done" && exit 0
asrdistill features cmvn --feature-dir "$feature_dir" --prefix "$prefix" --splits "$splits"
mark_done "$feature_dir/.cmvn.done"
