#!/usr/bin/env bash
# Stage: distil an ensemble into student(s). One call of `asrdistill distill student`.
# Extra arguments after the options go to the CLI unchanged (e.g. --temperatures 1,2,4 --teacher online).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ali_dir=exp/tri/ali
feature_dir=data/fbank
prefix=fsdd
teacher_dir=exp/ensemble
exp_dir=exp/student
preset=small
hidden_layers=
hidden_dim=
evaluate_splits=  # e.g. dev,test: frame accuracy after training, in the same process (frame_accuracy.json)
config=           # YAML with DistillConfig values
train_cmd=asrdistill  # or torchrun ... $(which asrdistill): see egs/librispeech/cmd.sh
help_message="Usage: $0 [options] [-- extra asrdistill distill student options]"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$exp_dir/.distill.done" && exit 0
$train_cmd distill student --ali-dir "$ali_dir" --feature-dir "$feature_dir" --prefix "$prefix" \
  --teacher-dir "$teacher_dir" --exp-dir "$exp_dir" --preset "$preset" \
  ${hidden_layers:+--hidden-layers "$hidden_layers"} ${hidden_dim:+--hidden-dim "$hidden_dim"} \
  ${evaluate_splits:+--evaluate-splits "$evaluate_splits"} ${config:+--config "$config"} "$@"
mark_done "$exp_dir/.distill.done"
