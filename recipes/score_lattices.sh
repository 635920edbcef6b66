#!/usr/bin/env bash
# Stage: best paths of stored lattices over LM weight x word insertion penalty (Kaldi's score.sh), the best on
# the first split applied to the others (their best.json). One call of `asrdistill decode score-lattices`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
split=dev,test                       # tune on the first
lat_dir=exp/tri/decode_lat_{split}   # each split's lat.npz
words=exp/tri/graph/words.txt        # the graph's word table
config=                              # YAML with LatticeScoringConfig values (lm_weights, word_ins_penalties)
help_message="Usage: $0 [options]  (WER from lattices, LM weight and penalty tuned on dev)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

name=${lat_dir//\{split\}/${split//,/_}}
marker="$(dirname "$name")/.$(basename "$name").score.done"
stage_done "$marker" && exit 0
asrdistill decode score-lattices --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --lat-dir "$lat_dir" \
  --words "$words" ${config:+--config "$config"}
mark_done "$marker"
