"""Packed trials on `jax/` envs (softrl.packed on the on-device loop, softrl.ondevice): H settings x S seeds as
H*S agents in one `lax.scan` equal the H separate `softrl train --env jax/...` runs, and resume exactly.

Measured on the CPU (jax 0.10.2, 8-unit networks, 2 settings x 2 seeds, 150 env steps, 120 updates): soft-DQN on
jax/CartPole-v1 with settings differing in alpha, lr and gamma: max |packed - separate| over every parameter,
target and Adam moment = 0 (bitwise equal), and so are the integer leaves; SAC on jax/Pendulum-v1 with two fixed
alphas and two gammas: also 0. The tests demand equality.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import numpy as np
import pytest

from softrl import checkpoint, rundir
from softrl.cli import main as cli_main
from softrl.config import AgentConfig, TrainConfig
from softrl.log import read_csv
from softrl.loop import load_run
from softrl.packed import train_packed

STEPS = 150
BASE = TrainConfig(env="jax/CartPole-v1", seeds=2, total_steps=STEPS, learning_starts=30, buffer_size=64,
                   log_every=20, eval_every=60, eval_episodes=2, checkpoint_every=40, progress=False,
                   agent=AgentConfig(hidden=(8,), batch_size=8, epsilon_decay_steps=50))
# the same run as `softrl train` flags (BASE's values; --no-preset so that no preset changes them)
FLAGS = ["--seeds", "2", "--learning-starts", "30", "--buffer-size", "64", "--hidden", "8", "--batch-size", "8",
         "--epsilon-decay-steps", "50", "--eval-episodes", "2", "--log-every", "20", "--eval-every", "60",
         "--checkpoint-every", "40", "--no-progress", "--no-preset"]


def _cfgs(base: TrainConfig, trial, **agent_values) -> list[TrainConfig]:
    names = list(agent_values)
    return [dataclasses.replace(base, agent=dataclasses.replace(base.agent, **dict(zip(names, vals))),
                                run_dir=str(trial / f"agent_{h:02d}"))
            for h, vals in enumerate(zip(*agent_values.values()))]


def _max_diff(a_tree, b_tree) -> float:
    """Largest |a - b| over the float leaves (inf where both are -inf counts as equal); other leaves must be equal."""
    worst = 0.0
    for a, b in zip(jax.tree.leaves(a_tree), jax.tree.leaves(b_tree), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype
        if a.dtype.kind != "f":
            assert np.array_equal(a, b)
            continue
        assert np.array_equal(np.isfinite(a), np.isfinite(b)) and np.array_equal(a[~np.isfinite(a)], b[~np.isfinite(b)])
        fin = np.isfinite(a)
        worst = max(worst, float(np.max(np.abs(a[fin] - b[fin]), initial=0.0)))
    return worst


def _without_wall_clock(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "steps_per_s"} for r in rows]


def _same_logs(a, b, seeds=(0, 1), kinds=("episodes", "train", "eval")) -> None:
    for s in seeds:
        for kind in kinds:
            if not (a / f"seed_{s}/{kind}.csv").exists():  # e.g. no episode ended (Pendulum: 200 steps each)
                assert not (b / f"seed_{s}/{kind}.csv").exists()
                continue
            assert (_without_wall_clock(read_csv(a / f"seed_{s}/{kind}.csv"))
                    == _without_wall_clock(read_csv(b / f"seed_{s}/{kind}.csv"))), (a, s, kind)


@pytest.mark.parametrize("algo,env,values,flags", [
    ("soft-dqn", "jax/CartPole-v1", dict(alpha=["0.05", "0.2"], lr=[3e-4, 1e-3], gamma=[0.99, 0.9]),
     ["--alpha", "0.2", "--lr", "0.001", "--gamma", "0.9"]),
    ("sac", "jax/Pendulum-v1", dict(alpha=["0.1", "0.3"], gamma=[0.99, 0.95]), ["--alpha", "0.3", "--gamma", "0.95"]),
])
def test_packed_jax_trial_equals_separate_softrl_train_runs(tmp_path, capsys, algo, env, values, flags):
    """Setting 1 (differing from the first in every packed value) trained by `softrl train` alone: its
    parameters, targets, Adam moments, buffers, keys, env states, logs and final evaluation are bitwise those of
    its agents in the packed trial. The agent dir then works with `softrl eval` and `softrl.load_run`."""
    base = dataclasses.replace(BASE, algo=algo, env=env)
    cfgs = _cfgs(base, tmp_path / "trial", **values)
    summaries = train_packed(cfgs, tmp_path / "trial")
    packed_dir, separate = tmp_path / "trial" / "agent_01", tmp_path / "separate"
    assert cli_main(["train", algo, "--env", env, *FLAGS, *flags, "--total-steps", str(STEPS),
                     "--run-dir", str(separate)]) == 0
    cfg, _, packed_states, seeds = load_run(packed_dir)
    assert cfg == cfgs[1] and seeds == [0, 1] and summaries[1]["timing"]["loop"] == "ondevice"
    separate_cfg, _, separate_states, _ = load_run(separate)
    assert dataclasses.replace(separate_cfg, run_dir=None) == dataclasses.replace(cfg, run_dir=None)
    worst = _max_diff(packed_states, separate_states)
    print(f"{algo} {env}: max |packed - separate| over params, targets and Adam moments = {worst:.2e}")
    assert worst == 0.0
    (meta_a, a, _), (meta_b, b, _) = (checkpoint.load_latest(rundir.checkpoints_dir(d), print)
                                      for d in (packed_dir, separate))
    assert meta_a["step"] == meta_b["step"] == STEPS and meta_a["loop"] == meta_b["loop"] == "ondevice"
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)  # buffers, keys, env states too
    _same_logs(packed_dir, separate)  # episodes, train metrics, and the evaluations at 60, 120 and the end
    final = json.loads((separate / "summary.json").read_text())["final_eval"]
    assert summaries[1]["final_eval"] == final
    capsys.readouterr()
    assert cli_main(["eval", str(packed_dir), "--json"]) == 0  # reproduces the final evaluation
    assert json.loads(capsys.readouterr().out) == final


def test_packed_jax_trial_resumes_bitwise(tmp_path):
    """Stopped at step 70 and resumed to 150 (across log, eval and checkpoint steps and the end of the warm-up),
    the packed trial ends with the same combined and per-setting checkpoints and logs as one trial to 150."""
    values = dict(gamma=[0.98, 0.99], lr=[1e-3, 3e-4])
    base = dataclasses.replace(BASE, algo="dqn")
    whole = _cfgs(base, tmp_path / "whole", **values)
    parts = _cfgs(dataclasses.replace(base, total_steps=70), tmp_path / "parts", **values)
    train_packed(whole, tmp_path / "whole")
    train_packed(parts, tmp_path / "parts")
    train_packed([dataclasses.replace(c, total_steps=STEPS) for c in parts], tmp_path / "parts", resume=True)
    for d in ("packed", "agent_00", "agent_01"):
        (meta_a, a, _), (meta_b, b, _) = (checkpoint.load_latest(rundir.checkpoints_dir(tmp_path / r / d), print)
                                          for r in ("whole", "parts"))
        assert meta_a["step"] == meta_b["step"] == STEPS and sorted(a) == sorted(b)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{d}: {name}")
    for d in ("agent_00", "agent_01"):
        _same_logs(tmp_path / "whole" / d, tmp_path / "parts" / d, kinds=("episodes", "train"))
        for s in (0, 1):  # the stopped trial's final evaluation (step 70) stays in its log
            evals = [r for r in read_csv(tmp_path / "parts" / d / f"seed_{s}/eval.csv") if r["step"] != 70]
            assert read_csv(tmp_path / "whole" / d / f"seed_{s}/eval.csv") == evals
    with pytest.raises(checkpoint.CheckpointError, match="other agents or values"):
        other = [dataclasses.replace(c, agent=dataclasses.replace(c.agent, gamma=0.5)) for c in parts]
        train_packed(other, tmp_path / "parts", resume=True)


def test_tiny_sweep_on_a_jax_env_through_local_ray(tmp_path, capsys):
    """`softrl sweep dqn --env jax/CartPole-v1 --seeds 2 --grid gamma=0.98,0.99` on a local Ray session (bound
    to 127.0.0.1, no usage stats): one packed on-device trial, whose agent dirs `softrl eval` reproduces."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    out = tmp_path / "sweep"
    ray.init(address="local", num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    try:
        assert cli_main(["sweep", "dqn", "--env", "jax/CartPole-v1", "--seeds", "2", "--grid", "gamma=0.98,0.99",
                         "--grid", "learning_starts=30", "--grid", "buffer_size=64", "--grid", "eval_every=0",
                         "--grid", "eval_episodes=2", "--total-steps", "100", "--hidden", "8", "--batch-size", "8",
                         "--out", str(out)]) == 0
    finally:
        ray.shutdown()
    summary = json.loads((out / "trial_000" / "summary.json").read_text())
    assert [a["hypers"] for a in summary["agents"]] == [{"gamma": 0.98}, {"gamma": 0.99}]
    for h, gamma in enumerate((0.98, 0.99)):
        d = out / "trial_000" / f"agent_{h:02d}"
        cfg, _, states, _ = load_run(d)
        assert cfg.env == "jax/CartPole-v1" and np.allclose(np.asarray(states.hp.gamma), gamma)
        assert json.loads((d / "summary.json").read_text())["timing"]["loop"] == "ondevice"
        capsys.readouterr()
        assert cli_main(["eval", str(d), "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == summary["agents"][h]["final_eval"]
