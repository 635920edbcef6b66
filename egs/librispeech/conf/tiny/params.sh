# A few minutes on 2 CPU cores on a miniature corpus in LibriSpeech's layout (the tests build one).
# Sourced by run.sh: subset sizes, network presets and the evaluation splits.
mono_utts=20        # monophone: the shortest utterances (Kaldi: train_2kshort)
tri1_utts=30        # first triphone system: a random subset (Kaldi: train_5k)
nnet_preset=micro      # ensemble members (asrdistill.nnet.dnn.PRESETS)
num_members=2
student_preset=micro
eval_splits=dev,test   # the first (dev) tunes the acoustic scale
