"""The small real GMM-HMM system and ensemble that several test modules share (session fixtures).

Trained once per test session on real FSDD recordings (``fsdd_subset``): the GMM tests
(``tests/gmm/test_gmm_system_real.py``) check them, the fault suite (``tests/faults``) breaks
copies of their files.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def system(fsdd_subset, tmp_path_factory):
    """A monophone and a triphone system trained on 15 takes per speaker and digit (features of every split)."""
    pytest.importorskip("kaldi_hmm_gmm")
    from asrdistill.data.fsdd import FsddConfig, prepare_fsdd
    from asrdistill.features.cmvn import compute_cmvn_stats
    from asrdistill.features.extract import compute_features
    from asrdistill.features.fbank import FbankConfig
    from asrdistill.gmm.trainer import MonoConfig, TriConfig, train_mono, train_tri
    from asrdistill.lang.lang_dir import prepare_lang
    from asrdistill.lang.lexicon import cmudict_lexicon

    root = tmp_path_factory.mktemp("gmm")
    cuts = prepare_fsdd(fsdd_subset, root / "m", FsddConfig(utterances_per_speaker=15))
    for split in ("train", "dev", "test"):
        out = compute_features(cuts[split], root / "f", "fsdd", split, FbankConfig(), num_jobs=1, progress=False)
        compute_cmvn_stats(out, progress=False).save(root / "f" / f"fsdd_cmvn_{split}.json")
    lex, _ = cmudict_lexicon("ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split())
    prepare_lang(lex, root / "lang")
    train = root / "f" / "fsdd_cuts_train.jsonl.gz"
    cmvn = root / "f" / "fsdd_cmvn_train.json"
    mono = train_mono(train, cmvn, root / "lang", root / "mono",
                      MonoConfig(num_iters=12, max_iter_inc=8, total_gauss=250, realign_iters=(1, 2, 3, 4, 6, 8, 10)),
                      num_jobs=1)
    tri = train_tri(train, cmvn, root / "lang", root / "mono", root / "tri",
                    TriConfig(num_leaves=120, min_leaf_count=30, total_gauss=400, num_iters=8, max_iter_inc=5, realign_iters=(4,)),
                    num_jobs=2)
    return root, mono, tri


@pytest.fixture(scope="session")
def ensemble(system):
    """Alignments of every split and a tiny 2-member ensemble trained on them."""
    import numpy as np

    from asrdistill.gmm.align import SplitAlignment, align_split
    from asrdistill.gmm.shards import AlignOptions
    from asrdistill.nnet.dnn import DnnConfig
    from asrdistill.nnet.ensemble_training import train_ensemble
    from asrdistill.nnet.trainer import TrainConfig

    root, _, _ = system
    ali = root / "ali_all"
    for split in ("train", "dev", "test"):
        align_split(root / "tri", root / "f" / f"fsdd_cuts_{split}.jsonl.gz", root / "f" / f"fsdd_cmvn_{split}.json",
                    ali, "fsdd", split, AlignOptions(), num_jobs=1)
    dnn = DnnConfig(hidden_layers=2, hidden_dim=64, left_context=5, right_context=2)
    train_ensemble(ali, root / "f", "fsdd", root / "ens", dnn,
                   TrainConfig(num_members=2, max_steps=600, eval_every=150, warmup_steps=30, lr=2e-3, batch_size=128))
    pdfs = SplitAlignment.load(ali / "fsdd_ali_test.npz").pdfs
    return root, ali, dnn, np.bincount(pdfs).max() / len(pdfs)


@pytest.fixture(scope="session")
def tri_graph(system):
    """A Witten-Bell bigram over the training transcripts (``G.arpa``) and the triphone system's HCLG
    (``graph/``): ``(graph_dir, make_graph's stats)``."""
    from asrdistill.data.cuts import cut_text
    from asrdistill.decode.graph import make_graph
    from asrdistill.decode.ngram import WittenBellLM
    from asrdistill.utils.readers import read_cuts

    root, _, _ = system
    train = read_cuts(root / "f" / "fsdd_cuts_train.jsonl.gz")
    WittenBellLM([cut_text(c).split() for c in train], 2).write_arpa(root / "G.arpa")
    stats = make_graph(root / "lang", root / "tri", root / "G.arpa", root / "graph")
    return root / "graph", stats

