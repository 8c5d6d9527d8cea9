"""jax/MinAtar-Breakout-v1 against MinAtar's own Breakout (the `minatar` package): same state + same action ->
the same observation, reward and termination, bit for bit."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl import jaxenv
from softrl.collect import make_env
from softrl.jaxenv import minatar as jm

minatar = pytest.importorskip("minatar")

FULL_ACTIONS = [0, 1, 3]  # MinAtar's minimal set for Breakout: no-op, left, right


def _game(sticky: float = 0.0):
    return minatar.Environment("breakout", sticky_action_prob=sticky)


def _sync(game, p: jm.Breakout) -> None:
    """Copy one (unbatched, numpy) jax state into MinAtar's game object."""
    e = game.env
    e.ball_x, e.ball_y, e.ball_dir, e.pos = int(p.ball_x), int(p.ball_y), int(p.ball_dir), int(p.pos)
    e.last_x, e.last_y = int(p.last_x), int(p.last_y)
    e.brick_map = np.asarray(p.brick_map).astype(float)
    e.strike, e.terminal = bool(p.strike), False
    game.last_action = FULL_ACTIONS[int(p.last_action)]


def _at(tree, i: int):
    return jax.tree.map(lambda x: x[i], tree)


def _landing_x(p: jm.Breakout) -> jax.Array:
    """Where the ball reaches row 8 if no brick is in its way (walls as MinAtar: clip and reflect)."""
    dx, dy = jnp.array([-1, 1, 1, -1]), jnp.array([-1, -1, 1, 1])

    def move(_, c):
        x, y, d = c
        nx, ny = x + dx[d], y + dy[d]
        nd = jnp.where((nx < 0) | (nx > 9), jnp.array([1, 0, 3, 2])[d], d)
        nd = jnp.where(ny < 0, jnp.array([3, 2, 1, 0])[nd], nd)
        go = y < 8
        return jnp.where(go, jnp.clip(nx, 0, 9), x), jnp.where(go, jnp.maximum(ny, 0), y), jnp.where(go, nd, d)

    return jax.lax.fori_loop(0, 18, move, (p.ball_x, p.ball_y, p.ball_dir))[0]


def _rollout(env: jaxenv.Env, key, n: int):
    """n autoresetting steps of a paddle that mostly chases the ball (30% random actions, so the ball is both
    returned and lost). Every episode starts with a random sparse brick map (rows 1-3, density 0.15), so
    brick rows are cleared and refilled within a few bounces. Returns the states before each step and the
    step outputs."""

    def body(state, key):
        k_map, k_eps, k_rand, k_step = jax.random.split(key, 4)
        sparse = jnp.zeros((10, 10), bool).at[1:4].set(jax.random.bernoulli(k_map, 0.15, (3, 10)))
        p = state.physics
        state = state._replace(physics=p._replace(brick_map=jnp.where(state.t == 0, sparse, p.brick_map)))
        target = _landing_x(state.physics)
        chase = jnp.where(target == p.pos, 0, jnp.where(target < p.pos, 1, 2))
        action = jnp.where(jax.random.uniform(k_eps) < 0.3, jax.random.randint(k_rand, (), 0, 3), chase)
        new, obs, reward, terminated, truncated, info = env.step(state, action, k_step)
        return new, (state, action, obs, reward, terminated, truncated, info["next_obs"])

    k_reset, k_steps = jax.random.split(key)
    state, _ = env.reset(k_reset)
    _, out = jax.jit(lambda s, ks: jax.lax.scan(body, s, ks))(state, jax.random.split(k_steps, n))
    return jax.tree.map(np.asarray, out)


def test_breakout_episodes_match_minatar():
    """MinAtar is set to the jax state only when an episode starts, then both play the same actions to the end:
    every observation, reward and termination agrees, across ball losses, paddle bounces and brick refills."""
    env = jm.make_breakout(sticky_action_prob=0.0)
    states, actions, _, rewards, terminated, truncated, next_obs = _rollout(env, jax.random.PRNGKey(0), 3000)
    game = _game()
    refills = bounces = 0
    for i in range(len(actions)):
        if states.t[i] == 0:
            _sync(game, _at(states.physics, i))
        bricks, y = np.count_nonzero(game.env.brick_map), game.env.ball_y
        reward, done = game.act(FULL_ACTIONS[int(actions[i])])
        np.testing.assert_array_equal(next_obs[i], game.state().astype(np.float32), err_msg=f"step {i}")
        assert (rewards[i], terminated[i], truncated[i]) == (reward, done, False), f"step {i}"
        refills += np.count_nonzero(game.env.brick_map) > bricks
        bounces += y == 8 and not done and game.env.ball_y == 8
    episodes = int((states.t == 0).sum())
    assert episodes >= 10 and rewards.sum() >= 50 and refills >= 3 and bounces >= 20, (episodes, refills, bounces)


@partial(jax.jit, static_argnums=1)
def _random_states(key, n: int) -> jm.Breakout:
    """Game states anywhere MinAtar can be (ball rows 0..8, any direction, bricks of any density including
    none, strike set or not), so every branch of `act` is taken many times."""
    ks = jax.random.split(key, 9)

    def ints(k, hi):
        return jax.random.randint(k, (n,), 0, hi)

    density = jnp.array([0.0, 0.05, 0.3, 0.9])[ints(ks[0], 4)][:, None, None]
    bricks = jax.random.uniform(ks[1], (n, 10, 10)) < density
    bricks = bricks & (jnp.arange(10)[None, :, None] < 9)  # no brick on the paddle row
    return jm.Breakout(
        ball_x=ints(ks[2], 10),
        ball_y=ints(ks[3], 9),
        ball_dir=ints(ks[4], 4),
        pos=ints(ks[5], 10),
        last_x=ints(ks[6], 10),
        last_y=ints(ks[7], 9),
        brick_map=bricks,
        strike=jax.random.bernoulli(ks[8], 0.3, (n,)),
        last_action=jnp.zeros(n, jnp.int32),
    )


