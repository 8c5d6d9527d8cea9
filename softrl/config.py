"""Frozen configs. Field docstrings are the CLI's `--help` (tyro reads them).

Defaults for the continuous family follow Haarnoja et al. 2018, "Soft Actor-Critic
Algorithms and Applications" (Table 1): Adam 3e-4, batch 256, 2x256 ReLU, gamma 0.99,
tau 0.005, target entropy -dim(A), one gradient step per env step. TD3 settings follow
Fujimoto et al. 2018 (policy noise 0.2, clip 0.5, delay 2).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeGuard

CONTINUOUS_ALGOS = ("ddpg", "td3", "svg0", "wp", "sac")
DISCRETE_ALGOS = ("dqn", "soft-dqn", "discrete-sac")
ALGOS = CONTINUOUS_ALGOS + DISCRETE_ALGOS
Algo = Literal["ddpg", "td3", "svg0", "wp", "sac", "dqn", "soft-dqn", "discrete-sac"]
EnvFactory = Callable[[], Any]  # a zero-argument callable returning a gymnasium.Env
# How config.json records an env given as a Python factory: not a gymnasium id (no id holds '<'), so the CLI
# can tell it apart and say that the run needs the factory (softrl.collect.make_env).
FACTORY_PREFIX = "<factory "


def env_label(env: str | EnvFactory) -> str:
    """The env as config.json records it: the id, or `<factory MODULE.QUALNAME>` for a Python factory."""
    if isinstance(env, str):
        return env
    module = getattr(env, "__module__", None) or type(env).__module__
    name = getattr(env, "__qualname__", None) or type(env).__qualname__
    return f"{FACTORY_PREFIX}{module}.{name}>"


def is_jax_env(env: str | EnvFactory) -> TypeGuard[str]:
    """Whether `env` names a pure-JAX twin (`jax/ID`), trained by the on-device loop (softrl.ondevice_run)."""
    return isinstance(env, str) and env.startswith("jax/")


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Hyperparameters of the agent. Values a user may vmap over are copied into the agent state."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of actor and critics."""
    lr: float = 3e-4
    """Adam learning rate for actor and critics (SAC paper: 3e-4)."""
    alpha_lr: float | None = None
    """Adam learning rate of log-alpha when alpha is auto-tuned (default: same as --lr)."""
    batch_size: int = 256
    """Minibatch size of each gradient step."""
    gamma: float = 0.99
    """Discount factor, in [0, 1)."""
    tau: float = 0.005
    """Polyak averaging rate of the target networks (target <- tau*online + (1-tau)*target)."""
    alpha: str = "auto"
    """Entropy temperature: 'auto' tunes log-alpha to --target-entropy, a number fixes it (>= 0)."""
    init_alpha: float = 1.0
    """Starting alpha when --alpha auto."""
    target_entropy: float | None = None
    """Target entropy for auto alpha. Default: -dim(A) (continuous), 0.5*log|A| (discrete-sac)."""
    target_entropy_scale: float = 0.5
    """discrete-sac only: target entropy = scale * log|A| when --target-entropy is not given."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before the TD target (the 'reward-scale' form of SAC: alpha 1, rewards scaled)."""
    num_critics: int | None = None
    """Number of critics whose min is used (default: 1 for ddpg/dqn/soft-dqn, 2 for the rest)."""
    explore_std: float = 0.1
    """ddpg/td3: std of the Gaussian exploration noise, in units of half the action range."""
    target_noise: float = 0.2
    """td3: std of the target policy smoothing noise."""
    target_noise_clip: float = 0.5
    """td3: clip of the target policy smoothing noise."""
    policy_delay: int | None = None
    """Critic updates per actor (and target) update (default: 2 for td3, 1 otherwise)."""
    actor_std: float = 0.3
    """svg0: the fixed std of the pre-tanh Gaussian noise (Eq. 3)."""
    epsilon_start: float = 1.0
    """dqn: initial epsilon of epsilon-greedy exploration."""
    epsilon_end: float = 0.05
    """dqn: final epsilon."""
    epsilon_decay_steps: int = 10_000
    """dqn: env steps over which epsilon decays linearly (per seed)."""
    target_update_every: int = 1
    """dqn/soft-dqn: hard-copy the target network every N updates if tau == 1; with tau < 1, Polyak every update."""
    normalize_obs: bool = False
    """Normalise observations by running per-seed mean and variance (kept in the agent state, saved with the
    policy): clip((obs - mean) / sqrt(var + 1e-8), -10, 10), statistics updated from every stored transition."""
    encoder: str = "auto"
    """Observation torso: 'auto' (the MinAtar CNN for image observations [H, W, C], an MLP otherwise), 'mlp'
    (flattened observations) or 'cnn' (images only; dqn, soft-dqn, discrete-sac). The CNN is the MinAtar paper's
    network (conv 16 3x3, dense 128, linear head); --hidden does not apply to it."""

    def resolved_alpha(self) -> float | None:
        """The fixed alpha, or None when auto-tuned. Raises ValueError with a fix on bad input."""
        if self.alpha == "auto":
            return None
        try:
            value = float(self.alpha)
        except ValueError:
            raise ValueError(f"--alpha must be 'auto' or a number >= 0, got {self.alpha!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"--alpha must be 'auto' or a finite number >= 0, got {self.alpha!r}")
        return value

    def validate(self) -> None:
        """Raise ValueError naming the bad field and its allowed range."""
        check_types(self)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        if not self.hidden or any(w < 1 for w in self.hidden):
            raise ValueError(f"hidden must be one or more layer widths >= 1 (e.g. --hidden 256 256), "
                             f"got {list(self.hidden)}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.lr <= 0 or (self.alpha_lr is not None and self.alpha_lr <= 0):
            raise ValueError("learning rates must be > 0")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.init_alpha <= 0:
            raise ValueError(f"init_alpha must be > 0 (alpha is parametrised by its log), got {self.init_alpha}")
        if self.num_critics is not None and self.num_critics < 1:
            raise ValueError(f"num_critics must be >= 1, got {self.num_critics}")
        if self.policy_delay is not None and self.policy_delay < 1:
            raise ValueError(f"policy_delay must be >= 1, got {self.policy_delay}")
        if self.actor_std <= 0:
            raise ValueError(f"actor_std must be > 0, got {self.actor_std}")
        if self.encoder not in ("auto", "mlp", "cnn"):
            raise ValueError(f"encoder must be auto, mlp or cnn, got {self.encoder!r}")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("explore_std", "target_noise", "target_noise_clip", "target_entropy_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.epsilon_decay_steps < 0 or self.target_update_every < 1:
            raise ValueError("epsilon_decay_steps must be >= 0 and target_update_every >= 1")
        self.resolved_alpha()


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Train an agent on a gymnasium environment, with N seeds at once."""

    algo: Algo = "sac"
    """Algorithm: ddpg, td3, svg0, wp, sac (continuous actions); dqn, soft-dqn, discrete-sac (discrete)."""
    env: str | EnvFactory = "Pendulum-v1"
    """Gymnasium environment id (e.g. Pendulum-v1, HalfCheetah-v5, CartPole-v1), or `module:EnvName-vN` to
    import `module` first (which registers EnvName-vN). From Python also a zero-argument factory returning a
    gymnasium.Env (config.json records its qualified name; resuming such a run needs the same factory)."""
    env_kwargs: dict[str, Any] | None = None
    """Keyword arguments of the environment's constructor, passed to gym.make (a JSON object on the
    command line: --env-kwargs '{"name": value}')."""
    seed: int = 0
    """First seed; seed i of the run is `seed + i`."""
    seeds: int = 1
    """Number of independent agents trained at once in this process (vmap over seeds)."""
    total_steps: int = 15_000
    """Environment steps per seed."""
    learning_starts: int = 1_000
    """Env steps of uniformly random actions before the first update (per seed)."""
    train_freq: int = 1
    """Env steps between update calls."""
    gradient_steps: int = 1
    """Gradient updates per update call (run in one lax.scan)."""
    buffer_size: int = 1_000_000
    """Replay capacity per seed (transitions; the oldest are overwritten first)."""
    eval_every: int = 5_000
    """Evaluate every N env steps (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per seed and evaluation."""
    log_every: int = 1_000
    """Write training metrics every N env steps."""
    checkpoint_every: int = 10_000
    """Save a resumable checkpoint every N env steps (0: only by time, on interruption and at the end)."""
    checkpoint_minutes: float = 5.0
    """Also save a checkpoint when this many minutes have passed since the last one (0: never by time)."""
    run_dir: str | None = None
    """Where to write config, logs and checkpoints (default: runs/ALGO-ENV-SEED-TIME)."""
    tensorboard: bool = False
    """Also write TensorBoard event files (needs tensorboardX)."""
    progress: bool = True
    """Show a progress bar."""
    cpu_devices: int = 1
    """Split the CPU into this many JAX devices and the seeds across them, so that seed groups
    train in parallel (--seeds must be a multiple). Applies only before JAX starts in the process (the CLI,
    or the first call of a script); 1: one device whose products use all cores."""
    vmap_updates: bool = True
    """Run the seeds' updates as one vmapped (batched) program. --no-vmap-updates runs them one seed after
    another (`lax.map`) inside the same jitted call: on a CPU, where XLA's batched matrix products are slower
    than single ones, that is faster (benchmarks/RESULTS.md); on a GPU keep the default. Needs --cpu-devices 1."""
    agent: AgentConfig = dataclasses.field(default_factory=AgentConfig)
    """Agent hyperparameters."""
    wandb: str | None = None
    """Also log to this Weights & Biases project, one W&B run per seed grouped by run name (needs the wandb
    extra: pip install 'softrl[wandb]'; WANDB_MODE=offline logs without a network)."""
    num_envs: int = 1
    """Environments per seed: each step of the loop steps all K and stores K transitions in that seed's buffer
    (--total-steps counts them all, and must be a multiple of K). An update call (every --train-freq env steps)
    runs --gradient-steps updates: --gradient-steps K keeps one update per stored transition."""

    def validate(self) -> None:
        """Raise ValueError naming the bad field and its allowed range (types first, then values)."""
        check_types(self)
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algorithm {self.algo!r}; choose one of {', '.join(ALGOS)}")
        for name in ("seeds", "total_steps", "train_freq", "gradient_steps", "buffer_size", "eval_episodes",
                     "cpu_devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_starts", "eval_every", "log_every", "checkpoint_every", "checkpoint_minutes"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.num_envs < 1:
            raise ValueError(f"--num-envs must be >= 1, got {self.num_envs}")
        if self.total_steps % self.num_envs:
            raise ValueError(f"--total-steps ({self.total_steps}) must be a multiple of --num-envs ({self.num_envs})")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0 (gymnasium seeds are non-negative), got {self.seed}")
        if isinstance(self.env, str) and (not self.env.strip() or self.env.startswith(":")):
            raise ValueError(f"--env must be a gymnasium id such as CartPole-v1 or module:EnvName-v0, got {self.env!r}")
        if self.env_kwargs is not None and self.env_kwargs and not isinstance(self.env, str):
            raise ValueError("env_kwargs apply to gymnasium ids; pass them to your env factory instead")
        try:
            json.dumps(self.env_kwargs, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"env_kwargs must be JSON data (it is recorded in config.json): {err}") from None
        if not math.isfinite(self.checkpoint_minutes):
            raise ValueError(f"checkpoint_minutes must be a finite number, got {self.checkpoint_minutes}")
        if not self.vmap_updates and self.cpu_devices != 1:
            raise ValueError(f"--no-vmap-updates runs the seeds one after another on one device; it needs "
                             f"--cpu-devices 1, got {self.cpu_devices}")
        if self.seeds % self.cpu_devices:
            raise ValueError(f"seeds ({self.seeds}) must be a multiple of cpu_devices ({self.cpu_devices})")
        self.agent.validate()


# Fields a resumed run may change: they decide how long it trains and what it logs, evaluates and saves,
# never the trajectory of states so far (evaluation has its own envs and keys; see loop.evaluate).
# Everything else (cpu_devices included: another split moves the float rounding) must match config.json.
RESUMABLE_FIELDS = ("total_steps", "eval_every", "eval_episodes", "log_every", "checkpoint_every",
                    "checkpoint_minutes", "tensorboard", "progress", "run_dir", "wandb")


def _type_ok(value: Any, tp: Any) -> bool:
    """Whether `value` fits the field type `tp` (as JSON gives it: an int is a float, a bool is no number)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arm) for arm in args)
    if tp is type(None):
        return value is None
    if origin is Literal:
        return value in args
    if origin is tuple:
        return isinstance(value, tuple | list) and all(_type_ok(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is Callable or tp is Callable:
        return callable(value)
    return isinstance(value, tp) if isinstance(tp, type) else True


def check_types(obj: Any) -> None:
    """ValueError naming the first field of the dataclass `obj` whose value has the wrong type."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            continue
        if f.name in hints and not _type_ok(value, hints[f.name]):
            raise ValueError(f"{f.name} must be of type {_type_name(hints[f.name])}, got {value!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def config_to_dict(cfg: TrainConfig) -> dict:
    """Plain JSON data (tuples become lists), as written to config.json; a factory env as `env_label`."""
    return json.loads(json.dumps(dataclasses.asdict(dataclasses.replace(cfg, env=env_label(cfg.env)))))


def config_from_dict(d: dict) -> TrainConfig:
    """The inverse of `config_to_dict`; missing fields take their defaults, unknown ones are refused."""
    if not isinstance(d, dict) or not isinstance(d.get("agent", {}), dict):
        raise ValueError("config is not a JSON object of TrainConfig fields with an 'agent' object "
                         "(not written by softrl train?)")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    agent_known = {f.name for f in dataclasses.fields(AgentConfig)}
    agent = dict(d.get("agent", {}))
    unknown = sorted(set(d) - known) + sorted(f"agent.{k}" for k in set(agent) - agent_known)
    if unknown:
        raise ValueError(f"config has unknown fields {', '.join(unknown)} (written by another softrl version?)")
    if isinstance(agent.get("hidden"), list):
        agent["hidden"] = tuple(agent["hidden"])
    cfg = TrainConfig(**{**d, "agent": AgentConfig(**agent)})
    check_types(cfg)
    check_types(cfg.agent)
    return cfg


def config_diff(old: TrainConfig, new: TrainConfig) -> list[tuple[str, object, object]]:
    """(field, old value, new value) for every field that differs; agent fields as `agent.NAME`."""
    a, b = config_to_dict(old), config_to_dict(new)
    out = [(k, a[k], b[k]) for k in a if k != "agent" and a[k] != b[k]]
    return out + [(f"agent.{k}", a["agent"][k], b["agent"][k]) for k in a["agent"] if a["agent"][k] != b["agent"][k]]
