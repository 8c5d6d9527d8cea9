"""The JAX-native environment interface: pure `reset` / `step` over a state pytree, with autoreset.

An environment is a bundle of pure functions (like `softrl.agents.Agent`), so `jit`, `vmap` and
`lax.scan` apply directly and thousands of copies step in one compiled call:

- `reset(key) -> (state, obs)`
- `step(state, action, key) -> (state, obs, reward, terminated, truncated, info)`

`step` resets automatically when an episode ends (terminated or truncated, the time limit as
gymnasium's `TimeLimit`): the returned `obs` is then the first observation of the next episode
and `info["next_obs"]` the true final one. `info["next_obs"]` is the true next observation on
every step, so a learner stores `info["next_obs"]` and acts on `obs`: no stored transition
crosses an episode boundary, and truncation bootstraps from the real last state.

Observations are float32 arrays of shape `spec.obs_shape`: flat vectors (one-hot for discrete
observation spaces, as `softrl.collect.ObsFlattener` makes them) or images [H, W, C] as the gymnasium
twin gives them (MinAtar); actions are int32 scalars (discrete) or float32 vectors in the env's own
units (continuous, bounds in `spec`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

Array = jax.Array


class JaxEnvSpec(NamedTuple):
    """Spaces and limits. Exactly one of `num_actions` (discrete) and `action_low/high` (continuous) is set."""

    obs_shape: tuple[int, ...]
    num_actions: int | None = None
    action_low: tuple[float, ...] | None = None  # [action_dim], env units
    action_high: tuple[float, ...] | None = None
    max_episode_steps: int = 1000
    gym_id: str | None = None  # the gymnasium twin whose dynamics this env reproduces

    @property
    def action_dim(self) -> int | None:
        return None if self.action_low is None else len(self.action_low)

    @property
    def obs_dim(self) -> int:
        n = 1
        for d in self.obs_shape:
            n *= d
        return n


class JaxEnv(Protocol):
    """What the on-device loop needs from an environment. All functions are pure and jittable."""

    spec: JaxEnvSpec

    def reset(self, key: Array) -> tuple[Any, Array]: ...

    def step(self, state: Any, action: Array, key: Array) -> tuple[Any, Array, Array, Array, Array, dict]: ...


class Dynamics(NamedTuple):
    """One episode's physics without time limit or autoreset.

    reset(key) -> (physics, obs); step(physics, action, key) -> (physics, obs, reward, terminated).
    """

    reset: Callable[[Array], tuple[Any, Array]]
    step: Callable[[Any, Array, Array], tuple[Any, Array, Array, Array]]
    # next_episode(physics, key) -> (physics, obs): the autoreset, for envs whose state outlives an episode
    # (gymnasium envs that count their episodes); default: `reset(key)`.
    next_episode: Callable[[Any, Array], tuple[Any, Array]] | None = None


class EnvState(NamedTuple):
    physics: Any
    t: Array  # int32 []: steps taken in the current episode


class Env(NamedTuple):
    """A `JaxEnv` made of functions: `time_limited(dynamics, spec)` builds one."""

    name: str
    spec: JaxEnvSpec
    reset: Callable[[Array], tuple[EnvState, Array]]
    step: Callable[[EnvState, Array, Array], tuple[EnvState, Array, Array, Array, Array, dict]]


def time_limited(name: str, dynamics: Dynamics, spec: JaxEnvSpec) -> Env:
    """Add gymnasium's `TimeLimit` (truncated once `t >= max_episode_steps`, also on a terminal step, as
    gymnasium does) and same-step autoreset to `dynamics`."""

    def reset(key: Array) -> tuple[EnvState, Array]:
        physics, obs = dynamics.reset(key)
        return EnvState(physics, jnp.zeros((), jnp.int32)), obs

    def step(state: EnvState, action: Array, key: Array):
        k_step, k_reset = jax.random.split(key)
        physics, next_obs, reward, terminated = dynamics.step(state.physics, action, k_step)
        t = state.t + 1
        truncated = t >= spec.max_episode_steps
        done = terminated | truncated
        if dynamics.next_episode is None:
            fresh, obs0 = dynamics.reset(k_reset)
        else:
            fresh, obs0 = dynamics.next_episode(physics, k_reset)
        fresh = EnvState(fresh, jnp.zeros((), jnp.int32))
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, EnvState(physics, t))
        obs = jnp.where(done, obs0, next_obs)
        return state, obs, jnp.asarray(reward, jnp.float32), terminated, truncated, {"next_obs": next_obs}

    return Env(name, spec, reset, step)
