"""MinAtar Breakout (Young & Tian 2019) in JAX: the twin of `softrl/MinAtar-Breakout-v1` (`softrl.envs.minatar`).

The dynamics follow MinAtar's `minatar/environments/breakout.py` line for line, as branch-free `jnp.where`s
in the source's order (the x-wall reflection first, then the top wall, a brick, or the paddle row):

- the paddle moves one cell left/right (clipped to 0..9), then the ball moves one cell along its diagonal;
- a wall reflects the direction, the ball stays on the clipped cell; the top wall also clamps y to 0;
- a brick hit (on the clipped cell) gives +1, removes the brick and reflects y with the ball kept on its row,
  unless the previous step also hit a brick (`strike`): then the ball passes into the brick's cell;
- reaching row 9: first refill rows 1-3 if no brick is left; bounce straight back if the ball was above the
  paddle (old x == paddle), off the paddle's edge if it lands on it (new x == paddle), else the episode ends.

The observation is MinAtar's `state()` as float32 [10, 10, 4] (paddle, ball, trail = last ball cell, brick),
the actions are the minimal set (no-op, left, right), sticky actions repeat the last *taken* action with
probability 0.1 (MinAtar's `Environment.act`: one uniform draw per step, sticky when < p) and every episode
starts from no-op, as `softrl.envs.minatar` resets `last_action`. The ball starts at (x, y) = (0, 3) heading
down-right or at (9, 3) heading down-left with probability 1/2 each. Breakout has no difficulty ramping.
The random draws are JAX's, so only the distributions match the numpy-seeded twin.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from softrl.envs.minatar import MAX_EPISODE_STEPS
from softrl.jaxenv.core import Dynamics, Env, JaxEnvSpec, time_limited

Array = jax.Array
I32 = jnp.int32

STICKY_ACTION_PROB = 0.1  # MinAtar's default, kept by softrl/MinAtar-Breakout-v1
CHANNELS = ("paddle", "ball", "trail", "brick")  # MinAtar's channel order
# Directions 0..3: up-left, up-right, down-right, down-left (MinAtar's ball_dir).
_DX = (-1, 1, 1, -1)
_DY = (-1, -1, 1, 1)
_FLIP_X = (1, 0, 3, 2)  # side wall
_FLIP_Y = (3, 2, 1, 0)  # top wall, brick, paddle below the ball
_EDGE = (2, 3, 0, 1)  # paddle's edge: the ball turns back the way it came
_MOVE = (0, -1, 1)  # minimal action set: no-op, left, right (MinAtar's actions 0, 1, 3)


class Breakout(NamedTuple):
    """MinAtar Breakout's game state (its `Env` attributes of the same names), int32 scalars unless noted."""

    ball_x: Array
    ball_y: Array
    ball_dir: Array
    pos: Array  # paddle column on row 9
    last_x: Array  # the ball's previous cell (the trail channel)
    last_y: Array
    brick_map: Array  # bool [10, 10]
    strike: Array  # bool: the previous step hit a brick (two bricks in a row are not both broken)
    last_action: Array  # the last action taken, minimal-set index (what a sticky step repeats)


def _table(t: tuple[int, ...], i: Array) -> Array:
    return jnp.asarray(t, I32)[i]


def _full_rows() -> Array:
    return jnp.zeros((10, 10), bool).at[1:4, :].set(True)


def breakout_obs(s: Breakout) -> Array:
    """MinAtar's `state()`: float32 [10, 10, 4] in 0/1 (channels `CHANNELS`)."""
    obs = jnp.zeros((10, 10, 4), jnp.float32)
    obs = obs.at[9, s.pos, 0].set(1.0)
    obs = obs.at[s.ball_y, s.ball_x, 1].set(1.0)
    obs = obs.at[s.last_y, s.last_x, 2].set(1.0)
    return obs.at[:, :, 3].set(s.brick_map.astype(jnp.float32))


def breakout_reset(key: Array) -> tuple[Breakout, Array]:
    right = jax.random.bernoulli(key)  # MinAtar: randint(2) picks (x, dir) = (0, 2) or (9, 3)
    x = jnp.where(right, 9, 0).astype(I32)
    y = jnp.asarray(3, I32)
    s = Breakout(
        ball_x=x,
        ball_y=y,
        ball_dir=jnp.where(right, 3, 2).astype(I32),
        pos=jnp.asarray(4, I32),
        last_x=x,
        last_y=y,
        brick_map=_full_rows(),
        strike=jnp.zeros((), bool),
        last_action=jnp.zeros((), I32),
    )
    return s, breakout_obs(s)


def breakout_step(s: Breakout, action: Array, key: Array, sticky_action_prob: float = STICKY_ACTION_PROB):
    """One `Environment.act` (sticky action) + `breakout.Env.act`. Returns (state, obs, reward, terminated)."""
    a = jnp.where(jax.random.uniform(key) < sticky_action_prob, s.last_action, jnp.asarray(action, I32))
    pos = jnp.clip(s.pos + _table(_MOVE, a), 0, 9)

    d = s.ball_dir
    new_x, new_y = s.ball_x + _table(_DX, d), s.ball_y + _table(_DY, d)
    side = (new_x < 0) | (new_x > 9)
    new_x = jnp.clip(new_x, 0, 9)
    d = jnp.where(side, _table(_FLIP_X, d), d)

    top = new_y < 0
    row = jnp.clip(new_y, 0, 9)
    hit = ~top & s.brick_map[row, new_x]  # MinAtar's strike_toggle
    breaks = hit & ~s.strike
    bricks = s.brick_map.at[row, new_x].set(s.brick_map[row, new_x] & ~breaks)
    bottom = ~top & ~hit & (new_y == 9)
    bricks = jnp.where(bottom & ~bricks.any(), _full_rows(), bricks)
    above = bottom & (s.ball_x == pos)  # the paddle under the ball's old column: straight back up
    edge = bottom & ~above & (new_x == pos)  # the ball lands on the paddle: back the way it came
    terminated = bottom & ~above & ~edge

    d = jnp.where(top | breaks | above, _table(_FLIP_Y, d), jnp.where(edge, _table(_EDGE, d), d))
    new_y = jnp.where(top, 0, jnp.where(breaks | above | edge, s.ball_y, new_y))
    s = Breakout(
        ball_x=new_x,
        ball_y=new_y,
        ball_dir=d,
        pos=pos,
        last_x=s.ball_x,
        last_y=s.ball_y,
        brick_map=bricks,
        strike=hit,
        last_action=a,
    )
    return s, breakout_obs(s), breaks.astype(jnp.float32), terminated


def make_breakout(sticky_action_prob: float = STICKY_ACTION_PROB) -> Env:
    """`jax/MinAtar-Breakout-v1`: 3 actions, obs [10, 10, 4], `softrl.envs.minatar.MAX_EPISODE_STEPS` limit.
    `sticky_action_prob=0` gives the deterministic game (the dynamics test compares it with MinAtar's)."""

    def step(s: Breakout, action: Array, key: Array):
        return breakout_step(s, action, key, sticky_action_prob)

    spec = JaxEnvSpec(
        (10, 10, len(CHANNELS)),
        num_actions=len(_MOVE),
        max_episode_steps=MAX_EPISODE_STEPS,
        gym_id="softrl/MinAtar-Breakout-v1",
    )
    return time_limited("jax/MinAtar-Breakout-v1", Dynamics(breakout_reset, step), spec)
