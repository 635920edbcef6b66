from dataclasses import dataclass, field
from typing import Tuple

import click
import pytest
from click.testing import CliRunner

from asrdistill.utils.config import load_config, save_config, with_config


@dataclass
class Cfg:
    n: int = field(default=3, metadata={"help": "a number"})
    names: Tuple[str, ...] = field(default=("a", "b"), metadata={"help": "names"})
    flag: bool = field(default=False, metadata={"help": "a flag"})
    rate: float = 0.5
    iters: Tuple[int, ...] = (1, 2)


@click.command()
@with_config(Cfg)
def cmd(config):
    click.echo(repr(config))


def test_yaml_round_trip(tmp_path):
    c = Cfg(n=7, names=("x",), flag=True)
    save_config(c, tmp_path / "c.yaml")
    assert load_config(Cfg, tmp_path / "c.yaml") == c


def test_precedence_cli_over_file_over_default(tmp_path):
    (tmp_path / "c.yaml").write_text("n: 9\nnames: [p, q]\n")
    r = CliRunner().invoke(cmd, ["--config", str(tmp_path / "c.yaml"), "--names", "u,v", "--flag", "--iters", "3,10"])
    assert r.exit_code == 0, r.output
    assert "Cfg(n=9, names=('u', 'v'), flag=True, rate=0.5, iters=(3, 10))" in r.output
    r = CliRunner().invoke(cmd, [])
    assert "Cfg(n=3, names=('a', 'b'), flag=False, rate=0.5, iters=(1, 2))" in r.output


def test_unknown_key_in_file_is_an_error(tmp_path):
    (tmp_path / "c.yaml").write_text("nn: 9\n")
    r = CliRunner().invoke(cmd, ["--config", str(tmp_path / "c.yaml")])
    assert r.exit_code != 0 and "unknown option(s) ['nn']" in r.output
    with pytest.raises(ValueError, match="nn"):
        load_config(Cfg, tmp_path / "c.yaml")


def test_tuple_elements_get_their_type(tmp_path):
    (tmp_path / "c.yaml").write_text("iters: [4, 5]\n")
    assert load_config(Cfg, tmp_path / "c.yaml").iters == (4, 5)
    r = CliRunner().invoke(cmd, ["--iters", "1,x"])
    assert r.exit_code != 0 and "cannot read" in r.output
