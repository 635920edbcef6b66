#!/usr/bin/env bash
# Stage: a GMM-HMM system. One call of `asrdistill gmm mono|tri|lda-mllt|sat`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

type=mono         # mono | tri (deltas) | lda-mllt | sat
feature_dir=data/fbank
prefix=fsdd
split=train       # split to train on
lang_dir=data/lang
src_dir=exp/mono  # tri, lda-mllt, sat: model whose alignments (and, for sat, front end) it starts from
exp_dir=exp/mono
nj=2
config=           # YAML with MonoConfig / TriConfig / LdaMlltConfig / SatConfig values
help_message="Usage: $0 [options]  (train a GMM-HMM: --type mono|tri|lda-mllt|sat)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$exp_dir/.train.done" && exit 0
case "$type" in
  mono) asrdistill gmm mono --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --lang-dir "$lang_dir" \
          --exp-dir "$exp_dir" --num-jobs "$nj" ${config:+--config "$config"} ;;
  tri|lda-mllt|sat)
        asrdistill gmm "$type" --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --lang-dir "$lang_dir" \
          --src-dir "$src_dir" --exp-dir "$exp_dir" --num-jobs "$nj" ${config:+--config "$config"} ;;
  *) echo "$0: --type must be mono, tri, lda-mllt or sat, got '$type'" >&2; exit 1 ;;
esac
mark_done "$exp_dir/.train.done"
