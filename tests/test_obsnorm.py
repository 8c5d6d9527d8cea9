"""--normalize-obs: running statistics in the agent state (softrl.agents.base.ObsNorm), their merge against numpy
float64, acting/updating on normalised observations, policy files, bitwise resume, and a learning check on an
environment whose observations are scaled by 1000."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softrl
from softrl.agents import make_agent
from softrl.agents.base import EnvSpec, normalized, obs_norm_apply, obs_norm_init, obs_norm_merge, observe
from softrl.config import AgentConfig, TrainConfig

SCALE = 1000.0


class ScaledBandit(gym.Env):
    """One-step continuous bandit: obs = SCALE * x with x ~ U(-0.8, 0.8), reward -(a - x)^2 for a in [-1, 1].

    The best policy, a = x = obs / SCALE, earns 0; a = 0 earns -E[x^2] = -0.213. With raw observations in the
    hundreds the networks' first layers saturate; normalised, the task is a one-line regression."""

    observation_space = gym.spaces.Box(-SCALE, SCALE, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.8, 0.8))
        return np.array([SCALE * self.x], np.float32), {}

    def step(self, action):
        reward = -float((float(np.asarray(action).reshape(-1)[0]) - self.x) ** 2)
        return np.array([SCALE * self.x], np.float32), reward, True, False, {}


gym.register("softrl-test/ScaledBandit-v0", entry_point=ScaledBandit, max_episode_steps=1)


def _cfg(tmp_path, normalize: bool, **kw) -> TrainConfig:
    base = dict(algo="sac", env="softrl-test/ScaledBandit-v0", seeds=2, total_steps=1500, learning_starts=200,
                eval_every=0, eval_episodes=50, log_every=500, progress=False, run_dir=str(tmp_path),
                agent=AgentConfig(hidden=(32, 32), batch_size=64, normalize_obs=normalize))
    base.update(kw)
    return TrainConfig(**base)


# ----- the statistics ------------------------------------------------------------------------------------------


def test_merge_matches_numpy_float64():
    """Batches of sizes 1, 7 and 64 merged one after another give the float64 mean and population variance of
    all observations (offset 50 and scales 1e-2 .. 1e3, so that a naive sum of squares would lose digits)."""
    rng = np.random.default_rng(0)
    scales = np.array([1e-2, 1.0, 1e3])
    batches = [50.0 + scales * rng.standard_normal((k, 3)) for k in (1, 7, 64, 3, 1)]
    norm = obs_norm_init((3,))
    merge = jax.jit(obs_norm_merge)
    for b in batches:
        norm = merge(norm, jnp.asarray(b, jnp.float32))
    all_obs = np.concatenate([np.asarray(b, np.float32).astype(np.float64) for b in batches])
    assert float(norm.count) == len(all_obs)
    np.testing.assert_allclose(np.asarray(norm.mean), all_obs.mean(0), rtol=2e-6, atol=1e-5)
    np.testing.assert_allclose(np.asarray(norm.var), all_obs.var(0), rtol=1e-4)
    # the same through jit and vmap over seeds as without
    unjit = obs_norm_init((3,))
    for b in batches:
        unjit = obs_norm_merge(unjit, jnp.asarray(b, jnp.float32))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), norm, unjit)


def test_apply_is_the_policy_files_formula():
    norm = obs_norm_init((2,)).replace(mean=jnp.array([1.0, -2.0]), var=jnp.array([4.0, 1e-4]))
    obs = np.array([[3.0, -2.0], [1.0, 5.0]], np.float32)
    expect = np.clip((obs - [1.0, -2.0]) / np.sqrt(np.array([4.0, 1e-4]) + 1e-8), -10, 10)
    np.testing.assert_allclose(np.asarray(obs_norm_apply(norm, jnp.asarray(obs))), expect, rtol=1e-6)
    assert float(np.asarray(obs_norm_apply(norm, jnp.asarray(obs)))[1, 1]) == 10.0  # clipped


