#!/usr/bin/env bash
# Leave-one-speaker-out evaluation of the FSDD recipe (issue 17): run.sh once per fold of conf/folds.yaml
# (one speaker tests, one tunes, three train), each fold in cv/fold<K> with its own data/, exp/ and
# RESULTS.md; every stage keeps its .done marker, so an interrupted run resumes where it stopped.
# Each fold runs the core rows only (run.sh --core true) with a 10-member ensemble, as in the paper (run.sh's
# default, conf/ensemble.yaml, keeps 4 for the quick make demo). Then each fold's RESULTS.md and
# RESULTS_cv.md: every row over the folds, and the paper's claims as paired tests over speakers.
#
#   ./run_cv.sh --corpus-dir /path/to/fsdd              # all folds, then the report
#   ./run_cv.sh --folds "0 1" --stop-stage 12           # some folds, some stages
#
# make demo stays the quick single split (run.sh = fold 0's split).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=$(cd ../.. && pwd)

stage=0
stop_stage=100
corpus_dir=       # existing FSDD copy; empty: download
nj=2
folds="0 1 2 3 4" # folds of conf/folds.yaml to run
ensemble_members=10
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus-dir DIR] [--nj N] [--folds \"0 1 2 3 4\"] [--ensemble-members N]"
. $root/local/parse_options.sh
. $root/local/log.sh
require_asrdistill

fold_stop=$(( stop_stage < 19 ? stop_stage : 19 ))  # every fold's stages first; the reports after all folds
for k in $folds; do
  [ $stage -le $fold_stop ] || break
  log "Fold $k of conf/folds.yaml: cv/fold$k"
  ./run.sh --work-dir cv/fold$k --fold $k ${corpus_dir:+--corpus-dir "$corpus_dir"} --nj $nj --core true \
    --ensemble-members $ensemble_members --stage $stage --stop-stage $fold_stop
done

if [ $stop_stage -ge 20 ]; then
  for k in $folds; do
    ./run.sh --work-dir cv/fold$k --fold $k --stage 20 --stop-stage 20
  done
  log "RESULTS_cv.md: rows over the folds, paired tests over speakers"
  $root/recipes/report_cv.sh --cv-dir cv --folds conf/folds.yaml --out RESULTS_cv.md
fi
