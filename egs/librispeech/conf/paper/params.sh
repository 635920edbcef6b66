# The paper's scale: all 960 h, ~14,000 tied states, 10 members of 8 x 2560 ReLU, a student of the same size.
# Sourced by run.sh: subset sizes (GMM sizes: mono.yaml, tri1-4.yaml), network presets and the evaluation splits.
mono_utts=2000    # monophone: the shortest utterances (Kaldi: train_2kshort)
tri1_utts=5000    # tri1 (deltas): a random subset (Kaldi: train_5k)
tri2_utts=10000   # tri2 (LDA+MLLT) and tri3 (SAT): a random subset (Kaldi: train_10k); tri4 (SAT): all of train
nnet_preset=paper      # ensemble members (asrdistill.nnet.dnn.PRESETS)
num_members=10
student_preset=paper
eval_splits=dev,test,dev_other,test_other   # the first (dev) tunes the acoustic scale
