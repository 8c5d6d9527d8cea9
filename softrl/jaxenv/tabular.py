"""Any `softrl.tabular.FiniteMDP` as a JAX env: the twins of softrl/GridWorld-v0, CliffWalk-v0 and Chain-v0.

Semantics of `softrl.tabular.gym_env.TabularEnv`: reset draws s0 ~ p0, a step pays the expected reward
R[s, a] and draws s' ~ P(.|s, a); entering a terminal state terminates. Observations are one-hot [S]
(the default 'onehot' observation). The time limit is gymnasium's registration's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from softrl.jaxenv.core import Dynamics, Env, JaxEnvSpec, time_limited

Array = jax.Array


def from_mdp(name: str, mdp, max_episode_steps: int, gym_id: str | None = None) -> Env:
    """physics = the state index (int32 [])."""
    log_p = jnp.log(jnp.asarray(np.asarray(mdp.P, np.float64) / np.asarray(mdp.P).sum(-1, keepdims=True),
                                jnp.float32))  # [S, A, S]
    reward = jnp.asarray(mdp.R, jnp.float32)  # [S, A]
    log_p0 = jnp.log(jnp.asarray(mdp.p0, jnp.float32))  # [S]
    terminal = jnp.asarray(mdp.terminal, bool)  # [S]
    num_states, num_actions = reward.shape

    def obs(s: Array) -> Array:
        return jax.nn.one_hot(s, num_states, dtype=jnp.float32)

    def reset(key: Array):
        s = jax.random.categorical(key, log_p0).astype(jnp.int32)
        return s, obs(s)

    def step(s: Array, action: Array, key: Array):
        s_next = jax.random.categorical(key, log_p[s, action]).astype(jnp.int32)
        return s_next, obs(s_next), reward[s, action], terminal[s_next]

    spec = JaxEnvSpec((num_states,), num_actions=int(num_actions), max_episode_steps=max_episode_steps,
                      gym_id=gym_id)
    return time_limited(name, Dynamics(reset, step), spec)


def make_registered(gym_id: str) -> Env:
    """The twin of a registered tabular id with its default arguments (see softrl.tabular.gym_env.ENV_IDS)."""
    from softrl.tabular import gym_env
    from softrl.tabular.gridworld import chain, cliff_walk, gridworld

    mdp = {
        "softrl/GridWorld-v0": lambda: gridworld(gym_env.DEFAULT_GRID_LAYOUT, 0.0)[0],
        "softrl/CliffWalk-v0": lambda: cliff_walk(0.0)[0],
        "softrl/Chain-v0": lambda: chain(5),
    }[gym_id]()
    return from_mdp("jax/" + gym_id, mdp, gym_env.ENV_IDS[gym_id][1], gym_id)
