"""A 2-D point mass that must reach a goal, with an optional obstacle placed on the straight path.

This is the navigation task of Eysenbach & Levine 2021 ("Maximum Entropy RL (Provably) Solves Some
Robust RL Problems", Fig. 1) in its simplest form: the agent is trained without the obstacle and
evaluated with it. A policy that learned one way to the goal (the straight line) is stopped by the
obstacle; a policy that keeps many ways open (MaxEnt RL, Lecture 17 Sec. 5.1, Eq. 27) can slip past.

Dynamics (kinematic, no velocity state): position p in the arena [-2, 2]^2, action a in [-1, 1]^2,

    p' = clip(p + step_size * a / mass + push, arena),   then the obstacle projects the move.

- Start: (-1, 0) plus U(-start_noise, start_noise)^2; goal: (1, 0) (fixed).
- Observation: [p_x, p_y, g_x - p_x, g_y - p_y] (float32). The obstacle is NOT observed.
- Reward: -||p' - g|| per step, plus `goal_bonus` on the step that reaches the goal (||p' - g|| < goal_radius),
  which terminates the episode. `max_episode_steps` (50 in the registration) truncates.
- Obstacle (`obstacle="wall"`): the segment x = 0, |y| <= obstacle_size, perpendicular to the straight
  start-goal line and centred on it. A move that would cross it keeps its component along the wall and loses
  the component through it ("projected out"), so a policy pushing straight into the wall slides along it or
  stays. `obstacle="disk"`: a disk of radius obstacle_size centred at the origin; a move that ends inside it
  is projected back onto its boundary.
- Perturbation hooks, used by `softrl.envs.perturb`: `mass` (actions move the point 1/mass as far; the
  point-mass analogue of a body-mass scale) and `push` (an external displacement added every step; the
  analogue of an external force, set by `ForcePulses`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ARENA = 2.0  # the point stays in [-ARENA, ARENA]^2
WALL_GAP = 1e-3  # a blocked move stops this far in front of the wall, so it never sits on it


class PointReachEnv(gym.Env):
    """2-D point-mass reaching, optionally with an obstacle on the straight start-goal path."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        obstacle: str | None = None,
        obstacle_size: float = 0.4,
        mass: float = 1.0,
        step_size: float = 0.1,
        goal_radius: float = 0.1,
        goal_bonus: float = 10.0,
        start_noise: float = 0.05,
    ):
        if obstacle not in (None, "wall", "disk"):
            raise ValueError(f"obstacle must be None, 'wall' or 'disk', got {obstacle!r}")
        if mass <= 0 or step_size <= 0 or goal_radius <= 0 or obstacle_size < 0 or start_noise < 0:
            raise ValueError("mass, step_size and goal_radius must be > 0; obstacle_size and start_noise >= 0")
        self.obstacle = obstacle
        self.obstacle_size = float(obstacle_size)
        self.mass = float(mass)
        self.step_size = float(step_size)
        self.goal_radius = float(goal_radius)
        self.goal_bonus = float(goal_bonus)
        self.start_noise = float(start_noise)
        self.start = np.array([-1.0, 0.0])
        self.goal = np.array([1.0, 0.0])
        self.pos = self.start.copy()  # [2] float64
        self.push = np.zeros(2)  # [2] external displacement per step (ForcePulses)
        high = np.array([ARENA, ARENA, 2 * ARENA, 2 * ARENA], np.float32)
        self.observation_space = gym.spaces.Box(-high, high, (4,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.pos, self.goal - self.pos]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.start + self.np_random.uniform(-self.start_noise, self.start_noise, 2)
        self.push = np.zeros(2)
        return self._obs(), {}

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64).reshape(2), -1.0, 1.0)
        target = np.clip(self.pos + self.step_size * action / self.mass + self.push, -ARENA, ARENA)
        self.pos = self.block(self.pos, target)
        dist = float(np.linalg.norm(self.pos - self.goal))
        terminated = dist < self.goal_radius
        reward = -dist + (self.goal_bonus if terminated else 0.0)
        return self._obs(), reward, terminated, False, {"distance": dist}

    def block(self, pos: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Where a move from `pos` towards `target` ends, given the obstacle (pure in its arguments)."""
        if self.obstacle is None or self.obstacle_size == 0.0:
            return target
        if self.obstacle == "wall":
            crosses = (pos[0] < 0.0) != (target[0] < 0.0)
            if not crosses:
                return target
            frac = (0.0 - pos[0]) / (target[0] - pos[0])  # where the segment meets x = 0
            y_cross = pos[1] + frac * (target[1] - pos[1])
            if abs(y_cross) > self.obstacle_size:
                return target  # passes beside the wall
            # Keep the move along the wall (y), drop the part through it (x): stop just in front.
            side = -1.0 if pos[0] < 0.0 else 1.0
            return np.array([side * WALL_GAP, target[1]])
        # disk at the origin
        d = float(np.linalg.norm(target))
        if d >= self.obstacle_size:
            return target
        if d == 0.0:  # dead centre: push back the way it came
            direction = pos / max(float(np.linalg.norm(pos)), 1e-12)
        else:
            direction = target / d
        return direction * self.obstacle_size
