#!/usr/bin/env bash
# Stage: RESULTS_cv.md from the fold directories of run_cv.sh. One call of `asrdistill report-cv`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

cv_dir=cv
folds=conf/folds.yaml
title=FSDD
out=RESULTS_cv.md
help_message="Usage: $0 [options]  (write RESULTS_cv.md)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

asrdistill report-cv --cv-dir "$cv_dir" --folds "$folds" --title "$title" --out "$out"
