#!/usr/bin/env bash
# Stage: decode splits once into lattices (OUT_DIR/lat.npz). One call of `asrdistill decode lattices`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
split=dev,test    # each split decoded once (--out-dir with {split})
model_dir=exp/tri
model_kind=gmm    # gmm or nnet
transform_dir=    # SAT gmm: two-pass decode run directories ({split}) whose trans.npz adapt the features
tree_dir=         # nnet: the GMM system of the network's outputs (default exp/tri)
members=          # nnet: comma-separated member indices (default: all)
combine=arithmetic
graph_dir=        # default: the model's (nnet: the tree's) graph
out_dir=          # default: $model_dir/decode_lat_{split}
nj=2
config=           # YAML with LatticeDecodeConfig values (beam, lattice_beam, acoustic_scale, ...)
help_message="Usage: $0 [options]  (lattices of each split, decoded once)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

out_dir=${out_dir:-"$model_dir/decode_lat_{split}"}
name=${out_dir//\{split\}/${split//,/_}}
marker="$(dirname "$name")/.$(basename "$name").lattices.done"
stage_done "$marker" && exit 0
asrdistill decode lattices --feature-dir "$feature_dir" --prefix "$prefix" --split "$split" --model-dir "$model_dir" \
  --model-kind "$model_kind" ${tree_dir:+--tree-dir "$tree_dir"} ${members:+--members "$members"} --combine "$combine" \
  ${graph_dir:+--graph-dir "$graph_dir"} ${transform_dir:+--transform-dir "$transform_dir"} --out-dir "$out_dir" --num-jobs "$nj" ${config:+--config "$config"}
mark_done "$marker"
