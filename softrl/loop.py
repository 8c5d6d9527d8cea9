"""The training loop: N seeds in one process, one jitted call per env step.

Each env step makes exactly one compiled call, `_step`, which (for every seed, under
`vmap`) stores the transition in that seed's ring buffer, runs `gradient_steps` updates
in a `lax.scan` when it is time to learn, and returns the next action. The only
host<->device traffic per step is the transition in and the action out. Seed `seed + i`
owns PRNG key `PRNGKey(seed + i)`, its env (seeded `seed + i`) and its buffer, so a
3-seed run equals three 1-seed runs with seeds 0, 1, 2.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from softrl import checkpoint, replay
from softrl.agents import Agent, make_agent
from softrl.collect import SeedEnvs
from softrl.config import ALGOS, AgentConfig, Algo
from softrl.devices import seed_sharding, use_cpu_devices
from softrl.log import RunLogger
from softrl.types import Transition

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Train an agent on a gymnasium environment, with N seeds at once."""

    algo: Algo = "sac"
    """Algorithm: ddpg, td3, svg0, wp, sac (continuous actions); dqn, soft-dqn, discrete-sac (discrete)."""
    env: str = "Pendulum-v1"
    """Gymnasium environment id (e.g. Pendulum-v1, HalfCheetah-v5, CartPole-v1)."""
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
    """Save a resumable checkpoint every N env steps (0: only at the end)."""
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
    agent: AgentConfig = dataclasses.field(default_factory=AgentConfig)
    """Agent hyperparameters."""

    def validate(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algorithm {self.algo!r}; choose one of {', '.join(ALGOS)}")
        for name in ("seeds", "total_steps", "train_freq", "gradient_steps", "buffer_size", "eval_episodes",
                     "cpu_devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_starts", "eval_every", "log_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.seeds % self.cpu_devices:
            raise ValueError(f"seeds ({self.seeds}) must be a multiple of cpu_devices ({self.cpu_devices})")
        self.agent.validate()


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf. The last good checkpoint is kept."""


class TrainResult(NamedTuple):
    states: Any  # agent states, every leaf [num_seeds, ...]
    eval_returns: np.ndarray  # [num_seeds, eval_episodes], final deterministic evaluation
    run_dir: Path | None
    timing: dict[str, Any]
    agent: Agent
    seeds: list[int]
    updates: np.ndarray  # [num_seeds] gradient updates done


class Carry(NamedTuple):
    agent: Any  # [N, ...]
    buffer: replay.Buffer  # [N, ...]
    key: Array  # [N, 2] raw uint32 keys
    bad_step: Array  # int32 []: first env step whose losses were non-finite, -1 if none


# ----- compiled pieces --------------------------------------------------------------------------------


def _random_action(agent: Agent, key: Array) -> Array:
    if agent.spec.num_actions is not None:
        return jax.random.randint(key, (), 0, agent.spec.num_actions)
    return jax.random.uniform(key, (agent.spec.action_dim,), jnp.float32, -1.0, 1.0)


def _update_k(agent: Agent, batch_size: int, k: int, state: Any, buffer: replay.Buffer, key: Array):
    """`k` updates in one `lax.scan`, each on a fresh minibatch sampled inside the jit."""

    def body(state, key):
        k_sample, k_update = jax.random.split(key)
        return agent.update(state, replay.sample(buffer, k_sample, batch_size), k_update)

    if k == 1:  # no scan: a while loop would make XLA copy the buffer it closes over
        return body(state, key)
    state, metrics = jax.lax.scan(body, state, jax.random.split(key, k))
    return state, jax.tree.map(lambda m: m[-1], metrics)


@functools.lru_cache(maxsize=32)
def make_step_fn(agent: Agent, batch_size: int, gradient_steps: int) -> Callable:
    """The per-env-step function: store the transition, maybe update, act. Both parts are jitted with
    their inputs donated, so the buffer and the state are updated in place."""
    update_k = jax.vmap(partial(_update_k, agent, batch_size, gradient_steps))
    act = jax.vmap(agent.act, in_axes=(0, 0, 0, None))

    # The write is its own executable: fused with the update, XLA fuses the write into the
    # minibatch gather and then copies the whole buffer every step to keep the old version alive.
    add = jax.jit(replay.add_lockstep, donate_argnums=0)

    @partial(jax.jit, static_argnames=("do_update", "random_action"), donate_argnums=0)
    def update_and_act(carry: Carry, obs: Array, env_step: Array, *, do_update, random_action):
        buffer = carry.buffer
        keys = jax.vmap(partial(jax.random.split, num=3))(carry.key)  # [N, 3, 2]
        key, k_act, k_update = keys[:, 0], keys[:, 1], keys[:, 2]
        state, bad_step, metrics = carry.agent, carry.bad_step, {}
        if do_update:
            state, metrics = update_k(state, buffer, k_update)
            finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(m)) for m in jax.tree.leaves(metrics)]))
            bad_step = jnp.where((bad_step < 0) & ~finite, env_step, bad_step)
        if random_action:
            action = jax.vmap(partial(_random_action, agent))(k_act)
        else:
            action = act(state, obs, k_act, False)
        return Carry(state, buffer, key, bad_step), action, metrics

    def step(carry: Carry, transition: Transition, obs: Array, env_step: Array, *, do_update, random_action):
        carry = carry._replace(buffer=add(carry.buffer, transition))
        return update_and_act(carry, obs, env_step, do_update=do_update, random_action=random_action)

    return step


@partial(jax.jit, static_argnames=("agent", "deterministic"))
def _act_batch(agent: Agent, states: Any, obs: Array, keys: Array, deterministic: bool) -> Array:
    return jax.vmap(agent.act, in_axes=(0, 0, 0, None))(states, obs, keys, deterministic)


# ----- evaluation -------------------------------------------------------------------------------------


def evaluate(
    agent: Agent,
    states: Any,
    env_id: str,
    seeds: list[int],
    episodes: int,
    deterministic: bool = True,
    key: Array | None = None,
) -> np.ndarray:
    """Returns [num_seeds, episodes] undiscounted returns. Eval env i is seeded `10**6 + seeds[i]`.

    Stochastic evaluation draws its action noise from `key` (default: PRNGKey(10**6 + seeds[0])).
    """
    envs = SeedEnvs(env_id, [10**6 + s for s in seeds])
    obs = envs.reset()
    n = len(seeds)
    returns: list[list[float]] = [[] for _ in range(n)]
    key = jax.random.PRNGKey(10**6 + seeds[0]) if key is None else key
    while min(len(r) for r in returns) < episodes:
        key, sub = jax.random.split(key)
        action = np.asarray(_act_batch(agent, states, jnp.asarray(obs), jax.random.split(sub, n), deterministic))
        active = [len(r) < episodes for r in returns]
        _, finished = envs.step(action)
        obs = envs.obs
        for i, ret, _ in finished:
            if active[i]:
                returns[i].append(ret)
    envs.close()
    return np.array([r[:episodes] for r in returns])


# ----- the loop -----------------------------------------------------------------------------------------


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.algo}-{cfg.env.replace('/', '_')}-s{cfg.seed}-{stamp}"


def config_to_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> TrainConfig:
    agent = d.get("agent", {})
    agent = {**agent, "hidden": tuple(agent.get("hidden", (256, 256)))}
    return TrainConfig(**{**d, "agent": AgentConfig(**agent)})


def _init(agent: Agent, cfg: TrainConfig, envs: SeedEnvs, seeds: list[int]):
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])  # [N, 2]
    split = jax.vmap(jax.random.split)(keys)  # [N, 2, 2]: one key for init, one for the loop
    states = jax.vmap(agent.init)(split[:, 0])
    spec = agent.spec
    example = Transition(
        obs=jnp.zeros(spec.obs_dim, jnp.float32),
        action=jnp.zeros((), jnp.int32) if spec.num_actions else jnp.zeros(spec.action_dim, jnp.float32),
        reward=jnp.zeros((), jnp.float32),
        next_obs=jnp.zeros(spec.obs_dim, jnp.float32),
        terminated=jnp.zeros((), bool),
        truncated=jnp.zeros((), bool),
    )
    # Not capped at total_steps: a resumed run that trains longer must see the same buffer.
    buffer = jax.vmap(lambda _: replay.init(cfg.buffer_size, example))(jnp.arange(len(seeds)))
    return Carry(states, buffer, split[:, 1], jnp.asarray(-1, jnp.int32))


def _to_transition(t: dict, discrete: bool) -> Transition:
    action = t["action"].astype(np.int32) if discrete else t["action"].astype(np.float32)
    return Transition(t["obs"], action, t["reward"], t["next_obs"], t["terminated"], t["truncated"])


def _buffer_payload(buffer: replay.Buffer) -> dict:
    """Only the filled part of each buffer is saved (seeds fill in lockstep, so one size fits all)."""
    size = int(np.max(np.asarray(buffer.size)))
    data = jax.tree.map(lambda d: np.asarray(d[:, :size]), buffer.data)
    return {"data": data, "ptr": np.asarray(buffer.ptr), "size": np.asarray(buffer.size)}


def _restore_buffer(template: replay.Buffer, saved: dict) -> replay.Buffer:
    size = int(np.max(saved["size"]))
    cap = template.data.reward.shape[1]
    if size > cap:
        raise checkpoint.CheckpointError(f"checkpoint buffer holds {size} transitions, more than capacity {cap}")
    checkpoint.check_like(
        jax.tree.map(lambda d: d[:, :0], saved["data"]), jax.tree.map(lambda d: d[:, :0], template.data), "buffer"
    )
    data = jax.tree.map(lambda t, d: jnp.asarray(t).at[:, :size].set(d), template.data, saved["data"])
    return replay.Buffer(data, jnp.asarray(saved["ptr"]), jnp.asarray(saved["size"]))


def train(cfg: TrainConfig, *, resume: str | Path | None = None) -> TrainResult:
    """Train `cfg.seeds` agents at once. With `resume=RUN_DIR`, continue that run exactly.

    Returns the final states, the final deterministic evaluation and timing. Writes
    config, logs and checkpoints to the run directory.
    """
    cfg.validate()
    # First, before any JAX computation: the devices can only be chosen while the backend is not started.
    sharding = seed_sharding(cfg.seeds, min(use_cpu_devices(cfg.cpu_devices), cfg.cpu_devices))
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    envs = SeedEnvs(cfg.env, seeds)
    agent = make_agent(cfg.algo, cfg.agent, envs.spec)
    step_fn = make_step_fn(agent, cfg.agent.batch_size, cfg.gradient_steps)

    run_dir = Path(resume) if resume is not None else Path(cfg.run_dir or default_run_dir(cfg))
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pkl"
    carry = _init(agent, cfg, envs, seeds)
    start = 0
    obs = envs.reset()
    if resume is not None:
        payload = checkpoint.load(ckpt_path)
        saved_cfg = dict(payload["config"])
        for field in ("algo", "env", "seed", "seeds", "agent", "buffer_size", "train_freq", "gradient_steps"):
            if saved_cfg.get(field) != config_to_dict(cfg).get(field):
                raise checkpoint.CheckpointError(
                    f"checkpoint in {run_dir} was written with {field}={saved_cfg.get(field)!r}, "
                    f"but this run has {field}={config_to_dict(cfg).get(field)!r}"
                )
        agent_state = checkpoint.check_like(payload["agent"], carry.agent, "agent state")
        buffer = _restore_buffer(carry.buffer, payload["buffer"])
        carry = Carry(agent_state, buffer, jnp.asarray(payload["key"]), jnp.asarray(-1, jnp.int32))
        envs.set_state(payload["envs"])
        obs = envs.obs
        start = int(payload["step"])
        action = np.asarray(payload["action"])
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2))
    logger = RunLogger(run_dir, seeds, cfg.tensorboard)
    if resume is not None:
        logger.truncate_after(start)

    def save_checkpoint(step: int) -> None:
        bad = int(carry.bad_step)
        if bad >= 0:
            raise NonFiniteLossError(
                f"non-finite loss (NaN/inf) at env step {bad}; stopped. The last good checkpoint "
                f"({ckpt_path}, if any) was kept. Try a lower --lr, or check the rewards and observations."
            )
        checkpoint.save(
            ckpt_path,
            {
                "config": config_to_dict(cfg),
                "step": step,
                "agent": carry.agent,
                "buffer": _buffer_payload(carry.buffer),
                "key": carry.key,
                "action": action,
                "envs": envs.get_state(),
            },
        )

    if resume is None:
        init_key = jax.vmap(jax.random.split)(carry.key)
        carry = carry._replace(key=init_key[:, 0])
        if cfg.learning_starts > 0:
            action = np.asarray(jax.vmap(partial(_random_action, agent))(init_key[:, 1]))
        else:
            action = np.asarray(_act_batch(agent, carry.agent, jnp.asarray(obs), init_key[:, 1], False))
    if sharding is not None:  # seed groups on separate devices; the compiled step follows the inputs' sharding
        carry = carry._replace(agent=jax.device_put(carry.agent, sharding),
                               buffer=jax.device_put(carry.buffer, sharding), key=jax.device_put(carry.key, sharding))

    progress = _Progress(cfg, start) if cfg.progress else None
    recent: list[float] = []
    metrics: dict = {}
    learn_t0, learn_steps0 = None, None
    t0 = time.perf_counter()
    stop = _StopFlag()
    step = start
    try:
        for step in range(start + 1, cfg.total_steps + 1):
            transition, finished = envs.step(action)
            for i, ret, length in finished:
                logger.write(seeds[i], "episodes", {"step": step, "return": ret, "length": length})
                recent.append(ret)
            do_update = step >= cfg.learning_starts and step % cfg.train_freq == 0
            carry, action_dev, m = step_fn(
                carry,
                _to_transition(transition, envs.discrete),
                envs.obs,
                np.int32(step),
                do_update=do_update,
                random_action=step < cfg.learning_starts,
            )
            action = np.asarray(action_dev)
            if do_update and learn_t0 is None:
                # The clock for steps/s starts after the first update has compiled and run.
                learn_t0, learn_steps0 = time.perf_counter(), step
            if m:
                metrics = m
            if cfg.log_every and step % cfg.log_every == 0:
                if int(carry.bad_step) >= 0:
                    save_checkpoint(step)  # raises with the step named, writes nothing
                _log_train(logger, seeds, step, metrics, time.perf_counter() - t0, step - start)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.total_steps:
                _log_eval(logger, seeds, step, evaluate(agent, carry.agent, cfg.env, seeds, cfg.eval_episodes))
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                save_checkpoint(step)
            if progress is not None:
                progress.update(step, recent[-len(seeds) * 5 :])
            if stop.requested:
                break
    finally:
        if progress is not None:
            progress.close()
        stop.restore()
    jax.block_until_ready(carry)
    t_end = time.perf_counter()
    if stop.requested and step < cfg.total_steps:
        # Ctrl-C / SIGTERM is honoured between steps, so the saved state is consistent: nothing is lost.
        save_checkpoint(step)
        logger.close()
        envs.close()
        raise KeyboardInterrupt(f"interrupted; run saved at step {step}. Resume with: softrl train --resume {run_dir}")
    save_checkpoint(cfg.total_steps)
    eval_returns = evaluate(agent, carry.agent, cfg.env, seeds, cfg.eval_episodes)
    _log_eval(logger, seeds, cfg.total_steps, eval_returns)
    logger.close()
    envs.close()

    n = len(seeds)
    timing: dict[str, Any] = {"wall_s": t_end - t0, "env_steps_per_seed": cfg.total_steps - start, "num_seeds": n}
    if learn_t0 is not None and t_end > learn_t0:
        learned = cfg.total_steps - learn_steps0
        sps = learned / (t_end - learn_t0)
        timing.update(
            steps_per_s_after_learning_starts=sps * n,
            seconds_after_learning_starts=t_end - learn_t0,
            per_seed_steps_per_s=sps,
            updates_per_s=sps * n * cfg.gradient_steps / cfg.train_freq,
        )
    summary = {
        "config": config_to_dict(cfg),
        "timing": timing,
        "final_eval": {
            "per_seed": [
                {"seed": s, "mean_return": float(np.mean(r)), "std_return": float(np.std(r))}
                for s, r in zip(seeds, eval_returns)
            ],
            "median_return": float(np.median(eval_returns.mean(axis=1))),
        },
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return TrainResult(
        states=carry.agent,
        eval_returns=eval_returns,
        run_dir=run_dir,
        timing=timing,
        agent=agent,
        seeds=seeds,
        updates=np.asarray(carry.agent.step),
    )


class _StopFlag:
    """Turns SIGINT/SIGTERM into a request to stop after the current step (main thread only)."""

    def __init__(self):
        import threading

        self.requested = False
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _log_train(logger: RunLogger, seeds, step: int, metrics: dict, elapsed: float, steps_done: int) -> None:
    if not metrics:
        return
    host = jax.device_get(metrics)
    sps = steps_done / max(elapsed, 1e-9)
    for i, s in enumerate(seeds):
        logger.write(s, "train", {"step": step, "steps_per_s": sps, **{k: float(v[i]) for k, v in host.items()}})


def _log_eval(logger: RunLogger, seeds, step: int, returns: np.ndarray) -> None:
    for s, r in zip(seeds, returns):
        logger.write(s, "eval", {"step": step, "mean_return": float(np.mean(r)), "std_return": float(np.std(r))})


class _Progress:
    """A rich progress bar with env-steps/s and the recent mean training return."""

    def __init__(self, cfg: TrainConfig, start: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn(f"[bold]{cfg.algo}[/] {cfg.env} x{cfg.seeds}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[sps]:>6.0f} steps/s"),
            TextColumn("return {task.fields[ret]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.progress.add_task("train", total=cfg.total_steps, completed=start, sps=0.0, ret="-")
        self.progress.start()
        self.t0, self.s0, self.n = time.perf_counter(), start, cfg.seeds

    def update(self, step: int, recent: list[float]) -> None:
        if step % 100:
            return
        sps = (step - self.s0) * self.n / max(time.perf_counter() - self.t0, 1e-9)
        ret = f"{np.mean(recent):8.1f}" if recent else "-"
        self.progress.update(self.task, completed=step, sps=sps, ret=ret)

    def close(self) -> None:
        self.progress.stop()


def load_run(run_dir: str | Path) -> tuple[TrainConfig, Agent, Any, list[int]]:
    """Config, agent and (batched) agent states from a run directory's checkpoint."""
    run_dir = Path(run_dir)
    payload = checkpoint.load(run_dir / "checkpoint.pkl")
    cfg = config_from_dict(payload["config"])
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    envs = SeedEnvs(cfg.env, seeds[:1])
    agent = make_agent(cfg.algo, cfg.agent, envs.spec)
    envs.close()
    template = jax.vmap(agent.init)(jnp.stack([jax.random.PRNGKey(s) for s in seeds]))
    return cfg, agent, checkpoint.check_like(payload["agent"], template, "agent state"), seeds


__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "train", "evaluate", "load_run"]
