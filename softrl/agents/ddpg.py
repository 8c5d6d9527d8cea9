"""DDPG (Eq. 1) and the one actor-critic update the whole continuous family shares.

`update` is written once. An algorithm specialises it by passing in its own
- `next_value(nets, state, next_obs, key) -> [B]`: the value of s' in the TD target,
- `actor_loss(actor_params, nets, state, critic_params, obs, key) -> (loss, aux)`,
- `temperature_loss` (or None) for alpha,
and by choosing its actor network and `policy`. TD3, SVG(0), Williams & Peng and SAC
live in their own modules as these deltas only; none holds a copy of `update`.

Update order (documented choice, as in SAC): critic, then actor against the *new*
critic, then temperature with the actor step's log-probs, then the Polyak targets.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from softrl.agents.base import Agent, EnvSpec, adam, polyak
from softrl.backups import td_target
from softrl.config import AgentConfig
from softrl.nets import DeterministicActor, QEnsemble
from softrl.types import Metrics, Params, Transition

Array = jax.Array


@struct.dataclass
class Hypers:
    """Scalars a user may sweep with vmap: they live in the state, not in static config."""

    gamma: Array
    tau: Array
    reward_scale: Array
    target_entropy: Array
    explore_std: Array
    target_noise: Array
    target_noise_clip: Array
    actor_std: Array


@struct.dataclass
class State:
    actor: Params
    critic: Params  # stacked twin critics: every leaf [num_critics, ...]
    target_actor: Params | None  # None for algorithms whose target uses the online actor (SAC)
    target_critic: Params
    actor_opt: Any
    critic_opt: Any
    log_alpha: Array  # [] alpha = exp(log_alpha); unused by ddpg/td3/svg0
    alpha_opt: Any
    hp: Hypers
    step: Array  # [] int32, gradient updates done


class Nets(NamedTuple):
    actor: Callable[..., Any]  # (params, obs [B, O]) -> action [B, d] or (mean, log_std)
    critic: Callable[..., Array]  # (params, obs [B, O], action [B, d]) -> [num_critics, B]
    actor_opt: optax.GradientTransformation
    critic_opt: optax.GradientTransformation
    alpha_opt: optax.GradientTransformation


# ----- DDPG's own pieces: deterministic actor, target actor --------------------------------------------


def policy(nets: Nets, state: State, obs: Array, key: Array, deterministic: bool = False) -> Array:
    """`mu(s)` plus Gaussian exploration noise, clipped to [-1, 1]."""
    action = nets.actor(state.actor, obs)
    if deterministic:
        return action
    noise = state.hp.explore_std * jax.random.normal(key, action.shape, action.dtype)
    return jnp.clip(action + noise, -1.0, 1.0)


def next_value(nets: Nets, state: State, next_obs: Array, key: Array) -> Array:
    """`min_i Q'_i(s', mu'(s'))` from the target actor and target critics. [B]"""
    del key
    next_action = nets.actor(state.target_actor, next_obs)
    return jnp.min(nets.critic(state.target_critic, next_obs, next_action), axis=0)


def actor_loss(
    actor_params: Params, nets: Nets, state: State, critic_params: Params, obs: Array, key: Array
) -> tuple[Array, Metrics]:
    """`-E_s[Q_1(s, mu(s))]` (Eq. 1). Only the actor is differentiated: critic weights get no gradient."""
    del key
    q = nets.critic(critic_params, obs, nets.actor(actor_params, obs))[0]
    return -jnp.mean(q), {}


# ----- the shared update --------------------------------------------------------------------------------


def critic_loss(critic_params: Params, nets: Nets, batch: Transition, target: Array) -> tuple[Array, Array]:
    """Sum over critics of `0.5 * mean((Q_i(s, a) - y)^2)` (SAC paper, Eq. 5). target: [B]."""
    q = nets.critic(critic_params, batch.obs, batch.action)  # [num_critics, B]
    return 0.5 * jnp.sum(jnp.mean((q - target) ** 2, axis=-1)), q


def update(
    state: State,
    batch: Transition,
    key: Array,
    *,
    nets: Nets,
    next_value: Callable = next_value,
    actor_loss: Callable = actor_loss,
    temperature_loss: Callable | None = None,
    policy_delay: int = 1,
) -> tuple[State, Metrics]:
    """One gradient step on critic, actor (every `policy_delay` steps), temperature and targets."""
    k_next, k_actor = jax.random.split(key)
    hp = state.hp
    target = td_target(
        hp.reward_scale * batch.reward, batch.terminated, hp.gamma, next_value(nets, state, batch.next_obs, k_next)
    )
    (c_loss, q), c_grad = jax.value_and_grad(critic_loss, has_aux=True)(state.critic, nets, batch, target)
    c_updates, critic_opt = nets.critic_opt.update(c_grad, state.critic_opt, state.critic)
    critic = optax.apply_updates(state.critic, c_updates)
    state = state.replace(critic=critic, critic_opt=critic_opt, step=state.step + 1)
    metrics = {"critic_loss": c_loss, "q_mean": jnp.mean(q), "target_mean": jnp.mean(target)}

    def actor_step(state: State) -> tuple[State, Metrics]:
        grad_fn = jax.value_and_grad(actor_loss, has_aux=True)
        (a_loss, aux), a_grad = grad_fn(state.actor, nets, state, state.critic, batch.obs, k_actor)
        a_updates, actor_opt = nets.actor_opt.update(a_grad, state.actor_opt, state.actor)
        state = state.replace(actor=optax.apply_updates(state.actor, a_updates), actor_opt=actor_opt)
        out = {"actor_loss": a_loss, **aux}
        if temperature_loss is not None:
            t_loss, t_grad = jax.value_and_grad(temperature_loss)(state.log_alpha, aux["logp"], hp.target_entropy)
            t_updates, alpha_opt = nets.alpha_opt.update(t_grad, state.alpha_opt, state.log_alpha)
            state = state.replace(log_alpha=optax.apply_updates(state.log_alpha, t_updates), alpha_opt=alpha_opt)
            out["alpha_loss"] = t_loss
        state = state.replace(target_critic=polyak(state.target_critic, state.critic, hp.tau))
        if state.target_actor is not None:
            state = state.replace(target_actor=polyak(state.target_actor, state.actor, hp.tau))
        return state, out

    if policy_delay == 1:
        state, a_metrics = actor_step(state)
    else:
        # Under vmap over seeds this becomes a select (both branches run); only TD3 pays it.
        skipped = jax.eval_shape(actor_step, state)[1]
        state, a_metrics = jax.lax.cond(
            (state.step - 1) % policy_delay == 0,
            actor_step,
            lambda s: (s, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), skipped)),
            state,
        )
    metrics.update(a_metrics)
    metrics.pop("logp", None)
    metrics["alpha"] = jnp.exp(state.log_alpha)
    return state, metrics


# ----- building an agent --------------------------------------------------------------------------------


def init(
    key: Array,
    *,
    cfg: AgentConfig,
    spec: EnvSpec,
    actor_module: nn.Module,
    critic_module: nn.Module,
    nets: Nets,
    uses_target_actor: bool,
) -> State:
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((1, spec.obs_dim), jnp.float32)
    action = jnp.zeros((1, spec.action_dim), jnp.float32)
    actor = actor_module.init(k_actor, obs)
    critic = critic_module.init(k_critic, obs, action)
    fixed_alpha = cfg.resolved_alpha()
    log_alpha = jnp.log(jnp.asarray(cfg.init_alpha if fixed_alpha is None else max(fixed_alpha, 1e-30), jnp.float32))
    if fixed_alpha == 0.0:
        log_alpha = jnp.asarray(-jnp.inf, jnp.float32)  # exp(-inf) = 0 exactly: alpha = 0 means no entropy term
    target_entropy = -float(spec.action_dim) if cfg.target_entropy is None else cfg.target_entropy
    f32 = partial(jnp.asarray, dtype=jnp.float32)
    hp = Hypers(
        gamma=f32(cfg.gamma),
        tau=f32(cfg.tau),
        reward_scale=f32(cfg.reward_scale),
        target_entropy=f32(target_entropy),
        explore_std=f32(cfg.explore_std),
        target_noise=f32(cfg.target_noise),
        target_noise_clip=f32(cfg.target_noise_clip),
        actor_std=f32(cfg.actor_std),
    )
    return State(
        actor=actor,
        critic=critic,
        # Copies, not aliases: the loop donates the state, and XLA cannot donate one buffer twice.
        target_actor=jax.tree.map(jnp.copy, actor) if uses_target_actor else None,
        target_critic=jax.tree.map(jnp.copy, critic),
        actor_opt=nets.actor_opt.init(actor),
        critic_opt=nets.critic_opt.init(critic),
        log_alpha=log_alpha,
        alpha_opt=nets.alpha_opt.init(log_alpha),
        hp=hp,
        step=jnp.zeros((), jnp.int32),
    )


def make(
    cfg: AgentConfig,
    spec: EnvSpec,
    *,
    name: str = "ddpg",
    actor_module: nn.Module | None = None,
    policy: Callable = policy,
    next_value: Callable = next_value,
    actor_loss: Callable = actor_loss,
    temperature_loss: Callable | None = None,
    uses_target_actor: bool = True,
    num_critics: int = 1,
    policy_delay: int = 1,
) -> Agent:
    """Assemble an agent from DDPG's defaults and whatever pieces the caller replaces."""
    if spec.action_dim is None:
        raise ValueError(
            f"'{name}' needs a continuous (Box) action space, but the environment's actions are discrete "
            f"({spec.num_actions} actions). Use dqn, soft-dqn or discrete-sac for discrete actions."
        )
    cfg.validate()
    num_critics = cfg.num_critics or num_critics
    policy_delay = cfg.policy_delay or policy_delay
    actor_module = actor_module or DeterministicActor(cfg.hidden, spec.action_dim)
    critic_module = QEnsemble(cfg.hidden, num_critics)
    fixed_alpha = cfg.resolved_alpha()
    if fixed_alpha is not None:
        temperature_loss = None  # a fixed alpha takes no temperature step
    nets = Nets(
        actor=actor_module.apply,
        critic=critic_module.apply,
        actor_opt=adam(cfg.lr),
        critic_opt=adam(cfg.lr),
        # A fixed alpha still has a state slot (so a vmapped sweep can mix values) but never moves.
        alpha_opt=optax.set_to_zero() if temperature_loss is None else adam(cfg.alpha_lr or cfg.lr),
    )
    return Agent(
        name=name,
        spec=spec,
        init=partial(
            init,
            cfg=cfg,
            spec=spec,
            actor_module=actor_module,
            critic_module=critic_module,
            nets=nets,
            uses_target_actor=uses_target_actor,
        ),
        act=lambda state, obs, key, deterministic=False: policy(nets, state, obs, key, deterministic),
        update=partial(
            update,
            nets=nets,
            next_value=next_value,
            actor_loss=actor_loss,
            temperature_loss=temperature_loss,
            policy_delay=policy_delay,
        ),
    )
