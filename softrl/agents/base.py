"""What every agent is: a bundle of pure functions over a frozen state pytree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

Array = jax.Array


class EnvSpec(NamedTuple):
    """What an agent needs to know about an environment. Observations are flat vectors."""

    obs_dim: int
    action_dim: int | None = None  # continuous: actions live in [-1, 1]^action_dim
    num_actions: int | None = None  # discrete: actions are 0..num_actions-1


class Agent(NamedTuple):
    """`init(key) -> state`, `act(state, obs, key, deterministic) -> action`,
    `update(state, batch, key) -> (state, metrics)`. All pure and jittable; vmap them over seeds."""

    name: str
    spec: EnvSpec
    init: Callable[[Array], Any]
    act: Callable[..., Array]
    update: Callable[..., tuple[Any, dict[str, Array]]]


def adam(lr: float) -> optax.GradientTransformation:
    """Adam whose learning rate lives in the optimiser state, so it can differ per vmapped seed."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr)


def polyak(target: Any, online: Any, tau: Array) -> Any:
    """`target <- tau * online + (1 - tau) * target`, leaf by leaf."""
    return jax.tree.map(lambda t, o: t + tau * (o - t), target, online)


def temperature_loss(log_alpha: Array, logp: Array, target_entropy: Array) -> Array:
    """Temperature objective in the log-alpha form (Haarnoja et al. 2018, Eq. 18):
    `-mean(log_alpha * (logp + target_entropy))`, logp held fixed.

    Its gradient lowers alpha when the entropy `-logp` exceeds the target and raises it
    otherwise. Optimising log-alpha keeps alpha > 0 without clipping.
    """
    return -jax.numpy.mean(log_alpha * jax.lax.stop_gradient(logp + target_entropy))
