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
root=$(cd ../.. && pwd)

stage=0
stop_stage=100
corpus_dir=       # existing FSDD copy; empty: download to download/
nj=2              # parallel jobs
specialists=true  # stage 18: generalist + specialists (false: skip)
work_dir=.        # where data/, exp/ and RESULTS.md go (run_cv.sh: cv/fold<K>; conf/ is linked there)
fold=             # a fold of conf/folds.yaml (run_cv.sh); empty: the split of conf/prepare.yaml
ensemble_members= # members of the ensemble; empty: conf/ensemble.yaml's (run_cv.sh: 10, as in the paper)
core=false        # true (run_cv.sh): only the rows the folds compare: no k2 decode, no lattices, no top-k or online
                  # students, no member-size sweep, no omitted class, specialists or deployment; every seed decoded
help_message="Usage: $0 [--stage N] [--stop-stage N] [--corpus-dir DIR] [--nj N] [--specialists true|false] [--work-dir DIR] [--fold K] [--ensemble-members N] [--core true|false]"
. $root/local/parse_options.sh
. $root/local/log.sh
require_asrdistill
if [ -n "$corpus_dir" ]; then corpus_dir=$(cd "$corpus_dir" && pwd); fi
if [ "$work_dir" != . ]; then
  mkdir -p "$work_dir" && ln -sfn "$PWD/conf" "$work_dir/conf" && cd "$work_dir"
fi
stage_times=exp/stage_times.tsv   # when each stage started (RESULTS.md: the recipe's wall time)

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: lhotse manifests (speaker-independent splits, connected digits)"
  $root/recipes/prepare.sh --corpus fsdd --corpus-dir "$corpus_dir" --download-dir download \
    --output-dir data/manifests --config conf/prepare.yaml ${fold:+--folds conf/folds.yaml --fold $fold}
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: 40-dim log-mel filterbank features"
  $root/recipes/compute_fbank.sh --manifest-dir data/manifests --output-dir data/fbank \
    --prefix fsdd --nj $nj --config conf/fbank.yaml --splits train,train_sp,dev,test
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: per-speaker CMVN statistics"
  $root/recipes/compute_cmvn.sh --feature-dir data/fbank --prefix fsdd --splits train,train_sp,dev,test
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
  log "Stage 5: monophone GMM-HMM (flat start; word-position variants of a phone share its pdfs)"
  $root/recipes/train_gmm.sh --type mono --exp-dir exp/mono --nj $nj --config conf/mono.yaml
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: tri1, deltas triphone (decision tree; SIL/SPN context-independent; leaves clustered bottom-up)"
  $root/recipes/train_gmm.sh --type tri --src-dir exp/mono --exp-dir exp/tri1 --nj $nj --config conf/tri1.yaml
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: tri2, LDA+MLLT triphone on tri1's alignments"
  $root/recipes/train_gmm.sh --type lda-mllt --src-dir exp/tri1 --exp-dir exp/tri2 --nj $nj --config conf/tri2.yaml
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: tri3, speaker adaptive training (fMLLR) on tri2's front end and alignments"
  $root/recipes/train_gmm.sh --type sat --src-dir exp/tri2 --exp-dir exp/tri3 --nj $nj --config conf/tri3.yaml
fi

