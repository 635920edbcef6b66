#!/usr/bin/env bash
# FSDD recipe: real spoken digits (5 speakers), isolated and connected-digit utterances,
# speaker-independent train/dev/test. Each stage is one script of ../../recipes.
#
#   ./run.sh --corpus-dir /path/to/fsdd          # an existing copy (with recordings/)
#   ./run.sh                                     # downloads the public dataset
#   ./run.sh --stage 1 --stop-stage 2            # a range of stages
#
# Outputs go to data/ and exp/ here (git-ignored); each stage leaves a .done marker
# and is skipped when it exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=../..

stage=0
stop_stage=100
corpus_dir=       # existing FSDD copy; empty: download to download/
nj=2              # parallel jobs
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus-dir DIR] [--nj N]"
. $root/local/parse_options.sh
. $root/local/log.sh
require_asrdistill

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: lhotse manifests (speaker-independent splits, connected digits)"
  $root/recipes/prepare.sh --corpus fsdd --corpus-dir "$corpus_dir" --download-dir download \
    --output-dir data/manifests --config conf/prepare.yaml
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: 40-dim log-mel filterbank features"
  $root/recipes/compute_fbank.sh --manifest-dir data/manifests --output-dir data/fbank \
    --prefix fsdd --nj $nj --config conf/fbank.yaml
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: per-speaker CMVN statistics"
  $root/recipes/compute_cmvn.sh --feature-dir data/fbank --prefix fsdd
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: data summary"
  $root/recipes/summary.sh --manifest-dir data/fbank --prefix fsdd
fi
