#!/usr/bin/env bash
# Stage: RESULTS.md from the experiment files. One call of `asrdistill report`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

exp_dir=exp
title=FSDD
out=RESULTS.md
help_message="Usage: $0 [options]  (write RESULTS.md)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

asrdistill report --exp-dir "$exp_dir" --title "$title" --out "$out"
