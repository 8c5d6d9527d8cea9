"""TD3 (Fujimoto et al. 2018) = DDPG + twin critics with min + target policy smoothing + a delayed actor."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.agents import ddpg
from softrl.agents.actor_critic import Nets, State
from softrl.agents.base import Agent, EnvSpec
from softrl.config import AgentConfig

Array = jax.Array


def next_value(nets: Nets, state: State, next_obs: Array, key: Array) -> Array:
    """`min_i Q'_i(s', clip(mu'(s') + clip(eps, -c, c), -1, 1))`, eps ~ N(0, sigma^2). [B]"""
    action = nets.actor(state.target_actor, next_obs)
    noise = state.hp.target_noise * jax.random.normal(key, action.shape, action.dtype)
    noise = jnp.clip(noise, -state.hp.target_noise_clip, state.hp.target_noise_clip)
    next_action = jnp.clip(action + noise, -1.0, 1.0)
    return jnp.min(nets.critic(state.target_critic, next_obs, next_action), axis=0)


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    return ddpg.make(cfg, spec, name="td3", next_value=next_value, num_critics=2, policy_delay=2)
