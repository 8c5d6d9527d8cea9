"""Packed trials (softrl.packed): H settings x S seeds in one vmapped program equal the H separate runs.

Tolerance: vmap over H*S agents instead of S may let XLA group the float32 arithmetic differently, so packed
parameters can drift from the separate runs' by rounding. Measured on the CPU (jax 0.10.2, 16x16 networks,
2 settings x 2 seeds): SAC Pendulum, max |diff| over every parameter, target and Adam moment (values O(1)):
9.5e-7 after 250 env steps (150 updates), 1.9e-6 after 300; soft-DQN CartPole: 0 (bitwise equal). The SAC
test allows 5e-6; the soft-DQN test demands equality. Integers (step counts, Adam counts) must be equal
exactly. Resume of a packed trial is exact (bitwise).
"""

from __future__ import annotations

import csv
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl import checkpoint, rundir
from softrl.agents import make_agent
from softrl.collect import SeedEnvs
from softrl.config import AgentConfig, TrainConfig
from softrl.loop import load_run, train
from softrl.packed import check_packable, state_values, train_packed, with_hypers

SAC_ATOL = 5e-6
STEPS = 250
BASE = TrainConfig(seeds=2, total_steps=STEPS, learning_starts=100, eval_every=0, eval_episodes=1,
                   checkpoint_every=0, progress=False, log_every=50, agent=AgentConfig(hidden=(16, 16), batch_size=32))


def _cfgs(base: TrainConfig, tmp, **agent_values) -> list[TrainConfig]:
    names = list(agent_values)
    out = []
    for h, vals in enumerate(zip(*agent_values.values())):
        agent = dataclasses.replace(base.agent, **dict(zip(names, vals)))
        out.append(dataclasses.replace(base, agent=agent, run_dir=str(tmp / "trial" / f"agent_{h:02d}")))
    return out


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _rows(path) -> list[dict]:
    """A log's rows without the wall-clock column."""
    return [{k: v for k, v in row.items() if k != "steps_per_s"} for row in csv.DictReader(open(path))]


def _assert_close(packed, separate, atol: float) -> float:
    """Float leaves within atol, all other leaves equal; returns the largest float difference."""
    worst = 0.0
    for a, b in zip(_leaves(packed), _leaves(separate), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        if a.dtype.kind == "f":
            assert np.array_equal(np.isfinite(a), np.isfinite(b))
            fin = np.isfinite(a)
            worst = max(worst, float(np.max(np.abs(a[fin] - b[fin]), initial=0.0)))
        else:
            assert np.array_equal(a, b)
    assert worst <= atol
    return worst


# ----- with_hypers: a base state with a setting's values is that setting's own initial state -----------


@pytest.mark.parametrize("algo,env,values", [
    ("sac", "Pendulum-v1", dict(alpha="auto", init_alpha=0.3, lr=1e-3, alpha_lr=2e-3, gamma=0.9, tau=0.02,
                                reward_scale=5.0, target_entropy=-0.5)),
    ("sac", "Pendulum-v1", dict(alpha="0.05", lr=1e-4, gamma=0.95)),
    ("sac", "Pendulum-v1", dict(alpha="0", tau=0.1)),
    ("td3", "Pendulum-v1", dict(explore_std=0.3, target_noise=0.1, target_noise_clip=0.2, lr=5e-4)),
    ("soft-dqn", "CartPole-v1", dict(alpha="0.2", lr=1e-3, gamma=0.9, reward_scale=0.5)),
    ("dqn", "CartPole-v1", dict(lr=1e-3, tau=1.0, gamma=0.8)),
])
def test_with_hypers_gives_the_settings_own_initial_state(algo, env, values):
    base_cfg = AgentConfig(hidden=(8,), alpha=values.get("alpha", "auto"))
    cfg = dataclasses.replace(base_cfg, **values)
    spec = SeedEnvs(env, [0]).spec
    key = jax.random.PRNGKey(3)
    own = make_agent(algo, cfg, spec).init(key)
    base = make_agent(algo, base_cfg, spec).init(key)
    vals = state_values(TrainConfig(algo=algo, env=env, agent=cfg))
    held = {f.name for f in dataclasses.fields(base.hp)} | {"alpha", "init_alpha", "lr", "alpha_lr"}
    vals = {k: v for k, v in vals.items() if k in held}
    batched = {k: jnp.asarray([v], jnp.float32) for k, v in vals.items()}
    vmapped = jax.jit(jax.vmap(with_hypers))(jax.tree.map(lambda x: x[None], base), batched)
    for got in (with_hypers(base, vals), jax.tree.map(lambda x: x[0], vmapped)):
        assert jax.tree.structure(got) == jax.tree.structure(own)
        for a, b in zip(_leaves(got), _leaves(own), strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)


def test_with_hypers_refuses_a_name_the_state_does_not_hold():
    spec = SeedEnvs("CartPole-v1", [0]).spec
    state = make_agent("dqn", AgentConfig(hidden=(8,)), spec).init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="explore_std"):
        with_hypers(state, {"explore_std": 0.2})


