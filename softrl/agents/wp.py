"""Williams & Peng (1991): the one-step entropy bonus (Eq. 4) = SAC without entropy in the target.

SAC's actor, actor loss and temperature step: the actor maximises `Q - alpha log pi` now, but the
critic target is `r + gamma * min_i Q'_i(s', a')`: entropy of later steps is never planned for.
Compare with `sac.next_value` (Eq. 11-12): the two differ exactly by `- alpha log pi(a'|s')`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.agents import sac
from softrl.agents.actor_critic import Nets, State
from softrl.agents.base import Agent, EnvSpec
from softrl.config import AgentConfig

Array = jax.Array


def next_value(nets: Nets, state: State, next_obs: Array, key: Array) -> Array:
    """`min_i Q'_i(s', a')`, `a' ~ pi(.|s')`: no entropy term. [B]"""
    next_action, _ = sac.sample(nets, state.actor, next_obs, key)
    return jnp.min(nets.critic(state.target_critic, next_obs, next_action), axis=0)


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    return sac.make(cfg, spec, name="wp", next_value=next_value)
