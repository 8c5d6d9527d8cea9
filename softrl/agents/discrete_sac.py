"""Discrete SAC (Christodoulou 2019) = `ddpg.update` with a categorical actor and exact expectations.

With finitely many actions, the expectations over `a ~ pi` that SAC estimates by sampling
(Eq. 11-13) are sums we can compute exactly:
- critic target (Eq. 21): `V(s') = sum_a' pi(a'|s') [min_i Q'_i(s', a') - alpha log pi(a'|s')]`;
  with the optimal actor `pi = softmax(Q' / alpha)` (Eq. 20) this is `soft_value` (Eq. 22-24);
- actor loss (Eq. 13-14): `E_s sum_a pi(a|s) [alpha log pi(a|s) - min_i Q_i(s, a)]`;
- temperature loss: `base.temperature_loss` with `logp = sum_a pi log pi = -H(pi(.|s))`, the exact
  per-state entropy.
Twin critics (`DiscreteQ`, num_critics 2) with min, a Polyak target critic, no target actor.
Everything else, including the update order, is `ddpg.update`: `Nets.critic(params, obs, action)`
gathers `Q(s, a)` at the integer actions ([num_critics, B]), which is all `ddpg.critic_loss` needs.

Target entropy (the known trap). The continuous heuristic `-dim(A)` is meaningless here, and
`0.98 * log|A|` (Christodoulou's choice) asks for a near-uniform policy: with 2 actions that is
entropy 0.68 of a possible 0.69, reachable only while Q(s, .) is nearly flat, so alpha keeps rising,
the entropy bonus inflates Q, and alpha diverges. The default here is
`target_entropy_scale * log|A|` with `AgentConfig.target_entropy_scale` (0.5), see `make`'s
docstring for what we observed on CartPole.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import optax

from softrl.agents import ddpg
from softrl.agents.base import Agent, EnvSpec, adam, temperature_loss
from softrl.agents.dqn import check_discrete, default_target_entropy, initial_log_alpha
from softrl.backups import log_soft_policy, soft_policy
from softrl.config import AgentConfig
from softrl.nets import CategoricalActor, DiscreteQ
from softrl.types import Metrics, Params

Array = jax.Array


def gather_critic(q_fn: Callable, params: Params, obs: Array, action: Array | None = None) -> Array:
    """All `Q_i(s, .)` -> [num_critics, B, A] when `action` is None, else `Q_i(s, a)` -> [num_critics, B].

    q_fn(params, obs [B, O]) -> [num_critics, B, A], e.g. `DiscreteQ.apply`.
    """
    q = q_fn(params, obs)  # [n, B, A]
    if action is None:
        return q
    return jnp.take_along_axis(q, action.astype(jnp.int32)[None, :, None], axis=-1)[..., 0]


def policy_probs(nets: ddpg.Nets, actor_params: Params, obs: Array) -> tuple[Array, Array]:
    """`pi(.|s)` and `log pi(.|s)` from the actor's logits (softmax at temperature 1). [B, A] each."""
    logits = nets.actor(actor_params, obs)
    return soft_policy(logits, 1.0), log_soft_policy(logits, 1.0)


def policy(nets: ddpg.Nets, state: ddpg.State, obs: Array, key: Array, deterministic: bool = False) -> Array:
    """`a ~ pi(.|s)`, or its mode when deterministic. obs [O] -> int32 []."""
    logits = nets.actor(state.actor, obs[None])[0]  # [A]
    if deterministic:
        return jnp.argmax(logits).astype(jnp.int32)
    return jax.random.categorical(key, logits).astype(jnp.int32)


def next_value(nets: ddpg.Nets, state: ddpg.State, next_obs: Array, key: Array) -> Array:
    """`sum_a' pi(a'|s') [min_i Q'_i(s', a') - alpha log pi(a'|s')]`, exact (Eq. 21). [B]"""
    del key
    probs, logp = policy_probs(nets, state.actor, next_obs)  # [B, A]
    q = jnp.min(nets.critic(state.target_critic, next_obs), axis=0)  # [B, A]
    return jnp.sum(probs * (q - jnp.exp(state.log_alpha) * logp), axis=-1)


def actor_loss(
    actor_params: Params, nets: ddpg.Nets, state: ddpg.State, critic_params: Params, obs: Array, key: Array
) -> tuple[Array, Metrics]:
    """`mean_s sum_a pi(a|s) [alpha log pi(a|s) - min_i Q_i(s, a)]` (Eq. 13-14), exact over actions.

    aux["logp"] is the per-state `sum_a pi log pi = -H(pi(.|s))` [B], for the temperature step.
    """
    del key
    probs, logp = policy_probs(nets, actor_params, obs)  # [B, A]
    # The critic is a fixed baseline here: ddpg.update differentiates the actor only, and the
    # stop_gradient makes that hold for any caller too.
    q = jax.lax.stop_gradient(jnp.min(nets.critic(critic_params, obs), axis=0))  # [B, A]
    alpha = jnp.exp(state.log_alpha)
    loss = jnp.mean(jnp.sum(probs * (alpha * logp - q), axis=-1))
    expected_logp = jnp.sum(probs * logp, axis=-1)  # [B]
    return loss, {"logp": expected_logp, "entropy": -jnp.mean(expected_logp)}


