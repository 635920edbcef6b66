#!/usr/bin/env bash
# LibriSpeech recipe at the paper's scale: data -> fbank -> GMM-HMM in the shape of Kaldi's egs/librispeech/s5
# (mono on the shortest utterances, tri1 deltas on a subset, tri2 LDA+MLLT and tri3 SAT on a larger subset,
# tri4 SAT on all the training data: the tied states) -> tri4's two-pass fMLLR alignments -> N-member ensemble
# -> distilled student -> HCLG decoding of dev/test (clean and other) with tri4's graph -> lattices, scored over
# LM weight x insertion penalty and rescored with the large 3-gram and 4-gram (Kaldi's tglarge and fglarge rows)
# -> RESULTS.md.
# Each stage is one script of ../../recipes; the sizes come from a preset (conf/<preset>/params.sh).
#
#   ./run.sh --corpus-dir /data/LibriSpeech --lexicon /data/lm/librispeech-lexicon.txt \
#            --lm /data/lm/3-gram.pruned.1e-7.arpa.gz --lm-tglarge /data/lm/3-gram.arpa.gz \
#            --lm-fglarge /data/lm/4-gram.arpa.gz                             # existing copies
#   ./run.sh                                          # downloads parts, lexicon and LM to download/
#   ./run.sh --preset 100h --stage 11 --stop-stage 13 # a range of stages, another preset
#
# Presets: paper (960 h, 14,000 tied states, 10 x 8x2560 members, 8x2560 student), 100h
# (train-clean-100, Kaldi's tri4b sizes), tiny (a few minutes on CPU; used by the tests on a miniature corpus).
# How GPU jobs run: cmd.sh (local, torchrun on one node, several nodes). Outputs go to data/ and exp/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=../..

