"""Builders for small finite MDPs: text-layout gridworlds, cliff walking, chains, random MDPs.

All builders return concrete `FiniteMDP`s (validated at construction); they
run eagerly in numpy and are not meant to be traced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np

from softrl.tabular.mdp import FiniteMDP

# Action order shared by the gridworlds and their gym wrapper: (d_row, d_col).
ACTION_NAMES = ("up", "right", "down", "left")
ACTION_DELTAS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)  # [4, 2]

CLIFF_WALK_LAYOUT = (
    "............",
    "............",
    "............",
    "SCCCCCCCCCCG",
)


class GridGeometry(NamedTuple):
    """Where each state of a gridworld lives, for plotting and observations.

    layout: the rows of the text layout. height, width: grid size.
    cell_of_state: [S, 2] int (row, col) of each state.
    state_of_cell: [height, width] int state index, -1 for walls.
    action_deltas: [4, 2] (d_row, d_col) of actions up, right, down, left.
    """

    layout: tuple[str, ...]
    height: int
    width: int
    cell_of_state: np.ndarray
    state_of_cell: np.ndarray
    action_deltas: np.ndarray

    def render(self, state: int | None = None) -> str:
        """The layout as text, with the agent drawn as 'A' at `state`."""
        rows = [list(r) for r in self.layout]
        if state is not None:
            r, c = self.cell_of_state[state]
            rows[r][c] = "A"
        return "\n".join("".join(r) for r in rows)


class GridWorld(NamedTuple):
    """`gridworld(...)` result; unpacks as `mdp, geometry = gridworld(...)`."""

    mdp: FiniteMDP
    geometry: GridGeometry


def _parse_layout(layout: str | Sequence[str]) -> tuple[str, ...]:
    rows = layout.strip("\n").split("\n") if isinstance(layout, str) else list(layout)
    rows = tuple(r.strip() for r in rows if r.strip())
    if not rows:
        raise ValueError("gridworld layout is empty")
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"gridworld layout rows must have equal length, got {[len(r) for r in rows]}")
    return rows


def gridworld(
    layout: str | Sequence[str],
    slip: float = 0.0,
    *,
    gamma: float = 0.95,
    step_reward: float = 0.0,
    goal_rewards: Mapping[str, float] | None = None,
    cliff_reward: float = -100.0,
    cliff_mode: str = "reset",
    horizon: int | None = None,
) -> GridWorld:
    """A gridworld MDP from a text layout.

    Cells: '.' empty, '#' wall, 'S' start (several: uniform p0), 'C' cliff,
    and goal characters (default just 'G' with reward 1; `goal_rewards` maps
    any other characters to their rewards, e.g. `{'G': 1.0, 'g': 0.3}`, so
    several goals are allowed). Each non-wall cell is a state, numbered in
    row-major order. Actions 0..3 = up, right, down, left; moving into a wall
    or off the grid leaves the agent in place.

    Slip: with probability `1 - slip` the intended move happens, otherwise a
    uniformly random one of the four (so the intended move has total
    probability `1 - slip + slip / 4`).

    Rewards are paid on entering a cell and averaged over the slip into
    `R[s, a]`: `step_reward` for every move from a non-terminal state, plus the
    goal's reward on entering a goal; a move into a cliff pays `cliff_reward`
    instead (so the classic cliff walk is -1 per step and -100 per fall).
    Goals are terminal (absorbing, zero reward, value 0). Cliffs either send
    the agent back to a start state drawn from p0 (`cliff_mode='reset'`, the
    cliff cell itself is then never occupied) or are terminal
    (`cliff_mode='terminate'`).

    Returns `GridWorld(mdp, geometry)`.
    """
    rows = _parse_layout(layout)
    goal_rewards = {"G": 1.0} if goal_rewards is None else dict(goal_rewards)
    _check(rows, slip, cliff_mode, goal_rewards)
    open_cells, state_of_cell, chars = _index_cells(rows)

    starts = chars == "S"
    if not starts.any():
        raise ValueError("gridworld layout needs at least one start cell 'S'")
    p0 = starts / starts.sum()  # [S]
    is_goal = np.isin(chars, list(goal_rewards))
    is_cliff = chars == "C"
    terminal = is_goal | (is_cliff & (cliff_mode == "terminate"))
    # Reward for a move that ends in each cell; falling off a cliff replaces the step reward.
    enter_reward = np.array([goal_rewards.get(ch, 0.0) for ch in chars]) + step_reward  # [S]
    enter_reward = np.where(is_cliff, cliff_reward, enter_reward)

    geometry = GridGeometry(rows, len(rows), len(rows[0]), open_cells, state_of_cell, ACTION_DELTAS.copy())
    P, R = _dynamics(geometry, slip, enter_reward, terminal, is_cliff & (cliff_mode == "reset"), p0)
    mdp = FiniteMDP(P, R, gamma, p0, horizon=horizon, terminal=terminal)
    return GridWorld(mdp, geometry)


def _check(rows: tuple[str, ...], slip: float, cliff_mode: str, goal_rewards: Mapping[str, float]) -> None:
    """Refuse an unknown cliff mode, a slip outside [0, 1] and a layout character that is not a cell kind."""
    if cliff_mode not in ("reset", "terminate"):
        raise ValueError(f"cliff_mode must be 'reset' or 'terminate', got {cliff_mode!r}")
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must lie in [0, 1], got {slip}")
    known = set(".#SC") | set(goal_rewards)
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch not in known:
                raise ValueError(
                    f"unknown layout character {ch!r} at row {r}, col {c}; known: {sorted(known)}"
                )


def _index_cells(rows: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(open_cells [S, 2] in row-major order, state_of_cell [height, width] (-1 for walls), chars [S])."""
    grid = np.array([list(r) for r in rows])  # [height, width] chars
    state_of_cell = -np.ones(grid.shape, dtype=np.int64)
    open_cells = np.argwhere(grid != "#")
    state_of_cell[open_cells[:, 0], open_cells[:, 1]] = np.arange(len(open_cells))
    return open_cells, state_of_cell, grid[open_cells[:, 0], open_cells[:, 1]]


