"""SVG(0) (Eq. 2-3): a stochastic actor reparametrised with a *fixed* noise scale, no entropy anywhere.

`a = tanh(mu_phi(s) + sigma * z)`, `z ~ N(0, I)`, sigma = `--actor-std` (not learned).
The actor maximises `E_z[min_i Q_i(s, a)]`; the target is `min_i Q'_i(s', a')`, `a' ~ pi`.
"""

from __future__ import annotations

import jax.numpy as jnp

from softrl.agents import ddpg
from softrl.agents.base import Agent, EnvSpec
from softrl.config import AgentConfig
from softrl.dists import tanh_gaussian_sample
from softrl.nets import GaussianActor


def sample(nets, state, actor_params, obs, key):
    mean, _ = nets.actor(actor_params, obs)
    return tanh_gaussian_sample(key, mean, jnp.full_like(mean, jnp.log(state.hp.actor_std)))


def policy(nets, state, obs, key, deterministic=False):
    if deterministic:
        return jnp.tanh(nets.actor(state.actor, obs)[0])
    return sample(nets, state, state.actor, obs, key)[0]


def next_value(nets, state, next_obs, key):
    next_action, _ = sample(nets, state, state.actor, next_obs, key)
    return jnp.min(nets.critic(state.target_critic, next_obs, next_action), axis=0)


def actor_loss(actor_params, nets, state, critic_params, obs, key):
    """`-E_z[min_i Q_i(s, tanh(mu(s) + sigma z))]` (Eq. 3)."""
    action, _ = sample(nets, state, actor_params, obs, key)
    return -jnp.mean(jnp.min(nets.critic(critic_params, obs, action), axis=0)), {}


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    return ddpg.make(
        cfg,
        spec,
        name="svg0",
        actor_module=GaussianActor(cfg.hidden, spec.action_dim or 0, learn_std=False),
        policy=policy,
        next_value=next_value,
        actor_loss=actor_loss,
        uses_target_actor=False,
        num_critics=2,
    )
