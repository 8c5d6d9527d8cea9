"""`softrl train/eval/plot` on `jax/` envs: the on-device loop behind the gymnasium loop's run directories."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest

import softrl
from softrl import checkpoint, rundir
from softrl.cli import main as cli_main
from softrl.log import read_csv
from softrl.policy import load_policy

ARGS = ["--env", "jax/CartPole-v1", "--seeds", "2", "--learning-starts", "30", "--buffer-size", "64",
        "--hidden", "8", "--batch-size", "8", "--epsilon-decay-steps", "50", "--eval-episodes", "2",
        "--log-every", "20", "--eval-every", "60", "--checkpoint-every", "40", "--no-progress", "--no-preset"]


def _final(run_dir):
    meta, arrays, _ = checkpoint.load_latest(rundir.checkpoints_dir(run_dir), print)
    return meta, arrays


def test_resume_through_the_cli_is_bitwise(tmp_path):
    """A run stopped at step 70 and resumed to 150 (crossing log, eval and checkpoint steps, and the end of the
    warm-up on the way) ends with the same checkpoint tensors and the same logs as one run to 150."""
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert cli_main(["train", "dqn", *ARGS, "--total-steps", "150", "--run-dir", str(whole)]) == 0
    assert cli_main(["train", "dqn", *ARGS, "--total-steps", "70", "--run-dir", str(parts)]) == 0
    assert cli_main(["train", "--resume", str(parts), "--total-steps", "150", "--no-progress"]) == 0
    (meta_a, a), (meta_b, b) = _final(whole), _final(parts)
    assert meta_a["step"] == meta_b["step"] == 150 and meta_a["loop"] == "ondevice"
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    for seed in (0, 1):
        assert read_csv(whole / f"seed_{seed}/episodes.csv") == read_csv(parts / f"seed_{seed}/episodes.csv")
        # The stopped run's final evaluation (step 70) stays in its log, as in a resumed gymnasium run.
        evals = [r for r in read_csv(parts / f"seed_{seed}/eval.csv") if r["step"] != 70]
        assert read_csv(whole / f"seed_{seed}/eval.csv") == evals
        train_a, train_b = (read_csv(d / f"seed_{seed}/train.csv") for d in (whole, parts))
        drop = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_s"} for r in rows]  # noqa: E731
        assert drop(train_a) == drop(train_b) and [r["step"] for r in train_a] == [40, 60, 80, 100, 120, 140]
    summary = json.loads((parts / "summary.json").read_text())
    assert summary == {**summary, "final_eval": json.loads((whole / "summary.json").read_text())["final_eval"]}


def test_eval_plot_and_policy_of_a_jax_run(tmp_path, capsys):
    """`softrl eval` reproduces the final evaluation on the jax env, `--gym` runs the gymnasium twin, `softrl
    plot` draws the run, and RUN/policy acts on gymnasium observations."""
    d = tmp_path / "run"
    assert cli_main(["train", "dqn", *ARGS, "--total-steps", "90", "--run-dir", str(d)]) == 0
    capsys.readouterr()
    assert cli_main(["eval", str(d), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((d / "summary.json").read_text())["final_eval"]
    assert cli_main(["eval", str(d), "--gym", "--episodes", "1"]) == 0
    assert "dqn on CartPole-v1, 1 deterministic" in capsys.readouterr().out
    assert cli_main(["plot", str(d), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 0
    policy = load_policy(d, seed_index=1)
    assert policy.meta["env_id"] == "CartPole-v1" and policy.meta["step"] == 90
    best = load_policy(d / "best_policy")  # the evaluation (60 or 90) with the best median return
    assert best.meta["step"] in (60, 90) and len(best.meta["eval_return"]) == 2
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(policy(obs))
    cfg, agent, states, seeds = softrl.load_run(d)
    assert cfg.env == "jax/CartPole-v1" and seeds == [0, 1]


@pytest.mark.parametrize(("argv", "message"), [
    (["dqn", "--env", "jax/CartPol-v1"], r"unknown JAX environment id 'jax/CartPol-v1'.*Available: .*jax/Acrobot-v1"),
    (["sac", "--env", "jax/CartPole-v1"], r"'sac' needs a continuous .* Use dqn, soft-dqn or discrete-sac"),
    (["dqn", "--env", "jax/CartPole-v1", "--seeds", "100000", "--buffer-size", "100000000"],
     r"100000 replay buffers of 100000000 transitions need .* GiB, more than .* at most \d+ agents fit"),
    (["dqn", "--env", "jax/CartPole-v1", "--seeds", "2", "--cpu-devices", "2"], r"on-device loop .* --cpu-devices"),
])
def test_bad_input_is_one_line_and_exit_2_without_a_run_dir(tmp_path, capsys, argv, message):
    d = tmp_path / "run"
    assert cli_main(["train", *argv, "--run-dir", str(d), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("softrl: error: ")
    assert re.search(message, err), err
    assert not d.exists()


def test_existing_run_is_refused_overwrite_replaces_it_and_resume_refuses_other_settings(tmp_path, capsys):
    d = tmp_path / "run"
    base = ["train", "dqn", *ARGS, "--total-steps", "40", "--run-dir", str(d)]
    assert cli_main(base) == 0
    assert cli_main(base) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli_main([*base, "--overwrite"]) == 0
    assert cli_main(["train", "--resume", str(d), "--lr", "0.1"]) == 2
    assert "agent.lr 0.0003 -> 0.1" in capsys.readouterr().err


def test_minatar_breakout_trains_with_the_cnn_and_evaluates_on_its_twin(tmp_path, capsys):
    """jax/MinAtar-Breakout-v1: the image observations keep their [10, 10, 4] shape (the CNN torso is chosen as
    for softrl/MinAtar-Breakout-v1, and the buffer stores images), `softrl eval --gym` plays the policy on the
    gymnasium MinAtar env, whose observations RUN/policy takes; the twin's preset is the one offered."""
    pytest.importorskip("minatar")
    from softrl.cli import preset_env_id

    assert preset_env_id("jax/MinAtar-Breakout-v1") == "softrl/MinAtar-Breakout-v1"
    d = tmp_path / "run"
    args = ["--env", "jax/MinAtar-Breakout-v1", "--seeds", "2", "--learning-starts", "40", "--buffer-size", "64",
            "--batch-size", "8", "--epsilon-decay-steps", "50", "--eval-episodes", "1", "--log-every", "80",
            "--eval-every", "0", "--checkpoint-every", "0", "--no-progress", "--no-preset"]
    assert cli_main(["train", "dqn", *args, "--total-steps", "80", "--run-dir", str(d)]) == 0
    _, arrays = _final(d)
    obs = [v for k, v in arrays.items() if k.startswith("buffer.") and k.endswith(".obs")]
    assert len(obs) == 1 and obs[0].shape == (2, 64, 10, 10, 4) and set(np.unique(obs[0])) == {0.0, 1.0}
    cfg, agent, states, seeds = softrl.load_run(d)
    assert agent.spec.obs_shape == (10, 10, 4)  # the CNN torso
    capsys.readouterr()
    assert cli_main(["eval", str(d), "--gym", "--episodes", "1"]) == 0
    assert "dqn on softrl/MinAtar-Breakout-v1, 1 deterministic" in capsys.readouterr().out
    policy = load_policy(d)
    env = gym.make("softrl/MinAtar-Breakout-v1")
    obs, _ = env.reset(seed=0)
    assert policy.meta["env_id"] == "softrl/MinAtar-Breakout-v1" and env.action_space.contains(policy(obs))
