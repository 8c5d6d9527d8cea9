"""`one-step-vs-maxent` (Lecture 17, Sec. 1.3): the exact tabular cliff-ledge comparison of the Williams & Peng
one-step bonus (Eq. 4) with MaxEnt (Eq. 5), the continuous `softrl/CliffLedge-v0`, and the quick run end to end."""

from __future__ import annotations

import json

import gymnasium as gym
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from softrl.backups import soft_policy
from softrl.envs import register_envs
from softrl.experiments import EXPERIMENTS, ExperimentCommand, run_experiment
from softrl.experiments import one_step_vs_maxent as osm
from softrl.tabular import policy_evaluation, soft_value_iteration
from tests.test_experiments import check_outputs


@pytest.fixture(scope="module")
def ledge():
    with jax.enable_x64(True):
        yield osm.ledge_mdp()


def _policies(mdp, alpha):
    me = np.asarray(soft_value_iteration(mdp, alpha).policy)
    wp, _ = osm.one_step_bonus_policy(mdp, alpha)
    return me, np.asarray(wp)


def test_registered_in_order():
    names = list(EXPERIMENTS)
    assert names.index("one-step-vs-maxent") == names.index("q-learning-limit") + 1
    assert EXPERIMENTS["one-step-vs-maxent"] is osm


