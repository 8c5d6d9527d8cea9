"""JAX-native envs against their gymnasium twins: same state + same action -> same obs, reward, termination."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl import jaxenv
from softrl.collect import make_env

CLASSIC = ["jax/CartPole-v1", "jax/Acrobot-v1", "jax/Pendulum-v1", "jax/MountainCarContinuous-v0"]


def _random_actions(env: jaxenv.Env, key, n: int):
    spec = env.spec
    if spec.num_actions is not None:
        return jax.random.randint(key, (n,), 0, spec.num_actions)
    low, high = jnp.asarray(spec.action_low), jnp.asarray(spec.action_high)
    return jax.random.uniform(key, (n, spec.action_dim), jnp.float32, low, high)


def rollout(env: jaxenv.Env, key, n: int):
    """n autoresetting steps under random actions. Returns the states before each step and the step outputs."""
    k_reset, k_act, k_step = jax.random.split(key, 3)
    state, obs = env.reset(k_reset)

    def body(state, x):
        action, key = x
        new, obs, reward, terminated, truncated, info = env.step(state, action, key)
        return new, (state, action, obs, reward, terminated, truncated, info["next_obs"])

    xs = (_random_actions(env, k_act, n), jax.random.split(k_step, n))
    _, out = jax.jit(lambda s, xs: jax.lax.scan(body, s, xs))(state, xs)
    return jax.tree.map(np.asarray, out)


def _set_gym_state(genv, physics: np.ndarray) -> None:
    genv.state = np.asarray(physics, np.float64)
    if hasattr(genv, "steps_beyond_terminated"):
        genv.steps_beyond_terminated = None


@pytest.mark.parametrize("env_id", CLASSIC)
def test_classic_steps_match_gymnasium(env_id):
    """Every step of a 2000-step random rollout (with autoresets), replayed in gymnasium from the same float32
    state: observations agree to 1e-5, rewards to 1e-4 relative (Pendulum's cost is ~100 in float32), and
    termination exactly."""
    env = jaxenv.make(env_id)
    genv = gym.make(env.spec.gym_id).unwrapped
    genv.reset(seed=0)
    states, actions, _, rewards, terminated, _, next_obs = rollout(env, jax.random.PRNGKey(1), 2000)
    for i in range(len(actions)):
        _set_gym_state(genv, states.physics[i])
        action = int(actions[i]) if env.spec.num_actions else actions[i].astype(np.float32)
        g_obs, g_reward, g_term, g_trunc, _ = genv.step(action)
        np.testing.assert_allclose(next_obs[i], g_obs, rtol=1e-5, atol=1e-5, err_msg=f"step {i}")
        np.testing.assert_allclose(rewards[i], g_reward, rtol=1e-5, atol=1e-5, err_msg=f"step {i}")
        assert bool(terminated[i]) == g_term, f"step {i}"
        assert not g_trunc
    assert terminated.any() or env_id != "jax/CartPole-v1"


# Boxes covering each task's reachable states, to test single steps everywhere (terminal regions included).
# Acrobot's velocities: random play stays within |dtheta| <= (4.7, 8.3) over 20k steps; near the velocity
# bounds (4 pi, 9 pi) float32 rk4 is ~1e-4 from gymnasium's float64 (accelerations ~1e3), so the box stops at
# twice random play's range.
WIDE = {
    "jax/CartPole-v1": ([-2.4, -3.0, -0.21, -3.0], [2.4, 3.0, 0.21, 3.0]),
    "jax/Acrobot-v1": ([-np.pi, -np.pi, -2 * np.pi, -4 * np.pi], [np.pi, np.pi, 2 * np.pi, 4 * np.pi]),
    "jax/Pendulum-v1": ([-10.0, -8.0], [10.0, 8.0]),
    "jax/MountainCarContinuous-v0": ([-1.2, -0.07], [0.6, 0.07]),
}


@pytest.mark.parametrize("env_id", CLASSIC)
def test_classic_single_steps_match_gymnasium_everywhere(env_id):
    """1000 single steps from states drawn uniformly over the reachable box: same obs, reward, termination."""
    env = jaxenv.make(env_id)
    genv = gym.make(env.spec.gym_id).unwrapped
    genv.reset(seed=0)
    n = 1000
    low, high = (np.asarray(b, np.float32) for b in WIDE[env_id])
    physics = jax.random.uniform(jax.random.PRNGKey(4), (n, len(low)), jnp.float32, low, high)
    actions = _random_actions(env, jax.random.PRNGKey(5), n)
    state = jaxenv.EnvState(physics, jnp.zeros(n, jnp.int32))
    out = jax.jit(jax.vmap(env.step))(state, actions, jax.random.split(jax.random.PRNGKey(6), n))
    _, _, rewards, terminated, _, info = jax.tree.map(np.asarray, out)
    physics, actions = np.asarray(physics), np.asarray(actions)
    for i in range(n):
        _set_gym_state(genv, physics[i])
        action = int(actions[i]) if env.spec.num_actions else actions[i]
        g_obs, g_reward, g_term, _, _ = genv.step(action)
        np.testing.assert_allclose(info["next_obs"][i], g_obs, rtol=1e-5, atol=1e-5, err_msg=f"state {physics[i]}")
        np.testing.assert_allclose(rewards[i], g_reward, rtol=1e-5, atol=1e-5, err_msg=f"state {physics[i]}")
        assert bool(terminated[i]) == g_term, f"state {physics[i]}"
    assert 0 < terminated.sum() < n or env_id == "jax/Pendulum-v1"


@pytest.mark.parametrize("env_id", CLASSIC)
def test_time_limit_and_autoreset(env_id):
    """Truncation exactly at gymnasium's max_episode_steps; on any episode end the returned obs is a reset one
    (t back to 0) and info['next_obs'] the true last one."""
    env = jaxenv.make(env_id)
    assert env.spec.max_episode_steps == gym.make(env.spec.gym_id).spec.max_episode_steps
    states, _, obs, _, terminated, truncated, next_obs = rollout(env, jax.random.PRNGKey(2), 2500)
    t = states.t
    done = terminated | truncated
    np.testing.assert_array_equal(truncated, t + 1 >= env.spec.max_episode_steps)
    np.testing.assert_array_equal(t[1:], np.where(done[:-1], 0, t[:-1] + 1))
    np.testing.assert_array_equal(obs[~done], next_obs[~done])
    assert done.any() and not np.array_equal(obs[done], next_obs[done])


def test_reset_distributions_match_gymnasium_bounds():
    """Initial observations lie in gymnasium's reset ranges (same bounds, different random draws)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 500)
    cp = np.asarray(jax.vmap(jaxenv.make("jax/CartPole-v1").reset)(keys)[1])
    assert np.all(np.abs(cp) <= 0.05) and cp.std() > 0.02
    mc = np.asarray(jax.vmap(jaxenv.make("jax/MountainCarContinuous-v0").reset)(keys)[1])
    assert np.all((mc[:, 0] >= -0.6) & (mc[:, 0] <= -0.4)) and np.all(mc[:, 1] == 0)
    pe = jax.vmap(jaxenv.make("jax/Pendulum-v1").reset)(keys)[0].physics
    assert np.all(np.abs(pe[:, 0]) <= np.pi) and np.all(np.abs(pe[:, 1]) <= 1.0)


def test_vmap_equals_loop():
    env = jaxenv.make("jax/Acrobot-v1")
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    state, _ = jax.vmap(env.reset)(keys)
    action = jnp.array([0, 1, 2, 1])
    batched = jax.jit(jax.vmap(env.step))(state, action, keys)
    for i in range(4):
        one = env.step(jax.tree.map(lambda x, i=i: x[i], state), action[i], keys[i])
        for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(batched)):
            np.testing.assert_allclose(a, b[i], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("gym_id", ["softrl/Counter-v0", "softrl/CounterTerminating-v0", "softrl/CounterDiscrete-v0"])
def test_counter_twin_matches_gymnasium_exactly(gym_id):
    """The deterministic counter: whole trajectories (with resets and episode indices) agree exactly."""
    env = jaxenv.make("jax/" + gym_id)
    genv = make_env(gym_id)
    g_obs, _ = genv.reset(seed=0)
    _, actions, obs, rewards, terminated, truncated, next_obs = rollout(env, jax.random.PRNGKey(0), 40)
    first = np.asarray(env.reset(jax.random.PRNGKey(0))[1])
    np.testing.assert_array_equal(first, g_obs)
    for i in range(40):
        action = int(actions[i]) if env.spec.num_actions else actions[i]
        o, r, term, trunc, _ = genv.step(action)
        np.testing.assert_array_equal(next_obs[i], o)
        assert (rewards[i], terminated[i], truncated[i]) == (r, term, trunc)
        if term or trunc:
            o, _ = genv.reset()
        np.testing.assert_array_equal(obs[i], o)


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Did you mean: jax/CartPole-v1.*Available: .*jax/Pendulum-v1"):
        jaxenv.make("jax/CartPole-v0")


POINT = {  # jax id: (gym kwargs, the gym env's position attribute, box of positions)
    "jax/softrl/CliffLedge-v0": ({}, "_pos", ([0.0, -1.0], [2.0, 0.2])),
    "jax/softrl/PointReach-v0": ({}, "pos", ([-2.0, -2.0], [2.0, 2.0])),
    "jax/softrl/MultiGoal-v0": ({}, "_pos", ([-7.0, -7.0], [7.0, 7.0])),
}


@pytest.mark.parametrize("env_id", sorted(POINT))
def test_point_mass_twins_match_softrl_envs(env_id):
    """softrl's own point-mass tasks: 1000 single steps from positions over the whole arena (the goal and the
    cliff included) agree with the gymnasium versions; plus the time limit."""
    kwargs, attr, box = POINT[env_id]
    env = jaxenv.make(env_id)
    genv = make_env(env.spec.gym_id, **kwargs)
    assert env.spec.max_episode_steps == genv.spec.max_episode_steps
    genv = genv.unwrapped
    genv.reset(seed=0)
    n = 1000
    low, high = (np.asarray(b, np.float32) for b in box)
    pos = jax.random.uniform(jax.random.PRNGKey(4), (n, 2), jnp.float32, low, high)
    near = jnp.array([1.0, 0.0]) if "PointReach" in env_id else jnp.array([5.0, 0.0])  # a goal
    pos = pos.at[:50].set(near + 0.5 * jax.random.normal(jax.random.PRNGKey(7), (50, 2)))
    actions = _random_actions(env, jax.random.PRNGKey(5), n)
    state = jaxenv.EnvState(pos, jnp.zeros(n, jnp.int32))
    out = jax.jit(jax.vmap(env.step))(state, actions, jax.random.split(jax.random.PRNGKey(6), n))
    _, _, rewards, terminated, _, info = jax.tree.map(np.asarray, out)
    pos, actions = np.asarray(pos), np.asarray(actions)
    for i in range(n):
        setattr(genv, attr, pos[i].astype(np.float64))
        g_obs, g_reward, g_term, _, _ = genv.step(actions[i])
        np.testing.assert_allclose(info["next_obs"][i], g_obs, rtol=1e-5, atol=1e-5, err_msg=f"pos {pos[i]}")
        np.testing.assert_allclose(rewards[i], g_reward, rtol=1e-5, atol=1e-5, err_msg=f"pos {pos[i]}")
        assert bool(terminated[i]) == g_term, f"pos {pos[i]}"
    assert 0 < terminated.sum() < n


@pytest.mark.parametrize("gym_id", ["softrl/GridWorld-v0", "softrl/CliffWalk-v0", "softrl/Chain-v0"])
def test_tabular_twins_match_softrl_envs(gym_id):
    """Every (state, action) pair: same reward as softrl's gymnasium TabularEnv, and where P(.|s, a) is
    deterministic the same one-hot next obs and termination (elsewhere the drawn s' has P > 0 and its
    termination is terminal[s']); same time limit; the reset state has p0 > 0."""
    env = jaxenv.make("jax/" + gym_id)
    wrapped = make_env(gym_id)
    assert env.spec.max_episode_steps == wrapped.spec.max_episode_steps
    genv = wrapped.unwrapped
    genv.reset(seed=0)
    num_states, num_actions = env.spec.obs_dim, env.spec.num_actions
    s, a = np.meshgrid(np.arange(num_states), np.arange(num_actions), indexing="ij")
    s, a = s.reshape(-1), a.reshape(-1)
    state = jaxenv.EnvState(jnp.asarray(s, jnp.int32), jnp.zeros(len(s), jnp.int32))
    out = jax.jit(jax.vmap(env.step))(state, jnp.asarray(a), jax.random.split(jax.random.PRNGKey(0), len(s)))
    _, _, rewards, terminated, _, info = jax.tree.map(np.asarray, out)
    for i in range(len(s)):
        genv._state, genv._t = int(s[i]), 0
        g_obs, g_reward, g_term, _, _ = genv.step(int(a[i]))
        assert float(rewards[i]) == np.float32(g_reward)
        p = genv._P[s[i], a[i]]
        if p.max() == 1.0:
            np.testing.assert_array_equal(info["next_obs"][i], g_obs)
            assert bool(terminated[i]) == g_term
        else:
            s_next = int(np.argmax(info["next_obs"][i]))
            assert p[s_next] > 0 and bool(terminated[i]) == genv._terminal[s_next]
    starts = np.asarray(jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 100))[0].physics)
    assert np.all(genv._p0[starts] > 0)
