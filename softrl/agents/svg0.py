"""SVG(0) (Eq. 2-3): a stochastic actor reparametrised with a *fixed* noise scale, no entropy anywhere.

`a = tanh(mu_phi(s) + sigma * z)`, `z ~ N(0, I)`, sigma = `--actor-std` (not learned).
The actor maximises `E_z[min_i Q_i(s, a)]`; the target is `min_i Q'_i(s', a')`, `a' ~ pi`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.agents import actor_critic
from softrl.agents.actor_critic import ActorAux, Nets, State
from softrl.agents.base import Agent, EnvSpec
from softrl.config import AgentConfig
from softrl.dists import tanh_gaussian_sample
from softrl.nets import GaussianActor
from softrl.types import Params

Array = jax.Array


def sample(nets: Nets, state: State, actor_params: Params, obs: Array, key: Array) -> tuple[Array, Array]:
    """`tanh(mu(s) + sigma z)` and its log-density (a tanh-Gaussian with std sigma). [..., d], [...]."""
    mean, _ = nets.actor(actor_params, obs)
    return tanh_gaussian_sample(key, mean, jnp.full_like(mean, jnp.log(state.hp.actor_std)))


def policy(nets: Nets, state: State, obs: Array, key: Array) -> tuple[Array, Array]:
    return sample(nets, state, state.actor, obs, key)


def mode(nets: Nets, state: State, obs: Array) -> Array:
    return jnp.tanh(nets.actor(state.actor, obs)[0])


def next_value(nets: Nets, state: State, next_obs: Array, key: Array) -> Array:
    next_action, _ = sample(nets, state, state.actor, next_obs, key)
    return jnp.min(nets.critic(state.target_critic, next_obs, next_action), axis=0)


def actor_loss(
    actor_params: Params, nets: Nets, state: State, critic_params: Params, obs: Array, key: Array
) -> tuple[Array, ActorAux | None]:
    """`-E_z[min_i Q_i(s, tanh(mu(s) + sigma z))]` (Eq. 3)."""
    action, _ = sample(nets, state, actor_params, obs, key)
    return -jnp.mean(jnp.min(nets.critic(critic_params, obs, action), axis=0)), None


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    actor = GaussianActor(cfg.hidden, spec.action_dim or 0, learn_std=False)
    return actor_critic.make(cfg, spec, "svg0", actor, actor_critic.Deltas(policy, mode, next_value, actor_loss))
