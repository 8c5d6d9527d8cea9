"""What every agent is (a bundle of pure functions over a frozen state pytree), the contracts its
pieces follow, and the steps both families (actor-critic and DQN) share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import jax
import jax.numpy as jnp
import optax

from softrl.config import AgentConfig

Array = jax.Array
NetsT = TypeVar("NetsT", contravariant=True)
StateT = TypeVar("StateT", contravariant=True)
_Self = TypeVar("_Self")


class Replaceable:
    """Base of the agents' `flax.struct.dataclass` states: declares, for type checkers, the `replace`
    that the decorator adds at run time. Holds no fields."""

    if TYPE_CHECKING:

        def replace(self: _Self, **changes: Any) -> _Self: ...


class EnvSpec(NamedTuple):
    """What an agent needs to know about an environment. Observations are flat vectors."""

    obs_dim: int
    action_dim: int | None = None  # continuous: actions live in [-1, 1]^action_dim
    num_actions: int | None = None  # discrete: actions are 0..num_actions-1


# ----- contracts ----------------------------------------------------------------------------------------
# Positional-only, so an implementation may name its parameters as its equation does (obs, next_obs).


class Policy(Protocol[NetsT, StateT]):
    """Stochastic acting: `a ~ pi(.|s)` and `log pi(a|s)`. obs [..., O] -> action [...] or [..., d], logp [...].

    For a policy with no density the algorithm documents what `logp` is (see `Agent.sample`).
    """

    def __call__(self, nets: NetsT, state: StateT, obs: Array, key: Array, /) -> tuple[Array, Array]: ...


class Mode(Protocol[NetsT, StateT]):
    """Deterministic acting, used for evaluation: the policy's mode (argmax, `tanh(mean)`, `mu(s)`)."""

    def __call__(self, nets: NetsT, state: StateT, obs: Array, /) -> Array: ...


class TemperatureLoss(Protocol):
    """`(log_alpha [], logp [B], target_entropy []) -> loss []`, differentiated with respect to log_alpha."""

    def __call__(self, log_alpha: Array, logp: Array, target_entropy: Array, /) -> Array: ...


def _no_sampler(state: Any, obs: Array, key: Array) -> tuple[Array, Array]:
    raise NotImplementedError("this Agent was built without a `sample` function")


class Agent(NamedTuple):
    """`init(key) -> state`, `act(state, obs, key, deterministic=False) -> action`,
    `update(state, batch, key) -> (state, metrics)`, `sample(state, obs, key) -> (action, logp)`.
    All pure and jittable; vmap them over seeds.

    `sample` draws the same action as `act(state, obs, key)` with the same key, and adds `logp`,
    the log-probability (density, or probability for discrete actions) of that action under the
    behaviour policy. ddpg/td3 have no density (the clip puts point masses at +-1): their `logp` is the
    Gaussian log-density of the exploration noise, i.e. of the action before the clip.
    obs [..., O] -> action [..., d] (continuous) or int32 [...] (discrete), logp [...].
    """

    name: str
    spec: EnvSpec
    init: Callable[[Array], Any]
    act: Callable[..., Array]
    update: Callable[..., tuple[Any, dict[str, Array]]]
    sample: Callable[[Any, Array, Array], tuple[Array, Array]] = _no_sampler


def make_act(policy: Policy[NetsT, StateT], mode: Mode[NetsT, StateT], nets: NetsT) -> Callable[..., Array]:
    """`act(state, obs, key, deterministic=False)`: the mode when deterministic, else the policy's draw."""

    def act(state: StateT, obs: Array, key: Array, deterministic: bool = False) -> Array:
        if deterministic:
            return mode(nets, state, obs)
        return policy(nets, state, obs, key)[0]

    return act


def flat_batch(fn: Callable[[Array], Array], obs: Array) -> Array:
    """`fn` on obs [..., O] through one flat batch [N, O]: fn([N, O]) -> [N, *out] gives [..., *out].

    One observation `[O]` runs as `[1, O]`, the batch of one the networks were always called with.
    """
    out = fn(obs.reshape(-1, obs.shape[-1]))
    return out.reshape(*obs.shape[:-1], *out.shape[1:])


# ----- shared steps -------------------------------------------------------------------------------------


def adam(lr: float) -> optax.GradientTransformation:
    """Adam whose learning rate lives in the optimiser state, so it can differ per vmapped seed."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr)


def alpha_optimizer(cfg: AgentConfig, tuned: bool) -> optax.GradientTransformation:
    """Adam on log-alpha when tuned. A fixed (or absent) alpha still has a state slot, so a vmapped sweep
    can mix values, but `set_to_zero` never moves it."""
    return adam(cfg.alpha_lr or cfg.lr) if tuned else optax.set_to_zero()


def initial_log_alpha(cfg: AgentConfig) -> Array:
    """log of the fixed alpha (-inf for alpha = 0, so exp gives exactly 0), or log(init_alpha) when auto."""
    fixed = cfg.resolved_alpha()
    if fixed == 0.0:
        return jnp.asarray(-jnp.inf, jnp.float32)
    return jnp.log(jnp.asarray(cfg.init_alpha if fixed is None else fixed, jnp.float32))


def gradient_step(
    loss_fn: Callable[..., Any],
    params: Any,
    opt_state: Any,
    opt: optax.GradientTransformation,
    *args: Any,
    has_aux: bool = False,
) -> tuple[Any, Any, Any]:
    """One optimiser step on `loss_fn(params, *args)`. Returns (loss or (loss, aux), params, opt_state)."""
    out, grad = jax.value_and_grad(loss_fn, has_aux=has_aux)(params, *args)
    updates, opt_state = opt.update(grad, opt_state, params)
    return out, optax.apply_updates(params, updates), opt_state


def polyak(target: Any, online: Any, tau: Array) -> Any:
    """`target <- tau * online + (1 - tau) * target`, leaf by leaf."""
    return jax.tree.map(lambda t, o: t + tau * (o - t), target, online)


def temperature_loss(log_alpha: Array, logp: Array, target_entropy: Array) -> Array:
    """Temperature objective in the log-alpha form (Haarnoja et al. 2018, Eq. 18):
    `-mean(log_alpha * (logp + target_entropy))`, logp held fixed.

    Its gradient lowers alpha when the entropy `-logp` exceeds the target and raises it
    otherwise. Optimising log-alpha keeps alpha > 0 without clipping.
    """
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(logp + target_entropy))
