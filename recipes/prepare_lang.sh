#!/usr/bin/env bash
# Stage: lang directory (phones, words, topology, L.fst). One call of `asrdistill prepare lang`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

feature_dir=data/fbank
prefix=fsdd
splits=train,dev,test
lexicon=          # lexicon file; empty: the CMU dictionary
output_dir=data/lang
config=           # YAML with LangConfig values
help_message="Usage: $0 [options]  (lang directory from the transcripts' words)"
. "$root/local/parse_options.sh"
. "$root/local/log.sh"
require_asrdistill

stage_done "$output_dir/.lang.done" && exit 0
asrdistill prepare lang --feature-dir "$feature_dir" --prefix "$prefix" --splits "$splits" \
  ${lexicon:+--lexicon "$lexicon"} --output-dir "$output_dir" ${config:+--config "$config"}
mark_done "$output_dir/.lang.done"
