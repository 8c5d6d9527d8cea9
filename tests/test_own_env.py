"""Your own environment (issue 12.2): `--env module:EnvName-vN`, `--env-kwargs`, and `TrainConfig(env=factory)`,
recorded in config.json and honoured by --resume, `softrl eval`, `softrl plot` and evaluation during training.

The env is tests/my_test_envs.py's MyLine (a walk to a goal; see there). With `goal_reward` 100 and
`step_reward` -2 every deterministic episode returns 100 - 2 (k - 1) for arrival at step k <= 20, or -40
without arrival; with the defaults (goal 0, step -1, size 5) returns lie in [-20, -4]. So a return tells which
constructor arguments the evaluation env had.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import softrl
from softrl import AgentConfig, TrainConfig
from softrl.cli import main as cli_main
from softrl.collect import EnvError
from softrl.plot import legend_labels

ENV = "my_test_envs:MyLine-v0"
KWARGS = {"size": 3, "goal_reward": 100.0, "step_reward": -2.0}
TINY = ["--total-steps", "200", "--learning-starts", "50", "--eval-every", "100", "--eval-episodes", "2",
        "--hidden", "16", "16", "--batch-size", "16", "--buffer-size", "300", "--checkpoint-every", "100",
        "--log-every", "50", "--no-progress", "--no-preset"]


def with_kwargs_return(r: float) -> bool:
    """Whether `r` is a return MyLine can give with KWARGS (and none it gives with its defaults)."""
    return r == -40.0 or (62.0 <= r <= 100.0 and r % 2 == 0)


def tree_digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("softrl: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-seed dqn run on ENV with KWARGS, trained to 200 steps through the CLI."""
    d = tmp_path_factory.mktemp("own") / "run"
    assert cli_main(["train", "dqn", "--env", ENV, "--env-kwargs", json.dumps(KWARGS), "--seeds", "2", *TINY,
                     "--run-dir", str(d)]) == 0
    return d


def test_config_records_the_module_id_and_the_kwargs(trained):
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["env"] == ENV and cfg["env_kwargs"] == KWARGS
    for seed in (0, 1):  # evaluation during training and at the end used the kwargs
        rows = (trained / f"seed_{seed}" / "eval.csv").read_text().splitlines()[1:]
        assert [r.split(",")[0] for r in rows] == ["100", "200"]
        assert all(with_kwargs_return(float(r.split(",")[1])) for r in rows), rows


