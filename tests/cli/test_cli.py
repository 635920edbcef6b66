"""Every command documents its options; recipe scripts reject unknown options."""

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from asrdistill.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def all_commands(group, prefix=()):
    yield prefix, group
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            yield from all_commands(sub, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)], ids=lambda p: " ".join(p) or "asrdistill")
def test_help_shows_options_with_defaults(path):
    r = CliRunner().invoke(cli, list(path) + ["--help"])
    assert r.exit_code == 0, r.output
    cmd = dict(all_commands(cli))[path]
    if not isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=cmd.name, show_default=True)
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.required and param.default is not None and param.name != "help":
                record = param.get_help_record(ctx)
                assert record and "[default:" in record[1], param.name
                assert record[1].split("[default:")[0].strip(), f"{param.name} has no help text"


def _env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    return env


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "recipes").glob("*.sh")) + ["../egs/fsdd/run.sh"])
def test_recipe_scripts_reject_unknown_options(script, tmp_path):
    r = subprocess.run(["bash", str(ROOT / "recipes" / script), "--no-such-option", "1"], cwd=tmp_path,
                       capture_output=True, text=True, env=_env())
    assert r.returncode != 0 and "unknown option --no-such-option" in r.stderr
    r = subprocess.run(["bash", str(ROOT / "recipes" / script), "--help"], cwd=tmp_path, capture_output=True, text=True, env=_env())
    assert r.returncode == 0 and "Options" in r.stdout


def test_recipe_stages_run_and_are_idempotent(fsdd_subset, tmp_path):
    env = _env()
    rec = ROOT / "recipes"
    steps = [
        [rec / "prepare.sh", "--corpus-dir", str(fsdd_subset), "--output-dir", "m"],
        [rec / "compute_fbank.sh", "--manifest-dir", "m", "--output-dir", "f", "--nj", "2"],
        [rec / "compute_cmvn.sh", "--feature-dir", "f"],
        [rec / "summary.sh", "--manifest-dir", "f"],
    ]
    for step in steps:
        r = subprocess.run(["bash"] + [str(s) for s in step], cwd=tmp_path, capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
    assert "theo" in r.stdout and "train" in r.stdout
    for marker in ("m/.prepare.done", "f/.fbank.done", "f/.cmvn.done"):
        assert (tmp_path / marker).exists()
    r = subprocess.run(["bash"] + [str(s) for s in steps[1]], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "already done" in r.stderr


def test_report_seed_wers_in_member_order(tmp_path):
    """Test WERs of every decoded member, in member order (10 after 2), other directories ignored."""
    import json

    from asrdistill.cli.report_distill import _seed_wers, _wer_seeds

    for name, wer in (("decode_member0_test", 5.0), ("decode_member10_test", 7.0), ("decode_member2_test", 6.0),
                      ("decode_member0_test_other", 99.0), ("decode_test", 98.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "best.json").write_text(json.dumps({"test": {"wer": wer}}))
    assert _seed_wers(tmp_path) == [5.0, 6.0, 7.0]
    assert _wer_seeds(tmp_path) == "6.00 ± 1.00" and _wer_seeds(tmp_path / "none") == "-"
