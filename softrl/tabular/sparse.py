"""Soft value iteration on large finite MDPs stored as successor lists (Lecture 17, Eq. 24-26).

A dense `FiniteMDP` keeps `P[s, a, s']`, which is S^2 A numbers: 4e12 for a 1000 x 1000
gridworld. Most large MDPs of interest reach only a few states from each `(s, a)`, so a
`SparseMDP` keeps, for each `(s, a)`, K successor indices and their probabilities:

    next_state[s, a, k]  int32   the k-th possible next state
    prob[s, a, k]        float   p(next_state[s, a, k] | s, a); sums to 1 over k

(K = 1 for deterministic dynamics; a successor may repeat, and padding entries have prob 0).
The expectation over `s'` in the soft Bellman backup becomes a gather and a weighted sum,

    E_{s'}[V(s')] = sum_k prob[s, a, k] * V(next_state[s, a, k]),

so one backup reads O(S A K) numbers instead of O(S^2 A). Everything else follows
`softrl.tabular.solvers`: the same Q convention (Eq. 9-11), terminal states with value 0
(the `(1 - terminated)` cut of `softrl.backups.td_target`), and the backup itself is
`softrl.backups.soft_value`, the function the deep agents use (Eq. 24-25; the hard max,
Eq. 26, at alpha = 0). Infinite horizon only.

Dtype: float arrays are stored in the `dtype=` given at construction, by default float64 (as JAX
arrays under x64, numpy arrays otherwise, like `FiniteMDP`), and `sparse_soft_value_iteration`
computes in float64 by default (`softrl.tabular.precision`). For ~1M states build the MDP with
`dtype=jnp.float32` and solve with `dtype=jnp.float32`: half the memory and bandwidth per backup, at a
precision of a few `eps * max|Q| / (1 - gamma)` (~1e-5 relative at gamma = 0.99).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from softrl.backups import soft_policy, soft_value
from softrl.tabular.gridworld import ACTION_DELTAS
from softrl.tabular.mdp import FiniteMDP
from softrl.tabular.precision import as_float64, solve_in
from softrl.tabular.solvers import DType, Solution, iterate_backup

Array = jax.Array

_PROB_ATOL = 1e-5


def _validate(next_state, prob, R, gamma, p0, terminal) -> None:
    """Raises ValueError on malformed concrete inputs (numpy, vectorised: fine at 1e6 states)."""
    shape = np.shape(next_state)
    if len(shape) != 3 or 0 in shape:
        raise ValueError(f"next_state must have shape [S, A, K] with S, A, K >= 1, got {shape}")
    S, A, _ = shape
    if np.shape(prob) != shape:
        raise ValueError(f"prob must have the shape of next_state {shape}, got {np.shape(prob)}")
    if np.shape(R) != (S, A):
        raise ValueError(f"R must have shape [S, A] = {(S, A)}, got {np.shape(R)}")
    if np.shape(p0) != (S,) or np.shape(terminal) != (S,):
        raise ValueError(f"p0 and terminal must have shape [S] = {(S,)}, got {np.shape(p0)}, {np.shape(terminal)}")
    if np.shape(gamma) != ():
        raise ValueError(f"gamma must be a scalar, got shape {np.shape(gamma)}")
    if any(isinstance(x, Tracer) for x in (next_state, prob, R, gamma, p0, terminal)):
        return  # traced leaves (inside jit/vmap) cannot be inspected
    idx = np.asarray(next_state)
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"next_state must hold integers, got {idx.dtype}")
    if idx.min() < 0 or idx.max() >= S:
        raise ValueError(f"next_state entries must lie in [0, {S}), got [{idx.min()}, {idx.max()}]")
    p = np.asarray(prob, np.float64)
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("prob must be finite and >= 0")
    bad = np.abs(p.sum(-1) - 1.0) > _PROB_ATOL
    if np.any(bad):
        s, a = np.argwhere(bad)[0]
        raise ValueError(
            f"prob[s={s}, a={a}, :] must sum to 1, sums to {p[s, a].sum():.8g} ({int(bad.sum())} bad row(s))"
        )
    if not np.all(np.isfinite(np.asarray(R, np.float64))):
        raise ValueError("R contains non-finite entries")
    g = float(np.asarray(gamma))
    if not 0.0 <= g < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), got {g}")
    p0_np = np.asarray(p0, np.float64)
    if np.any(p0_np < 0) or abs(p0_np.sum() - 1.0) > _PROB_ATOL:
        raise ValueError(f"p0 must be a distribution, sums to {p0_np.sum():.8g}")
    term = np.flatnonzero(np.asarray(terminal, bool))
    if term.size:
        # Terminal states are absorbing with zero reward: every successor with prob > 0 is the state itself.
        leaves = (idx[term] != term[:, None, None]) & (p[term] > 0)
        if np.any(leaves):
            raise ValueError(f"terminal state {term[np.argwhere(leaves)[0][0]]} must be absorbing")
        if np.any(np.asarray(R, np.float64)[term] != 0):
            raise ValueError("terminal states must have zero reward")


@jax.tree_util.register_pytree_node_class
class SparseMDP:
    """A finite discounted MDP with successor lists (frozen pytree; every field is a leaf).

    Args:
      next_state: [S, A, K] int successor indices.
      prob: [S, A, K] their probabilities; rows sum to 1 over k.
      R: [S, A] expected reward `r(s, a)`.
      gamma: scalar discount in [0, 1).
      p0: [S] start distribution (Eq. 29).
      terminal: optional [S] bool; absorbing, zero reward, value 0.
      dtype: float dtype of prob, R, gamma and p0 (default float64, see the module docstring;
        float32 for ~1M states).
    """

    __slots__ = ("R", "gamma", "next_state", "p0", "prob", "terminal")

    next_state: Array  # [S, A, K] int32
    prob: Array  # [S, A, K]
    R: Array  # [S, A]
    gamma: Array  # []
    p0: Array  # [S]
    terminal: Array  # [S] bool

    def __init__(self, next_state, prob, R, gamma, p0, terminal=None, dtype: Any = None):
        if terminal is None:
            terminal = np.zeros(np.shape(next_state)[:1], dtype=bool)
        _validate(next_state, prob, R, gamma, p0, terminal)
        dtype = jnp.dtype(jnp.float64 if dtype is None else dtype)

        def as_dtype(x):
            return as_float64(x) if dtype == jnp.float64 else jnp.asarray(x, dtype)

        fields = {
            "next_state": jnp.asarray(next_state, jnp.int32),
            "prob": as_dtype(prob),
            "R": as_dtype(R),
            "gamma": as_dtype(gamma),
            "p0": as_dtype(p0),
            "terminal": jnp.asarray(terminal, bool),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"SparseMDP is frozen; build a new one to change {name}")

    _LEAVES = ("next_state", "prob", "R", "gamma", "p0", "terminal")

    def tree_flatten(self):
        return tuple(getattr(self, n) for n in self._LEAVES), None

    @classmethod
    def tree_unflatten(cls, _aux, children):
        obj = object.__new__(cls)
        for name, value in zip(cls._LEAVES, children, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    def astype(self, dtype) -> SparseMDP:
        """The same MDP with its float leaves in `dtype` (indices stay int32)."""
        return SparseMDP(self.next_state, self.prob, self.R, self.gamma, self.p0, self.terminal, dtype=dtype)

    @property
    def num_states(self) -> int:
        return self.next_state.shape[0]

    @property
    def num_actions(self) -> int:
        return self.next_state.shape[1]

    @property
    def num_successors(self) -> int:
        return self.next_state.shape[2]

    def __repr__(self) -> str:
        return (f"SparseMDP(S={self.num_states}, A={self.num_actions}, K={self.num_successors}, "
                f"dtype={self.R.dtype})")


def from_dense(mdp: FiniteMDP, dtype: Any = None) -> SparseMDP:
    """The successor-list form of a dense infinite-horizon `FiniteMDP`.

    K is the largest number of nonzero entries in a row of P; shorter rows are padded with
    the state itself at prob 0. Exact: the same MDP, not an approximation.
    """
    if mdp.horizon is not None:
        raise ValueError("SparseMDP is infinite-horizon only; got a finite-horizon FiniteMDP")
    P = np.asarray(mdp.P, np.float64)  # [S, A, S]
    S, A, _ = P.shape
    nonzero = P > 0
    K = max(int(nonzero.sum(-1).max()), 1)
    # Nonzero columns first (stable sort keeps them in index order), then padding.
    order = np.argsort(~nonzero, axis=-1, kind="stable")[..., :K]  # [S, A, K]
    prob = np.take_along_axis(P, order, axis=-1)  # [S, A, K]
    pad = prob == 0
    next_state = np.where(pad, np.arange(S)[:, None, None], order)
    dtype = mdp.R.dtype if dtype is None else dtype
    return SparseMDP(next_state, prob, np.asarray(mdp.R), np.asarray(mdp.gamma), np.asarray(mdp.p0),
                     np.asarray(mdp.terminal), dtype=dtype)


def sparse_gridworld(
    height: int,
    width: int,
    slip: float = 0.0,
    *,
    gamma: float = 0.95,
    step_reward: float = 0.0,
    goal_reward: float = 1.0,
    start: tuple[int, int] = (0, 0),
    goal: tuple[int, int] | None = None,
    dtype: Any = None,
) -> SparseMDP:
    """An open `height x width` gridworld without walls, built in vectorised numpy (1e6 states in ~1 s).

    The same MDP as `gridworld` with a layout of '.' cells, 'S' at `start` and 'G' at `goal`
    (default: the bottom-right cell), and the same state numbering (row-major): actions up,
    right, down, left; moving off the grid stays put; with probability `slip` a uniformly
    random one of the four moves happens instead. Entering a cell pays `step_reward`, plus
    `goal_reward` for the goal, which is terminal. K = 1 when `slip == 0`, else K = 4
    (successor k is the result of move k).
    """
    if height < 1 or width < 1 or height * width < 2:
        raise ValueError(f"need at least 2 cells, got {height} x {width}")
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must lie in [0, 1], got {slip}")
    goal = (height - 1, width - 1) if goal is None else goal
    for name, (r, c) in (("start", start), ("goal", goal)):
        if not (0 <= r < height and 0 <= c < width):
            raise ValueError(f"{name} {(r, c)} lies outside the {height} x {width} grid")
    if tuple(start) == tuple(goal):
        raise ValueError("start and goal must differ")
    S, A = height * width, len(ACTION_DELTAS)
    states = np.arange(S)
    row, col = states // width, states % width
    # move[s, b]: where move b takes state s ([S, 4]); off-grid moves stay.
    r_new = row[:, None] + ACTION_DELTAS[None, :, 0]
    c_new = col[:, None] + ACTION_DELTAS[None, :, 1]
    inside = (r_new >= 0) & (r_new < height) & (c_new >= 0) & (c_new < width)
    move = np.where(inside, r_new * width + c_new, states[:, None])  # [S, 4]
    goal_s = goal[0] * width + goal[1]
    enter_reward = np.full(S, step_reward, np.float64)
    enter_reward[goal_s] += goal_reward
    terminal = states == goal_s

    if slip == 0.0:
        next_state = move[:, :, None]  # [S, A, 1]
        prob = np.ones((S, A, 1))
    else:
        next_state = np.broadcast_to(move[:, None, :], (S, A, A))  # [S, A, K=4]: successor k = move k
        prob = np.broadcast_to((1.0 - slip) * np.eye(A) + slip / A, (S, A, A))
    R = np.sum(prob * enter_reward[next_state], axis=-1)  # [S, A], averaged over the slip
    # The goal is absorbing with zero reward.
    next_state = np.where(terminal[:, None, None], states[:, None, None], next_state)
    R[terminal] = 0.0
    p0 = np.zeros(S)
    p0[start[0] * width + start[1]] = 1.0
    return SparseMDP(next_state, prob, R, gamma, p0, terminal, dtype=dtype)


def sparse_expected_next(mdp: SparseMDP, v: Array) -> Array:
    """`E_{s' ~ p(.|s,a)}[(1 - terminal(s')) v(s')]` by gather. v: [S]. Returns [S, A]."""
    live_v = jnp.where(mdp.terminal, 0.0, v).astype(v.dtype)  # [S]
    return jnp.sum(mdp.prob * live_v[mdp.next_state], axis=-1)  # [S, A, K] -> [S, A]


def sparse_soft_bellman_backup(mdp: SparseMDP, q: Array, alpha: Array | float) -> Array:
    """One soft Bellman optimality backup (Eq. 24-25) in expectation over s'; hard (Eq. 26) at alpha = 0.

    `Q(s, a) <- r(s, a) + gamma sum_k prob[s, a, k] (1 - terminal) softrl.backups.soft_value(Q, alpha)[s'_k]`.
    q: [S, A]. Returns [S, A].
    """
    v = soft_value(q, alpha)  # [S]
    return mdp.R + mdp.gamma * sparse_expected_next(mdp, v)


@partial(jax.jit, static_argnames=("num_iters",))
def sparse_soft_backups(mdp: SparseMDP, q: Array, alpha: Array | float, num_iters: int) -> Array:
    """`num_iters` soft backups from `q` in one `lax.fori_loop` (no stopping test; for timing). Returns [S, A]."""
    alpha = jnp.asarray(alpha, q.dtype)
    return jax.lax.fori_loop(0, num_iters, lambda _, x: sparse_soft_bellman_backup(mdp, x, alpha), q)


def sparse_soft_value_iteration(
    mdp: SparseMDP,
    alpha: Array | float,
    tol: float = 1e-8,
    max_iters: int = 100_000,
    *,
    dtype: DType = jnp.float64,
) -> Solution:
    """Soft value iteration (Eq. 24-25) on a `SparseMDP`; hard value iteration at alpha = 0 (Eq. 26).

    The same iteration, stopping rule and outputs as `softrl.tabular.soft_value_iteration`
    (infinite horizon): from Q = 0 until the contraction bound `residual * gamma / (1 - gamma)` on
    the distance to the fixed point is within `tol max(1, max |Q_k|)`, or the residual is below
    `4 eps max(1, max |Q_k|)` or stalls at float rounding noise, or `max_iters`. Returns
    `Solution(q [S, A], v [S], policy [S, A], iterations, residual)`; terminal states have v = 0.

    `dtype`: float64 by default, honouring `tol` down to ~1e-12; `dtype=jnp.float32` for ~1M
    states (with an MDP built in float32), where memory and bandwidth matter more than digits
    beyond ~1e-5 relative. See the module docstring of `softrl.tabular.solvers` for where results go.
    """
    return solve_in(dtype, _sparse_soft_value_iteration, mdp, alpha, tol, max_iters=max_iters)


@partial(jax.jit, static_argnames=("max_iters",))
def _sparse_soft_value_iteration(mdp: SparseMDP, alpha: Array | float, tol: Array | float, max_iters: int) -> Solution:
    dtype = mdp.R.dtype
    alpha = jnp.asarray(alpha, dtype)
    q, iterations, residual = iterate_backup(
        lambda q: sparse_soft_bellman_backup(mdp, q, alpha), jnp.zeros_like(mdp.R), mdp.gamma, tol, max_iters
    )
    v = jnp.where(mdp.terminal, 0.0, soft_value(q, alpha)).astype(dtype)  # [S]
    return Solution(q, v, soft_policy(q, alpha), iterations, residual)