gmms="mono tri1 tri2 tri3"
if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: bigram LM over digits; HCLG graphs; decode dev and test with every GMM system (acoustic scale tuned"
  log "on dev, test decoded at it; SAT in two passes: speaker-independent, then fMLLR from its best paths)"
  $root/recipes/train_lm.sh --order 2 --out data/lm/G.arpa
  for m in $gmms; do
    $root/recipes/mkgraph.sh --model-dir exp/$m --arpa data/lm/G.arpa
    $root/recipes/decode.sh --model-dir exp/$m --split dev,test --nj $nj --config conf/decode.yaml
  done
  # the tri1 graph and scores through k2's pruned intersection (k2py), at the same beam
  [ "$core" = true ] || $root/recipes/decode.sh --model-dir exp/tri1 --split dev,test --out-dir "exp/tri1/decode_k2_{split}" --nj $nj \
    --config conf/decode_k2.yaml
fi

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  log "Stage 10: the triphone system with the lowest dev WER gives the DNN targets (exp/tri -> it); forced"
  log "alignment of train, train_sp (speed-perturbed: the networks' training data), dev, test with it (two-pass"
  log "fMLLR for SAT): one tied-state target per frame"
  $root/recipes/select_gmm.sh --systems exp/tri1,exp/tri2,exp/tri3 --link exp/tri
  $root/recipes/align.sh --model-dir exp/tri --splits train,train_sp,dev,test --nj $nj
fi

if [ $stage -le 11 ] && [ $stop_stage -ge 11 ]; then
  log "Stage 11: ensemble of frame classifiers on the tied-state targets (members trained together)"
  $root/recipes/train_ensemble.sh --exp-dir exp/ensemble --preset small --hidden-layers 3 --hidden-dim 256 \
    --evaluate-splits dev,test --config conf/ensemble.yaml -- ${ensemble_members:+--num-members $ensemble_members}
fi

if [ $stage -le 12 ] && [ $stop_stage -ge 12 ]; then
  log "Stage 12: decode dev and test with the ensemble (hybrid: log posterior - log prior); its lattices scored over"
  log "LM weights x insertion penalties (tuned on dev) and rescored with a trigram"
  $root/recipes/decode.sh --model-dir exp/ensemble --model-kind nnet --graph-dir exp/tri/graph --split dev,test --nj $nj \
    --config conf/decode_nnet.yaml
fi
if [ $stage -le 12 ] && [ $stop_stage -ge 12 ] && [ "$core" != true ]; then
  # lattices: decoded once, LM weight x insertion penalty tuned on dev (Kaldi's score.sh); one trigram-rescored row
  $root/recipes/decode_lattices.sh --model-dir exp/ensemble --model-kind nnet --tree-dir exp/tri --graph-dir exp/tri/graph \
    --nj $nj --config conf/decode_lattices.yaml
  $root/recipes/score_lattices.sh --lat-dir "exp/ensemble/decode_lat_{split}"
  $root/recipes/train_lm.sh --order 3 --out data/lm/G3.arpa
  $root/recipes/lmrescore.sh --lat-dir "exp/ensemble/decode_lat_{split}" --out-dir "exp/ensemble/decode_lat_tg_{split}" \
    --old-lm data/lm/G.arpa --new-lm data/lm/G3.arpa
  $root/recipes/score_lattices.sh --lat-dir "exp/ensemble/decode_lat_tg_{split}"
fi

# the members' size (the paper's setting); frame accuracy on dev and test after training
student="--preset small --hidden-layers 3 --hidden-dim 256 --evaluate-splits dev,test"
if [ $stage -le 13 ] && [ $stop_stage -ge 13 ]; then
  log "Stage 13: distil the ensemble into students of a member's size (cached full, cached top-k, online teacher)"
  $root/recipes/distill.sh --exp-dir exp/student $student --config conf/student.yaml
  [ "$core" = true ] || $root/recipes/distill.sh --exp-dir exp/student_top10 $student --config conf/student.yaml -- --top-k 10 --num-members 1
  [ "$core" = true ] || $root/recipes/distill.sh --exp-dir exp/student_online $student --config conf/student.yaml -- --teacher online --num-members 1
fi

if [ $stage -le 14 ] && [ $stop_stage -ge 14 ]; then
  log "Stage 14: soft targets as a regularizer: 3% of the training frames, hard labels vs soft targets"
  $root/recipes/distill.sh --exp-dir exp/baseline_3pct $student --config conf/student_3pct.yaml -- --soft-weight 0 --hard-weight 1
  $root/recipes/distill.sh --exp-dir exp/student_3pct $student --config conf/student_3pct.yaml -- --soft-weight 1 --hard-weight 0
fi

if [ $stage -le 15 ] && [ $stop_stage -ge 15 ]; then
  log "Stage 15: temperature sweep (one stacked member per T) for a member-size and a tiny student"
  [ "$core" = true ] || $root/recipes/distill.sh --exp-dir exp/tsweep_normal $student --config conf/tsweep.yaml
  $root/recipes/distill.sh --exp-dir exp/tsweep_tiny --preset tiny --hidden-layers 2 --hidden-dim 32 \
    --evaluate-splits dev,test --config conf/tsweep.yaml
fi

if [ $stage -le 16 ] && [ $stop_stage -ge 16 ] && [ "$core" != true ]; then
  log "Stage 16: omitted class: no utterance with THREE in the transfer set; bias correction tuned on dev"
  $root/recipes/distill.sh --exp-dir exp/student_no3 $student --config conf/student.yaml -- --omit-words THREE --num-members 1
  $root/recipes/tune_bias.sh --exp-dir exp/student_no3 --word THREE
fi

if [ $stage -le 17 ] && [ $stop_stage -ge 17 ]; then
  log "Stage 17: decode dev and test with single networks (every seed of the baseline and the student, every"
  log "temperature of the sweeps), the omitted-class student (without and with its bias), the geometric-mean ensemble"
  # one call per directory: each member (seed, or temperature) a system of its own, tuned on dev, then test
  nets="ensemble: student:0,1,2 student_top10:0 student_online:0 baseline_3pct:0 student_3pct:0 tsweep_normal:0,1,2,3,4
        tsweep_tiny:0,1,2,3,4 student_no3:0"  # (ensemble: all members)
  [ "$core" = true ] && nets="ensemble: student: baseline_3pct: student_3pct: tsweep_tiny:"  # every seed
  for e in $nets; do
    $root/recipes/decode.sh --model-dir exp/${e%%:*} --model-kind nnet --members "${e#*:}" --each-member true \
      --graph-dir exp/tri/graph --split dev,test --out-dir "exp/${e%%:*}/decode_member{member}_{split}" --nj $nj \
      --config conf/decode_nnet.yaml
  done
  [ "$core" = true ] || $root/recipes/decode.sh --model-dir exp/student_no3 --model-kind nnet --logit-bias exp/student_no3/bias_THREE.json \
    --graph-dir exp/tri/graph --split dev,test --out-dir "exp/student_no3/decode_bias_{split}" --nj $nj --config conf/decode_nnet.yaml
  [ "$core" = true ] || $root/recipes/decode.sh --model-dir exp/ensemble --model-kind nnet --combine geometric --graph-dir exp/tri/graph \
    --split dev,test --out-dir "exp/ensemble/decode_geometric_{split}" --nj $nj --config conf/decode_nnet.yaml
fi

if [ $stage -le 18 ] && [ $stop_stage -ge 18 ] && [ "$specialists" = true ] && [ "$core" != true ]; then
  log "Stage 18: specialists (section 5 of the paper): ensemble member 0 is the generalist; confusable subsets of its"
  log "tied states from its predictions on dev; one specialist per subset (+ dustbin); combined by minimizing KL"
  $root/recipes/cluster_classes.sh --generalist-dir exp/ensemble --out exp/specialists/clusters.json --config conf/clusters.yaml
  $root/recipes/train_specialists.sh --generalist-dir exp/ensemble --exp-dir exp/specialists --config conf/specialists.yaml
  $root/recipes/evaluate_specialists.sh --exp-dir exp/specialists
  $root/recipes/decode.sh --model-dir exp/specialists --model-kind specialists --graph-dir exp/tri/graph --split dev,test \
    --nj $nj --config conf/decode_nnet.yaml
fi

if [ $stage -le 19 ] && [ $stop_stage -ge 19 ] && [ "$core" != true ]; then
  log "Stage 19: deployment table: the ensemble, member 0, the student and the tiny student exported to ONNX;"
  log "offline and streaming transcription of the test speaker on one CPU thread"
  $root/recipes/deployment_table.sh --recipe-dir . --prefix fsdd --systems "ensemble:0,1,2,3 ensemble:0 student:0 tsweep_tiny:1"
fi

if [ $stage -le 20 ] && [ $stop_stage -ge 20 ]; then
  log "Stage 20: RESULTS.md"
  $root/recipes/report.sh --exp-dir exp --title FSDD --out RESULTS.md
fi