@pytest.mark.parametrize("algo", ["sac", "dqn", "discrete-sac"])
def test_state_carries_statistics_only_when_on(algo):
    spec = EnvSpec(obs_dim=3, num_actions=2) if algo != "sac" else EnvSpec(obs_dim=3, action_dim=1)
    off = make_agent(algo, AgentConfig(hidden=(8,)), spec).init(jax.random.PRNGKey(0))
    on_agent = make_agent(algo, AgentConfig(hidden=(8,), normalize_obs=True), spec)
    on = on_agent.init(jax.random.PRNGKey(0))
    assert off.obs_norm is None and observe(off, jnp.ones((4, 3))) is off
    assert float(on.obs_norm.count) == 0.0
    # act sees normalised observations: with statistics mean m, var v, acting on m + sqrt(v) * z equals acting
    # with fresh statistics (mean 0, var 1) on z
    on2 = on.replace(obs_norm=on.obs_norm.replace(mean=jnp.full(3, 500.0), var=jnp.full(3, 1e6)))
    z = jnp.array([[0.3, -1.0, 2.0]])
    a1 = on_agent.act(on2, 500.0 + 1000.0 * z, jax.random.PRNGKey(1), True)
    a2 = on_agent.act(on, z, jax.random.PRNGKey(1), True)
    np.testing.assert_allclose(np.asarray(a1), np.asarray(a2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(normalized(on2, 500.0 + 1000.0 * z)), np.asarray(z), rtol=1e-5)


# ----- in the loop ---------------------------------------------------------------------------------------------


def test_scaled_observations_learn_only_with_normalisation(tmp_path):
    """Measured (2 seeds, 1500 steps, eval over 50 one-step episodes): see the thresholds."""
    on = softrl.train(_cfg(tmp_path / "on", True))
    off = softrl.train(_cfg(tmp_path / "off", False))
    r_on, r_off = on.eval_returns.mean(1), off.eval_returns.mean(1)
    print("normalised", r_on, "raw", r_off)
    assert np.all(r_on > -0.03), r_on
    assert np.all(r_off < -0.1), r_off
    # the statistics saw every stored observation: mean ~ 0, std ~ SCALE * 0.8 / sqrt(3)
    norm = on.states.obs_norm
    np.testing.assert_array_equal(np.asarray(norm.count), [1500.0, 1500.0])
    std = np.sqrt(np.asarray(norm.var)[:, 0])
    assert np.all(np.abs(std / (SCALE * 0.8 / np.sqrt(3)) - 1) < 0.1), std


def test_resume_with_normalisation_is_bitwise(tmp_path):
    full = softrl.train(_cfg(tmp_path / "full", True, total_steps=400, checkpoint_every=200))
    part = _cfg(tmp_path / "part", True, total_steps=200, checkpoint_every=200)
    softrl.train(part)
    resumed = softrl.train(_cfg(tmp_path / "part", True, total_steps=400, checkpoint_every=200),
                           resume=tmp_path / "part")
    jax.tree.map(np.testing.assert_array_equal, full.states, resumed.states)
    assert float(resumed.states.obs_norm.count[0]) == 400.0


def test_policy_file_carries_the_statistics(tmp_path):
    from softrl.policy import load_policy, save_policy

    result = softrl.train(_cfg(tmp_path / "run", True, total_steps=300, eval_episodes=2))
    env = gym.make("softrl-test/ScaledBandit-v0")
    out = save_policy(tmp_path / "pol", algo="sac", agent_config=_cfg(tmp_path, True).agent, spec=result.agent.spec,
                      states=result.states, seeds=result.seeds, env_id="softrl-test/ScaledBandit-v0",
                      env_kwargs=None, obs_space=env.observation_space, action_space=env.action_space, step=300)
    policy = load_policy(out, seed_index=1)
    np.testing.assert_array_equal(policy.obs_norm[0], np.asarray(result.states.obs_norm.mean[1]))
    obs = np.array([[400.0], [-300.0]], np.float32)
    state1 = jax.tree.map(lambda x: x[1], result.states)
    expect = result.agent.act(state1, jnp.asarray(obs), jax.random.PRNGKey(0), True)
    got = policy(obs)
    np.testing.assert_allclose(got, np.asarray(expect), rtol=1e-5, atol=1e-6)
    # the policy the run itself wrote (RUN/policy) carries them too
    from_run = load_policy(tmp_path / "run", seed_index=1)
    np.testing.assert_array_equal(from_run.obs_norm[1], np.asarray(result.states.obs_norm.var[1]))
