"""A 2-D point mass with several equally rewarding goals: the multi-goal task of Haarnoja et al. 2017
("Reinforcement Learning with Deep Energy-Based Policies", Sec. 5.1 and Fig. 3), written from its
description for softrl's `exploration` experiment (Lecture 17, Sec. 5.1: MaxEnt "helps discover
multiple solutions").

State and observation: the position `pos` (2,), float32, inside the box [-bound, bound]^2.
Action: a velocity in [-1, 1]^2 (clipped); `next_pos = clip(pos + max_speed * action, -bound, bound)`.
Start: `pos ~ N(0, init_std^2 I)`, near the origin, which is equidistant from the goals.
Goals: by default 4 at (5, 0), (0, 5), (-5, 0), (0, -5), listed counter-clockwise, so a rotation by
90 degrees maps goal k to goal k + 1 (configurable: any positions, any number).

Reward (per step): `-action_cost * |action|^2 - distance_cost * min_k |next_pos - goal_k|`, plus
`goal_reward` on the step that enters a goal (within `goal_radius`), which terminates the episode;
`info["goal"]` is the index of that goal (-1 while none is reached). The registered id
`softrl/MultiGoal-v0` truncates after `MAX_EPISODE_STEPS` = 30 steps (gymnasium's TimeLimit).

Scale choices (ours, not the paper's). Haarnoja et al. used action cost 30, distance cost 1 and goal
reward 10, where reaching a goal barely beats standing still. We keep the structure but make reaching
clearly worthwhile so that SAC learns it within ~10k env steps: action cost 0.3 (30 / 100), distance
cost 0.1 (1 / 10), goal reward 10. Reaching a goal from the origin takes 4-5 steps at full speed and
returns about +6; standing still for 30 steps returns -15. All goals are equally rewarding, so every
optimal deterministic policy picks one of them per start state and the soft-optimal policy (Eq. 20)
spreads over all of them.

`step_batch` is the one implementation of the dynamics and reward; the gym env steps it with a batch
of one, and the experiment's vectorised rollouts (`rollouts`) step hundreds of point masses at once
with exactly the same code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import gymnasium as gym
import numpy as np

MAX_EPISODE_STEPS = 30
FOUR_GOALS = ((5.0, 0.0), (0.0, 5.0), (-5.0, 0.0), (0.0, -5.0))


@dataclasses.dataclass(frozen=True)
class MultiGoalParams:
    """Everything that defines the task; the defaults are the documented `softrl/MultiGoal-v0`."""

    goals: tuple[tuple[float, float], ...] = FOUR_GOALS
    goal_radius: float = 1.0
    goal_reward: float = 10.0
    action_cost: float = 0.3
    distance_cost: float = 0.1
    init_std: float = 0.1
    max_speed: float = 1.0
    bound: float = 7.0

    def validate(self) -> None:
        g = np.asarray(self.goals, np.float64)
        if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] != 2:
            raise ValueError(f"goals must be a non-empty sequence of (x, y) pairs, got {self.goals!r}")
        if np.any(np.abs(g) > self.bound):
            raise ValueError(f"every goal must lie inside the box [-{self.bound}, {self.bound}]^2")
        for name in ("goal_radius", "max_speed", "bound"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("action_cost", "distance_cost", "init_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def goal_distances(params: MultiGoalParams, pos: np.ndarray) -> np.ndarray:
    """Distance of every position to every goal. pos [B, 2] -> [B, K]."""
    goals = np.asarray(params.goals, np.float64)  # [K, 2]
    return np.linalg.norm(pos[:, None, :] - goals[None, :, :], axis=-1)


def step_batch(
    params: MultiGoalParams, pos: np.ndarray, action: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step for B point masses. pos [B, 2] float64, action [B, 2] (clipped to [-1, 1] here).

    Returns (next_pos [B, 2], reward [B], terminated [B] bool, goal [B] int: index reached or -1).
    """
    action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
    next_pos = np.clip(pos + params.max_speed * action, -params.bound, params.bound)
    dist = goal_distances(params, next_pos)  # [B, K]
    nearest = dist.min(axis=-1)
    terminated = nearest <= params.goal_radius
    goal = np.where(terminated, dist.argmin(axis=-1), -1)
    reward = (-params.action_cost * np.sum(action**2, axis=-1) - params.distance_cost * nearest
              + params.goal_reward * terminated)
    return next_pos, reward, terminated, goal


