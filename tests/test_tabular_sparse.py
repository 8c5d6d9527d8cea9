"""Tests for softrl.tabular.sparse: successor-list MDPs and their soft value iteration (Eq. 24-26).

The sparse solver must agree with the dense `soft_value_iteration` (float64, 1e-6 and tighter) on
small gridworlds, cliff walking with resets and random MDPs, and with a hand-solved two-cell grid.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl.tabular import (
    SparseMDP,
    cliff_walk,
    from_dense,
    gridworld,
    random_mdp,
    soft_bellman_backup,
    soft_value_iteration,
    sparse_gridworld,
    sparse_soft_backups,
    sparse_soft_bellman_backup,
    sparse_soft_value_iteration,
)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def open_layout(height, width, start=(0, 0), goal=None):
    goal = (height - 1, width - 1) if goal is None else goal
    rows = [["."] * width for _ in range(height)]
    rows[start[0]][start[1]] = "S"
    rows[goal[0]][goal[1]] = "G"
    return ["".join(r) for r in rows]


@pytest.mark.parametrize("slip", [0.0, 0.2])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_sparse_gridworld_matches_dense_gridworld(x64, slip, alpha):
    kw = dict(gamma=0.9, step_reward=-0.1)
    dense, _ = gridworld(open_layout(4, 5, start=(1, 0), goal=(2, 3)), slip, goal_rewards={"G": 2.0}, **kw)
    sparse = sparse_gridworld(4, 5, slip, goal_reward=2.0, start=(1, 0), goal=(2, 3), **kw)
    assert sparse.num_successors == (1 if slip == 0 else 4)
    # Same MDP: rewards, start, terminal, and the dense P rebuilt from the successor lists.
    np.testing.assert_allclose(sparse.R, dense.R, atol=1e-12)
    np.testing.assert_array_equal(sparse.p0, dense.p0)
    np.testing.assert_array_equal(sparse.terminal, dense.terminal)
    S, A, _ = sparse.next_state.shape
    P = np.zeros((S, A, S))
    s_idx, a_idx = np.meshgrid(np.arange(S), np.arange(A), indexing="ij")
    for k in range(sparse.num_successors):
        np.add.at(P, (s_idx, a_idx, np.asarray(sparse.next_state[..., k])), np.asarray(sparse.prob[..., k]))
    np.testing.assert_allclose(P, dense.P, atol=1e-12)

    ref = soft_value_iteration(dense, alpha, tol=1e-12)
    sol = sparse_soft_value_iteration(sparse, alpha, tol=1e-12)
    assert sol.q.dtype == jnp.float64
    np.testing.assert_allclose(sol.q, ref.q, atol=1e-9)
    np.testing.assert_allclose(sol.v, ref.v, atol=1e-9)
    np.testing.assert_allclose(sol.policy, ref.policy, atol=1e-9)
    assert int(sol.iterations) == int(ref.iterations)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_from_dense_matches_dense_solver(x64, alpha):
    # Cliff walking with resets: rows of P spread over p0 as well as the move; random MDP: dense rows.
    for dense in (cliff_walk(0.1, gamma=0.9).mdp, random_mdp(jax.random.PRNGKey(0), 7, 3, gamma=0.8)):
        sparse = from_dense(dense)
        q = jnp.asarray(np.random.default_rng(1).normal(size=dense.R.shape))
        np.testing.assert_allclose(
            sparse_soft_bellman_backup(sparse, q, alpha), soft_bellman_backup(dense, q, alpha), atol=1e-12
        )
        ref = soft_value_iteration(dense, alpha, tol=1e-12)
        sol = sparse_soft_value_iteration(sparse, alpha, tol=1e-12)
        np.testing.assert_allclose(sol.q, ref.q, atol=1e-8)
        np.testing.assert_allclose(sol.v, ref.v, atol=1e-8)
    assert from_dense(random_mdp(jax.random.PRNGKey(0), 7, 3)).num_successors == 7
    assert from_dense(gridworld(open_layout(2, 3), 0.0).mdp).num_successors == 1


@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0])
def test_two_cell_grid_by_hand(x64, alpha):
    """1 x 2 grid: 'right' from the start enters the goal (reward 1, terminal); up, down, left stay (reward 0).

    Q(s0, right) = 1 and Q(s0, other) = gamma V(s0) with V(s0) = alpha log(e^{1/alpha} + 3 e^{gamma V(s0)/alpha})
    (Eq. 24), V(s0) = 1 at alpha = 0 (Eq. 26). The scalar fixed point is solved here in plain Python.
    """
    gamma = 0.9
    v = 0.0
    for _ in range(2000):
        if alpha == 0:
            v = max(1.0, gamma * v)
        else:
            v = alpha * math.log(math.exp(1 / alpha) + 3 * math.exp(gamma * v / alpha))
    expected_q0 = [gamma * v, 1.0, gamma * v, gamma * v]  # up, right, down, left
    sol = sparse_soft_value_iteration(sparse_gridworld(1, 2, gamma=gamma), alpha, tol=1e-13)
    np.testing.assert_allclose(sol.q[0], expected_q0, atol=1e-9)
    np.testing.assert_allclose(sol.v, [v, 0.0], atol=1e-9)
    np.testing.assert_allclose(sol.q[1], 0.0, atol=0)
    if alpha == 0:
        assert v == 1.0 and np.argmax(sol.policy[0]) == 1


def test_fixed_iteration_backups_match_repeated_dense_backups(x64):
    dense, _ = gridworld(open_layout(3, 4), 0.1, gamma=0.95, step_reward=-1.0)
    sparse = sparse_gridworld(3, 4, 0.1, gamma=0.95, step_reward=-1.0)
    q = jnp.zeros_like(dense.R)
    for _ in range(7):
        q = soft_bellman_backup(dense, q, 0.4)
    np.testing.assert_allclose(sparse_soft_backups(sparse, jnp.zeros_like(sparse.R), 0.4, 7), q, atol=1e-12)


def test_float32_and_float64_coexist():
    """No x64 mode: the float32 option for large MDPs and the float64 default live side by side."""
    mdp32 = sparse_gridworld(5, 5, 0.1, dtype=jnp.float32)
    mdp64 = mdp32.astype(jnp.float64)
    assert mdp32.R.dtype == jnp.float32 and mdp64.R.dtype == np.float64
    assert mdp32.next_state.dtype == jnp.int32
    q32 = sparse_soft_value_iteration(mdp32, 0.5, dtype=jnp.float32).q
    q64 = sparse_soft_value_iteration(mdp64, 0.5, tol=1e-12).q
    assert q32.dtype == jnp.float32 and q64.dtype == np.float64
    # float32 VI is accurate to a few eps * max|Q| / (1 - gamma) (see soft_value_iteration's docstring).
    bound = 10 * np.finfo(np.float32).eps * float(jnp.max(jnp.abs(q64))) / (1 - 0.95)
    np.testing.assert_allclose(q32, q64, rtol=0, atol=bound)
    assert float(jnp.max(jnp.abs(q64))) > 1.0  # a non-trivial scale


def test_large_grid_builds_fast_and_is_valid():
    mdp = sparse_gridworld(300, 300, 0.1, gamma=0.99, step_reward=-1.0)
    assert (mdp.num_states, mdp.num_actions, mdp.num_successors) == (90_000, 4, 4)
    np.testing.assert_allclose(np.asarray(mdp.prob).sum(-1), 1.0, atol=1e-6)
    q = sparse_soft_backups(mdp, jnp.zeros_like(mdp.R), 1.0, 3)
    assert q.shape == (90_000, 4) and bool(jnp.all(jnp.isfinite(q)))


def test_validation_names_the_problem():
    ns = np.zeros((2, 1, 1), np.int32)
    ok = dict(prob=np.ones((2, 1, 1)), R=np.zeros((2, 1)), gamma=0.9, p0=np.array([1.0, 0.0]))
    SparseMDP(ns, **ok)
    with pytest.raises(ValueError, match="must lie in"):
        SparseMDP(ns + 2, **ok)
    with pytest.raises(ValueError, match="sum to 1"):
        SparseMDP(ns, **(ok | {"prob": np.full((2, 1, 1), 0.5)}))
    with pytest.raises(ValueError, match="gamma"):
        SparseMDP(ns, **(ok | {"gamma": 1.0}))
    with pytest.raises(ValueError, match="absorbing"):
        SparseMDP(ns, **ok, terminal=np.array([False, True]))  # state 1 moves to state 0
    with pytest.raises(ValueError, match="shape"):
        SparseMDP(ns, **(ok | {"R": np.zeros((2, 2))}))
