import numpy as np
import pytest

from asrdistill.features.cmvn import CmvnStats


def test_stats_and_application_against_numpy(tmp_path):
    rng = np.random.default_rng(0)
    data = {"a": [rng.normal(3, 2, (n, 5)) for n in (10, 7)], "b": [rng.normal(-1, 0.5, (20, 5))]}
    stats = CmvnStats()
    for spk, utts in data.items():
        for u in utts:
            stats.accumulate(spk, u.astype(np.float32))
    stats.save(tmp_path / "cmvn.json")
    loaded = CmvnStats.load(tmp_path / "cmvn.json")
    for spk, utts in data.items():
        allf = np.concatenate(utts)
        mean, std = loaded.mean_std(spk)
        np.testing.assert_allclose(mean, allf.mean(0), rtol=1e-5)
        np.testing.assert_allclose(std, allf.std(0), rtol=1e-5)
        normed = np.concatenate([loaded.apply(u.astype(np.float32), spk) for u in utts])
        np.testing.assert_allclose(normed.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(normed.std(0), 1, atol=1e-4)
        means_only = loaded.apply(utts[0].astype(np.float32), spk, norm_vars=False)
        np.testing.assert_allclose(means_only, utts[0] - allf.mean(0), atol=1e-5)
    with pytest.raises(KeyError, match="zzz"):
        loaded.mean_std("zzz")


def test_constant_dimension_stays_finite():
    stats = CmvnStats()
    stats.accumulate("s", np.ones((5, 3), np.float32))
    assert np.isfinite(stats.apply(np.ones((5, 3), np.float32), "s")).all()


def test_load_cmvn_unites_files_and_rejects_a_clashing_speaker(tmp_path):
    from asrdistill.features.cmvn import load_cmvn

    rng = np.random.default_rng(1)
    paths = []
    for name, spk in (("dev", "a"), ("test", "b")):
        s = CmvnStats()
        s.accumulate(spk, rng.normal(size=(9, 4)))
        s.save(tmp_path / f"{name}.json")
        paths.append(tmp_path / f"{name}.json")
    assert load_cmvn(None) is None and load_cmvn([]) is None
    both = load_cmvn(paths + [paths[0]])  # the same file twice is no clash
    for path, spk in zip(paths, "ab"):
        for x, y in zip(both.mean_std(spk), CmvnStats.load(path).mean_std(spk)):
            np.testing.assert_array_equal(x, y)
    other = CmvnStats()
    other.accumulate("a", rng.normal(size=(5, 4)))
    other.save(tmp_path / "other.json")
    with pytest.raises(ValueError, match="'a'.*dev.json.*other.json"):
        load_cmvn([paths[0], tmp_path / "other.json"])
