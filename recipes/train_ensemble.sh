#!/usr/bin/env bash
# Stage: train an N-member frame-classifier ensemble. One call of `asrdistill train ensemble`.
# Extra arguments after the options go to the CLI unchanged (e.g. -- --num-members 10).
# Several GPUs on one node: torchrun --nproc-per-node=G $(which asrdistill) train ensemble ... (see README).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ali_dir=exp/tri/ali
feature_dir=data/fbank
prefix=fsdd
exp_dir=exp/ensemble
preset=small
hidden_layers=    # override the preset
hidden_dim=
evaluate_splits=  # e.g. dev,test: frame accuracy after training, in the same process (frame_accuracy.json)
config=           # YAML with TrainConfig values
train_cmd=asrdistill  # or torchrun ... $(which asrdistill): see egs/librispeech/cmd.sh
help_message="Usage: $0 [options] [-- extra asrdistill train ensemble options]  (train N members in one stacked model; resumable)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$exp_dir/.train.done" && exit 0
$train_cmd train ensemble --ali-dir "$ali_dir" --feature-dir "$feature_dir" --prefix "$prefix" --exp-dir "$exp_dir" \
  --preset "$preset" ${hidden_layers:+--hidden-layers "$hidden_layers"} ${hidden_dim:+--hidden-dim "$hidden_dim"} \
  ${evaluate_splits:+--evaluate-splits "$evaluate_splits"} ${config:+--config "$config"} "$@"
mark_done "$exp_dir/.train.done"
