#!/usr/bin/env bash
# Stage: omitted-class bias correction tuned on dev. One call of `asrdistill distill bias`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ali_dir=exp/tri/ali
feature_dir=data/fbank
prefix=fsdd
exp_dir=exp/student_no3
word=THREE
help_message="Usage: $0 [options]  (bias of the omitted word's classes, tuned on dev)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

asrdistill distill bias --ali-dir "$ali_dir" --feature-dir "$feature_dir" --prefix "$prefix" --exp-dir "$exp_dir" --word "$word"
