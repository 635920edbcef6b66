# The FSDD recipe's settings (egs/fsdd/conf, linked here): sourced by run.sh for what its options leave as "preset".
preset_speed_perturb="0.9 1.1"       # train_sp: train plus copies at 0.9 and 1.1 speed; the networks train on it
preset_gmm_systems="tri1 tri2 tri3"  # deltas, LDA+MLLT, SAT; the best on dev gives the targets
