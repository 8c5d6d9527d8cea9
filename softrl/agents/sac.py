"""Soft Actor-Critic = DDPG + a tanh-Gaussian actor + the entropy terms (Section 3).

Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications": twin critics
with min, Polyak target critic, no target actor, and alpha fixed or tuned by
`base.temperature_loss` to a target entropy of -dim(A). The reward-scale form
(alpha fixed at 1, rewards scaled) is `--alpha 1 --reward-scale K`.
Everything else is `ddpg.update`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.agents import ddpg
from softrl.agents.base import Agent, EnvSpec, temperature_loss
from softrl.config import AgentConfig
from softrl.dists import tanh_gaussian_mode, tanh_gaussian_sample
from softrl.nets import GaussianActor

Array = jax.Array


def sample(nets: ddpg.Nets, state: ddpg.State, actor_params, obs: Array, key: Array) -> tuple[Array, Array]:
    """`a ~ pi(.|s)` reparametrised, and `log pi(a|s)`. [B, d], [B]."""
    mean, log_std = nets.actor(actor_params, obs)
    return tanh_gaussian_sample(key, mean, log_std)


def policy(nets, state, obs, key, deterministic=False):
    if deterministic:
        return tanh_gaussian_mode(nets.actor(state.actor, obs)[0])
    return sample(nets, state, state.actor, obs, key)[0]


def next_value(nets, state, next_obs, key):
    """`min_i Q'_i(s', a') - alpha * log pi(a'|s')`, `a' ~ pi(.|s')`: entropy from t+1 on (Eq. 11-12). [B]"""
    next_action, next_logp = sample(nets, state, state.actor, next_obs, key)
    q = jnp.min(nets.critic(state.target_critic, next_obs, next_action), axis=0)
    return q - jnp.exp(state.log_alpha) * next_logp


def actor_loss(actor_params, nets, state, critic_params, obs, key):
    """`E[alpha * log pi(a|s) - min_i Q_i(s, a)]`, `a ~ pi(.|s)` (Eq. 13)."""
    action, logp = sample(nets, state, actor_params, obs, key)
    q = jnp.min(nets.critic(critic_params, obs, action), axis=0)
    return jnp.mean(jnp.exp(state.log_alpha) * logp - q), {"logp": logp, "entropy": -jnp.mean(logp)}


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    return ddpg.make(
        cfg,
        spec,
        name="sac",
        actor_module=GaussianActor(cfg.hidden, spec.action_dim or 0),
        policy=policy,
        next_value=next_value,
        actor_loss=actor_loss,
        temperature_loss=temperature_loss,
        uses_target_actor=False,
        num_critics=2,
    )


