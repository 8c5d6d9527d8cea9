"""The JAX twin of `softrl.envs.counter` (softrl/Counter*-v0): a deterministic env for checking collection."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.jaxenv.core import Dynamics, Env, JaxEnvSpec, time_limited

Array = jax.Array


def make_counter(name: str, max_episode_steps: int, terminate_at: int | None = None,
                 discrete: bool = False) -> Env:
    """obs = [episode index, t]; reward t + 1 on step t; terminates after `terminate_at` steps if set.
    The episode index survives resets, so physics = [episode, t] (float32) and the autoreset increments it."""

    def obs(p: Array) -> Array:
        return p

    def reset(key: Array):
        del key
        p = jnp.array([0.0, 0.0], jnp.float32)
        return p, obs(p)

    def next_episode(p: Array, key: Array):
        del key
        p = jnp.stack([p[0] + 1.0, jnp.zeros((), jnp.float32)])
        return p, obs(p)

    def step(p: Array, action: Array, key: Array):
        del action, key
        p = p.at[1].add(1.0)
        terminated = jnp.zeros((), bool) if terminate_at is None else p[1] >= terminate_at
        return p, obs(p), p[1], terminated

    gym_id = name.removeprefix("jax/")
    if discrete:
        spec = JaxEnvSpec((2,), num_actions=3, max_episode_steps=max_episode_steps, gym_id=gym_id)
    else:
        spec = JaxEnvSpec((2,), action_low=(-2.0,), action_high=(5.0,), max_episode_steps=max_episode_steps,
                          gym_id=gym_id)
    return time_limited(name, Dynamics(reset, step, next_episode), spec)
