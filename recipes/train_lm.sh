#!/usr/bin/env bash
# Stage: n-gram LM from training transcripts. One call of `asrdistill decode lm`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
split=train
order=2
out=data/lm/G.arpa
help_message="Usage: $0 [options]  (Witten-Bell n-gram LM as ARPA)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$out.done" && exit 0
asrdistill decode lm --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --order "$order" --out "$out"
mark_done "$out.done"