def test_breakout_single_steps_match_minatar_everywhere():
    n = 3000
    states = _random_states(jax.random.PRNGKey(1), n)
    actions = jax.random.randint(jax.random.PRNGKey(2), (n,), 0, 3)
    step = jax.jit(jax.vmap(lambda s, a, k: jm.breakout_step(s, a, k, 0.0)))
    out = jax.tree.map(np.asarray, step(states, actions, jax.random.split(jax.random.PRNGKey(3), n)))
    states = jax.tree.map(np.asarray, states)
    game = _game()
    branches = {"refill": 0, "break": 0, "pass": 0, "top": 0, "lost": 0}
    for i in range(n):
        _sync(game, _at(states, i))
        bricks = np.count_nonzero(game.env.brick_map)
        reward, done = game.act(FULL_ACTIONS[int(actions[i])])
        np.testing.assert_array_equal(out[1][i], game.state().astype(np.float32), err_msg=f"state {i}")
        assert (out[2][i], out[3][i]) == (reward, done), f"state {i}"
        assert out[0].strike[i] == game.env.strike and out[0].ball_dir[i] == game.env.ball_dir, f"state {i}"
        branches["refill"] += np.count_nonzero(game.env.brick_map) > bricks
        branches["break"] += reward > 0
        branches["pass"] += bool(states.strike[i]) and game.env.strike and reward == 0
        branches["top"] += states.ball_y[i] == 0 and game.env.ball_y == 0
        branches["lost"] += done
    assert min(branches.values()) >= 5, branches


def test_breakout_reset_sticky_actions_and_spec():
    """Both ball starts, about half each; sticky actions repeat the last taken action with probability p (one
    uniform draw per step, as MinAtar); the spaces and time limit are the gymnasium twin's."""
    env = jaxenv.make("jax/MinAtar-Breakout-v1")
    twin = make_env(env.spec.gym_id)
    assert env.spec.gym_id == "softrl/MinAtar-Breakout-v1" and twin.spec is not None
    assert env.spec.max_episode_steps == twin.spec.max_episode_steps
    assert env.spec.obs_shape == twin.observation_space.shape and env.spec.num_actions == twin.action_space.n
    obs0, _ = twin.reset(seed=0)
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    state, obs = jax.jit(jax.vmap(env.reset))(keys)
    assert obs.dtype == obs0.dtype and obs.shape[1:] == obs0.shape
    right = np.asarray(state.physics.ball_x) == 9
    assert set(np.asarray(state.physics.ball_x).tolist()) == {0, 9} and abs(right.mean() - 0.5) < 0.03
    np.testing.assert_array_equal(np.asarray(state.physics.ball_dir), np.where(right, 3, 2))
    # one step from a state whose last action was "left": the taken action (last_action) differs from the
    # chosen one only when sticky, so P(differs) = p * P(chosen != left) = 0.1 * 2/3
    physics = state.physics._replace(last_action=jnp.ones(4000, jnp.int32))
    chosen = jax.random.randint(jax.random.PRNGKey(1), (4000,), 0, 3)
    new = jax.jit(jax.vmap(jm.breakout_step))(physics, chosen, keys)[0]
    differs = np.asarray(new.last_action != chosen)
    assert np.all(np.asarray(new.last_action)[differs] == 1)
    assert abs(differs.mean() - 0.1 * 2 / 3) < 0.015, differs.mean()
    always = jax.jit(jax.vmap(lambda s, a, k: jm.breakout_step(s, a, k, 1.0)))(state.physics, chosen, keys)[0]
    assert np.all(np.asarray(always.pos) == 4)  # every episode starts from no-op, repeated forever


def test_breakout_jit_vmap_and_autoreset():
    """vmap equals one env at a time; an episode end returns a fresh first observation and the true last one
    in info['next_obs'] (the ball on the bottom row)."""
    env = jaxenv.make("jax/MinAtar-Breakout-v1")
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    state, _ = jax.vmap(env.reset)(keys)

    def run(state, key):
        def body(s, k):
            ka, ks = jax.random.split(k)
            s, obs, r, term, trunc, info = env.step(s, jax.random.randint(ka, (), 0, 3), ks)
            return s, (obs, r, term, trunc, info["next_obs"])

        return jax.lax.scan(body, state, jax.random.split(key, 200))[1]

    batched = jax.tree.map(np.asarray, jax.jit(jax.vmap(run))(state, keys))
    one = jax.tree.map(np.asarray, run(_at(state, 1), keys[1]))
    for a, b in zip(one, batched):
        np.testing.assert_array_equal(a, b[1])
    obs, _, term, trunc, next_obs = batched
    assert term.any() and not trunc.any()
    assert np.all(next_obs[term][:, 9, :, 1].sum(-1) == 1)  # the lost ball, on row 9
    assert np.all(obs[term][:, 3, :, 1].sum(-1) == 1) and np.all(obs[term][..., 3].sum((1, 2)) == 30)
    np.testing.assert_array_equal(obs[~term], next_obs[~term])
