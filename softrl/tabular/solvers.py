"""Exact and sample-based solvers for MaxEnt RL on finite MDPs (Lecture 17).

Objective (Eq. 5): `J(pi) = E_pi[sum_t gamma^t (r(s_t, a_t) - alpha log pi(a_t | s_t))]`.

Q convention (Eq. 9-11): the soft Q counts the entropy bonus from `t + 1` on,
`Q(s, a) = r(s, a) + gamma E_{s'}[V(s')]` with
`V(s) = sum_a pi(a|s) (Q(s, a) - alpha log pi(a|s))`, so that
`J(pi) = E_{p0}[V(s_0)]` (Eq. 10). For the optimal actor `softmax(Q / alpha)`
(Eq. 20) `V = alpha logsumexp(Q / alpha)` (Eq. 24-25), and `alpha -> 0` gives
the hard `max` backup (Eq. 26).

Every backup goes through `softrl.backups` (`soft_value`, `soft_policy`,
`entropy`, `td_target`), the same functions the deep agents use.

Terminal states (`mdp.terminal`) have value 0: nothing is collected after the
episode ends, matching `td_target`'s `(1 - terminated)` cut.

Finite horizon (`mdp.horizon = H`): arrays gain a leading time axis,
`q[t]`, `v[t]`, `policy[t]` for decision step `t = 0 .. H-1`, i.e. with
`H - t` decisions left; `q[H-1] = R` and `v[H] = 0` (implicit).

Precision: every solver takes `dtype=jnp.float64` (the default) and computes in float64 without
switching the process to x64 (`softrl.tabular.precision`): the deep agents stay float32. Called
eagerly, results are JAX float64 arrays under x64 and numpy float64 arrays otherwise. Pass
`dtype=jnp.float32` for MDPs too large for float64 (the 1M-state `SparseMDP` case), accepting an error
of a few `eps * max|Q| / (1 - gamma)` (~1e-5 relative at gamma = 0.99). Inside `jit`/`vmap` they
compute in the enclosing trace's precision (wrap the transformation in `float64()` for float64).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from softrl.backups import entropy, soft_policy, soft_value, td_target
from softrl.tabular.mdp import FiniteMDP
from softrl.tabular.precision import solve_in

Array = jax.Array
DType = object  # a JAX / numpy float dtype, e.g. jnp.float64

# Floor on the relative stopping tolerance, in units of the dtype's epsilon:
# the float fixed point of the backup wobbles by a few ulps of |Q|.
_EPS_FLOOR = 4
# Below this many eps (relative to |Q|), a residual that stops shrinking counts as converged.
_NOISE = 1024


class Solution(NamedTuple):
    """Result of `soft_value_iteration`.

    Infinite horizon: q [S, A], v [S], policy [S, A].
    Finite horizon H: q [H, S, A], v [H, S], policy [H, S, A] (index t = decision step).
    iterations: [] int, number of backups applied. residual: [] final sup-norm
    change `max |Q_k - Q_{k-1}|` (0 for backward induction, which is exact).
    """

    q: Array
    v: Array
    policy: Array
    iterations: Array
    residual: Array


def _policy(q: Array, alpha: Array) -> Array:
    """`softrl.backups.soft_policy` (Eq. 20), which centres Q itself (stable for tiny alpha, large Q)."""
    return soft_policy(q, alpha)


def _live(mdp: FiniteMDP, dtype) -> Array:
    """[S] 1 for non-terminal states, 0 for terminal ones."""
    return 1.0 - mdp.terminal.astype(dtype)


def _expected_next(mdp: FiniteMDP, v: Array) -> Array:
    """`E_{s' ~ P(.|s,a)}[(1 - terminal(s')) v(s')]`. v: [S]. Returns [S, A]."""
    live = _live(mdp, v.dtype)
    return jnp.einsum("sat,t->sa", mdp.P, live * v)


def soft_bellman_backup(mdp: FiniteMDP, q: Array, alpha: Array | float) -> Array:
    """One soft Bellman optimality backup (Eq. 24-25), in expectation over s'.

    `Q(s, a) <- r(s, a) + gamma E_{s'}[(1 - terminal(s')) alpha logsumexp(Q(s', .) / alpha)]`.
    With `alpha == 0` this is the hard Q-learning backup (Eq. 26). q: [S, A]. Returns [S, A].
    """
    v = soft_value(q, alpha)  # [S]
    return mdp.R + mdp.gamma * _expected_next(mdp, v)


def soft_value_iteration(
    mdp: FiniteMDP,
    alpha: Array | float,
    tol: float = 1e-8,
    max_iters: int = 100_000,
    *,
    dtype: DType = jnp.float64,
) -> Solution:
    """Soft value iteration (Eq. 24-25); exact hard value iteration when `alpha == 0` (Eq. 26).

    Infinite horizon: iterates the soft backup from Q = 0 in a `lax.while_loop`
    until the distance to the fixed point is guaranteed to be within `tol`
    relative to the scale of Q: the backup is a gamma-contraction, so
    `max |Q_k - Q*| <= residual * gamma / (1 - gamma)` with the sup-norm
    residual `max |Q_k - Q_{k-1}|`, and the loop stops once that bound is
    `<= tol * max(1, max |Q_k|)` (or at `max_iters`). In float64 (the default
    `dtype`) this holds down to `tol ~ 1e-12` at gamma = 0.99. A residual below
    `4 eps max(1, max|Q|)` always stops (eps: the dtype's machine epsilon), and
    so does one that stops shrinking at the rounding-noise level (no new
    minimum for ~`2 / (1 - gamma)` steps while below `1024 eps max|Q|`; in
    exact arithmetic it shrinks by gamma every step). In float32 (eps ~ 1.2e-7)
    that is what ends the loop: Q is then about as accurate as float32 allows,
    a few `eps * max|Q| / (1 - gamma)`.

    `dtype`: the precision of the computation (module docstring); float32
    only for MDPs too large for float64 (use `sparse_soft_value_iteration`).

    Finite horizon H: exact backward induction over H steps (gamma may be 1);
    outputs are time-indexed, see `Solution`.

    The policy is `softmax(Q / alpha)` (Eq. 20), greedy with ties split evenly
    at `alpha == 0`. Terminal states get v = 0 (and a uniform policy).
    Pure (the body is jitted, `max_iters` static); vmappable over `alpha`, `tol`
    and the MDP's leaves, e.g. under `float64()`
    `jax.vmap(lambda g: soft_value_iteration(mdp.replace(gamma=g), alpha))(gammas)`.
    """
    return solve_in(dtype, _soft_value_iteration, mdp, alpha, tol, max_iters=max_iters)


@partial(jax.jit, static_argnames=("max_iters",))
def _soft_value_iteration(mdp: FiniteMDP, alpha: Array | float, tol: Array | float, max_iters: int) -> Solution:
    dtype = mdp.R.dtype
    alpha = jnp.asarray(alpha, dtype=dtype)
    live = _live(mdp, dtype)
    if mdp.horizon is not None:
        return _soft_backward_induction(mdp, alpha)

    q, iterations, residual = iterate_backup(
        lambda q: soft_bellman_backup(mdp, q, alpha), jnp.zeros_like(mdp.R), mdp.gamma, tol, max_iters
    )
    v = live * soft_value(q, alpha)  # [S]
    return Solution(q, v, _policy(q, alpha), iterations, residual)


def iterate_backup(
    backup: Callable[[Array], Array], q0: Array, gamma: Array | float, tol: Array | float, max_iters: int
) -> tuple[Array, Array, Array]:
    """Iterates the gamma-contraction `backup` from `q0`; returns `(q, iterations, residual)`.

    Stops once the contraction bound `max |Q_k - Q*| <= residual * gamma / (1 - gamma)` is within
    `tol max(1, max |Q_k|)`, once `residual <= _EPS_FLOOR eps max(1, max |Q_k|)`, at `max_iters`, or
    once the residual stalls at rounding noise. Shared by the dense and the sparse solvers.
    """
    dtype = q0.dtype
    eps = jnp.finfo(dtype).eps
    gamma = jnp.asarray(gamma, dtype)
    # residual <= tol (1 - gamma) / gamma  <=>  bound <= tol; gamma = 0 is exact after one backup (inf).
    res_tol = jnp.asarray(tol, dtype) * (1.0 - gamma) / jnp.maximum(gamma, jnp.finfo(dtype).tiny)
    tol_eff = jnp.maximum(res_tol, _EPS_FLOOR * eps)
    # In exact arithmetic the residual shrinks by gamma every step (contraction). Near
    # eps * scale, rounding noise takes over: stop once no new smallest residual has
    # appeared for `patience` steps, about the time the contraction needs to beat 1 ulp.
    patience = 8 + jnp.ceil(2.0 / (1.0 - jnp.minimum(gamma, 0.999))).astype(jnp.int32)

    def cond(carry):
        q, it, res, best, since_best = carry
        scale = jnp.maximum(1.0, jnp.max(jnp.abs(q)))
        stalled = (since_best >= patience) & (best <= _NOISE * eps * scale)
        return (res > tol_eff * scale) & (it < max_iters) & ~stalled

    def body(carry):
        q, it, _, best, since_best = carry
        q_new = backup(q)  # [S, A]
        res = jnp.max(jnp.abs(q_new - q))
        improved = res < best
        return q_new, it + 1, res, jnp.minimum(res, best), jnp.where(improved, 0, since_best + 1)

    inf = jnp.asarray(jnp.inf, dtype)
    zero = jnp.asarray(0, jnp.int32)
    q, iterations, residual, _, _ = jax.lax.while_loop(cond, body, (q0, zero, inf, inf, zero))
    return q, iterations, residual


def _soft_backward_induction(mdp: FiniteMDP, alpha: Array) -> Solution:
    """Finite-horizon soft Bellman recursion, t = H-1 down to 0 (Eq. 24 with V_H = 0)."""
    dtype = mdp.R.dtype
    live = _live(mdp, dtype)

    def step(v_next, _):
        q = mdp.R + mdp.gamma * _expected_next(mdp, v_next)  # [S, A]
        v = live * soft_value(q, alpha)  # [S]
        return v, (q, v, _policy(q, alpha))

    v_end = jnp.zeros(mdp.num_states, dtype)
    _, (q, v, pi) = jax.lax.scan(step, v_end, None, length=mdp.horizon, reverse=True)
    return Solution(q, v, pi, jnp.asarray(mdp.horizon, jnp.int32), jnp.zeros((), dtype))


def policy_evaluation(
    mdp: FiniteMDP, policy: Array, alpha: Array | float, *, dtype: DType = jnp.float64
) -> tuple[Array, Array]:
    """Exact soft evaluation of a fixed policy (Eq. 9-11), in `dtype` (module docstring).

    Solves `V(s) = sum_a pi(a|s) (Q(s, a) - alpha log pi(a|s))` and
    `Q = R + gamma P ((1 - terminal) V)`, so Q counts the entropy bonus only
    from t+1 on (Eq. 9) and `J(pi) = p0 . V` (Eq. 10). With `alpha = 0` this is
    ordinary policy evaluation of the reward alone.

    Infinite horizon: one linear solve `(I - gamma M P_pi M) V = M (r_pi + alpha H_pi)`
    with `M = diag(1 - terminal)`. policy: [S, A]. Returns q [S, A], v [S].
    Finite horizon H: backward recursion; policy [S, A] (stationary) or
    [H, S, A]. Returns q [H, S, A], v [H, S].
    """
    return solve_in(dtype, _policy_evaluation, mdp, policy, alpha)


@jax.jit
def _policy_evaluation(mdp: FiniteMDP, policy: Array, alpha: Array | float) -> tuple[Array, Array]:
    dtype = mdp.R.dtype
    alpha = jnp.asarray(alpha, dtype=dtype)
    policy = jnp.asarray(policy, dtype=dtype)
    live = _live(mdp, dtype)

    def immediate(pi):  # [S, A] -> [S]: expected reward plus entropy bonus at this step
        return jnp.sum(pi * mdp.R, axis=-1) + alpha * entropy(pi)

    if mdp.horizon is not None:
        pis = jnp.broadcast_to(policy, (mdp.horizon,) + mdp.R.shape)  # [H, S, A]

        def step(v_next, pi):
            q = mdp.R + mdp.gamma * _expected_next(mdp, v_next)  # [S, A]
            v = live * (jnp.sum(pi * q, axis=-1) + alpha * entropy(pi))  # [S]
            return v, (q, v)

        _, (q, v) = jax.lax.scan(step, jnp.zeros(mdp.num_states, dtype), pis, reverse=True)
        return q, v

    p_pi = jnp.einsum("sa,sat->st", policy, mdp.P)  # [S, S]
    n = mdp.num_states
    lhs = jnp.eye(n, dtype=dtype) - mdp.gamma * live[:, None] * p_pi * live[None, :]
    v = jnp.linalg.solve(lhs, live * immediate(policy))  # [S]
    q = mdp.R + mdp.gamma * _expected_next(mdp, v)  # [S, A]
    return q, v


def start_value(mdp: FiniteMDP, v: Array, *, dtype: DType = jnp.float64) -> Array:
    """`E_{s0 ~ p0}[V(s0)]`: the objective of Eq. 10. v: [S] or [H, S] (uses t = 0). In `dtype`."""
    return solve_in(dtype, _start_value, mdp, v)


def _start_value(mdp: FiniteMDP, v: Array) -> Array:
    v0 = v[0] if mdp.horizon is not None else v
    return jnp.dot(mdp.p0, v0)


# ----------------------------------------------------------------------------
# Sample-based soft Q-learning (Eq. 25)
# ----------------------------------------------------------------------------


class QLearningResult(NamedTuple):
    """q: [S, A] final estimate. update_norm: [steps] `max |Q_t - Q_{t-1}|`.
    error: [steps] `max |Q_t - q_ref|` if `q_ref` was given, else NaN."""

    q: Array
    update_norm: Array
    error: Array


def soft_q_learning(
    mdp: FiniteMDP,
    alpha: Array | float,
    steps: int,
    lr: float,
    key: Array,
    *,
    batch_size: int | None = None,
    lr_decay: float = 1.0,
    lr_power: float = 0.6,
    q_init: Array | None = None,
    q_ref: Array | None = None,
    dtype: DType = jnp.float64,
) -> QLearningResult:
    """Tabular soft Q-learning: the sampled soft backup of Eq. 25.

    `Q(s, a) <- Q(s, a) + lr_n * (r + gamma (1 - terminal(s')) soft_value(Q(s', .)) - Q(s, a))`,
    the target being `softrl.backups.td_target`. Transitions come from a
    generative model of the MDP (no behaviour policy, no episodes): each of the
    `steps` iterations of a `lax.scan` draws
      - `batch_size=None`: every (s, a) pair once (synchronous Q-learning), or
      - `batch_size=B`: B pairs uniformly at random, with replacement,
    and for each pair samples `s' ~ P(.|s, a)`; `r = R(s, a)`. Duplicate pairs
    in a batch are averaged. Infinite-horizon MDPs only.

    Step size: per pair, `lr_n = lr / (1 + lr_decay * n) ** lr_power` where `n`
    is the number of earlier updates of that pair; `lr_power` in (0.5, 1]
    satisfies the Robbins-Monro conditions, `lr_power = 0` is a constant lr.
    With alpha == 0 this is ordinary Q-learning.

    Computed in `dtype` (module docstring). Returns
    `QLearningResult(q [S, A], update_norm [steps], error [steps])`.
    """
    return solve_in(dtype, _soft_q_learning, mdp, alpha, steps, lr, key, batch_size=batch_size,
                    lr_decay=lr_decay, lr_power=lr_power, q_init=q_init, q_ref=q_ref)


@partial(jax.jit, static_argnames=("steps", "batch_size"))
def _soft_q_learning(
    mdp: FiniteMDP,
    alpha: Array | float,
    steps: int,
    lr: Array | float,
    key: Array,
    *,
    batch_size: int | None,
    lr_decay: Array | float,
    lr_power: Array | float,
    q_init: Array | None,
    q_ref: Array | None,
) -> QLearningResult:
    if mdp.horizon is not None:
        raise ValueError("soft_q_learning supports infinite-horizon MDPs only (horizon=None)")
    dtype = mdp.R.dtype
    S, A = mdp.R.shape
    alpha = jnp.asarray(alpha, dtype=dtype)
    q0 = jnp.zeros((S, A), dtype) if q_init is None else jnp.asarray(q_init, dtype)
    logits_p = jnp.log(mdp.P)  # [S, A, S]; -inf for impossible s' is fine for categorical

    def step(carry, key_t):
        q, counts = carry
        k_pairs, k_next = jax.random.split(key_t)
        if batch_size is None:
            s = jnp.repeat(jnp.arange(S), A)  # [S*A]
            a = jnp.tile(jnp.arange(A), S)  # [S*A]
        else:
            idx = jax.random.randint(k_pairs, (batch_size,), 0, S * A)
            s, a = idx // A, idx % A  # [B]
        s_next = jax.random.categorical(k_next, logits_p[s, a])  # [B]
        target = td_target(mdp.R[s, a], mdp.terminal[s_next], mdp.gamma, soft_value(q[s_next], alpha))
        td_err = target - q[s, a]  # [B]
        # Average the TD errors of duplicated pairs so a pair moves at most once per step.
        err_sum = jnp.zeros((S, A), dtype).at[s, a].add(td_err)
        hits = jnp.zeros((S, A), dtype).at[s, a].add(1.0)
        rate = lr / (1.0 + lr_decay * counts) ** lr_power  # [S, A]
        q_new = q + jnp.where(hits > 0, rate * err_sum / jnp.maximum(hits, 1.0), 0.0)
        counts = counts + (hits > 0)
        err = jnp.max(jnp.abs(q_new - q_ref)) if q_ref is not None else jnp.asarray(jnp.nan, dtype)
        return (q_new, counts), (jnp.max(jnp.abs(q_new - q)), err)

    keys = jax.random.split(key, steps)
    (q, _), (update_norm, error) = jax.lax.scan(step, (q0, jnp.zeros((S, A), dtype)), keys)
    return QLearningResult(q, update_norm, error)


# ----------------------------------------------------------------------------
# Distribution matching (Eq. 29-34)
# ----------------------------------------------------------------------------


class TrajectoryDistribution(NamedTuple):
    """All N = (S A)^H trajectories of a finite-horizon MDP (Eq. 29).

    states, actions: [N, H] int. log_prob: [N] `log pi(tau)`, the full
    trajectory log-probability under the policy (Eq. 29). log_dynamics: [N]
    `log p(tau) = log p0(s0) + sum_t log p(s_{t+1} | s_t, a_t)`, the policy's
    factors removed. returns: [N] undiscounted `sum_t r(s_t, a_t)`.
    log_policy: [N] `sum_t log pi(a_t | s_t)` over non-terminal steps.
    Impossible trajectories have log-probability -inf.
    """

    states: Array
    actions: Array
    log_prob: Array
    log_dynamics: Array
    returns: Array
    log_policy: Array


def trajectory_distribution(
    mdp: FiniteMDP, policy: Array, max_trajectories: int = 2_000_000, *, dtype: DType = jnp.float64
) -> TrajectoryDistribution:
    """Enumerates every trajectory `(s0, a0, ..., s_{H-1}, a_{H-1})` and its probability (Eq. 29).

    For small finite-horizon MDPs only: raises ValueError if `(S A)^H` exceeds
    `max_trajectories`. policy: [S, A] or [H, S, A].

    Terminal states end the episode: from a terminal state on, the trajectory
    is padded with action 0 deterministically. The padding is a dynamics
    factor (in `log_dynamics`), not a policy factor, so no reward or entropy
    is counted after termination, consistent with the solvers' `V = 0` there.
    Log-probabilities and returns are computed in `dtype` (module docstring).
    """
    return solve_in(dtype, _trajectory_distribution, mdp, policy, max_trajectories)


def _trajectory_distribution(mdp: FiniteMDP, policy: Array, max_trajectories: int) -> TrajectoryDistribution:
    if mdp.horizon is None:
        raise ValueError("trajectory_distribution needs a finite-horizon MDP (horizon=H)")
    S, A = mdp.R.shape
    H = mdp.horizon
    n = (S * A) ** H
    if n > max_trajectories:
        raise ValueError(
            f"enumerating (S*A)^H = ({S}*{A})^{H} = {n} trajectories exceeds "
            f"max_trajectories={max_trajectories}; use a smaller MDP or horizon"
        )
    # Mixed-radix enumeration: trajectory i has digits (s0, a0, s1, a1, ...).
    digits = np.unravel_index(np.arange(n), (S, A) * H)
    states = jnp.asarray(np.stack(digits[0::2], axis=1))  # [N, H]
    actions = jnp.asarray(np.stack(digits[1::2], axis=1))  # [N, H]
    return _trajectory_terms(mdp, jnp.asarray(policy, mdp.R.dtype), states, actions)


@jax.jit
def _trajectory_terms(mdp: FiniteMDP, policy: Array, states: Array, actions: Array) -> TrajectoryDistribution:
    """Log-probabilities and returns of the enumerated trajectories. states, actions: [N, H]."""
    H = states.shape[1]
    pis = jnp.broadcast_to(policy, (H,) + mdp.R.shape)  # [H, S, A]
    term = mdp.terminal[states]  # [N, H]
    log_p0, log_P, log_pis = jnp.log(mdp.p0), jnp.log(mdp.P), jnp.log(pis)  # -inf where impossible
    log_dyn = log_p0[states[:, 0]]  # [N]
    if H > 1:
        log_dyn = log_dyn + jnp.sum(log_P[states[:, :-1], actions[:, :-1], states[:, 1:]], axis=1)
    # After termination only the padding action 0 is possible.
    pad = jnp.where(term & (actions != 0), -jnp.inf, 0.0)  # [N, H]
    log_dyn = log_dyn + jnp.sum(pad, axis=1)
    step_logpi = log_pis[jnp.arange(H)[None, :], states, actions]  # [N, H]
    log_policy = jnp.sum(jnp.where(term, 0.0, step_logpi), axis=1)  # [N]
    returns = jnp.sum(mdp.R[states, actions], axis=1)  # [N]; R = 0 at terminal states
    log_prob = log_dyn + log_policy  # only -inf terms are added, never +inf, so no NaN
    return TrajectoryDistribution(states, actions, log_prob, log_dyn, returns, log_policy)


class DistributionMatching(NamedTuple):
    """Quantities of Eq. 29-34 for one policy (all scalars except the [N] probabilities).

    kl: `KL(pi(tau) || p*(tau))` computed directly from the enumeration (Eq. 31).
    log_z: `log Z`, the normaliser of `p*(tau) ∝ p(tau) exp(sum_t r / alpha)` (Eq. 30).
    objective: `J = E_pi[sum_t (r_t - alpha log pi(a_t|s_t))]`, undiscounted (Eq. 34).
    With these, `kl = -objective / alpha + log_z` (for alpha = 1: `KL = -J + log Z`).
    policy_probs, target_probs: [N] `pi(tau)` and `p*(tau)`.
    """

    kl: Array
    log_z: Array
    objective: Array
    policy_probs: Array
    target_probs: Array


def distribution_matching_check(
    mdp: FiniteMDP, policy: Array, alpha: float = 1.0, max_trajectories: int = 2_000_000, *,
    dtype: DType = jnp.float64,
) -> DistributionMatching:
    """Reverse KL between the policy's trajectory distribution and `p*` (Eq. 29-34).

    The lecture's derivation is undiscounted with alpha = 1, so `mdp.gamma` is
    ignored here and rewards are summed plainly; `alpha` generalises `p*` to
    `exp(sum r / alpha)`. The soft-optimal policy of `mdp.replace(gamma=1.0)`
    at the same alpha maximises J and so minimises the KL; the minimum is 0
    (pi(tau) = p*(tau)) when dynamics and start state are deterministic. With
    stochastic dynamics `p*` is not reachable by any policy and the minimum KL
    is positive. Computed in `dtype` (module docstring).
    """
    return solve_in(dtype, _distribution_matching_check, mdp, policy, alpha, max_trajectories)


def _distribution_matching_check(
    mdp: FiniteMDP, policy: Array, alpha: Array | float, max_trajectories: int
) -> DistributionMatching:
    traj = _trajectory_distribution(mdp, policy, max_trajectories)
    return _matching_terms(traj, jnp.asarray(alpha, mdp.R.dtype))


@jax.jit
def _matching_terms(traj: TrajectoryDistribution, alpha: Array) -> DistributionMatching:
    log_target_unnorm = traj.log_dynamics + traj.returns / alpha  # [N]
    log_z = jax.scipy.special.logsumexp(log_target_unnorm)
    log_target = log_target_unnorm - log_z
    probs = jnp.exp(traj.log_prob)  # [N]
    support = probs > 0
    # 0 log 0 = 0: sum only over trajectories the policy can produce.
    kl = jnp.sum(jnp.where(support, probs * (traj.log_prob - log_target), 0.0))
    objective = jnp.sum(jnp.where(support, probs * (traj.returns - alpha * traj.log_policy), 0.0))
    return DistributionMatching(kl, log_z, objective, probs, jnp.exp(log_target))


# ----------------------------------------------------------------------------
# Satisficing / bounded rationality (Eq. 28)
# ----------------------------------------------------------------------------


class SatisficingResult(NamedTuple):
    """Result of `satisficing`. Scalars unless noted.

    alpha: the chosen temperature (0 means the greedy, hard-optimal policy).
    policy: [S, A] (or [H, S, A]) `softmax(Q*_alpha / alpha)`.
    expected_return: `E_{p0}[sum_t gamma^t r_t]` of that policy (no entropy).
    discounted_entropy: `E_{p0}[sum_t gamma^t H(pi(.|s_t))]` of that policy.
    threshold: the return constraint `R_max - epsilon |R_max|`; r_max: optimal hard return.
    frontier_alphas, frontier_returns, frontier_entropies: [K] the return/entropy
    trade-off traced by alpha on a log grid (returns non-increasing, entropies
    non-decreasing in alpha).
    """

    alpha: Array
    policy: Array
    expected_return: Array
    discounted_entropy: Array
    threshold: Array
    r_max: Array
    frontier_alphas: Array
    frontier_returns: Array
    frontier_entropies: Array


def return_and_entropy(
    mdp: FiniteMDP, alpha: Array | float, tol: float = 1e-8, max_iters: int = 100_000, *,
    dtype: DType = jnp.float64,
) -> tuple[Array, Array, Array]:
    """For the soft-optimal policy at `alpha`: (return, discounted entropy, policy) from p0.

    Policy evaluation is linear in alpha, so evaluating at alpha = 0 gives the
    reward part and at alpha = 1 minus that the discounted entropy part.
    `tol`, `max_iters` go to `soft_value_iteration`; computed in `dtype` (module docstring).
    """
    return solve_in(dtype, _return_and_entropy, mdp, alpha, tol, max_iters)


def _return_and_entropy(
    mdp: FiniteMDP, alpha: Array | float, tol: Array | float, max_iters: int
) -> tuple[Array, Array, Array]:
    pi = _soft_value_iteration(mdp, alpha, tol, max_iters=max_iters).policy
    _, v_r = _policy_evaluation(mdp, pi, 0.0)
    _, v_1 = _policy_evaluation(mdp, pi, 1.0)
    ret = _start_value(mdp, v_r)
    return ret, _start_value(mdp, v_1) - ret, pi


def satisficing(
    mdp: FiniteMDP,
    epsilon: float,
    *,
    alpha_min: float | None = None,
    alpha_max: float | None = None,
    bisection_steps: int = 40,
    frontier_size: int = 25,
    tol: float = 1e-8,
    dtype: DType = jnp.float64,
) -> SatisficingResult:
    """Bounded rationality by satisficing (Eq. 28), solved over the MaxEnt family.

    Maximises the discounted entropy subject to
    `E[sum_t gamma^t r_t] >= threshold`, `threshold = R_max - epsilon |R_max|`
    (which equals the lecture's `(1 - epsilon) R_max` when `R_max >= 0`, and
    still loosens the constraint as epsilon grows when `R_max < 0`). R_max is
    the optimal hard return `p0 . V*_{alpha=0}`.

    Along the soft-optimal family `pi_alpha = softmax(Q*_alpha / alpha)` the
    return is non-increasing and the discounted entropy non-decreasing in alpha
    (compare the optimality of pi_a1 at a1 and of pi_a2 at a2), so the best
    feasible member is the largest feasible alpha. It is found by bisection on
    log(alpha) in [alpha_min, alpha_max] (defaults 1e-4 and 1e3 times
    max |R|). If even alpha_min is infeasible, or `epsilon <= 0`, the greedy
    policy (alpha = 0, ties split evenly) is returned; if alpha_max is
    feasible, alpha_max is returned. Because the return loss of a soft policy
    shrinks like `exp(-gap / alpha)`, the chosen alpha goes to 0 only like
    `1 / log(1 / epsilon)` as epsilon -> 0.

    Jittable (epsilon may be traced); computed in `dtype` (module docstring).
    Returns a `SatisficingResult`.
    """
    return solve_in(dtype, _satisficing, mdp, epsilon, alpha_min=alpha_min, alpha_max=alpha_max,
                    bisection_steps=bisection_steps, frontier_size=frontier_size, tol=tol)


@partial(jax.jit, static_argnames=("bisection_steps", "frontier_size"))
def _satisficing(
    mdp: FiniteMDP,
    epsilon: Array | float,
    *,
    alpha_min: Array | float | None,
    alpha_max: Array | float | None,
    bisection_steps: int,
    frontier_size: int,
    tol: Array | float,
) -> SatisficingResult:
    dtype = mdp.R.dtype
    r_scale = jnp.maximum(jnp.max(jnp.abs(mdp.R)), jnp.finfo(dtype).tiny)
    lo = jnp.log(1e-4 * r_scale if alpha_min is None else jnp.asarray(alpha_min, dtype))
    hi = jnp.log(1e3 * r_scale if alpha_max is None else jnp.asarray(alpha_max, dtype))
    def evaluate(a):  # -> (return, discounted entropy, policy) of the soft-optimal policy at alpha = a
        return _return_and_entropy(mdp, a, tol, 100_000)

    # One batched solve gives R_max (alpha = 0), the frontier and both ends of the bracket.
    grid = jnp.exp(jnp.linspace(lo, hi, frontier_size))  # [K]; grid[0] = alpha_min, grid[-1] = alpha_max
    rets, ents, pis = jax.vmap(evaluate)(jnp.concatenate([jnp.zeros(1, dtype), grid]))  # [K+1], ...
    r_max = rets[0]
    threshold = r_max - epsilon * jnp.abs(r_max)
    f_ret, f_ent = rets[1:], ents[1:]  # [K]

    def at(i):
        return rets[i], ents[i], pis[i]

    def bisect(_, carry):
        b_lo, b_hi, best = carry  # b_lo feasible (when any alpha is), b_hi infeasible; best = values at b_lo
        mid = 0.5 * (b_lo + b_hi)
        out = evaluate(jnp.exp(mid))
        ok = out[0] >= threshold
        best = jax.tree.map(lambda new, old: jnp.where(ok, new, old), out, best)
        return jnp.where(ok, mid, b_lo), jnp.where(ok, b_hi, mid), best

    b_lo, _, at_b_lo = jax.lax.fori_loop(0, bisection_steps, bisect, (lo, hi, at(1)))
    # epsilon = 0 admits only optimal returns: the alpha -> 0 member, not one whose
    # return loss ~ exp(-gap / alpha) merely hides below rounding.
    positive = epsilon > 0
    take_max = positive & (f_ret[-1] >= threshold)
    take_bisection = positive & ~take_max & (f_ret[0] >= threshold)

    def choose(at_max, at_bisection, at_zero):
        return jnp.where(take_max, at_max, jnp.where(take_bisection, at_bisection, at_zero))

    alpha = choose(grid[-1], jnp.exp(b_lo), jnp.zeros((), dtype))
    ret, ent, pi = jax.tree.map(choose, at(-1), at_b_lo, at(0))
    return SatisficingResult(alpha, pi, ret, ent, threshold, r_max, grid, f_ret, f_ent)
