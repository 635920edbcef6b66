#!/usr/bin/env bash
# Stage: the GMM system with the lowest dev WER gives the DNN targets. One call of `asrdistill gmm select`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

systems=exp/tri1,exp/tri2,exp/tri3   # candidates, each decoded on dev and test (decode_test/best.json)
out=exp/gmm_selection.json
link=exp/tri                         # symbolic link to the chosen system (the later stages read exp/tri)
help_message="Usage: $0 [options]  (choose the DNN targets' GMM system by dev WER)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$out.done" && exit 0
asrdistill gmm select --systems "$systems" --out "$out" --link "$link"
mark_done "$out.done"
