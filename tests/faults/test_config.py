"""Issue 18, "never silently wrong": config values, saved configs and output errors.

* A value from a YAML file goes through the same conversion and checks as the same value
  on the command line, and fails with one clear usage error naming the option and the file
  (not a traceback from deep inside the program, after the model has loaded).
* A config saved by the toolkit is accepted back by ``--config`` as it is.
* An output that cannot be written is reported as such: the path and the OS's reason
  ("No space left on device"), also when torch.save hides it in a RuntimeError.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Optional, Tuple

import click
import pytest
import yaml
from click.testing import CliRunner

from asrdistill import __version__
from asrdistill.utils import atomic
from asrdistill.utils.atomic import atomic_path, atomic_write_text
from asrdistill.utils.config import config_from_dict, load_config, save_config, with_config


@dataclass
class Search:
    decoder: str = field(default="lattice", metadata={"help": "Search.", "choices": ["lattice", "faster"]})
    beam: float = field(default=13.0, metadata={"help": "Search beam.", "min_exclusive": 0})
    max_active: int = field(default=7000, metadata={"help": "Most active states.", "min": 2})
    min_active: int = field(default=200, metadata={"help": "Fewest active states.", "min": 0, "max": "max_active"})
    acoustic_scales: Tuple[float, ...] = field(default=(0.05, 0.1), metadata={"help": "Scales.", "min_exclusive": 0})
    flag: bool = field(default=False, metadata={"help": "A flag."})
    name: str = field(default="x", metadata={"help": "A name."})
    window: Optional[int] = field(default=None, metadata={"help": "Optional window.", "min": 1})


@click.command()
@with_config(Search)
def search_cmd(config):
    click.echo(repr(config))


def run_yaml(tmp_path, text, *args):
    path = tmp_path / "search.yaml"
    path.write_text(text)
    return CliRunner().invoke(search_cmd, ["--config", str(path), *args]), path


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, output
    return lines[0]


# -- 1. YAML values are converted and checked as command-line values ---------------------------------

BAD = [  # (field, on the command line, in YAML, the reason both must give)
    ("beam", "abc", "abc", "'abc' is not a valid float"),
    ("beam", "-5", "-5", "-5.0 is not > 0"),
    ("beam", "0", "0.0", "0.0 is not > 0"),
    ("max_active", "1", "1", "1 is not >= 2"),
    ("max_active", "3.5", "3.5", "'3.5' is not a valid integer"),
    ("acoustic_scales", "0.1,-1", "[0.1, -1]", "-1.0 is not > 0"),
    ("acoustic_scales", "0.1,x", "[0.1, x]", "'x' is not a valid float"),
    ("decoder", "k3", "k3", "'k3' is not one of"),
    ("window", "0", "0", "0 is not >= 1"),
]


@pytest.mark.parametrize("name,cli_value,yaml_value,reason", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_yaml_and_command_line_values_fail_the_same_way(tmp_path, name, cli_value, yaml_value, reason):
    option = "--" + name.replace("_", "-")
    r = CliRunner().invoke(search_cmd, [option, cli_value])
    assert r.exit_code == 2, r.output
    cli_line = error_line(r.output)
    assert option in cli_line and reason in cli_line, cli_line

    r, path = run_yaml(tmp_path, f"{name}: {yaml_value}\n")
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    line = error_line(r.output)
    assert reason in line and option in line and str(path) in line, line


@pytest.mark.parametrize("text,reason", [
    ("beam: [1.0, 2.0]\n", "expected one value"),
    ("beam: {a: 1}\n", "expected one value"),
    ("beam:\n", "no value"),
    ("max_active: true\n", "'True' is not a valid integer"),
    ("name: yes\n", "boolean"),
    ("flag: maybe\n", "'maybe' is not a valid boolean"),  # --flag/--no-flag on the command line
    ("acoustic_scales: {a: 1}\n", "expected a list"),
])
def test_yaml_only_shapes_are_usage_errors(tmp_path, text, reason):
    r, path = run_yaml(tmp_path, text)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    line = error_line(r.output)
    assert reason in line and str(path) in line and "--" + text.split(":")[0].replace("_", "-") in line, line


def test_yaml_values_are_converted_like_command_line_values(tmp_path):
    # a scalar for a tuple field is a one-element tuple, as "--acoustic-scales 0.1" is
    r, _ = run_yaml(tmp_path, "acoustic_scales: 0.1\nbeam: 10\nmax_active: '300'\nname: 12\nflag: 'yes'\nwindow: 4\n")
    assert r.exit_code == 0, r.output
    assert ("Search(decoder='lattice', beam=10.0, max_active=300, min_active=200, acoustic_scales=(0.1,), flag=True, "
            "name='12', window=4)") in r.output
    r, _ = run_yaml(tmp_path, "acoustic_scales: '0.1,0.2'\nwindow: null\nbeam: 1e-3\n")
    assert r.exit_code == 0 and "acoustic_scales=(0.1, 0.2)" in r.output and "window=None" in r.output, r.output
    assert "beam=0.001" in r.output
    r = CliRunner().invoke(search_cmd, ["--acoustic-scales", "0.1"])
    assert r.exit_code == 0 and "acoustic_scales=(0.1,)" in r.output


def test_bound_naming_another_field(tmp_path):
    r, path = run_yaml(tmp_path, "min_active: 500\nmax_active: 400\n")
    assert r.exit_code == 2
    line = error_line(r.output)
    assert "--min-active" in line and "--max-active" in line and "500" in line and "400" in line, line
    r, _ = run_yaml(tmp_path, "min_active: 500\n", "--max-active", "600")
    assert r.exit_code == 0, r.output


def test_help_documents_the_bounds():
    out = CliRunner().invoke(search_cmd, ["--help"], terminal_width=200).output
    assert "> 0" in out and ">= 2" in out


def test_load_config_checks_values_and_raises_value_error(tmp_path):
    (tmp_path / "c.yaml").write_text("beam: -1\n")
    with pytest.raises(ValueError, match=r"beam.*-1.0 is not > 0"):
        load_config(Search, tmp_path / "c.yaml")
    with pytest.raises(ValueError, match="is not a valid float"):
        config_from_dict(Search, {"beam": "abc"})
    assert config_from_dict(Search, {"beam": 3, "acoustic_scales": [1, 2]}) == Search(beam=3.0, acoustic_scales=(1.0, 2.0))


def test_yaml_that_is_not_a_mapping(tmp_path):
    r, path = run_yaml(tmp_path, "- beam\n- 3\n")
    assert r.exit_code == 2 and str(path) in error_line(r.output)
    r, path = run_yaml(tmp_path, "beam: [1\n")
    assert r.exit_code == 2 and "YAML" in error_line(r.output)


def test_package_configs_declare_bounds_and_their_defaults_pass():
    from asrdistill.decode.decoder import DecoderConfig
    from asrdistill.decode.runner import DecodeConfig
    from asrdistill.utils.config import field_converter

    checked = {DecoderConfig: ["beam", "lattice_beam", "max_active", "min_active"], DecodeConfig: ["acoustic_scales"]}
    for cls, names in checked.items():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in names:
            assert {"min", "min_exclusive"} & set(fields[name].metadata), f"{cls.__name__}.{name}"
    for cls in (DecoderConfig, DecodeConfig):
        for f in dataclasses.fields(cls):
            conv = field_converter(cls, f.name)
            assert conv(getattr(cls(), f.name), "default") == getattr(cls(), f.name)
    with pytest.raises(ValueError, match="is not >= 0"):
        config_from_dict(DecoderConfig, {"min_active": -1})


# -- 2. saved configs are accepted back, with provenance ---------------------------------------------

def test_saved_config_records_provenance_and_is_accepted_back(tmp_path):
    c = Search(beam=9.0, acoustic_scales=(0.2,), flag=True)
    save_config(c, tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert text.splitlines()[0] == f"# {__name__}.Search"  # the header others read the config class from
    data = yaml.safe_load(text)
    assert data["asrdistill_version"] == __version__ and data["command"]
    if shutil.which("git") and os.path.isdir(os.path.join(os.path.dirname(__file__), "..", "..", ".git")):
        assert len(data["git_commit"]) == 40
    assert load_config(Search, tmp_path / "config.yaml") == c
    r = CliRunner().invoke(search_cmd, ["--config", str(tmp_path / "config.yaml"), "--beam", "2"])
    assert r.exit_code == 0, r.output
    assert "beam=2.0" in r.output and "acoustic_scales=(0.2,)" in r.output and "flag=True" in r.output


def test_config_of_another_version_loads_with_a_warning(tmp_path, caplog):
    (tmp_path / "c.yaml").write_text("beam: 3.0\nasrdistill_version: 0.0.1\ngit_commit: abc\n")
    with caplog.at_level(logging.WARNING):
        assert load_config(Search, tmp_path / "c.yaml").beam == 3.0
    assert "0.0.1" in caplog.text and __version__ in caplog.text


@dataclass
class Arch:
    layers: int = field(default=2, metadata={"help": "Layers.", "min": 0})
    width: int = field(default=8, metadata={"help": "Width.", "min": 1})


@click.command()
@with_config(Search, section="search", arch=Arch)
def composed_cmd(config, arch):
    click.echo(f"{config!r} {arch!r}")


def test_sections_and_flat_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("search: {beam: 4.0}\narch: {layers: 5}\ncommand: asrdistill something\nwidth: 3\n")
    r = CliRunner().invoke(composed_cmd, ["--config", str(p), "--layers", "6"])
    assert r.exit_code == 0, r.output
    assert "beam=4.0" in r.output and "Arch(layers=6, width=3)" in r.output
    p.write_text("search: {beam: 4.0}\nother: {x: 1}\n")
    r = CliRunner().invoke(composed_cmd, ["--config", str(p)])
    assert r.exit_code == 2 and "section 'other'" in error_line(r.output) and "arch" in error_line(r.output)
    p.write_text("arch: {layers: -1}\n")
    r = CliRunner().invoke(composed_cmd, ["--config", str(p)])
    assert r.exit_code == 2 and "--layers" in error_line(r.output) and "-1 is not >= 0" in error_line(r.output)
    p.write_text("arch: {layers: 1}\nlayers: 2\n")
    r = CliRunner().invoke(composed_cmd, ["--config", str(p)])
    assert r.exit_code == 2 and "layers" in error_line(r.output) and "twice" in error_line(r.output)


def test_save_sections_round_trip(tmp_path):
    from asrdistill.utils.config import save_sections

    save_sections(tmp_path / "config.yaml", search=Search(beam=2.5), arch=Arch(width=16))
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["search"]["beam"] == 2.5 and data["asrdistill_version"] == __version__ and "command" in data
    r = CliRunner().invoke(composed_cmd, ["--config", str(tmp_path / "config.yaml")])
    assert r.exit_code == 0, r.output
    assert "beam=2.5" in r.output and "Arch(layers=2, width=16)" in r.output


# -- 3. output errors name the path and the reason -----------------------------------------------------

def test_atomic_replace_failure_names_the_target(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "out.txt", "x")
    assert e.value.errno == errno.ENOSPC
    assert str(tmp_path / "out.txt") in str(e.value) and "no space left on device" in str(e.value).lower()
    assert ".tmp" not in str(e.value)
    assert list(tmp_path.iterdir()) == []  # temporary file removed


def test_torch_save_runtime_error_on_a_full_disk_says_so(tmp_path, monkeypatch):
    msg = "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file write failed"
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: usage._replace(free=0))
    with pytest.raises(OSError) as e:
        with atomic_path(tmp_path / "checkpoint.pt") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError(msg)
    assert e.value.errno == errno.ENOSPC and "no space left on device" in str(e.value).lower()
    assert str(tmp_path / "checkpoint.pt") in str(e.value)
    assert list(tmp_path.iterdir()) == []
    # with space left, the RuntimeError is not disguised
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: usage._replace(free=10 << 30))
    with pytest.raises(RuntimeError, match="enforce fail"):
        with atomic_path(tmp_path / "checkpoint.pt"):
            raise RuntimeError(msg)


def test_write_error_in_the_body_names_the_target_but_read_errors_pass(tmp_path):
    with pytest.raises(OSError) as e:
        with atomic_path(tmp_path / "a.txt") as tmp:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(tmp))
    assert str(tmp_path / "a.txt") in str(e.value) and ".tmp" not in str(e.value)
    with pytest.raises(FileNotFoundError) as e:
        with atomic_path(tmp_path / "b.txt"):
            open(tmp_path / "missing_input")
    assert "missing_input" in str(e.value)


def test_output_under_a_file_names_the_path(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "file" / "sub" / "out.txt", "x")
    assert str(tmp_path / "file" / "sub" / "out.txt") in str(e.value) and "not a directory" in str(e.value).lower()


def test_temporary_file_that_cannot_be_created_names_the_target(tmp_path, monkeypatch):
    def read_only(prefix, suffix, dir):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.path.join(dir, prefix + "abc" + suffix))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", read_only)
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "out.txt", "x")
    assert str(e.value) == f"cannot write {tmp_path / 'out.txt'}: Read-only file system"


@dataclass
class Groups:
    roots: Tuple[str, ...] = field(default=("SIL,SPN",), metadata={"help": "Groups.", "separator": ";"})


@click.command()
@with_config(Groups)
def groups_cmd(config):
    click.echo(repr(config))


def test_tuple_separator_from_metadata():
    r = CliRunner().invoke(groups_cmd, ["--roots", "SIL,SPN;A,B"])
    assert r.exit_code == 0 and "roots=('SIL,SPN', 'A,B')" in r.output, r.output
    assert "';'-separated" in CliRunner().invoke(groups_cmd, ["--help"]).output
