"""A small real system for the deployment tests: FSDD takes, a monophone GMM (its tree and graph), a
2-member network trained on its alignments, and the network exported."""

from pathlib import Path

import numpy as np

import pytest

pytest.importorskip("kaldi_hmm_gmm")
pytest.importorskip("onnxruntime")

DIGITS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()


@pytest.fixture(scope="session")
def deploy_system(fsdd_subset, tmp_path_factory) -> Path:
    from lhotse import CutSet

    from asrdistill.data.cuts import cut_text
    from asrdistill.data.fsdd import FsddConfig, prepare_fsdd
    from asrdistill.decode.graph import make_graph
    from asrdistill.decode.ngram import WittenBellLM
    from asrdistill.features.cmvn import compute_cmvn_stats
    from asrdistill.features.extract import compute_features
    from asrdistill.features.fbank import FbankConfig
    from asrdistill.gmm.align import align_split
    from asrdistill.gmm.shards import AlignOptions
    from asrdistill.gmm.trainer import MonoConfig, train_mono
    from asrdistill.lang.lang_dir import prepare_lang
    from asrdistill.lang.lexicon import cmudict_lexicon

    root = tmp_path_factory.mktemp("deploy")
    cuts = prepare_fsdd(fsdd_subset, root / "m", FsddConfig(utterances_per_speaker=10))
    for split in ("train", "dev", "test"):
        out = compute_features(cuts[split], root / "f", "fsdd", split, FbankConfig(), num_jobs=1, progress=False)
        compute_cmvn_stats(out, progress=False).save(root / "f" / f"fsdd_cmvn_{split}.json")
    lex, _ = cmudict_lexicon(DIGITS)
    prepare_lang(lex, root / "lang")
    train = root / "f" / "fsdd_cuts_train.jsonl.gz"
    train_mono(train, root / "f" / "fsdd_cmvn_train.json", root / "lang", root / "mono",
               MonoConfig(num_iters=10, max_iter_inc=6, total_gauss=200, realign_iters=(1, 2, 3, 5, 7)), num_jobs=1)
    WittenBellLM([cut_text(c).split() for c in CutSet.from_file(train)], 2).write_arpa(root / "G.arpa")
    make_graph(root / "lang", root / "mono", root / "G.arpa", root / "mono" / "graph")
    for split in ("train", "dev", "test"):
        align_split(root / "mono", root / "f" / f"fsdd_cuts_{split}.jsonl.gz", root / "f" / f"fsdd_cmvn_{split}.json",
                    root / "ali", "fsdd", split, AlignOptions(), num_jobs=1)
    train_network(root, root / "ens")
    return root


def train_network(root: Path, exp: Path, steps: int = 300) -> None:
    """A 2-member network (2 x 64, context 20/5) trained on the monophone alignment of train, saved as the
    training engine saves one (member*.pt, log_priors.pt); a plain loop over spliced frames, so the deployment
    tests do not depend on the frame store."""
    import torch

    from asrdistill.features.cmvn import load_cmvn
    from asrdistill.features.context_window import splice
    from asrdistill.features.loading import load_features
    from asrdistill.gmm.align import SplitAlignment
    from asrdistill.nnet.dnn import DnnConfig
    from asrdistill.nnet.ensemble import StackedDnn
    from asrdistill.nnet.trainer import TrainConfig, pdf_log_priors, save_members
    from asrdistill.utils.readers import read_cuts

    ali = SplitAlignment.load(root / "ali" / "fsdd_ali_train.npz")
    cmvn = load_cmvn(root / "f" / "fsdd_cmvn_train.json")
    cuts = {c.id: c for c in read_cuts(root / "f" / "fsdd_cuts_train.jsonl.gz")}
    x = torch.cat([splice(torch.from_numpy(load_features(cuts[u], cmvn))) for u in ali.ids])
    y = torch.from_numpy(ali.pdfs.astype(np.int64))
    assert len(x) == len(y)
    torch.manual_seed(0)
    model = StackedDnn(DnnConfig(hidden_layers=2, hidden_dim=64, num_outputs=ali.num_pdfs), seeds=[0, 1])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (2, 256))
        logits = model(x[idx])  # (2, 256, C)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y[idx].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    exp.mkdir(parents=True, exist_ok=True)
    save_members(model.eval(), exp, TrainConfig(num_members=2))
    torch.save(pdf_log_priors(y, ali.num_pdfs), exp / "log_priors.pt")
