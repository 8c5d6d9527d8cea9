"""The one actor-critic update that DDPG, TD3, SVG(0), Williams & Peng, SAC and discrete SAC share.

`update` is written once. An algorithm specialises it by passing in its own pieces, each a
`Protocol` below or in `base`:
- `NextValue`: the value of s' in the TD target (Eq. 12),
- `ActorLoss`: the actor's objective, returning `ActorAux` (logp, entropy) or None,
- `TemperatureLoss` (or None) for alpha, which reads `ActorAux.logp`,
- `Policy` and `Mode` for acting,
bundled as `Deltas`, and its actor and critic networks.
`ddpg`, `td3`, `svg0`, `wp`, `sac` and `discrete_sac` hold these deltas only; none holds a copy of `update`.

Update order (documented choice, as in SAC): critic, then actor against the *new* critic, then
temperature with the actor step's log-probs, then the Polyak targets.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from softrl.agents.base import (
    Agent,
    EnvSpec,
    Mode,
    ObsNorm,
    Policy,
    Replaceable,
    TemperatureLoss,
    adam,
    alpha_optimizer,
    gradient_step,
    initial_log_alpha,
    make_act,
    make_sample,
    normalized_batch,
    obs_norm_init,
    polyak,
)
from softrl.backups import td_target
from softrl.config import AgentConfig
from softrl.nets import QEnsemble
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
class State(Replaceable):
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
    obs_norm: ObsNorm | None = None  # running observation statistics (--normalize-obs), see base.observe


class Nets(NamedTuple):
    actor: Callable[..., Any]  # (params, obs [B, O]) -> action [B, d], (mean, log_std), or logits [B, A]
    critic: Callable[..., Any]  # (params, obs [B, O], action [B, d]) -> [num_critics, B]
    actor_opt: optax.GradientTransformation
    critic_opt: optax.GradientTransformation
    alpha_opt: optax.GradientTransformation
    obs_ndim: int = 1  # axes of one observation: 1 (flat) or 3 (images [H, W, C])


class ActorAux(NamedTuple):
    """What an entropy-regularised actor loss hands to the temperature step and the logs."""

    logp: Array  # [B] log pi(a|s) of the actions the loss used (discrete SAC: E_pi[log pi(.|s)] per state)
    entropy: Array  # [] the entropy estimate -mean(logp), logged


# ----- the contract between `update` and an algorithm -------------------------------------------------


class NextValue(Protocol):
    """`(nets, state, next_obs [B, O], key) -> V(s') [B]`, the bootstrap value in the TD target (Eq. 12)."""

    def __call__(self, nets: Nets, state: State, next_obs: Array, key: Array, /) -> Array: ...


class ActorLoss(Protocol):
    """`(actor_params, nets, state, critic_params, obs [B, O], key) -> (loss [], aux)`.

    Differentiated with respect to `actor_params` only. `aux` is None for a loss without log-probs
    (DDPG, SVG(0)); an algorithm with a temperature must return `ActorAux`.
    """

    def __call__(
        self, actor_params: Params, nets: Nets, state: State, critic_params: Params, obs: Array, key: Array, /
    ) -> tuple[Array, ActorAux | None]: ...


# ----- the shared update ------------------------------------------------------------------------------


def critic_loss(critic_params: Params, nets: Nets, batch: Transition, target: Array) -> tuple[Array, Array]:
    """Sum over critics of `0.5 * mean((Q_i(s, a) - y)^2)` (SAC paper, Eq. 5). target: [B]."""
    q = nets.critic(critic_params, batch.obs, batch.action)  # [num_critics, B]
    return 0.5 * jnp.sum(jnp.mean((q - target) ** 2, axis=-1)), q


def critic_step(
    state: State, batch: Transition, key: Array, nets: Nets, next_value: NextValue
) -> tuple[State, Metrics]:
    """One step on the critics towards `reward_scale * r + gamma * (1 - terminated) * V(s')`.

    Truncation (a time limit) bootstraps: only `terminated` cuts the target.
    """
    hp = state.hp
    v_next = next_value(nets, state, batch.next_obs, key)  # [B]
    target = td_target(hp.reward_scale * batch.reward, batch.terminated, hp.gamma, v_next)
    (c_loss, q), critic, critic_opt = gradient_step(
        critic_loss, state.critic, state.critic_opt, nets.critic_opt, nets, batch, target, has_aux=True
    )
    state = state.replace(critic=critic, critic_opt=critic_opt, step=state.step + 1)
    return state, {"critic_loss": c_loss, "q_mean": jnp.mean(q), "target_mean": jnp.mean(target)}


def actor_step(
    state: State,
    obs: Array,
    key: Array,
    nets: Nets,
    actor_loss: ActorLoss,
    temperature_loss: TemperatureLoss | None,
) -> tuple[State, Metrics]:
    """Actor against the current critic, then temperature from the same log-probs, then the Polyak targets."""
    (a_loss, aux), actor, actor_opt = gradient_step(
        actor_loss, state.actor, state.actor_opt, nets.actor_opt, nets, state, state.critic, obs, key, has_aux=True
    )
    state = state.replace(actor=actor, actor_opt=actor_opt)
    metrics = {"actor_loss": a_loss}
    if aux is not None:
        metrics["entropy"] = aux.entropy
    if temperature_loss is not None:
        assert aux is not None, "an algorithm with a temperature step needs an actor loss that returns ActorAux"
        t_loss, log_alpha, alpha_opt = gradient_step(
            temperature_loss, state.log_alpha, state.alpha_opt, nets.alpha_opt, aux.logp, state.hp.target_entropy
        )
        state = state.replace(log_alpha=log_alpha, alpha_opt=alpha_opt)
        metrics["alpha_loss"] = t_loss
    state = state.replace(target_critic=polyak(state.target_critic, state.critic, state.hp.tau))
    if state.target_actor is not None:
        state = state.replace(target_actor=polyak(state.target_actor, state.actor, state.hp.tau))
    return state, metrics


def update(
    state: State,
    batch: Transition,
    key: Array,
    *,
    nets: Nets,
    next_value: NextValue,
    actor_loss: ActorLoss,
    temperature_loss: TemperatureLoss | None = None,
    has_alpha: bool = False,
    policy_delay: int = 1,
) -> tuple[State, Metrics]:
    """One gradient step on critic, actor (every `policy_delay` steps), temperature and targets.

    `temperature_loss` None: alpha does not move. `has_alpha`: the algorithm has an entropy temperature
    (fixed or tuned), so `alpha` is reported; DDPG, TD3 and SVG(0) have none and report none.
    """
    k_next, k_actor = jax.random.split(key)
    batch = normalized_batch(state, batch)  # obs and next_obs through the current statistics (when on)
    state, metrics = critic_step(state, batch, k_next, nets, next_value)
    step_actor = partial(
        actor_step, obs=batch.obs, key=k_actor, nets=nets, actor_loss=actor_loss, temperature_loss=temperature_loss
    )
    if policy_delay == 1:
        state, a_metrics = step_actor(state)
    else:
        # Under vmap over seeds this becomes a select (both branches run); only TD3 pays it.
        skipped = jax.eval_shape(step_actor, state)[1]
        state, a_metrics = jax.lax.cond(
            (state.step - 1) % policy_delay == 0,
            step_actor,
            lambda s: (s, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), skipped)),
            state,
        )
    metrics.update(a_metrics)
    if has_alpha:
        metrics["alpha"] = jnp.exp(state.log_alpha)
    return state, metrics


# ----- building an agent ------------------------------------------------------------------------------


def hypers(cfg: AgentConfig, target_entropy: float) -> Hypers:
    f32 = partial(jnp.asarray, dtype=jnp.float32)
    return Hypers(
        gamma=f32(cfg.gamma),
        tau=f32(cfg.tau),
        reward_scale=f32(cfg.reward_scale),
        target_entropy=f32(target_entropy),
        explore_std=f32(cfg.explore_std),
        target_noise=f32(cfg.target_noise),
        target_noise_clip=f32(cfg.target_noise_clip),
        actor_std=f32(cfg.actor_std),
    )


def init(
    key: Array,
    *,
    cfg: AgentConfig,
    spec: EnvSpec,
    actor_module: nn.Module,
    critic_module: nn.Module,
    nets: Nets,
    uses_target_actor: bool,
    target_entropy: float,
) -> State:
    """Fresh networks and optimisers. The critic takes (obs, action) when `spec.action_dim` is set, else obs."""
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((1, *spec.shape), jnp.float32)
    actor = actor_module.init(k_actor, obs)
    if spec.action_dim is None:
        critic = critic_module.init(k_critic, obs)
    else:
        critic = critic_module.init(k_critic, obs, jnp.zeros((1, spec.action_dim), jnp.float32))
    log_alpha = initial_log_alpha(cfg)
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
        hp=hypers(cfg, target_entropy),
        step=jnp.zeros((), jnp.int32),
        obs_norm=obs_norm_init(spec.shape) if cfg.normalize_obs else None,
    )


class Deltas(NamedTuple):
    """What an algorithm of this family brings to the shared update and to acting."""

    policy: Policy[Nets, State]
    mode: Mode[Nets, State]
    next_value: NextValue
    actor_loss: ActorLoss
    temperature_loss: TemperatureLoss | None = None  # None: the algorithm has no entropy temperature


class Networks(NamedTuple):
    """An algorithm's modules. `critic_apply` is `Nets.critic`, built from `critic_module`."""

    actor_module: nn.Module
    critic_module: nn.Module
    critic_apply: Callable[..., Any]


