"""A tiny counter environment, for checking data collection by eye and in tests.

obs = [episode index, t]; reward = t + 1 on step t; it terminates after
`terminate_at` steps if set, and `max_episode_steps` (gymnasium's TimeLimit) truncates.
So every stored transition must have next_obs t == obs t + 1 within one episode index.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class CounterEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, terminate_at: int | None = None, discrete: bool = False):
        self.terminate_at = terminate_at
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(3) if discrete else gym.spaces.Box(-2.0, 5.0, (1,), np.float32)
        self.episode = -1
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, self.action_space.dtype)), action
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return self._obs(), float(self.t), terminated, False, {}
