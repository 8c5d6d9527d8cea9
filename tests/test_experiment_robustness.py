"""The robustness experiment (Eq. 27): perturbation wrappers, the point-mass env, and the quick run end to end."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import softrl
from softrl.collect import make_env
from softrl.envs.perturb import ActionNoise, ForcePulses, FrictionScale, MassScale, make_perturbed
from softrl.envs.point_reach import PointReachEnv
from softrl.experiments import ExperimentCommand, run_experiment
from softrl.experiments import robustness as rob
from tests.test_experiments import check_outputs


def trajectory(env: gym.Env, actions: np.ndarray, seed: int = 0) -> np.ndarray:
    """[T, O + 1] observations and rewards of an open-loop action sequence (stops at the episode end)."""
    env.reset(seed=seed)
    rows = []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a.astype(np.float32))
        rows.append(np.concatenate([np.ravel(obs), [r]]))
        if term or trunc:
            break
    return np.asarray(rows)


def random_actions(env: gym.Env, n: int, seed: int = 0) -> np.ndarray:
    space = env.action_space
    return np.random.default_rng(seed).uniform(space.low, space.high, (n,) + space.shape)


# ----- wrappers ----------------------------------------------------------------------------------------


def test_mass_scale_halfcheetah():
    nominal = make_env("HalfCheetah-v5")
    base_mass = nominal.unwrapped.model.body_mass.copy()
    heavy = MassScale(make_env("HalfCheetah-v5"), 2.0)
    np.testing.assert_array_equal(heavy.unwrapped.model.body_mass, 2.0 * base_mass)  # exactly 2x, every body
    assert base_mass[1:].min() > 0
    actions = random_actions(nominal, 50)
    t_nominal = trajectory(nominal, actions)
    assert np.abs(trajectory(heavy, actions) - t_nominal).max() > 1e-3  # the dynamics really changed
    same = MassScale(make_env("HalfCheetah-v5"), 1.0)
    np.testing.assert_array_equal(trajectory(same, actions), t_nominal)  # scale 1: bit for bit nominal


def test_friction_scale_and_force_pulses_change_hopper():
    nominal = make_env("Hopper-v5")
    actions = random_actions(nominal, 40)
    t_nominal = trajectory(nominal, actions)
    slippery = FrictionScale(make_env("Hopper-v5"), 0.2)
    np.testing.assert_allclose(slippery.unwrapped.model.geom_friction, 0.2 * nominal.unwrapped.model.geom_friction)
    t_slip = trajectory(slippery, actions)
    n = min(len(t_slip), len(t_nominal))
    assert np.abs(t_slip[:n] - t_nominal[:n]).max() > 1e-6
    pushed = ForcePulses(make_env("Hopper-v5"), 300.0, prob=1.0, duration=3, seed=5)
    t_push = trajectory(pushed, actions)
    n = min(len(t_push), len(t_nominal))
    assert pushed.pulses >= 1 and np.abs(t_push[:n] - t_nominal[:n]).max() > 1e-3
    # Magnitude 0: identical to the plain env.
    np.testing.assert_array_equal(trajectory(ForcePulses(make_env("Hopper-v5"), 0.0, seed=5), actions), t_nominal)


@pytest.mark.parametrize("env_id,magnitude", [("HalfCheetah-v5", 200.0), ("softrl/PointReach-v0", 0.2)])
def test_force_pulses_reproducible_with_seed(env_id, magnitude):
    def run(seed):
        env = ForcePulses(make_env(env_id), magnitude, prob=0.2, duration=3, seed=seed)
        return trajectory(env, random_actions(env, 40), seed=seed), env.pulses

    (a, pa), (b, pb), (c, _) = run(3), run(3), run(4)
    assert pa >= 1 and pa == pb
    np.testing.assert_array_equal(a, b)  # same seed, same pulses, same trajectory
    assert not np.array_equal(a, c)  # another seed, other pulses (and start)


def test_action_noise():
    env = make_env("softrl/PointReach-v0")
    actions = random_actions(env, 30)
    base = trajectory(env, actions)
    np.testing.assert_array_equal(trajectory(ActionNoise(make_env("softrl/PointReach-v0"), 0.0, seed=1), actions), base)
    noisy = ActionNoise(make_env("softrl/PointReach-v0"), 0.5, seed=1)
    t1 = trajectory(noisy, actions, seed=2)
    t2 = trajectory(ActionNoise(make_env("softrl/PointReach-v0"), 0.5, seed=1), actions, seed=2)
    np.testing.assert_array_equal(t1, t2)
    assert np.abs(t1 - trajectory(make_env("softrl/PointReach-v0"), actions, seed=2)).max() > 1e-3


def test_point_mass_mass_scale_and_make_perturbed():
    env = make_perturbed("softrl/PointReach-v0", "mass", 2.0)
    assert env.unwrapped.mass == 2.0
    env.reset(seed=0)
    p0 = env.unwrapped.pos.copy()
    env.step(np.array([1.0, 0.0], np.float32))
    assert env.unwrapped.pos[0] - p0[0] == pytest.approx(0.05)  # half the nominal step of 0.1
    with pytest.raises(ValueError, match="point-mass"):
        make_perturbed("HalfCheetah-v5", "obstacle", 0.3)
    with pytest.raises(TypeError):
        FrictionScale(make_env("softrl/PointReach-v0"), 2.0)


# ----- the point-mass env --------------------------------------------------------------------------------


@pytest.mark.parametrize("obstacle", [None, "wall", "disk"])
def test_point_reach_passes_env_checker(obstacle):
    check_env(PointReachEnv(obstacle=obstacle), skip_render_check=True)


def straight_line(env: PointReachEnv, steps: int = 50):
    """Positions visited by the controller that heads straight for the goal at full speed."""
    env.reset(seed=1)
    path, reached = [env.pos.copy()], False
    for _ in range(steps):
        _, _, term, _, _ = env.step(np.clip((env.goal - env.pos) / env.step_size, -1, 1))
        path.append(env.pos.copy())
        if term:
            reached = True
            break
    return np.asarray(path), reached


@pytest.mark.parametrize("obstacle", ["wall", "disk"])
def test_obstacle_blocks_the_straight_path(obstacle):
    free_path, free_reached = straight_line(PointReachEnv())
    assert free_reached and len(free_path) < 25  # the straight line works without the obstacle
    env = PointReachEnv(obstacle=obstacle, obstacle_size=0.4)
    path, reached = straight_line(env)
    assert not reached
    if obstacle == "wall":
        assert path[:, 0].max() < 0  # never got past x = 0 ...
        assert abs(path[-1, 1]) <= 0.4  # ... stuck in front of the wall
    else:
        assert np.linalg.norm(path, axis=1).min() >= 0.4 - 1e-12  # never inside the disk
    # A detour around the wall does get through: the wall blocks, the arena stays connected.
    env.reset(seed=1)
    for a in [(0.0, 1.0)] * 6 + [(1.0, 0.0)] * 12 + [(0.5, -1.0)] * 6 + [(1.0, 0.0)] * 20:
        _, _, term, _, _ = env.step(np.array(a, np.float32))
        if term:
            break
    assert term


# ----- the experiment ----------------------------------------------------------------------------------


def test_auc_is_the_mean_score_on_even_levels():
    scores = np.array([[1.0, 0.0], [0.5, 0.0], [0.0, 0.0]])  # [levels, seeds]
    np.testing.assert_allclose(rob.auc((0.0, 0.5, 1.0), scores, "force"), [0.5, 0.0])
    np.testing.assert_allclose(rob.auc((0.5, 1.0, 2.0), scores, "mass"), [0.5, 0.0])  # log axis: even


def test_quick_run_end_to_end_and_reuse(tmp_path, monkeypatch):
    out = tmp_path / "rob"
    assert run_experiment(ExperimentCommand(name="robustness", quick=True, out=str(out))) == 0
    results = check_outputs(out)
    res = results["results"]
    task = res["tasks"]["point-mass"]
    assert task["num_seeds"] == 1 and task["task"]["total_steps"] <= 2000
    assert set(res["tasks_not_run"]) == {"hopper", "halfcheetah"}
    for label, m in task["methods"].items():
        assert m["train_status"] == "trained", label
        for mode in rob.MODES:
            for kind, levels in task["task"]["sweeps"].items():
                assert np.asarray(m["returns"][mode][kind]).shape == (len(levels), 1, task["task"]["episodes"])
        assert (out / "runs" / "point-mass" / rob.Method(label, m["algo"], m["alpha"]).slug / "summary.json").exists()
    checks = {c["name"]: c for c in results["checks"]}
    assert checks["mass_scale_exact"]["value"] < 1e-12 and checks["nominal_level_is_identity"]["value"] == 0.0
    first = json.loads((out / "results.json").read_text())["results"]["tasks"]["point-mass"]["methods"]

    # Second invocation: no training at all (softrl.train must not be called), same evaluation numbers.
    def no_train(*args, **kwargs):
        raise AssertionError("the second invocation retrained instead of reusing the saved run")

    monkeypatch.setattr(softrl, "train", no_train)
    assert run_experiment(ExperimentCommand(name="robustness", quick=True, out=str(out))) == 0
    again = check_outputs(out)["results"]["tasks"]["point-mass"]["methods"]
    for label, m in again.items():
        assert m["train_status"] == "reused" and m["eval_cached"]
        assert m["returns"] == first[label]["returns"]


def test_changed_budget_in_same_folder_is_refused(tmp_path):
    task = rob.QUICK_TASK
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = rob._train_config(task, task.methods[0], 1, run_dir, progress=False)
    saved = json.loads(json.dumps(dataclasses.asdict(cfg)))
    saved["total_steps"] = 999
    (run_dir / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="total_steps"):
        rob.train_or_reuse(task, task.methods[0], 1, run_dir, progress=False)


def test_full_mode_reporting_with_stand_in_training(tmp_path, monkeypatch):
    """The full-mode path (all 7 point-mass methods, 2 seeds, the reading) with a linear stand-in for
    `softrl.train`, so that it runs in seconds; MuJoCo tasks are left out and reported as not run."""
    import zlib

    import jax
    import jax.numpy as jnp

    from softrl.agents import Agent, EnvSpec

    calls = []

    def fake_train(cfg, resume=None):
        calls.append((cfg.algo, cfg.agent.alpha, resume))
        seeds = [cfg.seed + i for i in range(cfg.seeds)]
        rng = np.random.default_rng(zlib.crc32(f"{cfg.algo}{cfg.agent.alpha}".encode()))

        def act(state, obs, key, deterministic=False):
            a = jnp.tanh(obs @ state["w"])
            return a if deterministic else jnp.clip(a + 0.3 * jax.random.normal(key, a.shape), -1, 1)

        agent = Agent(cfg.algo, EnvSpec(4, 2, None), lambda key: None, act, lambda *a: None)
        states = {"w": jnp.asarray(rng.normal(size=(len(seeds), 4, 2)) + [[1, 0], [0, 0], [3, 0], [0, 3]],
                                   jnp.float32)}
        return softrl.TrainResult(states, np.zeros((len(seeds), 1)), tmp_path, {"wall_s": 0.0}, agent, seeds,
                                  np.zeros(len(seeds)))

    monkeypatch.setattr(softrl, "train", fake_train)
    monkeypatch.setattr(rob, "TASKS", (dataclasses.replace(rob.TASKS[0], episodes=1), *rob.TASKS[1:]))
    monkeypatch.setenv("SOFTRL_ROBUSTNESS_TASKS", "point-mass")
    report = rob.run(tmp_path / "full", quick=False, seeds=2)
    report.write()
    res = check_outputs(tmp_path / "full")["results"]
    assert len(calls) == len(rob.POINT_METHODS) and all(r is None for *_, r in calls)
    assert res["tasks_not_run"] == ["hopper", "halfcheetah"]
    methods = res["tasks"]["point-mass"]["methods"]
    assert set(methods) == {m.label for m in rob.POINT_METHODS}
    for m in methods.values():
        ci = m["auc"]["stochastic"]["mean over kinds"]
        assert ci["n"] == 2 and ci["lo"] <= ci["mean"] <= ci["hi"]
    text = (tmp_path / "full" / "report.md").read_text()
    assert "best non-MaxEnt method" in text and "not run in this invocation: hopper, halfcheetah" in text
    with pytest.raises(ValueError, match="unknown task"):
        rob.run(tmp_path / "bad", quick=False, seeds=1, tasks=("walker",))