def init(
    key: Array, *, cfg: AgentConfig, spec: EnvSpec, actor_module, critic_module, nets: ddpg.Nets
) -> ddpg.State:
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((1, spec.obs_dim), jnp.float32)
    actor = actor_module.init(k_actor, obs)
    critic = critic_module.init(k_critic, obs)
    log_alpha = initial_log_alpha(cfg)
    f32 = partial(jnp.asarray, dtype=jnp.float32)
    hp = ddpg.Hypers(
        gamma=f32(cfg.gamma),
        tau=f32(cfg.tau),
        reward_scale=f32(cfg.reward_scale),
        target_entropy=f32(default_target_entropy(cfg, spec.num_actions or 1)),
        # Unused by discrete-sac; kept so the state has the continuous family's layout.
        explore_std=f32(cfg.explore_std),
        target_noise=f32(cfg.target_noise),
        target_noise_clip=f32(cfg.target_noise_clip),
        actor_std=f32(cfg.actor_std),
    )
    return ddpg.State(
        actor=actor,
        critic=critic,
        target_actor=None,
        # A copy, not an alias: the loop donates the state, and XLA cannot donate one buffer twice.
        target_critic=jax.tree.map(jnp.copy, critic),
        actor_opt=nets.actor_opt.init(actor),
        critic_opt=nets.critic_opt.init(critic),
        log_alpha=log_alpha,
        alpha_opt=nets.alpha_opt.init(log_alpha),
        hp=hp,
        step=jnp.zeros((), jnp.int32),
    )


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    """Discrete SAC. Target entropy default: `cfg.target_entropy_scale * log|A|` (0.5 * log|A|).

    Observed on CartPole-v1 (2 actions, log|A| = 0.69; hidden (128, 128), lr 1e-3, batch 128,
    tau 0.02, init alpha 1, 2 seeds per row, 15k env steps unless noted):
    - 0.98 * log|A|: alpha grew ~4x per 2k steps to ~1.3e5, Q to ~1.5e6; training returns
      (near-uniform behaviour) fell from ~270 to ~40.
    - 0.8 * log|A|: alpha ~360-670 and still growing ~2x per 2k steps, Q ~1e4.
    - 0.5 * log|A| (default): alpha settled in 0.15-0.5; 6 of 6 seeds (25k steps) had a
      deterministic evaluation return of 500 from 20k steps on, 5 of 6 already at 15k.
    - 0.3 * log|A|: alpha steady at 0.2-0.25, evaluation 500 and 295 at 15k steps.
    The continuous heuristic `-dim(A) = -1` is below any entropy, so alpha would only ever shrink.
    A target entropy close to log|A| can only be met by a near-uniform policy, i.e. by an alpha
    large against the Q gaps; but alpha's entropy bonus enters Q and widens those gaps, so alpha
    has to grow again: a feedback loop. Half of the maximum entropy leaves the policy free to
    prefer an action (0.35 nats with 2 actions is roughly 90/10) and the loop does not start.
    Set `--target-entropy` to override.
    """
    num_actions = check_discrete("discrete-sac", spec)
    cfg.validate()
    actor_module = CategoricalActor(cfg.hidden, num_actions)
    critic_module = DiscreteQ(cfg.hidden, num_actions, cfg.num_critics or 2)
    temp_loss = temperature_loss if cfg.resolved_alpha() is None else None
    nets = ddpg.Nets(
        actor=actor_module.apply,
        critic=partial(gather_critic, critic_module.apply),
        actor_opt=adam(cfg.lr),
        critic_opt=adam(cfg.lr),
        # A fixed alpha still has a state slot (so a vmapped sweep can mix values) but never moves.
        alpha_opt=optax.set_to_zero() if temp_loss is None else adam(cfg.alpha_lr or cfg.lr),
    )
    return Agent(
        name="discrete-sac",
        spec=spec,
        # Jitted so that `vmap(init)` compiles once instead of dispatching (and compiling) op by op.
        init=jax.jit(
            partial(
                init, cfg=cfg, spec=spec, actor_module=actor_module, critic_module=critic_module, nets=nets
            )
        ),
        act=lambda state, obs, key, deterministic=False: policy(nets, state, obs, key, deterministic),
        update=partial(
            ddpg.update, nets=nets, next_value=next_value, actor_loss=actor_loss, temperature_loss=temp_loss
        ),
    )
