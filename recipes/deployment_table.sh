#!/usr/bin/env bash
# Stage: the deployment table (RESULTS.md's "Deployment" section): export each system to ONNX and measure, on one
# CPU thread, parameters, MFLOP/frame, offline and streaming RTF, first-partial and final latency, WER.
# One call of benchmarks/bench_transcribe.py (a fresh process per system); writes $out_dir/table.md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

recipe_dir=.      # the recipe directory (data/, exp/)
prefix=fsdd
split=test
systems="ensemble:0,1,2,3 student:0 tsweep_tiny:1"   # NAME:MEMBERS of exp/NAME (several: one averaging graph)
chunk_ms=100
out_dir=exp/deployment
help_message="Usage: $0 [options]  (deployment table: CPU cost and WER of exported networks)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$out_dir/.deployment.done" && exit 0
python=$(dirname "$(command -v asrdistill)")/python
OMP_NUM_THREADS=1 "$python" "$root/benchmarks/bench_transcribe.py" --recipe-dir "$recipe_dir" --prefix "$prefix" \
  --split "$split" --systems $systems --chunk-ms "$chunk_ms" --work-dir "$out_dir" >/dev/null
mark_done "$out_dir/.deployment.done"
