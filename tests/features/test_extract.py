"""Parallel extraction: stored features equal direct extraction; resume after a kill."""

import os

import numpy as np
import pytest

from asrdistill.utils.readers import read_cuts, write_cuts
from asrdistill.data.fsdd import FsddConfig, prepare_fsdd
from asrdistill.features.cmvn import compute_cmvn_stats
from asrdistill.features.extract import compute_features, extract_cut
from asrdistill.features.fbank import Fbank, FbankConfig
from asrdistill.features.loading import load_features

LILCOM_TOL = 0.05  # lilcom stores log-mel values with an absolute precision of about 2^-5


@pytest.fixture(scope="module")
def cuts(fsdd_subset, tmp_path_factory):
    return prepare_fsdd(fsdd_subset, tmp_path_factory.mktemp("m"), FsddConfig(utterances_per_speaker=4))["dev"]


def test_stored_features_equal_direct_extraction(cuts, tmp_path):
    config = FbankConfig()
    out = compute_features(cuts, tmp_path, "fsdd", "dev", config, num_jobs=2, progress=False)
    assert len(out) == len(cuts) and sorted(out.ids) == sorted(cuts.ids)
    assert (tmp_path / "fsdd_cuts_dev.jsonl.gz").exists() and (tmp_path / "fbank_config.yaml").exists()
    assert not list(tmp_path.glob("*.jsonl.gz.tmp*")) and not list(tmp_path.glob("fsdd_feats_dev.*.jsonl.gz"))
    fb = Fbank(config)
    by_id = {c.id: c for c in cuts}
    for cut in read_cuts(tmp_path / "fsdd_cuts_dev.jsonl.gz"):
        stored = load_features(cut)
        direct = extract_cut(fb, by_id[cut.id])  # seeded dither: identical recomputation
        assert stored.shape == direct.shape == (cut.features.num_frames, 40)
        assert np.abs(stored - direct).max() < LILCOM_TOL
        if cut.custom["kind"] == "connected":
            assert cut.recording is None and len(cut.custom["source_takes"]) >= 2
            assert cut.custom["split"] == "dev"


def test_resume_redoes_only_missing_shards(cuts, tmp_path):
    config = FbankConfig()
    compute_features(cuts, tmp_path, "fsdd", "dev", config, num_jobs=2, progress=False)
    # Simulate a run killed after shard 0 finished: shard 1 and the final manifest are gone.
    final = tmp_path / "fsdd_cuts_dev.jsonl.gz"
    shard0 = tmp_path / "fsdd_feats_dev.0.lca"
    write_cuts((c for c in read_cuts(final) if c.features.storage_path == str(shard0.resolve())),
        tmp_path / "fsdd_feats_dev.0.jsonl.gz")
    final.unlink()
    (tmp_path / "fsdd_feats_dev.1.lca").unlink()
    os.utime(shard0, (1, 1))
    out = compute_features(cuts, tmp_path, "fsdd", "dev", config, num_jobs=2, progress=False)
    assert shard0.stat().st_mtime == 1  # not rewritten
    assert len(out) == len(cuts) and all(np.isfinite(load_features(c)).all() for c in out)
    with pytest.raises(ValueError, match="different feature config"):
        compute_features(cuts, tmp_path, "fsdd", "dev", FbankConfig(num_mel_bins=23), progress=False)


def test_cmvn_from_stored_features(cuts, tmp_path):
    out = compute_features(cuts, tmp_path, "fsdd", "dev", FbankConfig(), num_jobs=1, progress=False)
    stats = compute_cmvn_stats(out, progress=False)
    assert set(stats.count) == {"nicolas"}
    normed = np.concatenate([load_features(c, stats) for c in out])
    raw = np.concatenate([load_features(c) for c in out])
    np.testing.assert_allclose(normed.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(normed, (raw - raw.mean(0)) / raw.std(0), atol=1e-3)
