import sys

import pytest

from asrdistill.utils.processes import ENV_VAR, process_context, start_method


def test_start_method_default_and_override(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert start_method() == ("fork" if sys.platform.startswith("linux") else "spawn")
    monkeypatch.setenv(ENV_VAR, "spawn")
    assert start_method() == "spawn" and process_context().get_start_method() == "spawn"
    monkeypatch.setenv(ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match="nonsense"):
        start_method()


def _square(x):
    import torch

    torch.set_num_threads(1)
    return float((torch.arange(4.0) * x).square().sum())


def test_forked_workers_run_torch_after_the_parent_used_its_threads():
    import torch

    torch.set_num_threads(2)
    a = torch.randn(512, 512)
    (a @ a).sum()  # the parent's intra-op pool is now in use
    with process_context().Pool(2) as pool:
        assert pool.map(_square, [1, 2], chunksize=1) == [14.0, 56.0]
