"""A continuous cliff ledge: act deterministically now to act randomly later (Lecture 17, Section 1.3).

A point mass in the plane starts at the left end of a narrow ledge. Below the ledge is a cliff;
above it a wall. At the right end the ledge opens onto a wide plateau where every step pays a
reward. The cliff continues down the plateau's left side, so the plateau is safe only away from
that edge.

    y
   0.2 +--------------ledge--------------+-------------------------+
       | S ->                            |                         |
   0.0 +~~~~~~~~~~~~~ cliff ~~~~~~~~~~~~~+        plateau          |
       |                                 ~   (reward 1 per step)   |
       |            (cliff)              ~                         |
  -1.0 +---------------------------------+-------------------------+
       0                                 1                         2   x

Dynamics (deterministic): `p' = clip(p + step_size * a)`, `a in [-1, 1]^2`, clipped to the outer
box [0, 2] x [-1, 0.2]. Falling: the new position has `x < 1` and `y < 0` (the cliff region), which
terminates the episode with `cliff_reward`. Otherwise the step pays `plateau_reward * min(x', 1)`:
the full reward anywhere on the plateau (`x >= 1`), and on the ledge a share growing with the progress
made, so that random exploration finds the plateau (a sparse +1 behind a 10-step ledge is a separate,
exploration problem). Observations: `(x, y)` as float32. `max_episode_steps` (gymnasium's TimeLimit,
50 by default at registration) truncates.

Random acting on the ledge (width 0.2 = two full steps) falls quickly; on the plateau, a few
steps right of the cliff edge, it is free. This is the lecture's cliff picture: MaxEnt RL values
the later room to act randomly and so crosses the ledge deterministically; a one-step entropy
bonus (Williams & Peng, Eq. 4) does not plan for it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

LEDGE_END = 1.0  # x where the ledge ends and the plateau starts
TOP = 0.2  # y of the wall above the ledge (and the plateau's top)
BOTTOM = -1.0  # y of the plateau's floor
RIGHT = 2.0  # x of the plateau's right wall


def in_cliff(x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray | bool:
    """Whether a position lies over the cliff (left of the plateau and below the ledge)."""
    return (np.asarray(x) < LEDGE_END) & (np.asarray(y) < 0.0)


class CliffLedgeEnv(gym.Env):
    """The 2-D cliff ledge (see the module docstring). Box(-1, 1, (2,)) actions, Box observations."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        step_size: float = 0.1,
        plateau_reward: float = 1.0,
        cliff_reward: float = -10.0,
        start: tuple[float, float] = (0.05, 0.1),
        start_noise: float = 0.02,
    ):
        if step_size <= 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        self.step_size = float(step_size)
        self.plateau_reward = float(plateau_reward)
        self.cliff_reward = float(cliff_reward)
        self.start = np.asarray(start, np.float64)
        self.start_noise = float(start_noise)
        low = np.array([0.0, BOTTOM], np.float32)
        high = np.array([RIGHT, TOP], np.float32)
        self.observation_space = gym.spaces.Box(low, high, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._pos = self.start.copy()

    def _obs(self) -> np.ndarray:
        return self._pos.astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        noise = self.np_random.uniform(-self.start_noise, self.start_noise, 2)
        self._pos = np.clip(self.start + noise, [0.0, 0.0], [LEDGE_END, TOP])
        return self._obs(), {}

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64).reshape(2), -1.0, 1.0)
        pos = np.clip(self._pos + self.step_size * action, [0.0, BOTTOM], [RIGHT, TOP])
        self._pos = pos
        fell = bool(in_cliff(pos[0], pos[1]))
        if fell:
            # Falling ends the episode (terminated, not truncated): no value after it.
            return self._obs(), self.cliff_reward, True, False, {"fell": True}
        reward = self.plateau_reward * min(pos[0], LEDGE_END) / LEDGE_END
        return self._obs(), reward, False, False, {"fell": False}
