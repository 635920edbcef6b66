#!/usr/bin/env bash
# Stage: rescore lattices with another ARPA LM (Kaldi's lmrescore.sh: the old LM's cost replaced by the new's).
# One call of `asrdistill decode rescore`; score the output with score_lattices.sh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

split=dev,test
lat_dir=exp/tri/decode_lat_{split}        # lattices decoded with the old LM's graph
out_dir=exp/tri/decode_lat_tg_{split}     # rescored lattices
old_lm=data/lm/G.arpa
new_lm=data/lm/G3.arpa
words=exp/tri/graph/words.txt
help_message="Usage: $0 [options]  (LM rescoring of lattices)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

name=${out_dir//\{split\}/${split//,/_}}
marker="$(dirname "$name")/.$(basename "$name").rescore.done"
stage_done "$marker" && exit 0
asrdistill decode rescore --lat-dir "$lat_dir" --out-dir "$out_dir" --split "$split" --old-lm "$old_lm" \
  --new-lm "$new_lm" --words "$words"
mark_done "$marker"
