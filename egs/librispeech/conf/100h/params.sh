# train-clean-100 only, Kaldi's 100 h sizes (4,200 tied states), 4 members of 6 x 1024, a student of the same size.
# Sourced by run.sh: subset sizes (GMM sizes: mono.yaml, tri1-4.yaml), network presets and the evaluation splits.
mono_utts=2000    # monophone: the shortest utterances (Kaldi: train_2kshort)
tri1_utts=5000    # tri1 (deltas): a random subset (Kaldi: train_5k)
tri2_utts=10000   # tri2 (LDA+MLLT) and tri3 (SAT): a random subset (Kaldi: train_10k); tri4 (SAT): all of train
nnet_preset=medium      # ensemble members (asrdistill.nnet.dnn.PRESETS)
num_members=4
student_preset=medium
eval_splits=dev,test,dev_other,test_other   # the first (dev) tunes the acoustic scale
