"""Action distributions, written out (no TFP / distrax).

Tanh-squashed Gaussian (SAC, Haarnoja et al. 2018, Appendix C): `u ~ N(mean, std)`,
`a = tanh(u)` in [-1, 1]^d. The change of variables gives
`log pi(a) = log N(u) - sum_i log(1 - tanh(u_i)^2)` and we use the stable identity
`log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u))`, which never takes the log of
something that rounds to zero (unlike `log(1 - tanh(u)^2 + eps)`, biased and NaN-prone).
Actions are rescaled from [-1, 1] to the env's [low, high] outside the distribution.
"""

from __future__ import annotations

import math
from typing import overload

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def squash_log_std(raw: Array) -> Array:
    """Map an unbounded network output into [LOG_STD_MIN, LOG_STD_MAX] smoothly.

    A hard clip kills the gradient outside the range; the tanh rescale keeps it.
    """
    return LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)


def gaussian_log_prob(u: Array, mean: Array, log_std: Array) -> Array:
    """Diagonal Gaussian log-density summed over the last axis. [..., d] -> [...]."""
    z = (u - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z * z - log_std - _HALF_LOG_2PI, axis=-1)


def tanh_log_det(u: Array) -> Array:
    """`sum_i log(1 - tanh(u_i)^2)`, computed stably. [..., d] -> [...]."""
    return jnp.sum(2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


def tanh_gaussian_sample(key: Array, mean: Array, log_std: Array) -> tuple[Array, Array]:
    """Reparametrised sample `a = tanh(mean + std * eps)` and its log-prob (Eq. 3, 13).

    mean, log_std: [..., d]. Returns action [..., d] in (-1, 1) and logp [...].
    Gradients flow to mean and log_std through the fixed noise `eps`.
    """
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    u = mean + jnp.exp(log_std) * eps
    logp = gaussian_log_prob(u, mean, log_std) - tanh_log_det(u)
    return jnp.tanh(u), logp


def tanh_gaussian_log_prob(action: Array, mean: Array, log_std: Array) -> Array:
    """Log-prob of a given squashed action. Clips away from +-1 so atanh stays finite."""
    a = jnp.clip(action, -1.0 + 1e-6, 1.0 - 1e-6)
    u = jnp.arctanh(a)
    return gaussian_log_prob(u, mean, log_std) - tanh_log_det(u)


def tanh_gaussian_mode(mean: Array) -> Array:
    """Deterministic action used for evaluation: `tanh(mean)`."""
    return jnp.tanh(mean)


@overload
def scale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray: ...
@overload
def scale_action(action: Array, low: Array | np.ndarray, high: Array | np.ndarray) -> Array: ...
def scale_action(action, low, high):
    """Affine map from [-1, 1] to [low, high] (works for non-symmetric bounds).

    The clip only absorbs float rounding, so the result always lies in the env's Box. A numpy action
    gives a numpy result (on the host: no device dispatch per env step), a jax one a jax result.
    """
    xp = np if isinstance(action, np.ndarray) else jnp
    return xp.clip(low + 0.5 * (action + 1.0) * (high - low), low, high)


def unscale_action(action: Array, low: Array, high: Array) -> Array:
    """Inverse of `scale_action`: env units to [-1, 1]."""
    return 2.0 * (action - low) / (high - low) - 1.0


def categorical_entropy(logits: Array) -> Array:
    """Entropy (nats) of `softmax(logits)` on the last axis."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
