#!/usr/bin/env bash
# Generic recipe: any corpus given as Kaldi data directories (wav.scp, text, utt2spk; optional segments,
# spk2utt, reco2dur), from audio to an exported student and a transcription of the test set with it.
# Each stage is one script of ../../recipes (stage 0: recipes/import_kaldi_dir.sh once per split).
#
#   ./run.sh --train data_kaldi/train --dev data_kaldi/dev --test data_kaldi/test [--lexicon lexicon.txt]
#   ./run.sh --stage 8 --stop-stage 12 ...       # a range of stages
#   ./run.sh --preset tiny ...                   # conf/tiny: minutes on 2 cores (the tests use it)
#   ./run.sh --speed-perturb none ...            # no train_sp: the networks train on train
#
# Outputs go to data/ and exp/ here (or --work-dir); each stage leaves a .done marker and is skipped when it exists.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

stage=0
stop_stage=100
train=            # Kaldi data directory of the training split (required)
dev=              # ... of the dev split (tunes the acoustic scale, selects the GMM system)
test=             # ... of the test split
lexicon=          # lexicon file (WORD PH PH ...); empty: the CMU dictionary for the transcripts' words
prefix=corpus     # manifest file prefix
preset=default    # conf/default (the FSDD recipe's settings, linked from egs/fsdd/conf) or conf/tiny
work_dir=         # where data/ and exp/ go (default: this directory)
lm_order=2        # n-gram order of the LM estimated from the training transcripts
nnet_preset=small # ensemble members and student (asrdistill.nnet.dnn.PRESETS), with the sizes below
hidden_layers=3
hidden_dim=256
gmm_systems=preset  # stage 3: tri1 (deltas), tri2 (LDA+MLLT), tri3 (SAT) or a prefix of them; the best on dev
                    # gives the targets. preset: conf/<preset>/params.sh's (default: "tri1 tri2 tri3")
speed_perturb=preset # factors of train_sp, the networks' training data (Kaldi's 3-way: "0.9 1.1"); none: no
                     # copy, the networks train on train; preset: conf/<preset>/params.sh's (default: "0.9 1.1")
skip_bad=false    # stage 0: drop bad utterances (logged, counted) instead of stopping with their list
nj=2
help_message="Usage: $0 --train DIR --dev DIR --test DIR [--lexicon FILE] [--prefix NAME] [--preset default|tiny]
  [--work-dir DIR] [--gmm-systems \"tri1 tri2 tri3\"] [--speed-perturb \"0.9 1.1\"|none] [--stage N] [--stop-stage N]
  [--nj N] [--skip-bad true|false]"
. $root/local/parse_options.sh
. $root/local/log.sh
require_asrdistill
for v in train dev test; do
  [ -n "${!v}" ] || { echo "$0: --$v DIR is required" >&2; echo "$help_message" >&2; exit 1; }
  [ -d "${!v}" ] || { echo "$0: --$v ${!v} is not a directory" >&2; exit 1; }
  eval "$v=\$(cd \"\${!v}\" && pwd)"
done
[ -z "$lexicon" ] || lexicon=$(cd "$(dirname "$lexicon")" && pwd)/$(basename "$lexicon")
conf=$here/conf/$preset
[ -f "$conf/params.sh" ] || { echo "$0: no preset $conf (params.sh)" >&2; exit 1; }
. "$conf/params.sh"   # preset_gmm_systems, preset_speed_perturb
[ "$gmm_systems" = preset ] && gmm_systems=$preset_gmm_systems
[ "$speed_perturb" = preset ] && speed_perturb=$preset_speed_perturb
case " $gmm_systems " in
  " tri1 "|" tri1 tri2 "|" tri1 tri2 tri3 ") ;;
  *) echo "$0: --gmm-systems must be \"tri1\", \"tri1 tri2\" or \"tri1 tri2 tri3\" (each trains on the one before), not \"$gmm_systems\"" >&2; exit 1 ;;
esac
for m in $gmm_systems; do
  [ -f "$conf/$m.yaml" ] || { echo "$0: preset $preset has no $m.yaml for --gmm-systems \"$gmm_systems\"" >&2; exit 1; }
done
if [ "$speed_perturb" = none ]; then
  splits=train,dev,test
  nnet_data="-- --train-split train"  # the networks' configs may name train_sp
else
  splits=train,train_sp,dev,test
  nnet_data=
