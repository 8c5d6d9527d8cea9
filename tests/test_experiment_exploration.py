"""The multi-goal point mass (softrl/MultiGoal-v0) and the `exploration` experiment (Lecture 17, Sec. 5.1):
the env is a valid gymnasium env with the documented goals, termination, truncation and symmetry; the
goal counting is right on hand-made rollouts; the quick run writes a complete report; a second run
reuses the saved training runs instead of retraining, and an interrupted run is resumed."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import softrl
from softrl.envs import register_envs
from softrl.envs.multigoal import MAX_EPISODE_STEPS, MultiGoalEnv, MultiGoalParams, rollouts, step_batch
from softrl.experiments import ExperimentCommand, run_experiment
from softrl.experiments import exploration as expl
from tests.test_experiments import check_outputs

register_envs()
ENV_ID = "softrl/MultiGoal-v0"


# ----- the environment -------------------------------------------------------------------------------------


def test_env_passes_gymnasium_checker():
    env = gym.make(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == MAX_EPISODE_STEPS
    env.close()


@pytest.mark.parametrize("goal_index", [0, 1, 2, 3])
def test_reaching_a_goal_terminates_with_its_index_and_bonus(goal_index):
    env = gym.make(ENV_ID)
    obs, info = env.reset(seed=0, options={"pos": (0.0, 0.0)})
    assert info["goal"] == -1 and np.allclose(obs, 0.0)
    goal = np.asarray(MultiGoalParams().goals[goal_index])
    direction = (goal / np.linalg.norm(goal)).astype(np.float32)  # unit step straight at the goal
    steps = 0
    for _ in range(10):
        obs, reward, terminated, truncated, info = env.step(direction)
        steps += 1
        assert not truncated
        if terminated:
            break
        assert info["goal"] == -1
    # From the origin at speed 1, a goal at distance 5 with radius 1 is entered on step 4.
    assert terminated and steps == 4 and info["goal"] == goal_index
    assert np.allclose(obs, 4 * direction)
    # Reward on that step: bonus 10 - 0.3 |a|^2 - 0.1 * distance 1.
    assert reward == pytest.approx(10.0 - 0.3 - 0.1, abs=1e-6)
    env.close()


def test_truncated_at_the_time_limit_without_reaching_a_goal():
    env = gym.make(ENV_ID)
    env.reset(seed=1)
    steps = 0
    for _ in range(MAX_EPISODE_STEPS + 5):
        _, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
        steps += 1
        assert not terminated and info["goal"] == -1
        assert reward == pytest.approx(-0.1 * info["distance"])  # no action cost when standing still
        if truncated:
            break
    assert truncated and steps == MAX_EPISODE_STEPS
    env.close()


def test_reward_symmetric_under_the_goals_symmetry():
    params = MultiGoalParams()
    rng = np.random.default_rng(3)
    pos = rng.uniform(-6, 6, (500, 2))
    pos[:50] = np.asarray(params.goals)[rng.integers(0, 4, 50)] * 0.9  # some steps that enter a goal
    action = rng.uniform(-1, 1, (500, 2))
    _, r, d, g = step_batch(params, pos, action)
    assert d.any() and (~d).any()
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])  # 90 degrees: goal k -> k + 1
    flip = np.array([[1.0, 0.0], [0.0, -1.0]])  # mirror in the x axis: goals 1 <-> 3
    for m, perm in ((rot, [1, 2, 3, 0]), (flip, [0, 3, 2, 1])):
        _, r2, d2, g2 = step_batch(params, pos @ m.T, action @ m.T)
        np.testing.assert_allclose(r2, r, atol=1e-12)
        np.testing.assert_array_equal(d2, d)
        np.testing.assert_array_equal(g2, np.where(d, np.asarray(perm)[g], -1))
    assert expl.rotation_symmetry_error(params) < 1e-9
    # The check does catch an asymmetric task: move one goal.
    lopsided = MultiGoalParams(goals=((5.0, 0.0), (0.0, 5.0), (-5.0, 0.0), (0.0, -4.0)))
    assert expl.rotation_symmetry_error(lopsided) > 1e-3


def test_goals_are_configurable():
    env = MultiGoalEnv(goals=[(3.0, 3.0), (-3.0, -3.0)], goal_radius=0.5)
    obs, _ = env.reset(seed=0, options={"pos": (2.0, 2.0)})
    _, reward, terminated, _, info = env.step(np.array([1.0, 1.0], np.float32))
    assert terminated and info["goal"] == 0
    with pytest.raises(ValueError, match="inside the box"):
        MultiGoalEnv(goals=[(9.0, 0.0)])


def test_vectorised_rollouts_match_the_gym_env():
    params = MultiGoalParams()
    rng = np.random.default_rng(0)
    taken = []

    def act(obs):  # noisy drift towards +x: some episodes reach goal 0, some hit the box or time out
        action = rng.normal((0.4, 0.0), 0.8, obs.shape).astype(np.float32)
        taken.append(action)
        return action

    ro = rollouts(params, act, np.random.default_rng(1), 16)
    assert ro.pos.shape == (16, MAX_EPISODE_STEPS + 1, 2) and (ro.goal >= 0).any()
    env = gym.make(ENV_ID)
    for i in range(16):
        env.reset(seed=0, options={"pos": ro.pos[i, 0]})
        for t in range(ro.length[i]):
            obs, reward, terminated, truncated, info = env.step(taken[t][i])
            np.testing.assert_allclose(obs, ro.pos[i, t + 1], atol=1e-5)
            assert reward == pytest.approx(ro.reward[i, t], abs=1e-5)
        assert info["goal"] == ro.goal[i] and (terminated or truncated)
        assert truncated == (ro.goal[i] < 0)
        end = ro.length[i]
        assert np.all(ro.pos[i, end:] == ro.pos[i, end]) and np.all(ro.reward[i, end:] == 0)  # frozen after the end
    assert ro.returns == pytest.approx(ro.reward.sum(1))
    env.close()


# ----- goal counting -----------------------------------------------------------------------------------------


def test_goal_stats_on_hand_made_rollouts():
    returns = np.arange(20, dtype=float)
    # 20 rollouts: 10 to goal 0, 6 to goal 2, 1 to goal 3 (5% exactly), 3 timed out; goal 1 never.
    goal = np.array([0] * 10 + [2] * 6 + [3] + [-1] * 3)
    st = expl.goal_stats(goal, returns, num_goals=4)
    np.testing.assert_allclose(st["fractions"], [0.5, 0.0, 0.3, 0.05])
    assert st["none"] == pytest.approx(0.15) and st["success"] == pytest.approx(0.85)
    assert st["distinct"] == 3  # 5% counts (>=)
    assert expl.goal_stats(goal, returns, 4, min_fraction=0.06)["distinct"] == 2
    p = np.array([10, 6, 1]) / 17
    assert st["entropy"] == pytest.approx(-np.sum(p * np.log(p)))
    assert st["mean_return"] == pytest.approx(9.5)
    uniform = expl.goal_stats(np.repeat(np.arange(4), 25), np.zeros(100), 4)
    assert uniform["distinct"] == 4 and uniform["entropy"] == pytest.approx(np.log(4))
    one = expl.goal_stats(np.full(50, 1), np.zeros(50), 4)
    assert one["distinct"] == 1 and one["entropy"] == 0.0
    none = expl.goal_stats(np.full(7, -1), np.zeros(7), 4)
    assert none["distinct"] == 0 and none["success"] == 0.0 and none["entropy"] == 0.0


# ----- the experiment end to end, and reuse of saved runs ----------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("exploration")
    rc = run_experiment(ExperimentCommand(name="exploration", quick=True, seeds=2, out=str(out)))
    assert rc == 0, (out / "report.md").read_text()
    return out


def test_quick_run_end_to_end(quick_run):
    results = check_outputs(quick_run)
    assert set(results["figures"]) == {"trajectories.png", "goals_reached.png", "learning_curves.png"}
    methods = results["results"]["methods"]
    assert [m["algo"] for m in methods.values()] == ["ddpg", "td3", "svg0", "sac", "sac"]
    for m in methods.values():
        (seed,) = m["per_seed"]  # quick mode: one seed
        for mode in expl.MODES:
            st = seed[mode]
            assert 0 <= st["distinct"] <= 4
            assert sum(st["fractions"]) + st["none"] == pytest.approx(1.0)
        assert (Path(m["run_dir"]) / "summary.json").exists()
    assert set(results["results"]["run_status"].values()) == {"trained"}
    report = (quick_run / "report.md").read_text()
    assert "says nothing about the claim" in report


def test_second_run_reuses_saved_runs(quick_run, monkeypatch):
    ckpts = sorted((quick_run / "runs").glob("*/checkpoints/step_*/meta.json"))
    # Checkpoints v2 keep the newest two: step 0 (written at the start) and the last step.
    assert len(ckpts) == 2 * len(expl.METHODS)
    mtimes = {p: p.stat().st_mtime_ns for p in ckpts}
    before = json.loads((quick_run / "results.json").read_text())["results"]["methods"]

    def no_training(*args, **kwargs):
        raise AssertionError("a completed run was retrained")

    monkeypatch.setattr(softrl, "train", no_training)
    rc = run_experiment(ExperimentCommand(name="exploration", quick=True, seeds=2, out=str(quick_run)))
    assert rc == 0
    results = check_outputs(quick_run)
    assert set(results["results"]["run_status"].values()) == {"reused"}
    assert {p: p.stat().st_mtime_ns for p in ckpts} == mtimes
    # Same trained policies and the same rollout keys: identical statistics.
    after = results["results"]["methods"]
    for lab in before:
        assert after[lab]["per_seed"] == before[lab]["per_seed"]


def test_train_or_resume_resumes_reuses_and_replaces(tmp_path, monkeypatch):
    """The experiments' shared `train_or_resume` on real tiny runs: an interrupted run (checkpoint, no summary)
    is resumed, a finished one reused, and a run of another configuration refused or replaced."""
    import dataclasses

    from softrl.experiments.report import train_or_resume

    budget = expl.Budget(total_steps=120, learning_starts=40, hidden=(8,), batch_size=8, eval_every=0,
                         eval_episodes=1, log_every=40, checkpoint_every=60, rollouts=4)
    run_dir = tmp_path / "ddpg"
    cfg = expl.train_config(expl.METHODS[0], budget, 1, run_dir, progress=False)
    # Train 60 steps of the same configuration, as if interrupted there: a checkpoint and no summary.
    softrl.train(dataclasses.replace(cfg, total_steps=60))
    (run_dir / "summary.json").unlink()
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    other = expl.train_config(expl.METHODS[1], budget, 1, run_dir, progress=False)
    with pytest.raises(ValueError, match="algo"):  # another algorithm's run is never resumed
        train_or_resume(other)
    calls = []
    real_train = softrl.train

    def spy(c, **kwargs):
        calls.append(kwargs.get("resume"))
        return real_train(c, **kwargs)

    monkeypatch.setattr(softrl, "train", spy)
    result, how = train_or_resume(cfg, log=lambda *_: None)
    assert how == "resumed" and calls == [run_dir]
    assert int(np.asarray(result.states.step)[0]) == budget.total_steps - budget.learning_starts + 1
    again, how = train_or_resume(cfg, log=lambda *_: None)
    assert how == "reused" and len(calls) == 1
    assert jax_tree_equal(result.states, again.states)
    np.testing.assert_allclose(again.eval_returns[:, 0], result.eval_returns.mean(axis=1), rtol=1e-6)
    # "retrain": the finished run of another configuration is deleted and trained from scratch.
    _, how = train_or_resume(other, on_mismatch="retrain", log=lambda *_: None)
    assert how == "trained" and calls[-1] is None
    assert json.loads((run_dir / "config.json").read_text())["algo"] == other.algo


def jax_tree_equal(a, b) -> bool:
    import jax

    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

