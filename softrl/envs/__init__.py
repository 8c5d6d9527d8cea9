"""softrl's own gymnasium environments, registered under the `softrl/` namespace."""

from __future__ import annotations

import gymnasium as gym

_registered = False


def register_envs() -> None:
    """Register softrl's environments with gymnasium (idempotent)."""
    global _registered
    if _registered:
        return
    _registered = True
    gym.register("softrl/Counter-v0", entry_point="softrl.envs.counter:CounterEnv", max_episode_steps=5)
    gym.register(
        "softrl/CounterTerminating-v0",
        entry_point="softrl.envs.counter:CounterEnv",
        kwargs={"terminate_at": 3},
        max_episode_steps=5,
    )
    gym.register(
        "softrl/CounterDiscrete-v0",
        entry_point="softrl.envs.counter:CounterEnv",
        kwargs={"discrete": True, "terminate_at": 4},
        max_episode_steps=6,
    )
    try:
        from softrl.tabular.gym_env import register_envs as register_tabular
    except ImportError:  # the tabular package is optional at import time
        return
    register_tabular()