fi
mkdir -p "${work_dir:-$here}" && cd "${work_dir:-$here}"
stage_times=exp/stage_times.tsv
p="--prefix $prefix"
size="--preset $nnet_preset --hidden-layers $hidden_layers --hidden-dim $hidden_dim --evaluate-splits dev,test"
nnet="--model-kind nnet --tree-dir exp/tri --graph-dir exp/tri/graph"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: Kaldi data directories -> manifests (checked as validate_data_dir.sh)"
  for split in train dev test; do
    $root/recipes/import_kaldi_dir.sh --data-dir "${!split}" --split $split $p --output-dir data/manifests \
      --skip-bad $skip_bad
  done
  if [ "$speed_perturb" != none ]; then
    $root/recipes/speed_perturb.sh --manifest-dir data/manifests $p --split train --factors "$speed_perturb" --out-split train_sp
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: 40-dim log-mel filterbank features, per-speaker CMVN, summary"
  $root/recipes/compute_fbank.sh --manifest-dir data/manifests --output-dir data/fbank $p --nj $nj \
    --config $here/conf/fbank.yaml --splits $splits
  $root/recipes/compute_cmvn.sh --feature-dir data/fbank $p --splits $splits
  $root/recipes/summary.sh --manifest-dir data/fbank $p
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: lang directory (${lexicon:-CMU dictionary}; word-position phones, optional silence)"
  $root/recipes/prepare_lang.sh --feature-dir data/fbank $p --splits train,dev,test ${lexicon:+--lexicon "$lexicon"} \
    --output-dir data/lang --config $here/conf/lang.yaml
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: monophone, then $gmm_systems (tri1: deltas, tri2: LDA+MLLT, tri3: SAT)"
  $root/recipes/train_gmm.sh --type mono $p --exp-dir exp/mono --nj $nj --config $conf/mono.yaml
  $root/recipes/train_gmm.sh --type tri $p --src-dir exp/mono --exp-dir exp/tri1 --nj $nj --config $conf/tri1.yaml
  if [[ " $gmm_systems " == *" tri2 "* ]]; then
    $root/recipes/train_gmm.sh --type lda-mllt $p --src-dir exp/tri1 --exp-dir exp/tri2 --nj $nj --config $conf/tri2.yaml
  fi
  if [[ " $gmm_systems " == *" tri3 "* ]]; then
    $root/recipes/train_gmm.sh --type sat $p --src-dir exp/tri2 --exp-dir exp/tri3 --nj $nj --config $conf/tri3.yaml
  fi
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: $lm_order-gram LM of the training transcripts; HCLG graphs; decode dev and test with $gmm_systems"
  $root/recipes/train_lm.sh --feature-dir data/fbank $p --order $lm_order --out data/lm/G.arpa
  for m in $gmm_systems; do
    $root/recipes/mkgraph.sh --model-dir exp/$m --arpa data/lm/G.arpa
    $root/recipes/decode.sh $p --model-dir exp/$m --split dev,test --nj $nj --config $conf/decode.yaml
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: the system with the lowest dev WER gives the DNN targets (exp/tri); alignment of $splits"
  systems=$(for m in $gmm_systems; do printf 'exp/%s,' $m; done)
  $root/recipes/select_gmm.sh --systems "${systems%,}" --link exp/tri
  $root/recipes/align.sh $p --model-dir exp/tri --splits $splits --nj $nj
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: ensemble of frame classifiers; distil it into a student of a member's size"
  $root/recipes/train_ensemble.sh $p --exp-dir exp/ensemble $size --config $conf/ensemble.yaml $nnet_data
  $root/recipes/distill.sh $p --exp-dir exp/student $size --config $conf/student.yaml $nnet_data
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: decode dev and test with ensemble member 0, the ensemble and the student (scale tuned on dev)"
  $root/recipes/decode.sh $p $nnet --model-dir exp/ensemble --members 0 --each-member true --split dev,test \
    --out-dir "exp/ensemble/decode_member{member}_{split}" --nj $nj --config $conf/decode_nnet.yaml
  $root/recipes/decode.sh $p $nnet --model-dir exp/ensemble --split dev,test --nj $nj --config $conf/decode_nnet.yaml
  $root/recipes/decode.sh $p $nnet --model-dir exp/student --members 0 --each-member true --split dev,test \
    --out-dir "exp/student/decode_member{member}_{split}" --nj $nj --config $conf/decode_nnet.yaml
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: export the student and the ensemble to ONNX; transcribe the test split with the student (onnxruntime,"
  log "running CMVN, as for a new speaker)"
  $root/recipes/export.sh $p --model-dir exp/student --members 0 --tree-dir exp/tri
  $root/recipes/export.sh $p --model-dir exp/ensemble --tree-dir exp/tri
  if [ ! -f exp/student/transcribe_test/.done ]; then
    mkdir -p exp/student/transcribe_test
    asrdistill transcribe --model exp/student/export --graph exp/tri/graph --cmvn running \
      data/manifests/${prefix}_cuts_test.jsonl.gz \
      --json exp/student/transcribe_test/hyp.json > exp/student/transcribe_test/hyp.txt
    touch exp/student/transcribe_test/.done
  fi
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: deployment table: the exported ensemble and student on one CPU thread (RTF offline and streaming,"
  log "latencies, WER): exp/deployment/table.md, a section of RESULTS.md"
  $root/recipes/deployment_table.sh --recipe-dir . $p --systems "ensemble student:0"
fi

if [ $stage -le 20 ] && [ $stop_stage -ge 20 ]; then
  log "Stage 20: RESULTS.md"
  $root/recipes/report.sh --exp-dir exp --title "Kaldi data directories ($(basename "$train"), $preset preset)" \
    --out RESULTS.md
fi
