#!/usr/bin/env bash
# Stage: Kaldi's train_sp (3-way speed perturbation) from a split's manifests. One call of `asrdistill prepare speed-perturb`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

manifest_dir=data/manifests
prefix=corpus
split=train          # the split perturbed
factors="0.9 1.1"    # speed factors besides the original (1.0)
out_split=train_sp
help_message="Usage: $0 [options]  (the split's cuts plus a speed-perturbed copy per factor)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$manifest_dir/.speed_perturb_$out_split.done" && exit 0
asrdistill prepare speed-perturb --manifest-dir "$manifest_dir" --prefix "$prefix" --split "$split" \
  --factors "${factors// /,}" --out-split "$out_split"
mark_done "$manifest_dir/.speed_perturb_$out_split.done"
