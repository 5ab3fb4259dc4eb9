"""Options from config files and the command line: precedence, and clear errors on bad input."""

import dataclasses
import json

import pytest

from improved_gan import cli
from improved_gan.config import build_options, load_config_file, option, resolve
from improved_gan.errors import ConfigError


@dataclasses.dataclass
class Opts:
    lr: float = option(0.1, "learning rate")
    steps: int = option(10, "steps")
    name: str = option("a", "name", choices=("a", "b"))
    flag: bool = option(False, "a switch")
    widths: tuple[int, ...] = option((4, 4), "widths")


def test_precedence_defaults_file_cli(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('lr = 0.5\nsteps = 3\nwidths = [1, 2, 3]\n')
    opts = resolve(Opts, {"steps": "7"}, str(cfg))
    assert (opts.lr, opts.steps, opts.widths, opts.name) == (0.5, 7, (1, 2, 3), "a")


def test_yaml_and_hyphenated_keys(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 1\nflag: true\n")
    assert load_config_file(cfg) == {"lr": 1, "flag": True}
    opts = resolve(Opts, {}, str(cfg))
    assert opts.lr == 1.0 and isinstance(opts.lr, float) and opts.flag is True


def test_unknown_key_names_it_and_suggests(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("stpes = 3\n")
    with pytest.raises(ConfigError, match=r"unknown option 'stpes'.*Did you mean 'steps'.*Valid options"):
        resolve(Opts, {}, str(cfg))


@pytest.mark.parametrize("values,pattern", [
    ({"steps": "ten"}, r"'steps'.*expected int"),
    ({"steps": 1.5}, r"'steps'.*expected int"),
    ({"flag": "yes"}, r"'flag'.*expected bool"),
    ({"lr": True}, r"'lr'.*expected float"),
    ({"name": "c"}, r"'name'.*not a valid choice; choose from a, b"),
    ({"widths": [1, "x"]}, r"'widths'"),
])
def test_wrong_types_and_choices(values, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_options(Opts, values)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 1")
    with pytest.raises(ConfigError, match="could not be parsed"):
        load_config_file(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(lst)
    other = tmp_path / "c.ini"
    other.write_text("x")
    with pytest.raises(ConfigError, match="unknown format"):
        load_config_file(other)


def run_cli(argv, capsys):
    code = cli.main(argv)
    return code, capsys.readouterr()


@pytest.mark.parametrize("argv,pattern", [
    (["toy", "--target", "normal:4"], "normal takes MU,SIGMA"),
    (["toy", "--technique", "feature-matchin"], "unknown technique 'feature-matchin'"),
    (["toy", "--steps", "0"], "'steps' must be a positive integer"),
    (["toy", "--batch-size", "1"], "at least 2"),
    (["toy", "--noise", "cauchy"], "not a valid choice"),
    (["toy", "--lr", "fast"], "'lr'.*expected float"),
    (["toy", "--technique", "baseline,feature-matching"], "cannot be combined"),
])
def test_cli_bad_input_exits_2_before_work(argv, pattern, capsys, tmp_path):
    code, captured = run_cli([*argv, "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    import re
    assert re.search(pattern, captured.err), captured.err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_cli_config_file_unknown_key(capsys, tmp_path):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text("steps: 5\nlearning_rate: 0.1\n")
    code, captured = run_cli(["toy", "--config", str(cfg)], capsys)
    assert code == 2 and "unknown option 'learning_rate'" in captured.err and "lr" in captured.err


def test_cli_config_file_used(capsys, tmp_path):
    cfg = tmp_path / "toy.toml"
    cfg.write_text('steps = 4\nlog_every = 2\nframes = 2\neval_samples = 200\n')
    out = tmp_path / "run"
    code, _ = run_cli(["toy", "--config", str(cfg), "--out", str(out), "--steps", "6"], capsys)
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["steps"] == 6 and config["log_every"] == 2


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "toy" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "improved_gan", "--version"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("improved-gan ")


def test_progress_bar_quiet_off_terminal():
    from improved_gan.train.progress import progress

    assert progress(range(3)).disable  # pytest's stderr is not a terminal
    assert not progress(range(3), enabled=True).disable


@pytest.mark.parametrize("command", ["ablation", "ablation-quality", "classifier"])
def test_multi_run_commands_refuse_torchrun(command, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.chdir(tmp_path)
    code, captured = run_cli([command], capsys)
    assert code == 2 and "runs in one process" in captured.err
    assert not any(tmp_path.iterdir())  # nothing was started
