# The LibriSpeech recipe's miniature settings: sourced by run.sh for what its options leave as "preset".
preset_speed_perturb=none      # the networks train on train (ensemble.yaml, student.yaml)
preset_gmm_systems="tri1 tri2" # deltas, LDA+MLLT