def assemble(
    name: str,
    cfg: AgentConfig,
    spec: EnvSpec,
    deltas: Deltas,
    networks: Networks,
    *,
    uses_target_actor: bool,
    policy_delay: int,
    target_entropy: float,
) -> Agent:
    """An `Agent` from an algorithm's parts. A fixed `--alpha` keeps the alpha but takes no temperature step."""
    tuned = deltas.temperature_loss is not None and cfg.resolved_alpha() is None
    nets = Nets(
        actor=networks.actor_module.apply,
        critic=networks.critic_apply,
        actor_opt=adam(cfg.lr),
        critic_opt=adam(cfg.lr),
        alpha_opt=alpha_optimizer(cfg, tuned),
        obs_ndim=len(spec.shape),
    )
    state_init = partial(
        init,
        cfg=cfg,
        spec=spec,
        actor_module=networks.actor_module,
        critic_module=networks.critic_module,
        nets=nets,
        uses_target_actor=uses_target_actor,
        target_entropy=target_entropy,
    )
    return Agent(
        name=name,
        spec=spec,
        # Jitted so that `vmap(init)` compiles once instead of dispatching (and compiling) op by op.
        init=jax.jit(state_init),
        act=make_act(deltas.policy, deltas.mode, nets, spec.obs_shape),
        update=partial(
            update,
            nets=nets,
            next_value=deltas.next_value,
            actor_loss=deltas.actor_loss,
            temperature_loss=deltas.temperature_loss if tuned else None,
            has_alpha=deltas.temperature_loss is not None,
            policy_delay=policy_delay,
        ),
        sample=make_sample(deltas.policy, nets, spec.obs_shape),
    )


def make(
    cfg: AgentConfig,
    spec: EnvSpec,
    name: str,
    actor_module: nn.Module,
    deltas: Deltas,
    *,
    uses_target_actor: bool = False,
    num_critics: int = 2,
    policy_delay: int = 1,
) -> Agent:
    """A continuous-action agent with `QEnsemble` critics; `cfg.num_critics` and `cfg.policy_delay` override
    the algorithm's own. Target entropy default: `-dim(A)` (Haarnoja et al. 2018)."""
    if spec.action_dim is None:
        raise ValueError(
            f"'{name}' needs a continuous (Box) action space, but the environment's actions are discrete "
            f"({spec.num_actions} actions). Use dqn, soft-dqn or discrete-sac for discrete actions."
        )
    cfg.validate()
    critic_module = QEnsemble(cfg.hidden, cfg.num_critics or num_critics)
    return assemble(
        name,
        cfg,
        spec,
        deltas,
        Networks(actor_module, critic_module, critic_module.apply),
        uses_target_actor=uses_target_actor,
        policy_delay=cfg.policy_delay or policy_delay,
        target_entropy=-float(spec.action_dim) if cfg.target_entropy is None else cfg.target_entropy,
    )
