"""A user's own environment module, for `softrl train ALGO --env my_test_envs:MyLine-v0` (gymnasium's
`module:EnvName-vN` form). Importing it registers `MyLine-v0`; pytest puts tests/ on sys.path, so the CLI run
in-process by the tests can import it.

MyLine: a walk on the integers 0..size from 0 to the goal `size`; discrete actions left/right; reward
`step_reward` per step and `goal_reward` on arrival (terminated); truncated after `max_steps`. Its constructor
arguments are what `--env-kwargs '{"size": 3}'` sets.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class MyLine(gym.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, size: int = 5, goal_reward: float = 0.0, step_reward: float = -1.0, max_steps: int = 20):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size, self.goal_reward, self.max_steps = int(size), float(goal_reward), int(max_steps)
        self.step_reward = float(step_reward)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = 0
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.pos / self.size], np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos, self.t = 0, 0
        return self._obs(), {}

    def step(self, action):
        self.pos = max(0, self.pos + (1 if int(action) == 1 else -1))
        self.t += 1
        terminated = self.pos >= self.size
        reward = self.goal_reward if terminated else self.step_reward
        return self._obs(), reward, terminated, self.t >= self.max_steps and not terminated, {}


def make_line() -> gym.Env:
    """A zero-argument factory, for `TrainConfig(env=make_line)`."""
    return MyLine(size=3, goal_reward=5.0)


def not_an_env() -> object:
    """A factory that returns something else."""
    return object()


if "MyLine-v0" not in gym.registry:
    gym.register("MyLine-v0", entry_point=MyLine)