def test_eval_uses_the_kwargs_and_repeats_the_final_evaluation(trained, capsys):
    capsys.readouterr()
    assert cli_main(["eval", str(trained), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == json.loads((trained / "summary.json").read_text())["final_eval"]
    assert all(with_kwargs_return(row["mean_return"]) for row in out["per_seed"])
    assert cli_main(["eval", str(trained)]) == 0
    assert f"dqn on {ENV} {json.dumps(KWARGS)}" in capsys.readouterr().out


def test_resume_keeps_the_kwargs_and_refuses_other_ones(trained, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli_main(["train", "dqn", "--env", ENV, "--env-kwargs", json.dumps(KWARGS), *TINY,
                     "--total-steps", "100", "--run-dir", str(run)]) == 0
    before = tree_digest(run)
    capsys.readouterr()
    assert cli_main(["train", "--resume", str(run), "--env-kwargs", '{"size": 4}', "--no-progress"]) == 2
    assert "env_kwargs" in one_error_line(capsys)
    assert tree_digest(run) == before
    assert cli_main(["train", "--resume", str(run), "--total-steps", "150", "--no-progress"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["total_steps"], cfg["env"], cfg["env_kwargs"]) == (150, ENV, KWARGS)
    final = json.loads((run / "summary.json").read_text())["final_eval"]
    assert with_kwargs_return(final["per_seed"][0]["mean_return"])


def test_plot_legend_names_the_kwargs(trained, tmp_path):
    other = tmp_path / "other"
    assert cli_main(["train", "dqn", "--env", ENV, "--env-kwargs", '{"size": 4}', *TINY, "--total-steps", "100",
                     "--eval-every", "50", "--run-dir", str(other)]) == 0
    configs = [json.loads((d / "config.json").read_text()) for d in (trained, other)]
    labels = legend_labels(configs, [2, 1])
    assert "env_kwargs.size=3" in labels[0] and "env_kwargs.size=4" in labels[1], labels
    assert cli_main(["plot", str(trained), str(other), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("argv", "says"), [
    (["--env-kwargs", "[1, 2]"], "must be a JSON object"),
    (["--env-kwargs", "{size: 3}"], "must be a JSON object"),
    (["--env-kwargs", '{"bogus": 1}'], "unexpected keyword argument 'bogus'"),
    (["--env-kwargs", '{"size": 0}'], "ValueError: size must be >= 1"),
    (["--env", "no_such_module_xyz:MyLine-v0"], "cannot import module 'no_such_module_xyz'"),
    (["--env", "my_test_envs:NotRegistered-v0"], "unknown environment id"),
    (["--env", "my_test_envs:"], "module:EnvName-vN"),
])
def test_bad_env_input_is_one_line_and_leaves_the_run_dir_alone(tmp_path, capsys, argv, says):
    # A finished run in the target dir, and --overwrite: the env is checked before anything is deleted.
    run = tmp_path / "run"
    (run / "seed_0").mkdir(parents=True)
    (run / "config.json").write_text('{"algo": "dqn"}')
    (run / "seed_0" / "eval.csv").write_text("step,mean_return,std_return\n1,2.0,0.0\n")
    before = tree_digest(run)
    args = ["train", "dqn", "--env", ENV, *TINY, "--run-dir", str(run), "--overwrite"]
    capsys.readouterr()
    assert cli_main([*args, *argv]) == 2
    assert says in one_error_line(capsys)
    assert tree_digest(run) == before
    assert cli_main([*args[:-3], *argv, "--run-dir", str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()


# ----- a factory, from Python -------------------------------------------------------------------------------


def factory_cfg(run_dir: Path, **kw) -> TrainConfig:
    from my_test_envs import make_line

    base = dict(algo="dqn", env=make_line, total_steps=120, learning_starts=50, eval_every=0, eval_episodes=1,
                log_every=50, checkpoint_every=60, progress=False, run_dir=str(run_dir),
                agent=AgentConfig(hidden=(16, 16), batch_size=16))
    return TrainConfig(**{**base, **kw})


def test_factory_env_trains_records_its_name_and_resumes_only_with_the_factory(tmp_path, capsys):
    from my_test_envs import make_line

    run = tmp_path / "f"
    first = softrl.train(factory_cfg(run))
    assert json.loads((run / "config.json").read_text())["env"] == "<factory my_test_envs.make_line>"
    # the command line cannot rebuild it: a plain message, nothing changed
    before = tree_digest(run)
    for argv in (["train", "--resume", str(run), "--total-steps", "150", "--no-progress"], ["eval", str(run)]):
        capsys.readouterr()
        assert cli_main(argv) == 2
        line = one_error_line(capsys)
        assert "my_test_envs.make_line" in line and "softrl.train(cfg, resume=RUN_DIR)" in line, line
    assert tree_digest(run) == before
    # from Python, with the factory: resume, and load for evaluation
    again = softrl.train(factory_cfg(run, total_steps=150), resume=run)
    assert again.eval_returns.shape == first.eval_returns.shape == (1, 1)
    cfg, agent, states, seeds = softrl.load_run(run, env=make_line)
    returns = softrl.evaluate(agent, states, cfg.env, seeds, 1)
    np.testing.assert_array_equal(returns, again.eval_returns)


def test_factory_that_returns_no_env_is_refused_before_the_run_dir(tmp_path):
    from my_test_envs import not_an_env

    with pytest.raises(EnvError, match="factory my_test_envs.not_an_env returned object, not a gymnasium.Env"):
        softrl.train(factory_cfg(tmp_path / "nf", env=not_an_env))
    assert not (tmp_path / "nf").exists()
    with pytest.raises(ValueError, match="env_kwargs apply to gymnasium ids"):
        softrl.train(factory_cfg(tmp_path / "nf", env_kwargs={"size": 3}))