def test_greedy_return_is_the_shortest_crossing(ledge):
    # 5 moves right reach the plateau at step t = 4, then every one of the remaining steps pays +1.
    mdp, fall_mdp, *_ = ledge
    with jax.enable_x64(True):
        ev = osm.evaluate_policy(mdp, fall_mdp, osm.greedy_policy(mdp))
    assert ev["return"] == pytest.approx(osm.HORIZON - osm.LEDGE_LENGTH + 1, abs=1e-12)
    assert ev["entropy"] == pytest.approx(0.0, abs=1e-12)
    assert ev["fall"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("alpha", [0.3, 3.0])
def test_wp_fixed_point_and_difference_from_maxent(ledge, alpha):
    mdp, *_ = ledge
    live = ~np.asarray(mdp.terminal)
    with jax.enable_x64(True):
        me, wp = _policies(mdp, alpha)
        q_hard, _ = policy_evaluation(mdp, wp, 0.0)  # the WP critic: reward only
        q_soft, _ = policy_evaluation(mdp, me, alpha)  # the MaxEnt critic: entropy from t+1 on
        wp_res = np.abs(np.asarray(soft_policy(q_hard, alpha)) - wp)[:, live].max()
        me_res = np.abs(np.asarray(soft_policy(q_soft, alpha)) - me)[:, live].max()
        # MaxEnt is not a fixed point of the WP equation (otherwise the comparison would be empty).
        me_as_wp = np.abs(np.asarray(soft_policy(policy_evaluation(mdp, me, 0.0)[0], alpha)) - me)[:, live].max()
    assert wp_res < 1e-10 and me_res < 1e-10
    assert me_as_wp > 1e-2
    assert 0.5 * np.abs(me - wp).sum(-1)[:, live].max() > 1e-2


def test_maxent_objective_dominates_and_small_alpha_limit(ledge):
    mdp, fall_mdp, *_ = ledge
    with jax.enable_x64(True):
        greedy = osm.evaluate_policy(mdp, fall_mdp, osm.greedy_policy(mdp))
        for alpha in (0.01, 0.1, 1.0, 10.0):
            me, wp = (osm.evaluate_policy(mdp, fall_mdp, p) for p in _policies(mdp, alpha))
            j = {k: v["return"] + alpha * v["entropy"] for k, v in (("me", me), ("wp", wp), ("greedy", greedy))}
            assert j["me"] >= j["wp"] - 1e-9 and j["me"] >= j["greedy"] - 1e-9
            if alpha == 0.01:  # action gaps here are >= 1, so exp(-1 / 0.01) is far below rounding
                assert me["return"] == pytest.approx(greedy["return"], abs=1e-9)
                assert wp["return"] == pytest.approx(greedy["return"], abs=1e-9)
                assert me["fall"] < 1e-12 and wp["fall"] < 1e-12


def test_lecture_claim_on_the_ledge(ledge):
    """At a large alpha the one-step bonus acts randomly on the ledge and falls; MaxEnt crosses it nearly
    deterministically, falls far less and collects more entropy over the whole trajectory (Sec. 1.3)."""
    mdp, fall_mdp, _, _, cliff = ledge
    with jax.enable_x64(True):
        me_pi, wp_pi = _policies(mdp, 10.0)
        me, wp = (osm.evaluate_policy(mdp, fall_mdp, p) for p in (me_pi, wp_pi))
        prof_me = osm.occupancy_profile(mdp, me_pi, cliff)
        prof_wp = osm.occupancy_profile(mdp, wp_pi, cliff)
    assert me["fall"] < 0.5 * wp["fall"]
    assert me["entropy"] > wp["entropy"] + 1.0
    # "Low-entropy actions now": on the first step (on the ledge) MaxEnt is less random than WP ...
    assert prof_me["entropy_t"][0] < prof_wp["entropy_t"][0]
    # ... "so that we can take higher entropy actions in the future".
    assert prof_me["entropy_t"][-1] > prof_wp["entropy_t"][-1]
    # Forward occupancies agree with backward policy evaluation.
    assert prof_me["entropy_t"].sum() == pytest.approx(me["entropy"], abs=1e-9)
    assert prof_wp["fallen_t"][-1] == pytest.approx(wp["fall"], abs=1e-9)


# ----- the continuous env ----------------------------------------------------------------------------------


def _make():
    register_envs()
    return gym.make(osm.ENV_ID)


def test_env_passes_gymnasium_checker():
    register_envs()
    check_env(gym.make(osm.ENV_ID).unwrapped, skip_render_check=True)


def test_env_fall_is_terminated_not_truncated():
    env = _make()
    obs, _ = env.reset(seed=0)  # y = 0.1 +- 0.02
    _, r, term, trunc, info = env.step(np.array([0.0, -0.5], np.float32))  # y in [0.03, 0.07]: still on the ledge
    assert not term and not trunc and not info["fell"] and r == pytest.approx(float(obs[0]), abs=1e-6)
    _, r, term, trunc, info = env.step(np.array([0.0, -1.0], np.float32))  # y < 0 over the cliff
    assert term and not trunc and r == -10.0 and info["fell"]


def test_env_plateau_reward_side_cliff_and_time_limit():
    env = _make()
    obs, _ = env.reset(seed=1)
    x0 = float(obs[0])  # 0.05 +- 0.02
    rewards = [env.step(np.array([1.0, 0.0], np.float32))[1] for _ in range(10)]
    # On the ledge the reward is the progress min(x, 1); ten steps of 0.1 reach the plateau, which pays 1.
    np.testing.assert_allclose(rewards[:9], x0 + 0.1 * np.arange(1, 10), atol=1e-6)
    assert rewards[9] == 1.0
    for _ in range(5):  # down the plateau, 0.5 below the ledge's level: still safe, still 1 per step
        assert env.step(np.array([0.0, -1.0], np.float32))[1] == 1.0
    # The plateau's left side is cliff too.
    _, r, term, trunc, _ = env.step(np.array([-1.0, 0.0], np.float32))
    assert term and not trunc and r == -10.0

    obs, _ = env.reset(seed=2)
    for t in range(50):  # pressing into the wall above the ledge: safe, no progress, cut by the time limit
        _, r, term, trunc, _ = env.step(np.array([0.0, 1.0], np.float32))
        assert r == pytest.approx(float(obs[0]), abs=1e-6) and not term
        assert trunc == (t == 49)


# ----- end to end ------------------------------------------------------------------------------------------


def test_quick_run_end_to_end_and_reuse(tmp_path):
    out = tmp_path / "osm"
    rc = run_experiment(ExperimentCommand(name="one-step-vs-maxent", quick=True, seeds=1, out=str(out)))
    assert rc == 0, (out / "report.md").read_text()
    results = check_outputs(out)
    assert results["results"]["deep_ran"], results["results"].get("deep")
    names = {c["name"] for c in results["checks"]}
    assert {"wp_fixed_point", "maxent_is_optimal", "sampler_matches_agent"} <= names
    runs = results["results"]["deep"]["runs"]
    assert {r["how"] for r in runs.values()} == {"trained"}
    for r in runs.values():
        fall = r["per_seed"]["stochastic_fall_rate"][0]
        assert 0.0 <= fall <= 1.0
    report = (out / "report.md").read_text()
    assert "say nothing about the claim" in report
    # Running again reuses the finished runs instead of training them again.
    assert run_experiment(ExperimentCommand(name="one-step-vs-maxent", quick=True, seeds=1, out=str(out))) == 0
    again = json.loads((out / "results.json").read_text())["results"]["deep"]["runs"]
    assert {r["how"] for r in again.values()} == {"reused"}
