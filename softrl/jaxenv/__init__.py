"""JAX-native environments, selected by ids with the `jax/` prefix (`jax/CartPole-v1`).

Each is a pure `reset` / `step` bundle (see `softrl.jaxenv.core`) whose dynamics match its
gymnasium twin (`spec.gym_id`), so a policy trained on one can be evaluated on the other.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from functools import partial

from softrl.jaxenv import classic, minatar, point, tabular, toy
from softrl.jaxenv.core import Dynamics, Env, EnvState, JaxEnv, JaxEnvSpec, time_limited

PREFIX = "jax/"

_REGISTRY: dict[str, Callable[[], Env]] = {
    "jax/CartPole-v1": classic.make_cartpole,
    "jax/Acrobot-v1": classic.make_acrobot,
    "jax/Pendulum-v1": classic.make_pendulum,
    "jax/MountainCarContinuous-v0": classic.make_mountain_car_continuous,
    "jax/MinAtar-Breakout-v1": minatar.make_breakout,
    "jax/softrl/CliffLedge-v0": point.make_cliff_ledge,
    "jax/softrl/PointReach-v0": point.make_point_reach,
    "jax/softrl/MultiGoal-v0": point.make_multi_goal,
    "jax/softrl/GridWorld-v0": partial(tabular.make_registered, "softrl/GridWorld-v0"),
    "jax/softrl/CliffWalk-v0": partial(tabular.make_registered, "softrl/CliffWalk-v0"),
    "jax/softrl/Chain-v0": partial(tabular.make_registered, "softrl/Chain-v0"),
    "jax/softrl/Counter-v0": partial(toy.make_counter, "jax/softrl/Counter-v0", 5),
    "jax/softrl/CounterTerminating-v0": partial(toy.make_counter, "jax/softrl/CounterTerminating-v0", 5, 3),
    "jax/softrl/CounterDiscrete-v0": partial(toy.make_counter, "jax/softrl/CounterDiscrete-v0", 6, 4, True),
}


def env_ids() -> list[str]:
    """Every registered `jax/` id."""
    return sorted(_REGISTRY)


def is_jax_id(env_id: str) -> bool:
    return env_id.startswith(PREFIX)


@functools.cache
def make(env_id: str) -> Env:
    """The named JAX env. Raises ValueError (one line) for an unknown id, with close matches and the full list."""
    if env_id not in _REGISTRY:
        close = difflib.get_close_matches(env_id, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown JAX environment id {env_id!r}.{hint} Available: {', '.join(env_ids())}")
    return _REGISTRY[env_id]()


def register(env_id: str, factory: Callable[[], Env]) -> None:
    """Add a `jax/` env (factory() -> Env)."""
    if not is_jax_id(env_id):
        raise ValueError(f"JAX environment ids start with {PREFIX!r}, got {env_id!r}")
    _REGISTRY[env_id] = factory


__all__ = ["Dynamics", "Env", "EnvState", "JaxEnv", "JaxEnvSpec", "env_ids", "is_jax_id", "make", "register",
           "time_limited"]
