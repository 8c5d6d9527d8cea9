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
    # Point-mass reaching (Eysenbach & Levine 2021, Fig. 1); obstacle=None/'wall'/'disk' via gym.make kwargs.
    gym.register("softrl/PointReach-v0", entry_point="softrl.envs.point_reach:PointReachEnv", max_episode_steps=50)
    # 2-D point mass with 4 equally rewarding goals (Haarnoja et al. 2017), for the exploration experiment.
    from softrl.envs.multigoal import MAX_EPISODE_STEPS

    gym.register("softrl/MultiGoal-v0", entry_point="softrl.envs.multigoal:MultiGoalEnv",
                 max_episode_steps=MAX_EPISODE_STEPS)
    # A continuous cliff ledge (Lecture 17, Sec. 1.3): act deterministically now to act randomly later.
    gym.register("softrl/CliffLedge-v0", entry_point="softrl.envs.cliff:CliffLedgeEnv", max_episode_steps=50)
    # MinAtar games (softrl/MinAtar-<Game>-v1) only when the optional `minatar` package is installed.
    import importlib.util

    if importlib.util.find_spec("minatar") is not None:
        from softrl.envs.minatar import register_minatar

        register_minatar()
    try:
        from softrl.tabular.gym_env import register_envs as register_tabular
    except ImportError:  # the tabular package is optional at import time
        return
    register_tabular()
