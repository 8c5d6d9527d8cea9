"""What every agent is (a bundle of pure functions over a frozen state pytree), the contracts its
pieces follow, and the steps both families (actor-critic and DQN) share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

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
    """What an agent needs to know about an environment.

    Observations are flat vectors [obs_dim] unless `obs_shape` has more than one axis: image observations
    [H, W, C] kept in their shape for a CNN torso (obs_dim is then H * W * C).
    """

    obs_dim: int
    action_dim: int | None = None  # continuous: actions live in [-1, 1]^action_dim
    num_actions: int | None = None  # discrete: actions are 0..num_actions-1
    obs_shape: tuple[int, ...] | None = None  # None: (obs_dim,)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one observation as the agent sees it."""
        return (self.obs_dim,) if self.obs_shape is None else tuple(self.obs_shape)


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


def make_act(
    policy: Policy[NetsT, StateT], mode: Mode[NetsT, StateT], nets: NetsT, obs_shape: tuple[int, ...] | None = None
) -> Callable[..., Array]:
    """`act(state, obs, key, deterministic=False)`: the mode when deterministic, else the policy's draw.

    With image observations (`obs_shape` [H, W, C]) act also takes them flattened, [..., H*W*C], as policy
    files and evaluation hand them over."""

    def act(state: StateT, obs: Array, key: Array, deterministic: bool = False) -> Array:
        obs = normalized(state, shaped(obs, obs_shape))
        if deterministic:
            return mode(nets, state, obs)
        return policy(nets, state, obs, key)[0]

    return act


def flat_batch(fn: Callable[[Array], Array], obs: Array, obs_ndim: int = 1) -> Array:
    """`fn` on obs [..., *E] through one flat batch [N, *E]: fn([N, *E]) -> [N, *out] gives [..., *out].

    E is the last `obs_ndim` axes (one for flat observations, three for images [H, W, C]).
    One observation `[*E]` runs as `[1, *E]`, the batch of one the networks were always called with.
    """
    event = obs.shape[obs.ndim - obs_ndim:]
    lead = obs.shape[: obs.ndim - obs_ndim]
    out = fn(obs.reshape(-1, *event))
    return out.reshape(*lead, *out.shape[1:])


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


def spec_torso(spec: EnvSpec) -> str:
    """"cnn" when the spec keeps image observations [H, W, C] (see `softrl.agents.resolve_spec`), else "mlp"."""
    return "cnn" if len(spec.shape) == 3 else "mlp"


def shaped(obs: Array, obs_shape: tuple[int, ...] | None) -> Array:
    """Flat image observations [..., H*W*C] back to [..., H, W, C]; anything else unchanged."""
    if obs_shape is None or len(obs_shape) < 2 or obs.shape[obs.ndim - len(obs_shape):] == tuple(obs_shape):
        return obs
    return obs.reshape(*obs.shape[:-1], *obs_shape)


# ----- observation normalisation (--normalize-obs) -------------------------------------------------------
# Running statistics in the agent state (`state.obs_norm`, None when off), so that they are vmapped per seed,
# checkpointed with the rest of the state, and travel with a policy. The loop merges each stored
# transition's `obs` into them (`observe`) before that step's update and action; act, sample and update see
# `clip((obs - mean) / sqrt(var + eps), -clip, clip)` with the current statistics, as `softrl.policy`
# applies them to a saved policy. Same eps and clip as `softrl.policy.OBS_NORM_EPS / OBS_NORM_CLIP`.
OBS_NORM_EPS = 1e-8
OBS_NORM_CLIP = 10.0


@struct.dataclass
class ObsNorm:
    """Running mean and population variance of observations (float32), over `count` observations."""

    mean: Array  # [*obs_shape]
    var: Array  # [*obs_shape]
    count: Array  # [] float32


def obs_norm_init(shape: tuple[int, ...]) -> ObsNorm:
    """No data yet: mean 0, var 1 (the identity, up to the clip), count 0."""
    return ObsNorm(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.zeros((), jnp.float32))


def obs_norm_merge(norm: ObsNorm, obs: Array) -> ObsNorm:
    """Merge a batch obs [..., *obs_shape] into the statistics: the parallel form of Welford's update
    (Chan, Golub & LeVeque 1979): `M2 = M2_a + M2_b + delta^2 n_a n_b / n`. With count 0 the old var drops out."""
    x = obs.reshape(-1, *norm.mean.shape).astype(jnp.float32)  # [K, *obs_shape]
    k = jnp.asarray(x.shape[0], jnp.float32)
    b_mean = jnp.mean(x, axis=0)
    b_var = jnp.mean(jnp.square(x - b_mean), axis=0)
    total = norm.count + k
    delta = b_mean - norm.mean
    mean = norm.mean + delta * (k / total)
    m2 = norm.var * norm.count + b_var * k + jnp.square(delta) * (norm.count * k / total)
    return ObsNorm(mean, m2 / total, total)


def obs_norm_apply(norm: ObsNorm, obs: Array) -> Array:
    """`clip((obs - mean) / sqrt(var + eps), -clip, clip)`. obs [..., *obs_shape]."""
    return jnp.clip((obs - norm.mean) / jnp.sqrt(norm.var + OBS_NORM_EPS), -OBS_NORM_CLIP, OBS_NORM_CLIP)


def normalized(state: Any, obs: Array) -> Array:
    """obs through the state's normaliser, or unchanged (the same array) when it has none."""
    norm = getattr(state, "obs_norm", None)
    return obs if norm is None else obs_norm_apply(norm, obs)


def normalized_batch(state: Any, batch: Any) -> Any:
    """A Transition with obs and next_obs normalised by the current statistics (unchanged when off)."""
    if getattr(state, "obs_norm", None) is None:
        return batch
    return batch._replace(obs=normalized(state, batch.obs), next_obs=normalized(state, batch.next_obs))


def observe(state: Any, obs: Array) -> Any:
    """The state with obs [..., *obs_shape] merged into its normaliser (unchanged when it has none)."""
    norm = getattr(state, "obs_norm", None)
    return state if norm is None else state.replace(obs_norm=obs_norm_merge(norm, obs))


def make_sample(
    policy: Policy[NetsT, StateT], nets: NetsT, obs_shape: tuple[int, ...] | None = None
) -> Callable[[Any, Array, Array], tuple[Array, Array]]:
    """`Agent.sample`: the policy's draw and log-probability, on (shaped, then) normalised observations."""

    def sample(state: Any, obs: Array, key: Array) -> tuple[Array, Array]:
        return policy(nets, state, normalized(state, shaped(obs, obs_shape)), key)

    return sample
