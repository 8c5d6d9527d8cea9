"""Soft Actor-Critic = the shared actor-critic update + a tanh-Gaussian actor + the entropy terms (Section 3).

Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications": twin critics
with min, Polyak target critic, no target actor, and alpha fixed or tuned by
`base.temperature_loss` to a target entropy of -dim(A). The reward-scale form
(alpha fixed at 1, rewards scaled) is `--alpha 1 --reward-scale K`.
Everything else is `actor_critic.update`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.agents import actor_critic
from softrl.agents.actor_critic import ActorAux, Nets, NextValue, State
from softrl.agents.base import Agent, EnvSpec, temperature_loss
from softrl.config import AgentConfig
from softrl.dists import tanh_gaussian_mode, tanh_gaussian_sample
from softrl.nets import GaussianActor
from softrl.types import Params

Array = jax.Array


def sample(nets: Nets, actor_params: Params, obs: Array, key: Array) -> tuple[Array, Array]:
    """`a ~ pi(.|s)` reparametrised, and `log pi(a|s)`. [..., d], [...]."""
    mean, log_std = nets.actor(actor_params, obs)
    return tanh_gaussian_sample(key, mean, log_std)


def policy(nets: Nets, state: State, obs: Array, key: Array) -> tuple[Array, Array]:
    return sample(nets, state.actor, obs, key)


def mode(nets: Nets, state: State, obs: Array) -> Array:
    return tanh_gaussian_mode(nets.actor(state.actor, obs)[0])


def next_value(nets: Nets, state: State, next_obs: Array, key: Array) -> Array:
    """`min_i Q'_i(s', a') - alpha * log pi(a'|s')`, `a' ~ pi(.|s')`: entropy from t+1 on (Eq. 11-12). [B]"""
    next_action, next_logp = sample(nets, state.actor, next_obs, key)
    q = jnp.min(nets.critic(state.target_critic, next_obs, next_action), axis=0)
    return q - jnp.exp(state.log_alpha) * next_logp


def actor_loss(
    actor_params: Params, nets: Nets, state: State, critic_params: Params, obs: Array, key: Array
) -> tuple[Array, ActorAux]:
    """`E[alpha * log pi(a|s) - min_i Q_i(s, a)]`, `a ~ pi(.|s)` (Eq. 13)."""
    action, logp = sample(nets, actor_params, obs, key)
    q = jnp.min(nets.critic(critic_params, obs, action), axis=0)
    return jnp.mean(jnp.exp(state.log_alpha) * logp - q), ActorAux(logp=logp, entropy=-jnp.mean(logp))


def make(cfg: AgentConfig, spec: EnvSpec, *, name: str = "sac", next_value: NextValue = next_value) -> Agent:
    deltas = actor_critic.Deltas(policy, mode, next_value, actor_loss, temperature_loss)
    return actor_critic.make(cfg, spec, name, GaussianActor(cfg.hidden, spec.action_dim or 0), deltas)
