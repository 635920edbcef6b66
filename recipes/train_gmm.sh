#!/usr/bin/env bash
# Stage: a GMM-HMM system. One call of `asrdistill align mono` or `asrdistill align tri`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

type=mono         # mono | tri
feature_dir=data/fbank
prefix=fsdd
split=train       # split to train on
lang_dir=data/lang
src_dir=exp/mono  # tri only: model whose alignments build the tree
exp_dir=exp/mono
nj=2
config=           # YAML with MonoConfig / TriConfig values
help_message="Usage: $0 [options]  (train a monophone or triphone GMM-HMM)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$exp_dir/.train.done" && exit 0
case "$type" in
  mono) asrdistill align mono --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --lang-dir "$lang_dir" \
          --exp-dir "$exp_dir" --num-jobs "$nj" ${config:+--config "$config"} ;;
  tri)  asrdistill align tri --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --lang-dir "$lang_dir" \
          --src-dir "$src_dir" --exp-dir "$exp_dir" --num-jobs "$nj" ${config:+--config "$config"} ;;
  *) echo "$0: --type must be mono or tri, got '$type'" >&2; exit 1 ;;
esac
mark_done "$exp_dir/.train.done"
