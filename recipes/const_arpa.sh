#!/usr/bin/env bash
# Stage: an ARPA LM in its const form (Kaldi's utils/build_const_arpa_lm.sh), memory-mapped by lmrescore.sh.
# One call of `asrdistill decode const-arpa`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

arpa=             # the ARPA LM (plain or .gz)
out=              # the const-ARPA directory
help_message="Usage: $0 --arpa LM.arpa[.gz] --out DIR  (sorted n-gram arrays on disk, 16 bytes per n-gram)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

[ -n "$arpa" ] && [ -n "$out" ] || { echo "$0: --arpa and --out are required" >&2; exit 1; }
stage_done "$out/.done" && exit 0
asrdistill decode const-arpa --arpa "$arpa" --out "$out"
mark_done "$out/.done"
