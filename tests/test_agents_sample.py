"""The agent contract: `sample(state, obs, key) -> (action, logp)` draws `act`'s action with the same key and
gives its log-probability under the behaviour policy; only algorithms with a temperature report alpha."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl import AgentConfig, EnvSpec, make_agent
from softrl.types import Transition

CONTINUOUS = ("ddpg", "td3", "svg0", "wp", "sac")
DISCRETE = ("dqn", "soft-dqn", "discrete-sac")
CONT_SPEC = EnvSpec(obs_dim=3, action_dim=2)
DISC_SPEC = EnvSpec(obs_dim=4, num_actions=3)
CFG = AgentConfig(hidden=(8,), alpha="0.5")


def _agent(algo: str, cfg: AgentConfig = CFG):
    return make_agent(algo, cfg, DISC_SPEC if algo in DISCRETE else CONT_SPEC)


def _obs(algo: str, *lead: int) -> jax.Array:
    dim = (DISC_SPEC if algo in DISCRETE else CONT_SPEC).obs_dim
    return jnp.asarray(np.random.default_rng(0).normal(size=(*lead, dim)), jnp.float32)


@pytest.mark.parametrize("algo", CONTINUOUS + DISCRETE)
def test_sample_draws_acts_action_vmapped_and_batched(algo):
    """Per seed under jit(vmap), as the loop acts: the same action bitwise; and a batch [B, O] per call."""
    agent = _agent(algo)
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    states = jax.vmap(agent.init)(keys)
    obs = _obs(algo, 3)
    acted = jax.jit(jax.vmap(agent.act, in_axes=(0, 0, 0, None)), static_argnums=3)(states, obs, keys, False)
    sampled, logp = jax.jit(jax.vmap(agent.sample))(states, obs, keys)
    np.testing.assert_array_equal(sampled, acted)
    assert logp.shape == (3,) and np.all(np.isfinite(np.asarray(logp)))
    batch_action, batch_logp = agent.sample(jax.tree.map(lambda x: x[0], states), _obs(algo, 5), keys[0])
    assert batch_action.shape == ((5,) if algo in DISCRETE else (5, 2)) and batch_logp.shape == (5,)


@pytest.mark.parametrize("algo", DISCRETE)
def test_discrete_logp_is_the_frequency_of_the_action(algo):
    """exp(logp) of each drawn action equals how often that action is drawn (20k draws; SE <= 0.0035)."""
    agent = _agent(algo, AgentConfig(hidden=(8,), alpha="0.5", epsilon_decay_steps=10))
    state = agent.init(jax.random.PRNGKey(0))
    state = state.replace(step=jnp.asarray(5, jnp.int32))  # dqn: epsilon halfway through its decay
    obs = _obs(algo)
    actions, logp = jax.jit(jax.vmap(agent.sample, in_axes=(None, None, 0)))(
        state, obs, jax.random.split(jax.random.PRNGKey(2), 20_000)
    )
    actions, prob = np.asarray(actions), np.exp(np.asarray(logp, np.float64))
    freq = np.bincount(actions, minlength=3) / len(actions)
    for a in np.unique(actions):
        assert np.ptp(prob[actions == a]) < 1e-6  # one probability per action
        assert prob[actions == a][0] == pytest.approx(freq[a], abs=0.015)
    assert sum(prob[actions == a][0] for a in np.unique(actions)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("algo", ["sac", "wp", "svg0"])
def test_tanh_gaussian_logp_matches_the_density_by_hand(algo):
    """logp = log N(u; mean, std) - sum log(1 - tanh(u)^2), u = atanh(a), in numpy float64."""
    agent = _agent(algo)
    state = agent.init(jax.random.PRNGKey(0))
    obs, key = _obs(algo, 4), jax.random.PRNGKey(3)
    action, logp = agent.sample(state, obs, key)
    mean, log_std = (np.asarray(x, np.float64) for x in agent.update.keywords["nets"].actor(state.actor, obs))
    if algo == "svg0":  # fixed noise scale --actor-std
        log_std = np.full_like(mean, math.log(float(state.hp.actor_std)))
    u = mean + np.exp(log_std) * np.asarray(jax.random.normal(key, mean.shape), np.float64)
    np.testing.assert_allclose(action, np.tanh(u), rtol=1e-5, atol=1e-6)
    z = (u - mean) / np.exp(log_std)
    expected = np.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi) - np.log(1 - np.tanh(u) ** 2), axis=-1)
    np.testing.assert_allclose(logp, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_deterministic_actor_logp_is_the_noise_density(algo):
    """ddpg/td3 have no density (the clip leaves point masses at +-1): logp is log N(a - mu(s); 0, sigma^2 I),
    the density of the action before the clip, checked where no clip happened."""
    agent = _agent(algo, AgentConfig(hidden=(8,), explore_std=0.2))
    state = agent.init(jax.random.PRNGKey(0))
    obs = _obs(algo, 64)
    action, logp = agent.sample(state, obs, jax.random.PRNGKey(4))
    mu = np.asarray(agent.act(state, obs, None, True), np.float64)
    action = np.asarray(action, np.float64)
    inside = np.all(np.abs(action) < 1.0, axis=-1)
    assert inside.sum() > 32
    noise = (action - mu)[inside]
    expected = np.sum(-0.5 * (noise / 0.2) ** 2 - math.log(0.2) - 0.5 * math.log(2 * math.pi), axis=-1)
    np.testing.assert_allclose(np.asarray(logp)[inside], expected, rtol=1e-4, atol=1e-3)


def _batch(algo: str) -> Transition:
    rng = np.random.default_rng(0)
    disc = algo in DISCRETE
    return Transition(
        obs=_obs(algo, 8),
        action=jnp.asarray(rng.integers(0, 3, 8), jnp.int32) if disc else jnp.asarray(rng.uniform(-1, 1, (8, 2))),
        reward=jnp.asarray(rng.normal(size=8), jnp.float32),
        next_obs=_obs(algo, 8)[::-1],
        terminated=jnp.zeros(8, bool),
        truncated=jnp.zeros(8, bool),
    )


@pytest.mark.parametrize("algo", CONTINUOUS + DISCRETE)
def test_alpha_is_reported_only_by_algorithms_with_a_temperature(algo):
    """ddpg, td3, svg0 and dqn have no alpha and report none; the others report it, fixed or tuned."""
    has_temperature = algo in ("wp", "sac", "soft-dqn", "discrete-sac")
    for alpha in ("auto", "0.3"):
        agent = _agent(algo, AgentConfig(hidden=(8,), alpha=alpha))
        state = agent.init(jax.random.PRNGKey(0))
        _, metrics = agent.update(state, _batch(algo), jax.random.PRNGKey(1))
        assert ("alpha" in metrics) == has_temperature, sorted(metrics)
        if has_temperature and alpha == "0.3":
            assert float(metrics["alpha"]) == pytest.approx(0.3, rel=1e-6)