stage=0
stop_stage=100
preset=paper
corpus_dir=       # existing LibriSpeech directory (with train-clean-100/, dev-clean/, ...); empty: download
lexicon=          # librispeech-lexicon.txt; empty: download/librispeech-lexicon.txt
lm=               # ARPA LM for the graph (.gz allowed); empty: download/3-gram.pruned.1e-7.arpa.gz
lm_tglarge=       # ARPA LMs rescoring the lattices (Kaldi's tglarge, fglarge); empty: download/3-gram.arpa.gz,
lm_fglarge=       # download/4-gram.arpa.gz; "none": no such row
nj=4              # parallel CPU jobs
help_message="Usage: $0 [--stage N] [--stop-stage N] [--preset paper|100h|tiny] [--corpus-dir DIR] [--lexicon F] [--lm F] [--lm-tglarge F|none] [--lm-fglarge F|none] [--nj N]"
. $root/local/parse_options.sh
. $root/local/log.sh
require_asrdistill
[ -f conf/$preset/params.sh ] || { echo "$0: no preset conf/$preset/params.sh" >&2; exit 1; }
. conf/$preset/params.sh   # mono_utts, tri1_utts, tri2_utts, nnet_preset, student_preset, eval_splits, ...
. ./cmd.sh                 # train_cmd: how GPU training runs
lexicon=${lexicon:-download/librispeech-lexicon.txt}
lm=${lm:-download/3-gram.pruned.1e-7.arpa.gz}
lm_tglarge=${lm_tglarge:-download/3-gram.arpa.gz}
lm_fglarge=${lm_fglarge:-download/4-gram.arpa.gz}
conf=conf/$preset
p="--prefix librispeech"
gmm="$p --nj $nj"
# tri4, the last SAT system (all the training data), gives the DNN targets, the tree and the decoding graph
ali="--ali-dir exp/tri4/ali"
nnet="--model-kind nnet --tree-dir exp/tri4 --graph-dir exp/tri4/graph"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: manifests of the parts in $conf/prepare.yaml (download when --corpus-dir is not given)"
  $root/recipes/prepare.sh --corpus librispeech --corpus-dir "$corpus_dir" --download-dir download \
    --output-dir data/manifests --config $conf/prepare.yaml
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: 40-dim log-mel filterbank features, per-speaker CMVN, summary"
  $root/recipes/compute_fbank.sh --manifest-dir data/manifests --output-dir data/fbank $p --nj $nj --splits "train,$eval_splits" \
    --config conf/fbank.yaml
  $root/recipes/compute_cmvn.sh --feature-dir data/fbank $p --splits "train,$eval_splits"
  $root/recipes/summary.sh --manifest-dir data/fbank $p
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: lang directory from the LibriSpeech lexicon (stress removed, word-position phones, optional silence)"
  $root/recipes/prepare_lang.sh --feature-dir data/fbank $p --splits train --lexicon "$lexicon" --output-dir data/lang \
    --config conf/lang.yaml
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: training subsets (Kaldi's train_2kshort, train_5k, train_10k): the $mono_utts shortest utterances"
  log "(monophone), $tri1_utts at random (tri1), $tri2_utts at random (tri2 and tri3)"
  $root/recipes/subset.sh --feature-dir data/fbank $p --num-cuts $mono_utts --select shortest --out-split train_short
  $root/recipes/subset.sh --feature-dir data/fbank $p --num-cuts $tri1_utts --select random --out-split train_tri1
  $root/recipes/subset.sh --feature-dir data/fbank $p --num-cuts $tri2_utts --select random --out-split train_tri2
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: monophone on the shortest utterances (flat start, silence boosted 1.25 while aligning)"
  $root/recipes/train_gmm.sh --type mono $gmm --split train_short --exp-dir exp/mono --config $conf/mono.yaml
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: tri1, deltas triphone on the tri1 subset (aligned with mono)"
  $root/recipes/train_gmm.sh --type tri $gmm --split train_tri1 --src-dir exp/mono --exp-dir exp/tri1 \
    --config $conf/tri1.yaml
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: tri2, LDA+MLLT triphone on the tri2 subset (aligned with tri1)"
  $root/recipes/train_gmm.sh --type lda-mllt $gmm --split train_tri2 --src-dir exp/tri1 --exp-dir exp/tri2 \
    --config $conf/tri2.yaml
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: tri3, speaker adaptive training (fMLLR) on the tri2 subset, on tri2's front end and alignments"
  $root/recipes/train_gmm.sh --type sat $gmm --split train_tri2 --src-dir exp/tri2 --exp-dir exp/tri3 \
    --config $conf/tri3.yaml
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  # as Kaldi's tri4b from tri3b: tri3's two-pass fMLLR alignments of all the data start tri4
  log "Stage 8: tri4, SAT on all the training data (the tied states of the DNN targets), from tri3"
  $root/recipes/train_gmm.sh --type sat $gmm --split train --src-dir exp/tri3 --exp-dir exp/tri4 \
    --config $conf/tri4.yaml
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: forced alignment of the training and evaluation data with tri4 (two passes: speaker-independent,"
  log "then per-speaker fMLLR, exp/tri4/ali/trans_{split}.npz): the DNN targets"
  $root/recipes/align.sh $gmm --model-dir exp/tri4 --splits "train,$eval_splits"
fi

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  log "Stage 10: HCLG with the LM ($lm) and tri4's tree; decode tri4 in two passes (decode_{split}.si, then"
  log "fMLLR from its best paths: decode_{split}), dev at every acoustic scale, the other splits at the best one"
  $root/recipes/mkgraph.sh --model-dir exp/tri4 --arpa "$lm"
  $root/recipes/decode.sh $gmm --model-dir exp/tri4 --split "$eval_splits" --config $conf/decode.yaml
fi

if [ $stage -le 11 ] && [ $stop_stage -ge 11 ]; then
  log "Stage 11: ensemble of $num_members frame classifiers ($nnet_preset) on the tied-state targets (GPU if present)"
  $root/recipes/train_ensemble.sh --train-cmd "$train_cmd" $p $ali --exp-dir exp/ensemble --preset $nnet_preset \
    --config $conf/ensemble.yaml
  $root/recipes/evaluate_nnet.sh $p $ali --exp-dir exp/ensemble --splits "$eval_splits"
fi

if [ $stage -le 12 ] && [ $stop_stage -ge 12 ]; then
  log "Stage 12: distil the ensemble into one $student_preset student (cached top-k teacher)"
  $root/recipes/distill.sh --train-cmd "$train_cmd" $p $ali --exp-dir exp/student --preset $student_preset \
    --config $conf/student.yaml
  $root/recipes/evaluate_nnet.sh $p $ali --exp-dir exp/student --splits "$eval_splits"
fi

if [ $stage -le 13 ] && [ $stop_stage -ge 13 ]; then
  log "Stage 13: decode with a single member (the baseline), the ensemble and the student; scale tuned on dev"
  for sys in "ensemble --members 0 --each-member true:ensemble/decode_member{member}" "ensemble:ensemble/decode" \
             "student --members 0 --each-member true:student/decode_member{member}"; do
    $root/recipes/decode.sh $p $nnet --model-dir exp/${sys%%:*} --split "$eval_splits" --out-dir "exp/${sys#*:}_{split}" \
      --nj $nj --config $conf/decode.yaml
  done
fi

if [ $stage -le 14 ] && [ $stop_stage -ge 14 ]; then
  log "Stage 14: lattices of tri4 (adapted pass, stage 10's fMLLR), the ensemble and the student with the first-pass"
  log "graph, best paths over LM weight x insertion penalty (tuned on dev); rescored with tglarge and fglarge"
  words="--words exp/tri4/graph/words.txt"
  # each LM once in its const form (Kaldi's G.carpa: sorted n-gram arrays), memory-mapped by every rescoring below
  for big in tgsmall:$lm tglarge:$lm_tglarge fglarge:$lm_fglarge; do
    [ "${big#*:}" = none ] || $root/recipes/const_arpa.sh --arpa "${big#*:}" --out data/lm/${big%%:*}.carpa
  done
  for sys in tri4: ensemble: student:0; do  # tri4, the ensemble (all members), the student (member 0)
    d=exp/${sys%%:*} members=${sys#*:}
    if [ $d = exp/tri4 ]; then kind="--transform-dir exp/tri4/decode_{split}"; else kind="$nnet"; fi
    $root/recipes/decode_lattices.sh $p $kind --model-dir $d ${members:+--members $members} \
      --split "$eval_splits" --nj $nj --config $conf/decode_lattices.yaml
    $root/recipes/score_lattices.sh $p $words --split "$eval_splits" --lat-dir "$d/decode_lat_{split}" \
      --config $conf/score_lattices.yaml
    for big in tglarge:$lm_tglarge fglarge:$lm_fglarge; do
      [ "${big#*:}" = none ] && continue
      $root/recipes/lmrescore.sh $words --split "$eval_splits" --lat-dir "$d/decode_lat_{split}" \
        --out-dir "$d/decode_lat_${big%%:*}_{split}" --old-lm data/lm/tgsmall.carpa \
        --new-lm data/lm/${big%%:*}.carpa
      $root/recipes/score_lattices.sh $p $words --split "$eval_splits" --lat-dir "$d/decode_lat_${big%%:*}_{split}" \
        --config $conf/score_lattices.yaml
    done
  done
fi

if [ $stage -le 20 ] && [ $stop_stage -ge 20 ]; then
  log "Stage 20: RESULTS.md"
  $root/recipes/report.sh --exp-dir exp --title "LibriSpeech ($preset preset)" --out RESULTS.md
fi
