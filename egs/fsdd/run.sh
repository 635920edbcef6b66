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

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: lang directory (CMU dictionary, optional silence, 3/5-state HMMs)"
  $root/recipes/prepare_lang.sh --feature-dir data/fbank --prefix fsdd --output-dir data/lang --config conf/lang.yaml
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: monophone GMM-HMM (flat start)"
  $root/recipes/train_gmm.sh --type mono --exp-dir exp/mono --nj $nj --config conf/mono.yaml
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: triphone GMM-HMM with decision-tree state tying"
  $root/recipes/train_gmm.sh --type tri --src-dir exp/mono --exp-dir exp/tri --nj $nj --config conf/tri.yaml
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: forced alignment of train/dev/test: tied-state targets for the DNNs"
  $root/recipes/align.sh --model-dir exp/tri --splits train,dev,test --nj $nj
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: bigram LM over digits from the training transcripts; HCLG graphs"
  $root/recipes/train_lm.sh --order 2 --out data/lm/G.arpa
  for m in mono tri; do
    $root/recipes/mkgraph.sh --model-dir exp/$m --arpa data/lm/G.arpa
  done
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: decode dev and test with the GMM systems; acoustic scale tuned on dev"
  for m in mono tri; do
    for s in dev test; do
      $root/recipes/decode.sh --model-dir exp/$m --split $s --nj $nj
    done
    $root/recipes/score.sh --dev-dir exp/$m/decode_dev --test-dir exp/$m/decode_test
  done
fi

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  log "Stage 10: ensemble of frame classifiers on the tied-state targets (members trained together)"
  $root/recipes/train_ensemble.sh --exp-dir exp/ensemble --preset small --hidden-layers 3 --hidden-dim 256 \
    --config conf/ensemble.yaml
  $root/recipes/evaluate_nnet.sh --exp-dir exp/ensemble
fi

if [ $stage -le 11 ] && [ $stop_stage -ge 11 ]; then
  log "Stage 11: decode dev and test with the ensemble (hybrid: log posterior - log prior)"
  for s in dev test; do
    $root/recipes/decode.sh --model-dir exp/ensemble --model-kind nnet --graph-dir exp/tri/graph --split $s --nj $nj
  done
  $root/recipes/score.sh --dev-dir exp/ensemble/decode_dev --test-dir exp/ensemble/decode_test
fi

if [ $stage -le 20 ] && [ $stop_stage -ge 20 ]; then
  log "Stage 20: RESULTS.md"
  $root/recipes/report.sh --exp-dir exp --title FSDD --out RESULTS.md
fi
