"""Discrete SAC (Christodoulou 2019) = `actor_critic.update` with a categorical actor and exact expectations.

With finitely many actions, the expectations over `a ~ pi` that SAC estimates by sampling
(Eq. 11-13) are sums we can compute exactly:
- critic target (Eq. 21): `V(s') = sum_a' pi(a'|s') [min_i Q'_i(s', a') - alpha log pi(a'|s')]`;
  with the optimal actor `pi = softmax(Q' / alpha)` (Eq. 20) this is `soft_value` (Eq. 22-24);
- actor loss (Eq. 13-14): `E_s sum_a pi(a|s) [alpha log pi(a|s) - min_i Q_i(s, a)]`;
- temperature loss: `base.temperature_loss` with `logp = sum_a pi log pi = -H(pi(.|s))`, the exact
  per-state entropy.
Twin critics (`DiscreteQ`, num_critics 2) with min, a Polyak target critic, no target actor.
Everything else, including the update order, is `actor_critic.update`: `Nets.critic(params, obs, action)`
gathers `Q(s, a)` at the integer actions ([num_critics, B]), which is all `actor_critic.critic_loss` needs.

Target entropy (the known trap). The continuous heuristic `-dim(A)` is below any entropy, so alpha
would only ever shrink; `0.98 * log|A|` (Christodoulou's choice) asks for a near-uniform policy, met
only by an alpha large against the Q gaps, but alpha's entropy bonus enters Q and widens those gaps,
so alpha has to grow again: a feedback loop in which alpha and Q diverge. The default here is
`target_entropy_scale * log|A|` (`AgentConfig.target_entropy_scale`, 0.5): half of the maximum entropy
leaves the policy free to prefer an action (0.35 nats with 2 actions is roughly 90/10) and the loop does
not start. What we observed on CartPole with several scales is in benchmarks/RESULTS.md, section 8.
Set `--target-entropy` to override.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from softrl.agents import actor_critic
from softrl.agents.actor_critic import ActorAux, Nets, State
from softrl.agents.base import Agent, EnvSpec, flat_batch, spec_torso, temperature_loss
from softrl.agents.dqn import check_discrete, default_target_entropy
from softrl.backups import log_soft_policy, soft_policy
from softrl.config import AgentConfig
from softrl.nets import CategoricalActor, DiscreteQ
from softrl.types import Params

Array = jax.Array


def gather_critic(q_fn: Callable[..., Any], params: Params, obs: Array, action: Array | None = None) -> Array:
    """All `Q_i(s, .)` -> [num_critics, B, A] when `action` is None, else `Q_i(s, a)` -> [num_critics, B].

    q_fn(params, obs [B, O]) -> [num_critics, B, A], e.g. `DiscreteQ.apply`.
    """
    q = q_fn(params, obs)  # [n, B, A]
    if action is None:
        return q
    return jnp.take_along_axis(q, action.astype(jnp.int32)[None, :, None], axis=-1)[..., 0]


def policy_probs(nets: Nets, actor_params: Params, obs: Array) -> tuple[Array, Array]:
    """`pi(.|s)` and `log pi(.|s)` from the actor's logits (softmax at temperature 1). [B, A] each."""
    logits = nets.actor(actor_params, obs)
    return soft_policy(logits, 1.0), log_soft_policy(logits, 1.0)


def policy(nets: Nets, state: State, obs: Array, key: Array) -> tuple[Array, Array]:
    """`a ~ pi(.|s)` and `log pi(a|s)`. obs [..., O] -> int32 [...], [...]."""
    logits = flat_batch(partial(nets.actor, state.actor), obs, nets.obs_ndim)  # [..., A]
    action = jax.random.categorical(key, logits).astype(jnp.int32)
    logp = jnp.take_along_axis(log_soft_policy(logits, 1.0), action[..., None], axis=-1)[..., 0]
    return action, logp


def mode(nets: Nets, state: State, obs: Array) -> Array:
    """`argmax_a pi(a|s)`. obs [..., O] -> int32 [...]."""
    return jnp.argmax(flat_batch(partial(nets.actor, state.actor), obs, nets.obs_ndim), axis=-1).astype(jnp.int32)


def next_value(nets: Nets, state: State, next_obs: Array, key: Array) -> Array:
    """`sum_a' pi(a'|s') [min_i Q'_i(s', a') - alpha log pi(a'|s')]`, exact (Eq. 21). [B]"""
    del key
    probs, logp = policy_probs(nets, state.actor, next_obs)  # [B, A]
    q = jnp.min(nets.critic(state.target_critic, next_obs), axis=0)  # [B, A]
    return jnp.sum(probs * (q - jnp.exp(state.log_alpha) * logp), axis=-1)


def actor_loss(
    actor_params: Params, nets: Nets, state: State, critic_params: Params, obs: Array, key: Array
) -> tuple[Array, ActorAux]:
    """`mean_s sum_a pi(a|s) [alpha log pi(a|s) - min_i Q_i(s, a)]` (Eq. 13-14), exact over actions.

    aux.logp is the per-state `sum_a pi log pi = -H(pi(.|s))` [B], for the temperature step.
    """
    del key
    probs, logp = policy_probs(nets, actor_params, obs)  # [B, A]
    # The critic is a fixed baseline here: the shared update differentiates the actor only, and the
    # stop_gradient makes that hold for any caller too.
    q = jax.lax.stop_gradient(jnp.min(nets.critic(critic_params, obs), axis=0))  # [B, A]
    alpha = jnp.exp(state.log_alpha)
    loss = jnp.mean(jnp.sum(probs * (alpha * logp - q), axis=-1))
    expected_logp = jnp.sum(probs * logp, axis=-1)  # [B]
    return loss, ActorAux(logp=expected_logp, entropy=-jnp.mean(expected_logp))


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    """Discrete SAC. Target entropy default: `cfg.target_entropy_scale * log|A|` (see the module docstring)."""
    num_actions = check_discrete("discrete-sac", spec)
    cfg.validate()
    torso = spec_torso(spec)
    critic_module = DiscreteQ(cfg.hidden, num_actions, cfg.num_critics or 2, torso=torso)
    return actor_critic.assemble(
        "discrete-sac",
        cfg,
        spec,
        actor_critic.Deltas(policy, mode, next_value, actor_loss, temperature_loss),
        actor_critic.Networks(
            CategoricalActor(cfg.hidden, num_actions, torso=torso),
            critic_module,
            partial(gather_critic, critic_module.apply),
        ),
        uses_target_actor=False,
        policy_delay=1,
        target_entropy=default_target_entropy(cfg, num_actions),
    )
