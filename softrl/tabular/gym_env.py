"""Any `FiniteMDP` as a `gymnasium.Env`, plus registered ids for the built-in gridworlds.

Semantics:
- `reset` draws `s0 ~ p0`; `step(a)` draws `s' ~ P(.|s, a)` and pays the
  expected reward `R[s, a]` (the MDP stores only expected rewards).
- Entering a terminal state gives `terminated=True` (bootstrap cut).
- Hitting `max_episode_steps` gives `truncated=True, terminated=False`
  (bootstrap kept; `td_target` stores it as `terminated=False`).
- Observations: 'onehot' (Box [S] float32), 'index' (Discrete S), or for
  gridworlds 'coords' (Box [2] float32 row, col).

`register_envs()` registers `softrl/GridWorld-v0`, `softrl/CliffWalk-v0` and
`softrl/Chain-v0`; through `gymnasium.make` the time limit is applied by
gymnasium's `TimeLimit` wrapper (so `env.spec.max_episode_steps` is set).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from softrl.tabular.gridworld import GridGeometry, chain, cliff_walk, gridworld
from softrl.tabular.mdp import FiniteMDP

DEFAULT_GRID_LAYOUT = (
    "S...",
    ".#.#",
    "...C",
    "#..G",
)

OBSERVATIONS = ("onehot", "index", "coords")


class TabularEnv(gym.Env):
    """A gymnasium view of a `FiniteMDP` (Discrete actions).

    Args:
      mdp: the MDP; its `terminal` states end episodes.
      max_episode_steps: optional time limit producing `truncated=True`.
        Defaults to the MDP's horizon for finite-horizon MDPs.
      observation: 'onehot', 'index' or 'coords' (the latter needs `geometry`).
      geometry: `GridGeometry` of a gridworld, for 'coords' and text rendering.
      render_mode: None or 'ansi'.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        mdp: FiniteMDP,
        *,
        max_episode_steps: int | None = None,
        observation: str = "onehot",
        geometry: GridGeometry | None = None,
        render_mode: str | None = None,
    ):
        if observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")
        if observation == "coords" and geometry is None:
            raise ValueError("observation='coords' needs the gridworld geometry")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}")
        self.mdp = mdp
        self.geometry = geometry
        self.render_mode = render_mode
        self.observation_kind = observation
        self.max_episode_steps = mdp.horizon if max_episode_steps is None else int(max_episode_steps)

        # float64 copies, renormalised so numpy's sampler accepts float32-rounded rows.
        P = np.asarray(mdp.P, dtype=np.float64)
        self._P = P / P.sum(-1, keepdims=True)  # [S, A, S]
        self._R = np.asarray(mdp.R, dtype=np.float64)  # [S, A]
        p0 = np.asarray(mdp.p0, dtype=np.float64)
        self._p0 = p0 / p0.sum()  # [S]
        self._terminal = np.asarray(mdp.terminal, dtype=bool)  # [S]
        S, A = self._R.shape

        self.action_space = spaces.Discrete(A)
        if observation == "onehot":
            self.observation_space = spaces.Box(0.0, 1.0, shape=(S,), dtype=np.float32)
        elif observation == "index":
            self.observation_space = spaces.Discrete(S)
        else:
            assert geometry is not None  # 'coords' needs it, checked above
            high = np.array([geometry.height - 1, geometry.width - 1], dtype=np.float32)
            self.observation_space = spaces.Box(np.zeros(2, np.float32), high, dtype=np.float32)
        self._state = 0
        self._t = 0

    def _obs(self):
        s = self._state
        if self.observation_kind == "onehot":
            obs = np.zeros(self._R.shape[0], dtype=np.float32)
            obs[s] = 1.0
            return obs
        if self.observation_kind == "index":
            return int(s)
        assert self.geometry is not None  # 'coords' needs it, checked in __init__
        return self.geometry.cell_of_state[s].astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return {"state": int(self._state), "t": self._t}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Draws s0 ~ p0; `options={'state': s}` starts from s instead."""
        super().reset(seed=seed)
        if options and "state" in options:
            self._state = int(options["state"])
        else:
            self._state = int(self.np_random.choice(len(self._p0), p=self._p0))
        self._t = 0
        return self._obs(), self._info()

    def step(self, action):
        a = int(action)
        if not self.action_space.contains(a):
            raise ValueError(f"invalid action {action!r}")
        s = self._state
        reward = float(self._R[s, a])
        self._state = int(self.np_random.choice(self._P.shape[-1], p=self._P[s, a]))
        self._t += 1
        terminated = bool(self._terminal[self._state])
        # A time limit is a truncation, never a termination: the agent should still bootstrap.
        out_of_time = self.max_episode_steps is not None and self._t >= self.max_episode_steps
        truncated = out_of_time and not terminated
        return self._obs(), reward, terminated, bool(truncated), self._info()

    def render(self):
        if self.render_mode != "ansi":
            return None
        if self.geometry is not None:
            return self.geometry.render(self._state) + "\n"
        return f"state {self._state} (t={self._t})\n"


def make_gridworld_env(
    layout=DEFAULT_GRID_LAYOUT,
    slip: float = 0.0,
    *,
    observation: str = "onehot",
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    **grid_kwargs,
) -> TabularEnv:
    """`TabularEnv` of `gridworld(layout, slip, **grid_kwargs)` (entry point of softrl/GridWorld-v0)."""
    mdp, geometry = gridworld(layout, slip, **grid_kwargs)
    return TabularEnv(mdp, max_episode_steps=max_episode_steps, observation=observation,
                      geometry=geometry, render_mode=render_mode)


def make_cliff_walk_env(
    slip: float = 0.0,
    *,
    observation: str = "onehot",
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    **cliff_kwargs,
) -> TabularEnv:
    """`TabularEnv` of `cliff_walk(slip, **cliff_kwargs)` (entry point of softrl/CliffWalk-v0)."""
    mdp, geometry = cliff_walk(slip, **cliff_kwargs)
    return TabularEnv(mdp, max_episode_steps=max_episode_steps, observation=observation,
                      geometry=geometry, render_mode=render_mode)


def make_chain_env(
    n: int = 5,
    *,
    observation: str = "onehot",
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    **chain_kwargs,
) -> TabularEnv:
    """`TabularEnv` of `chain(n, **chain_kwargs)` (entry point of softrl/Chain-v0)."""
    return TabularEnv(chain(n, **chain_kwargs), max_episode_steps=max_episode_steps,
                      observation=observation, render_mode=render_mode)


# id -> (entry point, time limit applied by gymnasium.make)
ENV_IDS: dict[str, tuple[str, int]] = {
    "softrl/GridWorld-v0": ("softrl.tabular.gym_env:make_gridworld_env", 100),
    "softrl/CliffWalk-v0": ("softrl.tabular.gym_env:make_cliff_walk_env", 200),
    "softrl/Chain-v0": ("softrl.tabular.gym_env:make_chain_env", 100),
}


def register_envs() -> None:
    """Registers the tabular env ids with gymnasium; safe to call any number of times."""
    for env_id, (entry_point, limit) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=limit)