def test_settings_that_change_the_program_are_not_packed():
    a = dataclasses.replace(BASE, agent=dataclasses.replace(BASE.agent, alpha="0.1"))
    check_packable([a, dataclasses.replace(a, agent=dataclasses.replace(a.agent, alpha="0.3", gamma=0.9))])
    for other in (dataclasses.replace(a, agent=dataclasses.replace(a.agent, alpha="auto")),
                  dataclasses.replace(a, agent=dataclasses.replace(a.agent, hidden=(32,))),
                  dataclasses.replace(a, seeds=3),
                  dataclasses.replace(a, agent=dataclasses.replace(a.agent, target_entropy=-1.0))):
        with pytest.raises(ValueError, match="separate trial"):
            check_packable([a, other])


# ----- packed trials vs separate runs ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sac_trial(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sac")
    cfgs = _cfgs(dataclasses.replace(BASE, checkpoint_every=100), tmp, alpha=["0.1", "0.3"])
    summaries = train_packed(cfgs, tmp / "trial")
    return tmp, cfgs, summaries


def test_packed_sac_trial_equals_separate_runs(sac_trial):
    tmp, cfgs, summaries = sac_trial
    for h, cfg in enumerate(cfgs):
        got_cfg, _, packed_states, seeds = load_run(cfg.run_dir)
        assert got_cfg == cfg and seeds == [0, 1] and summaries[h]["config"]["agent"]["alpha"] == cfg.agent.alpha
        np.testing.assert_allclose(np.exp(np.asarray(packed_states.log_alpha)), float(cfg.agent.alpha), rtol=1e-6)
        if h == 0:  # one separate run is enough (both settings got their values through with_hypers); CI time
            continue
        separate = train(dataclasses.replace(cfg, run_dir=str(tmp / f"separate_{h}")))
        print(f"sac setting {h}: max |packed - separate| = "
              f"{_assert_close(packed_states, separate.states, SAC_ATOL):.2e}")
        # the same episodes (identical until the first update, then rounding-close)
        for s in seeds:
            mine = (tmp / "trial" / f"agent_{h:02d}" / f"seed_{s}" / "episodes.csv").read_text().splitlines()
            theirs = (tmp / f"separate_{h}" / f"seed_{s}" / "episodes.csv").read_text().splitlines()
            assert mine[:2] == theirs[:2] and len(mine) == len(theirs)
        written = json.loads((tmp / "trial" / f"agent_{h:02d}" / "summary.json").read_text())
        assert written["final_eval"]["per_seed"][1]["seed"] == 1
        np.testing.assert_allclose(written["final_eval"]["median_return"],
                                   json.loads((tmp / f"separate_{h}" / "summary.json").read_text())
                                   ["final_eval"]["median_return"], rtol=1e-6)


def test_packed_trial_resumes_bitwise(sac_trial, tmp_path):
    tmp, cfgs, _ = sac_trial
    short = [dataclasses.replace(c, total_steps=150, run_dir=str(tmp_path / "trial" / f"agent_{h:02d}"))
             for h, c in enumerate(cfgs)]
    train_packed(short, tmp_path / "trial")
    assert rundir.has_checkpoint(tmp_path / "trial" / "packed")
    train_packed([dataclasses.replace(c, total_steps=STEPS) for c in short], tmp_path / "trial", resume=True)
    for h in range(len(cfgs)):
        a = checkpoint.load_latest(rundir.checkpoints_dir(tmp / "trial" / f"agent_{h:02d}"), print)
        b = checkpoint.load_latest(rundir.checkpoints_dir(tmp_path / "trial" / f"agent_{h:02d}"), print)
        assert a[0]["step"] == b[0]["step"] == STEPS
        assert a[1].keys() == b[1].keys() and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])
        for s in ("seed_0", "seed_1"):
            for kind in ("episodes.csv", "train.csv"):  # eval.csv: the short run also evaluated at 150
                assert (_rows(tmp / "trial" / f"agent_{h:02d}" / s / kind)
                        == _rows(tmp_path / "trial" / f"agent_{h:02d}" / s / kind))
    with pytest.raises(checkpoint.CheckpointError, match="other agents or values"):
        other = [dataclasses.replace(c, agent=dataclasses.replace(c.agent, alpha="0.7")) for c in short]
        train_packed(other, tmp_path / "trial", resume=True)


def test_packed_soft_dqn_trial_equals_separate_runs(tmp_path):
    base = dataclasses.replace(BASE, algo="soft-dqn", env="CartPole-v1")
    cfgs = _cfgs(base, tmp_path, alpha=["0.05", "0.2"], lr=[3e-4, 1e-3])
    train_packed(cfgs, tmp_path / "trial")
    for h, cfg in enumerate(cfgs):
        _, _, packed_states, _ = load_run(cfg.run_dir)
        if h == 1:  # the setting that differs from the first in both values
            separate = train(dataclasses.replace(cfg, run_dir=str(tmp_path / f"separate_{h}")))
            _assert_close(packed_states, separate.states, 0.0)
        np.testing.assert_array_equal(np.asarray(packed_states.critic_opt.hyperparams["learning_rate"]),
                                      np.float32(cfg.agent.lr))
