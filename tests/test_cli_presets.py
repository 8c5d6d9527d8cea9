"""Presets in `softrl train` (issue 12.1) and the commands wired into the CLI: presets, report, sweep.

Unit tests parse argv with tyro exactly as `softrl train` does and build the config without training; one short
run checks that config.json records the resolved values and that the preset is named in one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import tyro

from softrl.cli import TrainCommand, main, new_config
from softrl.config import AgentConfig, TrainConfig
from softrl.presets import get_preset

TINY = ["--total-steps", "150", "--learning-starts", "50", "--eval-every", "0", "--eval-episodes", "1",
        "--hidden", "16", "16", "--batch-size", "16", "--no-progress"]


def config_of(argv: list[str]):
    """(TrainConfig, preset) that `softrl train ARGV` would run with."""
    return new_config(tyro.cli(TrainCommand, args=argv), argv)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("softrl: error: "), err
    return lines[0]


def digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_the_preset_of_algo_and_env_is_used_and_typed_flags_win():
    cfg, preset = config_of(["dqn", "--env", "CartPole-v1"])
    assert preset is not None and preset.name == "dqn/CartPole-v1"
    assert cfg.total_steps == 30_000 and cfg.buffer_size == 100_000
    assert (cfg.agent.hidden, cfg.agent.lr, cfg.agent.tau) == ((128, 128), 1e-3, 0.01)
    # a flag typed by the user wins, even when it equals TrainConfig's default (which the preset changes)
    cfg, _ = config_of(["dqn", "--env", "CartPole-v1", "--lr", "3e-4", "--hidden", "16", "16", "--total-steps=900",
                        "--no-progress", "--seeds", "2"])
    assert (cfg.agent.lr, cfg.agent.hidden, cfg.total_steps, cfg.progress, cfg.seeds) == (3e-4, (16, 16), 900,
                                                                                          False, 2)
    assert cfg.agent.tau == 0.01 and cfg.buffer_size == 100_000  # not typed: still the preset's


def test_an_env_without_its_own_table_gets_the_algorithms_defaults():
    cfg, preset = config_of(["dqn", "--env", "MountainCar-v0"])
    assert preset is not None and preset.name == "dqn/defaults"
    assert cfg.agent.hidden == get_preset("dqn/defaults").values["hidden"]


@pytest.mark.parametrize("off", [["--no-preset"], ["--preset", "none"], ["--preset", "NONE"]])
def test_no_preset_gives_the_plain_defaults(off):
    cfg, preset = config_of(["dqn", "--env", "CartPole-v1", *off])
    assert preset is None
    assert cfg == TrainConfig(algo="dqn", env="CartPole-v1", agent=AgentConfig())


@pytest.mark.parametrize("name", ["dqn/Acrobot-v1", "Acrobot-v1"])
def test_preset_by_name(name):
    cfg, preset = config_of(["dqn", "--env", "CartPole-v1", "--preset", name])
    assert preset is not None and preset.name == "dqn/Acrobot-v1"
    assert cfg.env == "CartPole-v1" and (cfg.agent.batch_size, cfg.total_steps) == (128, 50_000)


def test_module_env_ids_find_the_preset_of_their_registered_id():
    _, preset = config_of(["sac", "--env", "softrl.envs:softrl/Counter-v0"])
    assert preset is not None and preset.name == "sac/softrl/Counter-v0"


@pytest.mark.parametrize(("argv", "says"), [
    (["dqn", "--preset", "zzz"], "unknown preset 'zzz'; presets for dqn: dqn/defaults, dqn/CartPole-v1"),
    (["dqn", "--preset", "sac/Pendulum-v1"], "preset sac/Pendulum-v1 is for sac, not dqn"),
    (["dqn", "--preset", "dqn/Acrobot-v1", "--no-preset"], "--no-preset with --preset dqn/Acrobot-v1"),
])
def test_bad_preset_choices_are_one_line_errors_and_write_nothing(tmp_path, capsys, argv, says):
    capsys.readouterr()
    assert main(["train", argv[0], "--env", "CartPole-v1", *argv[1:], *TINY, "--run-dir", str(tmp_path / "r")]) == 2
    assert says in one_error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_train_names_the_preset_once_and_records_the_resolved_values(tmp_path, capsys):
    run = tmp_path / "r"
    capsys.readouterr()
    assert main(["train", "dqn", "--env", "CartPole-v1", *TINY, "--run-dir", str(run)]) == 0
    out, err = capsys.readouterr()
    named = [line for line in out.splitlines() if line.startswith("preset ")]
    assert len(named) == 1 and named[0].startswith("preset dqn/CartPole-v1 (") and "preset" not in err
    saved = json.loads((run / "config.json").read_text())
    assert (saved["buffer_size"], saved["agent"]["lr"], saved["agent"]["tau"]) == (100_000, 1e-3, 0.01)
    assert (saved["total_steps"], saved["agent"]["hidden"]) == (150, [16, 16])  # typed
    # --resume reads config.json and never lays a preset over it
    assert main(["train", "--resume", str(run), "--total-steps", "200", "--no-progress"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("preset ")]
    resumed = json.loads((run / "config.json").read_text())
    assert {**resumed, "total_steps": 150} == saved
    before = digest(run)
    assert main(["train", "--resume", str(run), "--preset", "dqn/Acrobot-v1"]) == 2
    assert "apply to new runs" in one_error_line(capsys)
    assert digest(run) == before


def test_presets_command(capsys):
    assert main(["presets", "--algo", "dqn", "--env", "CartPole"]) == 0
    out = capsys.readouterr().out
    assert "dqn/CartPole-v1" in out and "RESULTS.md, preset validation" in out
    assert main(["presets", "--algo", "zzz"]) == 2
    assert "unknown algorithm 'zzz'" in one_error_line(capsys)


def test_report_command_is_wired(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing"), "--out", str(tmp_path / "rep")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize(("argv", "says"), [
    (["--grid", "bogus=1,2"], "unknown hyperparameter 'bogus'"),
    (["--grid", "gamma=0.5,1.5"], "gamma must be in [0, 1), got 1.5"),
    (["--grid", "tau=abc"], "tau='abc'"),
    (["--seeds", "0"], "seeds must be >= 1"),
    (["--address", "127.0.0.1:1"], "cannot reach a Ray cluster at 127.0.0.1:1"),
    ([], "holds another sweep"),
])
def test_sweep_command_refuses_bad_input_before_ray_starts(tmp_path, capsys, argv, says):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"version": 1, "spec": {"algo": "td3"}, "trials": []}))
    before = digest(out)
    capsys.readouterr()
    assert main(["sweep", "sac", "--env", "Pendulum-v1", "--grid", "alpha=0.1,0.2", "--total-steps", "100",
                 "--out", str(out), *argv]) == 2
    assert says in one_error_line(capsys)
    assert digest(out) == before
