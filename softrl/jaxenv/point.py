"""JAX twins of softrl's continuous point-mass tasks: CliffLedge-v0 and PointReach-v0 (see softrl/envs/)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.envs import cliff, point_reach
from softrl.jaxenv.core import Dynamics, Env, JaxEnvSpec, time_limited

Array = jax.Array
F32 = jnp.float32


def make_cliff_ledge(step_size: float = 0.1, plateau_reward: float = 1.0, cliff_reward: float = -10.0,
                     start: tuple[float, float] = (0.05, 0.1), start_noise: float = 0.02) -> Env:
    """`softrl.envs.cliff.CliffLedgeEnv` (Lecture 17, Sec. 1.3) with its defaults; physics = position [2]."""
    start_arr = jnp.asarray(start, F32)
    lo, hi = jnp.array([0.0, cliff.BOTTOM], F32), jnp.array([cliff.RIGHT, cliff.TOP], F32)

    def reset(key: Array):
        noise = jax.random.uniform(key, (2,), F32, -start_noise, start_noise)
        pos = jnp.clip(start_arr + noise, jnp.array([0.0, 0.0], F32), jnp.array([cliff.LEDGE_END, cliff.TOP], F32))
        return pos, pos

    def step(pos: Array, action: Array, key: Array):
        del key
        pos = jnp.clip(pos + step_size * jnp.clip(action, -1.0, 1.0), lo, hi)
        fell = (pos[0] < cliff.LEDGE_END) & (pos[1] < 0.0)
        reward = jnp.where(fell, cliff_reward, plateau_reward * jnp.minimum(pos[0], cliff.LEDGE_END) / cliff.LEDGE_END)
        return pos, pos, reward.astype(F32), fell

    spec = JaxEnvSpec((2,), action_low=(-1.0, -1.0), action_high=(1.0, 1.0), max_episode_steps=50,
                      gym_id="softrl/CliffLedge-v0")
    return time_limited("jax/softrl/CliffLedge-v0", Dynamics(reset, step), spec)


def _block(obstacle: str | None, size: float, pos: Array, target: Array) -> Array:
    """`PointReachEnv.block` without branches."""
    if obstacle is None or size == 0.0:
        return target
    if obstacle == "wall":
        crosses = (pos[0] < 0.0) != (target[0] < 0.0)
        frac = (0.0 - pos[0]) / jnp.where(crosses, target[0] - pos[0], 1.0)
        y_cross = pos[1] + frac * (target[1] - pos[1])
        side = jnp.where(pos[0] < 0.0, -1.0, 1.0)
        blocked = jnp.stack([side * point_reach.WALL_GAP, target[1]])
        return jnp.where(crosses & (jnp.abs(y_cross) <= size), blocked, target)
    d = jnp.linalg.norm(target)
    centre = pos / jnp.maximum(jnp.linalg.norm(pos), 1e-12)
    direction = jnp.where(d == 0.0, centre, target / jnp.where(d == 0.0, 1.0, d))
    return jnp.where(d >= size, target, direction * size)


def make_point_reach(obstacle: str | None = None, obstacle_size: float = 0.4, mass: float = 1.0,
                     step_size: float = 0.1, goal_radius: float = 0.1, goal_bonus: float = 10.0,
                     start_noise: float = 0.05) -> Env:
    """`softrl.envs.point_reach.PointReachEnv` (Eysenbach & Levine 2021, Fig. 1) without perturbation pushes;
    physics = position [2]."""
    start, goal = jnp.array([-1.0, 0.0], F32), jnp.array([1.0, 0.0], F32)

    def obs(pos: Array) -> Array:
        return jnp.concatenate([pos, goal - pos])

    def reset(key: Array):
        pos = start + jax.random.uniform(key, (2,), F32, -start_noise, start_noise)
        return pos, obs(pos)

    def step(pos: Array, action: Array, key: Array):
        del key
        target = jnp.clip(pos + step_size * jnp.clip(action, -1.0, 1.0) / mass, -point_reach.ARENA,
                          point_reach.ARENA)
        pos = _block(obstacle, obstacle_size, pos, target)
        dist = jnp.linalg.norm(pos - goal)
        terminated = dist < goal_radius
        return pos, obs(pos), -dist + jnp.where(terminated, goal_bonus, 0.0), terminated

    name = "jax/softrl/PointReach-v0" if obstacle is None else f"jax/softrl/PointReach-{obstacle}-v0"
    spec = JaxEnvSpec((4,), action_low=(-1.0, -1.0), action_high=(1.0, 1.0), max_episode_steps=50,
                      gym_id="softrl/PointReach-v0")
    return time_limited(name, Dynamics(reset, step), spec)


def make_multi_goal(params=None) -> Env:
    """`softrl.envs.multigoal.MultiGoalEnv` (Haarnoja et al. 2017, Sec. 5.1) for `MultiGoalParams` `params`
    (default: softrl/MultiGoal-v0's); physics = position [2]. info has no goal index: it is the nearest goal
    of `info["next_obs"]` on a terminal step."""
    from softrl.envs import multigoal

    p = multigoal.MultiGoalParams() if params is None else params
    p.validate()
    goals = jnp.asarray(p.goals, F32)  # [K, 2]

    def reset(key: Array):
        pos = jnp.clip(p.init_std * jax.random.normal(key, (2,), F32), -p.bound, p.bound)
        return pos, pos

    def step(pos: Array, action: Array, key: Array):
        del key
        action = jnp.clip(action, -1.0, 1.0)
        pos = jnp.clip(pos + p.max_speed * action, -p.bound, p.bound)
        nearest = jnp.min(jnp.linalg.norm(pos[None] - goals, axis=-1))
        terminated = nearest <= p.goal_radius
        reward = -p.action_cost * jnp.sum(action**2) - p.distance_cost * nearest + p.goal_reward * terminated
        return pos, pos, reward, terminated

    spec = JaxEnvSpec((2,), action_low=(-1.0, -1.0), action_high=(1.0, 1.0),
                      max_episode_steps=multigoal.MAX_EPISODE_STEPS, gym_id="softrl/MultiGoal-v0")
    return time_limited("jax/softrl/MultiGoal-v0", Dynamics(reset, step), spec)
