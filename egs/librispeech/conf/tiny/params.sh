# A few minutes on 2 CPU cores on a miniature corpus in LibriSpeech's layout (the tests build one).
# Sourced by run.sh: subset sizes (GMM sizes: mono.yaml, tri1-4.yaml), network presets and the evaluation splits.
mono_utts=40      # monophone: the shortest utterances (Kaldi: train_2kshort)
tri1_utts=50      # tri1 (deltas): a random subset (Kaldi: train_5k)
tri2_utts=70      # tri2 (LDA+MLLT) and tri3 (SAT): a random subset (Kaldi: train_10k); tri4 (SAT): all of train
nnet_preset=micro      # ensemble members (asrdistill.nnet.dnn.PRESETS)
num_members=2
student_preset=micro
eval_splits=dev,test   # the first (dev) tunes the acoustic scale
