"""The one episode loop: hand-counted returns and trajectories on the counter envs, the key chain it hands the
policy, and `rollout.evaluate` bitwise equal to a plain lockstep loop (the training loop uses it)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl import AgentConfig
from softrl.agents import make_agent
from softrl.collect import SeedEnvs, make_env
from softrl.rollout import evaluate, rollout

SMALL = AgentConfig(hidden=(16, 16))
COUNTERS = [functools.partial(make_env, e) for e in ("softrl/Counter-v0", "softrl/CounterTerminating-v0")]


def _zero_policy(obs, key):
    return np.zeros((obs.shape[0], 1), np.float32)


def test_counter_returns_lengths_and_termination():
    """Counter: reward t + 1 on step t. Truncated at 5 steps: 1+..+5 = 15; terminating at 3: 1+2+3 = 6."""
    fns = COUNTERS
    out = rollout(_zero_policy, fns, [0, 1], episodes=2, key=jax.random.PRNGKey(0))
    np.testing.assert_array_equal(out.returns, [[15.0, 15.0], [6.0, 6.0]])
    np.testing.assert_array_equal(out.lengths, [[5, 5], [3, 3]])
    np.testing.assert_array_equal(out.terminated, [[False, False], [True, True]])
    assert out.obs is None and out.actions is None and out.logp is None


def test_recorded_trajectories_are_padded_per_episode():
    """obs = [episode index, t]: episode j of an env sees [j, 0..T]; past its end everything is NaN."""
    def policy(obs, key):
        return np.full((obs.shape[0], 1), 0.5, np.float32), np.array([-1.0, -2.0])

    fns = COUNTERS
    out = rollout(policy, fns, [0, 1], episodes=2, key=jax.random.PRNGKey(0), record=True)
    assert out.obs.shape == (2, 2, 6, 2) and out.actions.shape == (2, 2, 5, 1) and out.rewards.shape == (2, 2, 5)
    np.testing.assert_array_equal(out.obs[0, 1, :, 0], [1] * 6)
    np.testing.assert_array_equal(out.obs[0, 0, :, 1], np.arange(6))
    np.testing.assert_array_equal(out.obs[1, 1, :4, 1], np.arange(4))
    assert np.isnan(out.obs[1, 1, 4:]).all() and np.isnan(out.rewards[1, :, 3:]).all()
    np.testing.assert_array_equal(out.rewards[1, 0, :3], [1, 2, 3])
    np.testing.assert_array_equal(np.nansum(out.rewards, axis=2), out.returns)
    np.testing.assert_array_equal(out.actions[0, 0, :, 0], [0.5] * 5)  # as the policy returned it, not env units
    np.testing.assert_array_equal(out.logp[1, 0, :3], [-2.0] * 3)


def test_key_chain_and_finished_envs_not_stepped():
    """Step t hands the policy the t-th `sub` of `key, sub = split(key)`; it stops once every env is done."""
    seen = []

    def policy(obs, key):
        seen.append(np.asarray(key))
        return np.zeros(obs.shape[0], np.int64)

    out = rollout(policy, "softrl/CounterDiscrete-v0", [0, 1, 2], episodes=3, key=jax.random.PRNGKey(7))
    np.testing.assert_array_equal(out.returns, np.full((3, 3), 10.0))  # terminates at 4: 1+2+3+4
    assert len(seen) == 12
    key = jax.random.PRNGKey(7)
    for got in seen:
        key, sub = jax.random.split(key)
        np.testing.assert_array_equal(got, np.asarray(sub))


def test_max_steps_leaves_unfinished_episodes_nan():
    out = rollout(_zero_policy, "softrl/Counter-v0", [0], episodes=2, key=jax.random.PRNGKey(0), max_steps=7)
    assert out.returns[0, 0] == 15.0 and np.isnan(out.returns[0, 1])
    with pytest.raises(ValueError, match="factories"):
        rollout(_zero_policy, [functools.partial(make_env, "softrl/Counter-v0")], [0, 1], 1, jax.random.PRNGKey(0))


def _reference_evaluate(agent, states, env_id, seeds, episodes, deterministic):
    """The training loop's evaluation before it moved here: SeedEnvs in lockstep, one key split per step."""
    envs = SeedEnvs(env_id, [10**6 + s for s in seeds])
    obs = envs.reset()
    returns = [[] for _ in seeds]
    key = jax.random.PRNGKey(10**6 + seeds[0])
    act = jax.jit(jax.vmap(agent.act, in_axes=(0, 0, 0, None)), static_argnums=3)
    while min(len(r) for r in returns) < episodes:
        key, sub = jax.random.split(key)
        action = np.asarray(act(states, jnp.asarray(obs), jax.random.split(sub, len(seeds)), deterministic))
        active = [len(r) < episodes for r in returns]
        _, finished = envs.step(action)
        obs = envs.obs
        for i, ret, _ in finished:
            if active[i]:
                returns[i].append(ret)
    envs.close()
    return np.array([r[:episodes] for r in returns])


@pytest.mark.parametrize("algo,env_id,deterministic", [("sac", "Pendulum-v1", True), ("sac", "Pendulum-v1", False),
                                                       ("dqn", "CartPole-v1", True)])
def test_evaluate_bitwise_equals_a_plain_lockstep_loop(algo, env_id, deterministic):
    """Freshly initialised agents (CartPole episodes end at different times per seed): same returns, bit for bit."""
    spec = SeedEnvs(env_id, [0]).spec
    agent = make_agent(algo, SMALL, spec)
    seeds = [3, 5, 8]
    states = jax.vmap(agent.init)(jnp.stack([jax.random.PRNGKey(s) for s in seeds]))
    episodes = 1 if env_id == "Pendulum-v1" else 3
    ours = evaluate(agent, states, env_id, seeds, episodes, deterministic)
    theirs = _reference_evaluate(agent, states, env_id, seeds, episodes, deterministic)
    assert ours.shape == (3, episodes)
    np.testing.assert_array_equal(ours, theirs)
    if env_id == "CartPole-v1":
        assert len(np.unique(ours)) > 1  # the envs really finish at different steps
