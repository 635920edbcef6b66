# The paper's scale: all 960 h, ~14,000 tied states, 10 members of 8 x 2560 ReLU, a student of the same size.
# Sourced by run.sh: subset sizes, network presets and the evaluation splits.
mono_utts=2000        # monophone: the shortest utterances (Kaldi: train_2kshort)
tri1_utts=5000        # first triphone system: a random subset (Kaldi: train_5k)
nnet_preset=paper      # ensemble members (asrdistill.nnet.dnn.PRESETS)
num_members=10
student_preset=paper
eval_splits=dev,test,dev_other,test_other   # the first (dev) tunes the acoustic scale
