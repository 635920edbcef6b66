"""Issue 18, "never silently wrong", at the command line and in the recipe scripts.

* the real commands check YAML values before any work (decode run, train ensemble);
* an experiment folder's ``config.yaml`` is accepted back by ``--config``, architecture included;
* OS errors are one line naming the path and the reason;
* recipe scripts reject a non-integer value for an integer option;
* ``import asrdistill.cli`` (and so ``asrdistill --help``) does not import torch.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from asrdistill import __version__
from asrdistill.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    return lines[0]


# -- 1. decode/train values from YAML -------------------------------------------------------------------

@pytest.mark.parametrize("text,option,reason", [
    ("beam: abc\n", "--beam", "'abc' is not a valid float"),
    ("beam: -5\n", "--beam", "-5.0 is not > 0"),
    ("beam: [1, 2]\n", "--beam", "expected one value"),
    ("acoustic_scales: [0.1, 0]\n", "--acoustic-scales", "0.0 is not > 0"),
    ("max_active: 1\n", "--max-active", "1 is not >= 2"),
    ("min_active: 8000\n", "--min-active", "8000 is not <= 7000"),
])
def test_decode_run_checks_yaml_values_first(tmp_path, text, option, reason):
    (tmp_path / "decode.yaml").write_text(text)
    r = CliRunner().invoke(cli, ["decode", "run", "--feature-dir", str(tmp_path), "--model-dir", str(tmp_path),
                                 "--config", str(tmp_path / "decode.yaml")])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    line = error_line(r.output)
    assert option in line and reason in line and str(tmp_path / "decode.yaml") in line, line


def test_decode_run_checks_command_line_values(tmp_path):
    r = CliRunner().invoke(cli, ["decode", "run", "--feature-dir", str(tmp_path), "--model-dir", str(tmp_path),
                                 "--beam", "-5"])
    assert r.exit_code == 2 and "--beam" in error_line(r.output) and "-5.0 is not > 0" in r.output


@pytest.fixture
def captured(monkeypatch):
    """Replace the training functions by recorders of their (dnn, config) arguments."""
    import asrdistill.nnet.distillation as distillation
    import asrdistill.nnet.ensemble_training as ensemble_training

    calls = {}

    def train_ensemble(ali_dir, feature_dir, prefix, exp_dir, dnn, config, overwrite=False):
        calls["train"] = (dnn, config)
        return {"steps": 0, "best_dev_acc": [0.0]}

    def distill(teacher_dir, ali_dir, feature_dir, prefix, exp_dir, dnn, config, overwrite=False):
        calls["distill"] = (dnn, config)
        return {"steps": 0, "train_seconds": 0.0, "best_dev_acc": [0.0]}

    monkeypatch.setattr(ensemble_training, "train_ensemble", train_ensemble)
    monkeypatch.setattr(distillation, "distill", distill)
    return calls


def _dirs(tmp_path):
    d = tmp_path / "d"
    d.mkdir(exist_ok=True)
    return ["--ali-dir", str(d), "--feature-dir", str(d)]


@pytest.mark.parametrize("text,option,reason", [
    ("lr: 0\n", "--lr", "0.0 is not > 0"),
    ("batch_size: 0\n", "--batch-size", "0 is not >= 1"),
    ("max_epochs: -1\n", "--max-epochs", "-1 is not >= 1"),
    ("hidden_dim: abc\n", "--hidden-dim", "'abc' is not a valid integer"),
    ("dnn: {dropout: 1.0}\n", "--dropout", "1.0 is not < 1"),
    ("preset: huge\n", "--preset", "'huge' is not one of"),
])
def test_train_ensemble_checks_yaml_values(tmp_path, captured, text, option, reason):
    (tmp_path / "c.yaml").write_text(text)
    r = CliRunner().invoke(cli, ["train", "ensemble", *_dirs(tmp_path), "--exp-dir", str(tmp_path / "e"),
                                 "--config", str(tmp_path / "c.yaml")])
    assert r.exit_code == 2 and "train" not in captured, r.output
    line = error_line(r.output)
    assert option in line and reason in line and str(tmp_path / "c.yaml") in line, line


# -- 2. a folder reproduces its result by itself -----------------------------------------------------------

def test_architecture_from_yaml_flat_or_in_a_dnn_section(tmp_path, captured):
    (tmp_path / "c.yaml").write_text("preset: tiny\nhidden_dim: 32\ndropout: 0.1\nnum_members: 2\nlr: 0.002\n")
    r = CliRunner().invoke(cli, ["train", "ensemble", *_dirs(tmp_path), "--exp-dir", str(tmp_path / "e"),
                                 "--config", str(tmp_path / "c.yaml")])
    assert r.exit_code == 0, r.output
    dnn, config = captured["train"]
    assert (dnn.hidden_layers, dnn.hidden_dim, dnn.dropout) == (2, 32, 0.1)  # tiny: 2 layers
    assert config.num_members == 2 and config.lr == 0.002
    (tmp_path / "c.yaml").write_text("num_members: 2\ndnn:\n  hidden_layers: 3\n  hidden_dim: 48\n  init: torch\n")
    r = CliRunner().invoke(cli, ["train", "ensemble", *_dirs(tmp_path), "--exp-dir", str(tmp_path / "e"),
                                 "--config", str(tmp_path / "c.yaml"), "--hidden-dim", "64"])
    assert r.exit_code == 0, r.output
    dnn, config = captured["train"]
    assert (dnn.hidden_layers, dnn.hidden_dim, dnn.init) == (3, 64, "torch") and config.num_members == 2


def test_experiment_config_is_accepted_back(tmp_path, captured):
    from asrdistill.nnet.distillation import DistillConfig
    from asrdistill.nnet.dnn import DnnConfig
    from asrdistill.nnet.ensemble_training import save_experiment_config

    # as train_ensemble/distill record it: the architecture with the data's input and output sizes
    dnn = DnnConfig(feature_dim=40, left_context=10, right_context=3, hidden_layers=2, hidden_dim=32, num_outputs=123,
                    dropout=0.2, max_norm=1.5, init="torch")
    config = DistillConfig(num_members=5, seed=300, temperatures=(1.0, 2.0, 4.0), soft_weight=1.0, hard_weight=0.0,
                           teacher="cached", max_epochs=2)
    exp = tmp_path / "tsweep_tiny"
    exp.mkdir()
    save_experiment_config(exp, dnn=dnn, distill=config)
    data = yaml.safe_load((exp / "config.yaml").read_text())
    assert data["asrdistill_version"] == __version__ and "command" in data and data["distill"]["num_members"] == 5
    r = CliRunner().invoke(cli, ["distill", "student", *_dirs(tmp_path), "--teacher-dir", str(tmp_path / "d"),
                                 "--exp-dir", str(tmp_path / "again"), "--config", str(exp / "config.yaml")])
    assert r.exit_code == 0, r.output
    got_dnn, got_config = captured["distill"]
    assert got_config == config
    # the architecture is the saved one; the sizes that come from the data are taken from the data again
    assert got_dnn == DnnConfig(**{**dnn.__dict__, "num_outputs": 0})
    # command-line options override the saved values
    r = CliRunner().invoke(cli, ["distill", "student", *_dirs(tmp_path), "--teacher-dir", str(tmp_path / "d"),
                                 "--exp-dir", str(tmp_path / "again"), "--config", str(exp / "config.yaml"),
                                 "--hidden-dim", "16", "--seed", "7"])
    assert r.exit_code == 0, r.output
    got_dnn, got_config = captured["distill"]
    assert got_dnn.hidden_dim == 16 and got_dnn.hidden_layers == 2 and got_config.seed == 7


def test_ensemble_config_given_to_distill_names_the_section(tmp_path, captured):
    from asrdistill.nnet.dnn import DnnConfig
    from asrdistill.nnet.ensemble_training import save_experiment_config
    from asrdistill.nnet.trainer import TrainConfig

    save_experiment_config(tmp_path, dnn=DnnConfig(num_outputs=10), train=TrainConfig())
    r = CliRunner().invoke(cli, ["train", "ensemble", *_dirs(tmp_path), "--exp-dir", str(tmp_path / "e"),
                                 "--config", str(tmp_path / "config.yaml")])
    assert r.exit_code == 0, r.output
    assert captured["train"][1] == TrainConfig()
    r = CliRunner().invoke(cli, ["distill", "student", *_dirs(tmp_path), "--teacher-dir", str(tmp_path / "d"),
                                 "--config", str(tmp_path / "config.yaml")])
    assert r.exit_code == 2 and "section 'train'" in error_line(r.output), r.output


def test_specialists_config_is_accepted_back(tmp_path, monkeypatch):
    import asrdistill.nnet.specialists as specialists
    from asrdistill.nnet.ensemble_training import save_experiment_config
    from asrdistill.nnet.specialists import SpecialistConfig

    calls = []
    monkeypatch.setattr(specialists, "train_specialists",
                        lambda *args: calls.append(args[-2]) or {"steps": 0, "best_dev_acc": [0.0]})
    config = SpecialistConfig(num_members=3, member_offset=2, lr=0.002, dustbin_fraction=0.25)
    save_experiment_config(tmp_path, specialists=config)
    (tmp_path / "clusters.json").write_text("{}")
    r = CliRunner().invoke(cli, ["specialists", "train", *_dirs(tmp_path), "--generalist-dir", str(tmp_path / "d"),
                                 "--clusters", str(tmp_path / "clusters.json"), "--exp-dir", str(tmp_path / "again"),
                                 "--config", str(tmp_path / "config.yaml")])
    assert r.exit_code == 0, r.output
    assert calls == [config]


# -- 3. OS errors at the entry point ------------------------------------------------------------------------

def _asrdistill(*args, cwd):
    return subprocess.run([sys.executable, "-c", "import sys; from asrdistill.cli import cli; sys.argv[0] = 'asrdistill'; cli()",
                           *args], cwd=cwd, capture_output=True, text=True)


def test_unwritable_output_is_one_line(tmp_path):
    (tmp_path / "exp").mkdir()
    (tmp_path / "file").write_text("")  # root ignores permissions: an output "under a file" cannot be written
    r = _asrdistill("report", "--exp-dir", "exp", "--out", "file/sub/RESULTS.md", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()], r.stderr
    assert "file/sub/RESULTS.md" in r.stderr and "not a directory" in r.stderr.lower(), r.stderr


def test_full_disk_is_reported_as_such(tmp_path, monkeypatch):
    (tmp_path / "exp").mkdir()

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))

    monkeypatch.setattr(os, "replace", full)
    r = CliRunner().invoke(cli, ["report", "--exp-dir", str(tmp_path / "exp"), "--out", str(tmp_path / "R.md")])
    assert r.exit_code == 1, r.output
    line = error_line(r.output)
    assert str(tmp_path / "R.md") in line and "no space left on device" in line.lower(), line


def test_os_error_of_a_command_is_one_line(tmp_path, monkeypatch):
    import asrdistill.nnet.ensemble_training as ensemble_training

    def read_only(*args):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "exp"))

    monkeypatch.setattr(ensemble_training, "train_ensemble", read_only)
    r = CliRunner().invoke(cli, ["train", "ensemble", *_dirs(tmp_path), "--exp-dir", str(tmp_path / "exp")])
    assert r.exit_code == 1 and error_line(r.output) == f"Error: {tmp_path / 'exp'}: Read-only file system", r.output


# -- 4. integer options of the recipe scripts ----------------------------------------------------------------

def _script(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(f"set -euo pipefail\nstage=0\nnj=4\nname=abc\nlr=0.5\nempty=\n. {ROOT}/local/parse_options.sh\n"
                      'echo "stage=$stage nj=$nj name=$name lr=$lr empty=$empty"\n')
    return script


@pytest.mark.parametrize("args,option", [(["--stage", "abc"], "--stage"), (["--nj=2x"], "--nj"), (["--stage", ""], "--stage"),
                                         (["--stage", "1.5"], "--stage")])
def test_integer_options_reject_other_values(tmp_path, args, option):
    r = subprocess.run(["bash", str(_script(tmp_path)), *args], capture_output=True, text=True)
    assert r.returncode != 0 and r.stdout == "", (r.stdout, r.stderr)
    assert option in r.stderr and "integer" in r.stderr, r.stderr


def test_other_options_take_any_value(tmp_path):
    r = subprocess.run(["bash", str(_script(tmp_path)), "--stage", "-3", "--nj", "16", "--name", "7", "--lr", "x",
                        "--empty", "y"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=-3 nj=16 name=7 lr=x empty=y"


def test_recipe_rejects_non_integer_stage(tmp_path):
    r = subprocess.run(["bash", str(ROOT / "egs" / "fsdd" / "run.sh"), "--stage", "abc"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode != 0 and "--stage" in r.stderr and "integer expression expected" not in r.stderr, r.stderr


# -- 5. start-up cost -----------------------------------------------------------------------------------------

def test_cli_import_and_help_do_not_import_torch():
    code = ("import sys; import asrdistill.cli as c; assert 'torch' not in sys.modules, 'import';"
            "c.cli(['--help'], standalone_mode=False); assert 'torch' not in sys.modules, 'help';"
            "assert 'lhotse' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("train", "distill", "decode", "gmm", "prepare", "features", "report", "score", "specialists", "summary"):
        assert name in r.stdout


@pytest.mark.parametrize("group", ["train", "distill", "specialists"])
def test_help_of_the_network_commands_does_not_import_torch(group):
    """The network stages' configs live in the torch-free asrdistill.nnet.configs: their --help (every
    subcommand's options and defaults) is shown without importing torch."""
    from asrdistill.cli import cli as group_cli

    subcommands = sorted(group_cli.commands[group].commands)
    code = ("import sys; import asrdistill.cli as c; "
            f"[c.cli([{group!r}, sub, '--help'], standalone_mode=False) for sub in {subcommands!r}]; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:3]")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "--lr" in r.stdout  # the training options were listed


def test_lazy_command_list_matches_the_commands():
    import click

    from asrdistill.cli import _COMMANDS

    assert set(cli.commands) == set(_COMMANDS)
    for name in cli.commands:
        short = cli.commands.short_help(name, 45)
        cmd = cli.commands[name]
        assert isinstance(cmd, click.Command) and cmd.get_short_help_str(45) == short, name