def _dynamics(geo: GridGeometry, slip: float, enter_reward: np.ndarray, terminal: np.ndarray,
              resets: np.ndarray, p0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P [S, A, S] and R [S, A] with the slip averaged in; entering a `resets` cell restarts from p0."""
    S, A = len(geo.cell_of_state), 4

    def move(s: int, a: int) -> int:
        r, c = geo.cell_of_state[s] + ACTION_DELTAS[a]
        if 0 <= r < geo.height and 0 <= c < geo.width and geo.state_of_cell[r, c] >= 0:
            return int(geo.state_of_cell[r, c])
        return s

    P = np.zeros((S, A, S))
    R = np.zeros((S, A))
    for s in range(S):
        if terminal[s]:
            P[s, :, s] = 1.0  # absorbing, zero reward
            continue
        for a in range(A):
            for b in range(A):
                p = (1.0 - slip) * (a == b) + slip / A
                if p == 0.0:
                    continue
                t = move(s, b)
                R[s, a] += p * enter_reward[t]
                if resets[t]:
                    P[s, a] += p * p0  # fall off and restart
                else:
                    P[s, a, t] += p
    return P, R


def cliff_walk(
    slip: float = 0.0,
    *,
    gamma: float = 0.99,
    cliff_mode: str = "reset",
    horizon: int | None = None,
) -> GridWorld:
    """Sutton & Barto's 4x12 cliff walk: -1 per step, -100 and back to start on the cliff.

    The goal (bottom right) is terminal with no extra reward, so the optimal
    hard return is minus the length of the path hugging the cliff.
    """
    return gridworld(
        CLIFF_WALK_LAYOUT, slip, gamma=gamma, step_reward=-1.0, goal_rewards={"G": 0.0},
        cliff_reward=-100.0, cliff_mode=cliff_mode, horizon=horizon,
    )


def chain(
    n: int = 5,
    *,
    slip: float = 0.1,
    small_reward: float = 0.1,
    large_reward: float = 1.0,
    gamma: float = 0.9,
    horizon: int | None = None,
) -> FiniteMDP:
    """A chain of n states (continuing, no terminal state); actions 0 = left, 1 = right.

    Start in state 0. Taking 'left' in state 0 pays `small_reward` (a tempting
    local optimum); taking 'right' in state n-1 pays `large_reward`. Each move
    goes the opposite way with probability `slip` (walls clip at both ends).
    """
    if n < 2:
        raise ValueError(f"chain needs n >= 2 states, got {n}")
    P = np.zeros((n, 2, n))
    R = np.zeros((n, 2))
    for s in range(n):
        left, right = max(s - 1, 0), min(s + 1, n - 1)
        P[s, 0, left] += 1.0 - slip
        P[s, 0, right] += slip
        P[s, 1, right] += 1.0 - slip
        P[s, 1, left] += slip
    R[0, 0] = small_reward
    R[n - 1, 1] = large_reward
    p0 = np.eye(n)[0]
    return FiniteMDP(P, R, gamma, p0, horizon=horizon)


def random_mdp(
    key: jax.Array,
    num_states: int,
    num_actions: int,
    *,
    gamma: float = 0.9,
    concentration: float = 1.0,
    reward_scale: float = 1.0,
    horizon: int | None = None,
) -> FiniteMDP:
    """A random MDP: rows of P ~ Dirichlet(concentration), R ~ N(0, reward_scale^2), uniform p0.

    Small `concentration` gives nearly deterministic transitions. `key` must be
    concrete: its bits seed a numpy Generator (cheaper than compiling JAX's
    Dirichlet sampler for what is a one-off, eager construction).
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    P = rng.dirichlet(np.full(num_states, concentration), size=(num_states, num_actions))  # [S, A, S]
    R = reward_scale * rng.standard_normal((num_states, num_actions))  # [S, A]
    p0 = np.full(num_states, 1.0 / num_states)
    return FiniteMDP(P, R, gamma, p0, horizon=horizon)