def initial_positions(params: MultiGoalParams, rng: np.random.Generator, n: int) -> np.ndarray:
    """n start positions ~ N(0, init_std^2 I), inside the box. [n, 2] float64."""
    return np.clip(params.init_std * rng.standard_normal((n, 2)), -params.bound, params.bound)


class MultiGoalEnv(gym.Env):
    """The gymnasium face of `step_batch` (module docstring); keyword arguments are `MultiGoalParams` fields.

    `reset(options={"pos": (x, y)})` starts at a given position instead of sampling one.
    """

    metadata = {"render_modes": []}

    def __init__(self, **kwargs):
        if "goals" in kwargs:
            kwargs["goals"] = tuple(tuple(float(c) for c in g) for g in kwargs["goals"])
        self.params = MultiGoalParams(**kwargs)
        self.params.validate()
        b = np.float32(self.params.bound)
        self.observation_space = gym.spaces.Box(-b, b, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._pos = np.zeros(2, np.float64)

    def _obs(self) -> np.ndarray:
        return self._pos.astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options is not None and "pos" in options:
            self._pos = np.clip(np.asarray(options["pos"], np.float64).reshape(2), -self.params.bound,
                                self.params.bound)
        else:
            self._pos = initial_positions(self.params, self.np_random, 1)[0]
        return self._obs(), {"goal": -1}

    def step(self, action):
        next_pos, reward, terminated, goal = step_batch(self.params, self._pos[None], np.asarray(action)[None])
        self._pos = next_pos[0]
        info = {"goal": int(goal[0]), "distance": float(goal_distances(self.params, next_pos).min())}
        return self._obs(), float(reward[0]), bool(terminated[0]), False, info


@dataclasses.dataclass(frozen=True)
class Rollouts:
    """n episodes of at most T steps, stepped in lockstep (entries after an episode's end are padding)."""

    pos: np.ndarray  # [n, T + 1, 2] positions; after the end the last position is repeated
    reward: np.ndarray  # [n, T], 0 after the end
    length: np.ndarray  # [n] steps taken (<= T)
    goal: np.ndarray  # [n] goal index reached, -1 if the episode was truncated at T

    @property
    def returns(self) -> np.ndarray:
        """Undiscounted return of each episode. [n]"""
        return self.reward.sum(axis=1)


def rollouts(
    params: MultiGoalParams,
    act: Callable[[np.ndarray], np.ndarray],
    rng: np.random.Generator,
    n: int,
    horizon: int = MAX_EPISODE_STEPS,
    init_pos: np.ndarray | None = None,
) -> Rollouts:
    """n episodes at once with `step_batch`: `act(obs [n, 2] float32) -> action [n, 2]` is called once per step
    (the same float32 observations the gym env would return). Finished episodes stay frozen."""
    pos = initial_positions(params, rng, n) if init_pos is None else np.asarray(init_pos, np.float64).copy()
    path = np.zeros((n, horizon + 1, 2))
    reward = np.zeros((n, horizon))
    length = np.full(n, horizon)
    goal = np.full(n, -1)
    done = np.zeros(n, bool)
    path[:, 0] = pos
    for t in range(horizon):
        action = np.asarray(act(pos.astype(np.float32)))
        next_pos, r, terminated, g = step_batch(params, pos, action)
        live = ~done
        pos = np.where(live[:, None], next_pos, pos)
        reward[:, t] = np.where(live, r, 0.0)
        newly = live & terminated
        goal[newly] = g[newly]
        length[newly] = t + 1
        done |= terminated
        path[:, t + 1] = pos
        if done.all():
            path[:, t + 2:] = pos[:, None]
            break
    return Rollouts(path, reward, length, goal)


__all__ = ["FOUR_GOALS", "MAX_EPISODE_STEPS", "MultiGoalEnv", "MultiGoalParams", "Rollouts", "goal_distances",
           "initial_positions", "rollouts", "step_batch"]
