#!/usr/bin/env bash
# Stage: a Kaldi data directory as this toolkit's manifests of one split. One call of `asrdistill prepare kaldi`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

data_dir=         # the Kaldi data directory (wav.scp, text, utt2spk; optional segments, spk2utt, reco2dur)
split=train       # the split its manifests are named after
prefix=corpus
output_dir=data/manifests
skip_bad=false    # true: drop bad utterances (logged, counted) instead of stopping with their list
help_message="Usage: $0 --data-dir DIR --split NAME [options]  (import a Kaldi data directory)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$output_dir/.kaldi_$split.done" && exit 0
asrdistill prepare kaldi --data-dir "$data_dir" --split "$split" --prefix "$prefix" --output-dir "$output_dir" \
  $([ "$skip_bad" = true ] && echo --skip-bad)
mark_done "$output_dir/.kaldi_$split.done"
