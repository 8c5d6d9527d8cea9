"""DQN (Mnih et al. 2015) and the one value-based update the discrete Q family shares.

`update` is written once. Its TD target is

    y = td_target(reward_scale * r, terminated, gamma, backup(Q'(s', .), alpha))      (Eq. 12)

with `backup = hard_value` (`max_a' Q'`, Q-learning, Eq. 26) here and `backup = soft_value`
(`alpha * logsumexp(Q' / alpha)`, Eq. 24-25) in `soft_dqn`, which holds no copy of `update`:
it passes `soft_value`, the Boltzmann policy (Eq. 20) and the temperature step into `make`.
An algorithm without a temperature (dqn) reports no `alpha`.

Choices, documented once:
- Loss: squared TD error `0.5 * (Q(s, a) - y)^2`, as the continuous family's critics, not
  Mnih et al.'s Huber loss: Huber's gradient is bounded, so the states that the max over actions
  overestimates are pulled down too slowly (what we saw on CartPole: benchmarks/RESULTS.md, section 8).
  With more than one critic the losses are summed and `Q'` is the min over critics (clipped double Q);
  the default is one critic, plain DQN.
- Target network: Polyak `target <- tau * online + (1 - tau) * target` after every update when
  `tau < 1`; a hard copy every `target_update_every` updates when `tau == 1` (Mnih et al.).
- Exploration: epsilon-greedy (its `logp` is the log-probability of the drawn action under it,
  `log(epsilon / |A| + (1 - epsilon) [a = argmax Q])`), epsilon linear from `epsilon_start` to `epsilon_end` over
  `epsilon_decay_steps`. The clock is the update counter `state.step`: the policy only sees its
  state, and with `train_freq = gradient_steps = 1` (the default) one update happens per env step
  once learning starts, so `state.step` = env steps since `learning_starts` (before that the loop
  acts uniformly at random anyway). With `gradient_steps = k` the schedule runs k times faster.
- Everything a user may vmap over (gamma, tau, reward scale, epsilon schedule, target period,
  alpha as `log_alpha`, learning rates inside the optimiser states) lives in the state.

The settings that tests/test_discrete_agents.py uses to learn CartPole-v1 are written in that test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from softrl.agents.base import (
    Agent,
    EnvSpec,
    ObsNorm,
    Policy,
    Replaceable,
    TemperatureLoss,
    adam,
    alpha_optimizer,
    flat_batch,
    gradient_step,
    initial_log_alpha,
    make_act,
    make_sample,
    normalized_batch,
    obs_norm_init,
    polyak,
    spec_torso,
)
from softrl.backups import entropy, hard_value, soft_policy, td_target
from softrl.config import AgentConfig
from softrl.nets import DiscreteQ
from softrl.types import Metrics, Params, Transition

Array = jax.Array
Backup = Callable[[Array, Array], Array]  # (q [B, A], alpha []) -> V [B]


@struct.dataclass
class Hypers:
    """Scalars a user may sweep with vmap: they live in the state, not in static config."""

    gamma: Array
    tau: Array
    reward_scale: Array
    target_entropy: Array  # soft-dqn with alpha 'auto' only
    epsilon_start: Array
    epsilon_end: Array
    epsilon_decay_steps: Array  # float32, in updates (= env steps after learning starts, see module doc)
    target_update_every: Array  # int32, hard-copy period when tau == 1


@struct.dataclass
class State(Replaceable):
    critic: Params  # DiscreteQ: every leaf [num_critics, ...]
    target_critic: Params
    critic_opt: Any
    log_alpha: Array  # [] alpha = exp(log_alpha); -inf (alpha = 0) for dqn
    alpha_opt: Any
    hp: Hypers
    step: Array  # [] int32, gradient updates done
    obs_norm: ObsNorm | None = None  # running observation statistics (--normalize-obs), see base.observe


class Nets(NamedTuple):
    q: Callable[..., Any]  # (params, obs [B, *obs_shape]) -> [num_critics, B, A]
    critic_opt: optax.GradientTransformation
    alpha_opt: optax.GradientTransformation
    obs_ndim: int = 1  # axes of one observation: 1 (flat) or 3 (images [H, W, C])


def q_values(nets: Nets, params: Params, obs: Array) -> Array:
    """`min_i Q_i(s, .)` over the critics (just Q with one critic). obs [B, O] -> [B, A]."""
    return jnp.min(nets.q(params, obs), axis=0)


def alpha_of(state: State) -> Array:
    return jnp.exp(state.log_alpha)


# ----- acting -------------------------------------------------------------------------------------------


def epsilon(state: State) -> Array:
    """Linear decay from epsilon_start to epsilon_end over epsilon_decay_steps updates. []"""
    hp = state.hp
    frac = jnp.clip(state.step.astype(jnp.float32) / jnp.maximum(hp.epsilon_decay_steps, 1.0), 0.0, 1.0)
    return hp.epsilon_start + frac * (hp.epsilon_end - hp.epsilon_start)


def state_q(nets: Nets, state: State, obs: Array) -> Array:
    """`min_i Q_i(s, .)` of the online critic for obs [..., O] -> [..., A]."""
    return flat_batch(partial(q_values, nets, state.critic), obs, nets.obs_ndim)


def greedy(nets: Nets, state: State, obs: Array) -> Array:
    """`argmax_a Q(s, a)`, the deterministic action of every value-based agent. obs [..., O] -> int32 [...]."""
    return jnp.argmax(state_q(nets, state, obs), axis=-1).astype(jnp.int32)


def epsilon_greedy(nets: Nets, state: State, obs: Array, key: Array) -> tuple[Array, Array]:
    """argmax_a Q(s, a), replaced by a uniform action with probability epsilon; and the log-probability
    of the drawn action, `log(epsilon / |A| + (1 - epsilon) [a = argmax])`. obs [..., O] -> int32 [...], [...]."""
    q = state_q(nets, state, obs)  # [..., A]
    best = jnp.argmax(q, axis=-1).astype(jnp.int32)
    k_explore, k_action = jax.random.split(key)
    random_action = jax.random.randint(k_action, best.shape, 0, q.shape[-1], jnp.int32)
    eps = epsilon(state)
    action = jnp.where(jax.random.uniform(k_explore, best.shape) < eps, random_action, best)
    logp = jnp.log(eps / q.shape[-1] + (1.0 - eps) * (action == best))
    return action, logp


# ----- the shared update --------------------------------------------------------------------------------


def critic_loss(params: Params, nets: Nets, batch: Transition, target: Array) -> tuple[Array, Array]:
    """Sum over critics of `0.5 * mean((Q_i(s, a) - y)^2)`, as `actor_critic.critic_loss`. target: [B].

    Returns (loss, Q(s, .) [num_critics, B, A]).
    """
    q_all = nets.q(params, batch.obs)  # [n, B, A]
    q = jnp.take_along_axis(q_all, batch.action[None, :, None].astype(jnp.int32), axis=-1)[..., 0]  # [n, B]
    return 0.5 * jnp.sum(jnp.mean((q - target[None]) ** 2, axis=-1)), q_all


def td_targets(nets: Nets, state: State, batch: Transition, backup: Backup = hard_value) -> Array:
    """`reward_scale * r + gamma * (1 - terminated) * backup(min_i Q'_i(s', .), alpha)`. [B]

    Eq. 12 with the state value of s' from `backup`: Eq. 26 (hard) or Eq. 24-25 (soft).
    Truncation (a time limit) bootstraps: only `terminated` cuts the target.
    """
    hp = state.hp
    next_q = q_values(nets, state.target_critic, batch.next_obs)  # [B, A]
    next_value = backup(next_q, alpha_of(state))  # [B]
    return td_target(hp.reward_scale * batch.reward, batch.terminated, hp.gamma, next_value)


def target_step(state: State, critic: Params, step: Array) -> Params:
    """Polyak every update when tau < 1; with tau == 1 a hard copy every `target_update_every` updates
    (the online weights themselves: `t + 1 * (o - t)` need not round to `o`).
    Selects, not conds, so tau and the period can differ between vmapped seeds."""
    hp = state.hp
    hard = hp.tau >= 1.0
    due = step % jnp.maximum(jnp.where(hard, hp.target_update_every, 1), 1) == 0
    return jax.tree.map(
        lambda old, online, averaged: jnp.where(due, jnp.where(hard, online, averaged), old),
        state.target_critic,
        critic,
        polyak(state.target_critic, critic, hp.tau),
    )


def update(
    state: State,
    batch: Transition,
    key: Array,
    *,
    nets: Nets,
    backup: Backup = hard_value,
    temperature_loss: TemperatureLoss | None = None,
    has_alpha: bool = False,
    log_epsilon: bool = True,
) -> tuple[State, Metrics]:
    """One gradient step on Q, then (soft-dqn, auto alpha) the temperature, then the target network.

    `backup(q [B, A], alpha) -> [B]` is the state value of s' under the target network:
    `hard_value` (Eq. 26) for DQN, `soft_value` (Eq. 24-25) for soft-DQN. `has_alpha`: report alpha.
    """
    del key  # the update is deterministic given the batch
    batch = normalized_batch(state, batch)  # obs and next_obs through the current statistics (when on)
    hp = state.hp
    target = td_targets(nets, state, batch, backup)  # [B]
    (loss, q_all), critic, critic_opt = gradient_step(
        critic_loss, state.critic, state.critic_opt, nets.critic_opt, nets, batch, target, has_aux=True
    )
    step = state.step + 1
    metrics = {"critic_loss": loss, "q_mean": jnp.mean(q_all), "target_mean": jnp.mean(target)}

    log_alpha, alpha_opt = state.log_alpha, state.alpha_opt
    if temperature_loss is not None:
        # Exact entropy of the Boltzmann policy softmax(Q(s, .) / alpha) at the batch states (Eq. 20),
        # with the Q used for the loss; `logp` is its negative, E_pi[log pi] per state. [B]
        logp = -entropy(soft_policy(jax.lax.stop_gradient(jnp.min(q_all, axis=0)), alpha_of(state)))
        t_loss, log_alpha, alpha_opt = gradient_step(
            temperature_loss, log_alpha, alpha_opt, nets.alpha_opt, logp, hp.target_entropy
        )
        metrics.update(alpha_loss=t_loss, entropy=-jnp.mean(logp))

    state = state.replace(
        critic=critic,
        target_critic=target_step(state, critic, step),
        critic_opt=critic_opt,
        log_alpha=log_alpha,
        alpha_opt=alpha_opt,
        step=step,
    )
    if has_alpha:
        metrics["alpha"] = jnp.exp(log_alpha)
    if log_epsilon:  # only meaningful for the epsilon-greedy policy
        metrics["epsilon"] = epsilon(state)
    return state, metrics


# ----- building an agent --------------------------------------------------------------------------------


def check_discrete(name: str, spec: EnvSpec) -> int:
    """The number of actions, or a ValueError pointing continuous users to the continuous family."""
    if spec.num_actions is None:
        raise ValueError(
            f"'{name}' needs a discrete action space, but the environment's actions are continuous "
            f"(Box, dim {spec.action_dim}). Use sac, td3, ddpg, svg0 or wp for continuous actions."
        )
    return int(spec.num_actions)


def default_target_entropy(cfg: AgentConfig, num_actions: int) -> float:
    """cfg.target_entropy, else `target_entropy_scale * log|A|` (log|A|: the uniform policy's entropy)."""
    if cfg.target_entropy is not None:
        return float(cfg.target_entropy)
    return cfg.target_entropy_scale * math.log(num_actions)


def init(
    key: Array, *, cfg: AgentConfig, spec: EnvSpec, module: DiscreteQ, nets: Nets, uses_alpha: bool
) -> State:
    critic = module.init(key, jnp.zeros((1, *spec.shape), jnp.float32))
    # dqn has no temperature: alpha = 0 exactly, whatever cfg.alpha says.
    log_alpha = initial_log_alpha(cfg) if uses_alpha else jnp.asarray(-jnp.inf, jnp.float32)
    f32 = partial(jnp.asarray, dtype=jnp.float32)
    hp = Hypers(
        gamma=f32(cfg.gamma),
        tau=f32(cfg.tau),
        reward_scale=f32(cfg.reward_scale),
        target_entropy=f32(default_target_entropy(cfg, spec.num_actions or 1)),
        epsilon_start=f32(cfg.epsilon_start),
        epsilon_end=f32(cfg.epsilon_end),
        epsilon_decay_steps=f32(cfg.epsilon_decay_steps),
        target_update_every=jnp.asarray(cfg.target_update_every, jnp.int32),
    )
    return State(
        critic=critic,
        # A copy, not an alias: the loop donates the state, and XLA cannot donate one buffer twice.
        target_critic=jax.tree.map(jnp.copy, critic),
        critic_opt=nets.critic_opt.init(critic),
        log_alpha=log_alpha,
        alpha_opt=nets.alpha_opt.init(log_alpha),
        hp=hp,
        step=jnp.zeros((), jnp.int32),
        obs_norm=obs_norm_init(spec.shape) if cfg.normalize_obs else None,
    )


def check_config(cfg: AgentConfig) -> None:
    """DQN's own options, on top of `cfg.validate()`."""
    cfg.validate()
    if cfg.target_update_every < 1:
        raise ValueError(f"target_update_every must be >= 1, got {cfg.target_update_every}")
    if cfg.epsilon_decay_steps < 0:
        raise ValueError(f"epsilon_decay_steps must be >= 0, got {cfg.epsilon_decay_steps}")
    for field in ("epsilon_start", "epsilon_end"):
        if not 0.0 <= getattr(cfg, field) <= 1.0:
            raise ValueError(f"{field} must be in [0, 1], got {getattr(cfg, field)}")


def make(
    cfg: AgentConfig,
    spec: EnvSpec,
    *,
    name: str = "dqn",
    backup: Backup = hard_value,
    policy: Policy[Nets, State] = epsilon_greedy,
    temperature_loss: TemperatureLoss | None = None,
) -> Agent:
    """Assemble a value-based agent from DQN's defaults and whatever pieces the caller replaces.

    `temperature_loss` None: no entropy temperature (dqn: alpha = 0, not reported). Given, the agent has an
    alpha, tuned by it with `--alpha auto` and fixed otherwise. Deterministic acting is `greedy` for all.
    """
    num_actions = check_discrete(name, spec)
    check_config(cfg)
    module = DiscreteQ(cfg.hidden, num_actions, cfg.num_critics or 1, torso=spec_torso(spec))
    uses_alpha = temperature_loss is not None
    tuned = uses_alpha and cfg.resolved_alpha() is None
    nets = Nets(q=module.apply, critic_opt=adam(cfg.lr), alpha_opt=alpha_optimizer(cfg, tuned),
                obs_ndim=len(spec.shape))
    return Agent(
        name=name,
        spec=spec,
        # Jitted so that `vmap(init)` compiles once instead of dispatching (and compiling) op by op.
        init=jax.jit(partial(init, cfg=cfg, spec=spec, module=module, nets=nets, uses_alpha=uses_alpha)),
        act=make_act(policy, greedy, nets, spec.obs_shape),
        update=partial(
            update,
            nets=nets,
            backup=backup,
            temperature_loss=temperature_loss if tuned else None,
            has_alpha=uses_alpha,
            log_epsilon=policy is epsilon_greedy,
        ),
        sample=make_sample(policy, nets, spec.obs_shape),
    )
