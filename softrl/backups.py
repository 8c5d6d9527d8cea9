"""Bellman backups shared by the tabular solvers and the deep agents.

One module, tested once: `soft_value_iteration` in `softrl.tabular` and the
`soft-dqn` / `discrete-sac` agents call exactly these functions.

Lecture equations (Lecture 17, "Stochastic Actors and Maximum Entropy RL"):
- `soft_policy`: the optimal MaxEnt actor `softmax(Q / alpha)` (Eq. 20).
- `soft_value`: the soft backup `alpha * logsumexp(Q / alpha)` (Eq. 24-25).
- `hard_value`: its `alpha -> 0` limit, `max_a Q` (Eq. 26).
- `td_target`: `r + gamma * (1 - terminated) * V(s')` (Eq. 12, 21-24).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _as_float(q: Array, alpha: Array | float) -> tuple[Array, Array]:
    """Integer Q tables are promoted to float, so a fractional alpha is never truncated."""
    q = jnp.asarray(q)
    if not jnp.issubdtype(q.dtype, jnp.floating):
        q = q.astype(jnp.float32)
    return q, jnp.asarray(alpha, dtype=q.dtype)


def hard_value(q: Array, alpha: Array | float = 0.0) -> Array:
    """`max_a Q(s, a)` over the last axis: Q-learning's backup (Eq. 26).

    `alpha` is accepted and ignored so that `hard_value` and `soft_value` are
    interchangeable wherever a backup is passed in as a function.
    """
    del alpha
    return jnp.max(q, axis=-1)


def soft_value(q: Array, alpha: Array | float) -> Array:
    """Soft state value `alpha * logsumexp(q / alpha)` over the last axis (Eq. 24-25).

    Numerically safe by construction: the max is pulled out before the
    exponential, so it is stable for tiny alpha and large Q, and it is exactly
    `max q` when `alpha == 0` (Eq. 26), also under `jit` and `vmap` where
    alpha is traced. Bounds: `max q <= soft_value <= max q + alpha * log|A|`.

    q: [..., A]; alpha: scalar or broadcastable to [...]. Returns [...].
    """
    q, alpha = _as_float(q, alpha)
    q_max = jnp.max(q, axis=-1)
    positive = alpha > 0
    safe_alpha = jnp.where(positive, alpha, 1.0)
    # Both where-branches are computed; the safe divisor keeps the unused one finite.
    z = (q - jax.lax.stop_gradient(q_max)[..., None]) / jnp.expand_dims(safe_alpha, -1)
    soft = jax.lax.stop_gradient(q_max) + safe_alpha * jnp.log(jnp.sum(jnp.exp(z), axis=-1))
    return jnp.where(positive, soft, q_max)


def soft_policy(q: Array, alpha: Array | float) -> Array:
    """Optimal MaxEnt actor `softmax(q / alpha)` over the last axis (Eq. 20).

    With `alpha == 0` it is the greedy policy, with ties split evenly (the
    limit of the softmax as alpha -> 0+). q: [..., A]. Returns [..., A].
    """
    q, alpha = _as_float(q, alpha)
    positive = alpha > 0
    safe_alpha = jnp.where(positive, alpha, 1.0)
    # Centre before dividing: q / alpha alone overflows float32 for tiny alpha and large Q.
    centred = q - jax.lax.stop_gradient(jnp.max(q, axis=-1, keepdims=True))
    soft = jax.nn.softmax(centred / jnp.expand_dims(safe_alpha, -1), axis=-1)
    is_max = (q == jnp.max(q, axis=-1, keepdims=True)).astype(q.dtype)
    greedy = is_max / jnp.sum(is_max, axis=-1, keepdims=True)
    return jnp.where(jnp.expand_dims(positive, -1), soft, greedy)


def log_soft_policy(q: Array, alpha: Array | float) -> Array:
    """`log softmax(q / alpha)` (Eq. 18-20), for entropies and soft Bellman residuals. Needs alpha > 0."""
    q, alpha = _as_float(q, alpha)
    centred = q - jax.lax.stop_gradient(jnp.max(q, axis=-1, keepdims=True))
    return jax.nn.log_softmax(centred / jnp.expand_dims(alpha, -1), axis=-1)


def entropy(probs: Array) -> Array:
    """Shannon entropy (nats) of categorical distributions on the last axis, with `0 log 0 = 0`."""
    logp = jnp.log(jnp.where(probs > 0, probs, 1.0))
    return -jnp.sum(probs * logp, axis=-1)


def td_target(
    reward: Array, terminated: Array, gamma: Array | float, next_value: Array
) -> Array:
    """One-step TD target `r + gamma * (1 - terminated) * V(s')` (Eq. 12).

    Only true termination cuts the bootstrap: a time-limit truncation is
    stored with `terminated = False` and so bootstraps. All arrays: [B].
    The target carries no gradient.
    """
    not_done = 1.0 - terminated.astype(reward.dtype)
    return jax.lax.stop_gradient(reward + gamma * not_done * next_value)
