"""DDPG (Lillicrap et al. 2016; Eq. 1): a deterministic actor `mu(s)`, a target actor, one critic.

Its deltas to `actor_critic.update`: the target `Q'(s', mu'(s'))` (`next_value`), the actor loss
`-Q_1(s, mu(s))` (`actor_loss`), Gaussian exploration noise (`policy`), and no temperature.
TD3 (`td3`) reuses all of it but the target.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from softrl.agents import actor_critic
from softrl.agents.actor_critic import ActorAux, Nets, NextValue, State
from softrl.agents.base import Agent, EnvSpec
from softrl.config import AgentConfig
from softrl.nets import DeterministicActor
from softrl.types import Params

Array = jax.Array
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def policy(nets: Nets, state: State, obs: Array, key: Array) -> tuple[Array, Array]:
    """`clip(mu(s) + sigma * z, -1, 1)`, `z ~ N(0, I)`, sigma = `--explore-std`; and `log N(sigma z; 0, sigma^2 I)`.

    The clipped action has point masses at +-1 and so no density; `logp` is the Gaussian log-density of
    the exploration noise (the density of the action before the clip). [..., d], [...]
    """
    mu = nets.actor(state.actor, obs)
    z = jax.random.normal(key, mu.shape, mu.dtype)
    action = jnp.clip(mu + state.hp.explore_std * z, -1.0, 1.0)
    logp = jnp.sum(-0.5 * z * z - jnp.log(state.hp.explore_std) - _HALF_LOG_2PI, axis=-1)
    return action, logp


def mode(nets: Nets, state: State, obs: Array) -> Array:
    """`mu(s)`, no noise. [..., d]"""
    return nets.actor(state.actor, obs)


def next_value(nets: Nets, state: State, next_obs: Array, key: Array) -> Array:
    """`min_i Q'_i(s', mu'(s'))` from the target actor and target critics. [B]"""
    del key
    next_action = nets.actor(state.target_actor, next_obs)
    return jnp.min(nets.critic(state.target_critic, next_obs, next_action), axis=0)


def actor_loss(
    actor_params: Params, nets: Nets, state: State, critic_params: Params, obs: Array, key: Array
) -> tuple[Array, ActorAux | None]:
    """`-E_s[Q_1(s, mu(s))]` (Eq. 1). Only the actor is differentiated: critic weights get no gradient."""
    del key
    q = nets.critic(critic_params, obs, nets.actor(actor_params, obs))[0]
    return -jnp.mean(q), None


def make(
    cfg: AgentConfig,
    spec: EnvSpec,
    *,
    name: str = "ddpg",
    next_value: NextValue = next_value,
    num_critics: int = 1,
    policy_delay: int = 1,
) -> Agent:
    deltas = actor_critic.Deltas(policy, mode, next_value, actor_loss)
    actor = DeterministicActor(cfg.hidden, spec.action_dim or 0)
    return actor_critic.make(
        cfg, spec, name, actor, deltas, uses_target_actor=True, num_critics=num_critics, policy_delay=policy_delay
    )
