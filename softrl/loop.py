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
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import jax
import jax.numpy as jnp
import numpy as np

from softrl import checkpoint, replay, rundir
from softrl.agents import Agent, make_agent
from softrl.agents.base import observe
from softrl.callbacks import Callback, make_view, notify
from softrl.checkpoint import CheckpointError
from softrl.collect import EnvError, EnvStepError, SeedEnvs
from softrl.config import (
    RESUMABLE_FIELDS,
    EnvFactory,
    TrainConfig,
    config_diff,
    config_from_dict,
    config_to_dict,
    env_label,
    is_jax_env,
)
from softrl.devices import seed_sharding, use_cpu_devices
from softrl.log import RunLogger
from softrl.policy import BEST_POLICY_DIRNAME, POLICY_DIRNAME, read_meta, save_policy
from softrl.rollout import act_batch, evaluate
from softrl.types import Transition

Array = jax.Array


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf. The last good checkpoint is kept."""


class NonFiniteEnvError(FloatingPointError):
    """The environment returned a NaN or inf observation or reward. The last good checkpoint is kept."""


class TrainResult(NamedTuple):
    states: Any  # agent states, every leaf [num_seeds, ...]
    eval_returns: np.ndarray  # [num_seeds, eval_episodes], final deterministic evaluation
    run_dir: Path | None
    timing: dict[str, Any]
    agent: Agent
    seeds: list[int]
    updates: np.ndarray  # [num_seeds] gradient updates done
    stopped_at: int | None = None  # env step where a callback stopped the run (eval_returns: the last evaluation's)


class Carry(NamedTuple):
    agent: Any  # [N, ...]
    buffer: replay.Buffer  # [N, ...]
    key: Array  # [N, 2] raw uint32 keys
    bad_step: Array  # int32 []: first env step whose losses were non-finite, -1 if none
    bad_data: Array  # int32 [N]: per seed, the first env step whose obs/reward was non-finite, -1 if none


# ----- compiled pieces --------------------------------------------------------------------------------


def _random_action(agent: Agent, key: Array, num_envs: int = 1) -> Array:
    """One seed's uniformly random action; [K, ...] for its K envs when num_envs > 1."""
    if num_envs > 1:
        return jax.vmap(partial(_random_action, agent))(jax.random.split(key, num_envs))
    if agent.spec.num_actions is not None:
        return jax.random.randint(key, (), 0, agent.spec.num_actions)
    assert agent.spec.action_dim is not None  # continuous
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


def _update_k_one_by_one(agent: Agent, batch_size: int, k: int, states: Any, buffers: replay.Buffer, keys: Array):
    """`_update_k` for all N seeds, one seed after another (`lax.map`) instead of batched (`vmap`): the same
    keys, minibatches and updates. The minibatches are drawn for all seeds first (vmapped gathers), so the loop
    never slices a seed's whole buffer."""

    def draw(buffer: replay.Buffer, key: Array):  # [k, B, ...] minibatches and [k, 2] update keys
        ks = jax.vmap(jax.random.split)(jax.random.split(key, k) if k > 1 else key[None])  # [k, 2, 2]
        return jax.vmap(lambda kk: replay.sample(buffer, kk, batch_size))(ks[:, 0]), ks[:, 1]

    batches, update_keys = jax.vmap(draw)(buffers, keys)  # [N, k, B, ...], [N, k, 2]

    def one_seed(args):
        state, batch, key = args
        if k == 1:
            return agent.update(state, jax.tree.map(lambda x: x[0], batch), key[0])
        state, metrics = jax.lax.scan(lambda s, bk: agent.update(s, *bk), state, (batch, key))
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return jax.lax.map(one_seed, (states, batches, update_keys))


@functools.lru_cache(maxsize=32)
def make_step_fn(agent: Agent, batch_size: int, gradient_steps: int, num_envs: int = 1,
                 vmap_updates: bool = True) -> Callable:
    """The per-env-step function: store the transition, maybe update, act. Both parts are jitted with
    their inputs donated, so the buffer and the state are updated in place.

    With `num_envs` K > 1 the transition's leaves are [N, K, ...]: K slots of each seed's buffer are written,
    and the K observations are acted on as a batch. With observation normalisation on (`state.obs_norm`), the
    stored transitions' `obs` are merged into the statistics (`base.observe`) right after the write, so the
    update and the next action of this step already use them; `next_obs` is not merged (it is the next
    step's `obs`, except at an episode end).

    `vmap_updates=False` runs the seeds' updates one after another (`_update_k_one_by_one`)."""
    if vmap_updates:
        update_k = jax.vmap(partial(_update_k, agent, batch_size, gradient_steps))
    else:
        update_k = partial(_update_k_one_by_one, agent, batch_size, gradient_steps)
    act = jax.vmap(agent.act, in_axes=(0, 0, 0, None))

    # The write is its own executable: fused with the update, XLA fuses the write into the
    # minibatch gather and then copies the whole buffer every step to keep the old version alive.
    @partial(jax.jit, donate_argnums=0)
    def add(buffer: replay.Buffer, bad_data: Array, transition: Transition, env_step: Array):
        # The env's numbers are checked here, on the device, so that a NaN from the env is reported as such
        # (not later as a NaN loss) without a host check per step.
        def per_seed(x):  # [N, ...] -> [N]: all finite
            return jnp.isfinite(x).reshape(x.shape[0], -1).all(-1)

        finite = per_seed(transition.obs) & per_seed(transition.next_obs) & per_seed(transition.reward)  # [N]
        add_fn = replay.add_lockstep if num_envs == 1 else replay.add_lockstep_many
        return add_fn(buffer, transition), jnp.where((bad_data < 0) & ~finite, env_step, bad_data)

    @partial(jax.jit, static_argnames=("do_update", "random_action"), donate_argnums=0)
    def update_and_act(carry: Carry, obs: Array, env_step: Array, stored_obs: Array | None, *, do_update,
                       random_action):
        buffer = carry.buffer
        keys = jax.vmap(partial(jax.random.split, num=3))(carry.key)  # [N, 3, 2]
        key, k_act, k_update = keys[:, 0], keys[:, 1], keys[:, 2]
        state, bad_step, metrics = carry.agent, carry.bad_step, {}
        if stored_obs is not None:
            state = jax.vmap(observe)(state, stored_obs)
        if do_update:
            state, metrics = update_k(state, buffer, k_update)
            finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(m)) for m in jax.tree.leaves(metrics)]))
            bad_step = jnp.where((bad_step < 0) & ~finite, env_step, bad_step)
        if random_action:
            action = jax.vmap(partial(_random_action, agent, num_envs=num_envs))(k_act)
        else:
            action = act(state, obs, k_act, False)
        return carry._replace(agent=state, key=key, bad_step=bad_step), action, metrics

    def step(carry: Carry, transition: Transition, obs: Array, env_step: Array, *, do_update, random_action):
        buffer, bad_data = add(carry.buffer, carry.bad_data, transition, env_step)
        carry = carry._replace(buffer=buffer, bad_data=bad_data)
        stored_obs = transition.obs if getattr(carry.agent, "obs_norm", None) is not None else None
        return update_and_act(carry, obs, env_step, stored_obs, do_update=do_update, random_action=random_action)

    return step


def summarize_returns(seeds: list[int], returns: np.ndarray) -> dict[str, Any]:
    """Per-seed mean and std of `returns` [num_seeds, episodes] and the median of the per-seed means: the
    `final_eval` of summary.json and the output of `softrl eval --json`."""
    return {
        "per_seed": [{"seed": s, "mean_return": float(np.mean(r)), "std_return": float(np.std(r))}
                     for s, r in zip(seeds, returns)],
        "median_return": float(np.median(np.mean(returns, axis=1))),
    }


# ----- the loop -----------------------------------------------------------------------------------------


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = env_label(cfg.env).removeprefix("<factory ").removesuffix(">").replace("/", "_").replace(":", "_")
    return Path("runs") / f"{cfg.algo}-{name}-s{cfg.seed}-{stamp}"


def _note(msg: str) -> None:
    print(f"softrl: note: {msg}", file=sys.stderr, flush=True)


def _init(agent: Agent, cfg: TrainConfig, envs: SeedEnvs, seeds: list[int]) -> Carry:
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])  # [N, 2]
    split = jax.vmap(jax.random.split)(keys)  # [N, 2, 2]: one key for init, one for the loop
    states = jax.vmap(agent.init)(split[:, 0])
    spec = agent.spec
    example = Transition(
        obs=jnp.zeros(spec.shape, jnp.float32),
        action=jnp.zeros((), jnp.int32) if spec.num_actions else jnp.zeros(spec.action_dim, jnp.float32),
        reward=jnp.zeros((), jnp.float32),
        next_obs=jnp.zeros(spec.shape, jnp.float32),
        terminated=jnp.zeros((), bool),
        truncated=jnp.zeros((), bool),
    )
    # Not capped at total_steps: a resumed run that trains longer must see the same buffer.
    buffer = jax.vmap(lambda _: replay.init(cfg.buffer_size, example))(jnp.arange(len(seeds)))
    return Carry(states, buffer, split[:, 1], jnp.asarray(-1, jnp.int32), jnp.full(len(seeds), -1, jnp.int32))


def _to_transition(t: dict, discrete: bool) -> Transition:
    action = t["action"].astype(np.int32) if discrete else t["action"].astype(np.float32)
    return Transition(t["obs"], action, t["reward"], t["next_obs"], t["terminated"], t["truncated"])


@dataclasses.dataclass
class _Run:
    """The host side of one training run: what the named steps of `train` share."""

    cfg: TrainConfig
    run_dir: Path
    seeds: list[int]
    envs: SeedEnvs
    agent: Agent
    carry: Carry
    action: np.ndarray  # [N, ...] the action to take at the next env step
    start: int  # env steps done when this call began
    lock: rundir.RunLock
    logger: RunLogger | None = None
    saved_step: int | None = None  # step of the newest checkpoint on disk
    saved_at: float = dataclasses.field(default_factory=time.monotonic)
    callbacks: tuple[Callback, ...] = ()
    stop_step: int | None = None  # the step at which a callback returned STOP
    last_eval: np.ndarray | None = None  # [N, E] returns of the latest evaluation
    best_return: float = -np.inf  # median over seeds of the mean return of RUN/best_policy

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        self.envs.close()
        self.lock.release()


# ----- checkpoints of a run -------------------------------------------------------------------------------


def _host_rows(x: Array, size: int):
    """Seed rows `x[i, :size]` as numpy views, one at a time: no copy of the whole array on a CPU."""
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    if all(s.device.platform == "cpu" for s in shards):
        for shard in shards:
            host = np.asarray(shard.data)  # zero-copy on the CPU backend
            yield from (host[j, :size] for j in range(host.shape[0]))
    else:
        yield from (np.asarray(x[i, :size]) for i in range(x.shape[0]))


def _buffer_tensors(buffer: replay.Buffer) -> dict[str, checkpoint.Tensor]:
    """Only the filled part of each buffer is saved (seeds fill in lockstep, so one size fits all)."""
    size = int(np.max(np.asarray(buffer.size)))
    out = {"buffer.ptr": checkpoint.tensor(buffer.ptr), "buffer.size": checkpoint.tensor(buffer.size)}
    for path, d in jax.tree_util.tree_flatten_with_path(buffer.data)[0]:
        shape = (d.shape[0], size, *d.shape[2:])
        out["buffer.data" + jax.tree_util.keystr(path)] = checkpoint.Tensor(
            np.dtype(d.dtype), shape, functools.partial(_host_rows, d, size))
    return out


_RESTORE_CHUNK = 8 << 20  # bytes of one seed's rows written into the buffer at a time on restore


def is_buffer_data(name: str) -> bool:
    """The checkpoint arrays `checkpoint.load` should leave in the file (`defer`): the replay buffer's rows,
    which `_restore_buffer` writes straight into their place."""
    return name.startswith("buffer.data")


def _restore_buffer(template: replay.Buffer, arrays: dict[str, Any]) -> replay.Buffer:
    """The saved buffer, written into `template`'s arrays (consumed: they are donated).

    The saved rows ([N, size, ...] per field, numpy arrays or `checkpoint.Stored` handles) go into
    `template.data[:, :size]` a few MiB at a time by a donated in-place update, so restoring a buffer loaded
    with `defer=is_buffer_data` holds no copy of it: the peak is the capacity-sized buffer the run needs anyway
    (benchmarks/checkpoint_io.py). Everything is checked before `template` is touched."""
    size = int(np.max(np.asarray(arrays.get("buffer.size", 0))))
    cap = template.data.reward.shape[1]
    if size > cap:
        raise CheckpointError(f"checkpoint buffer holds {size} transitions, more than capacity {cap}")
    shaped = jax.tree.map(lambda d: jax.ShapeDtypeStruct((d.shape[0], size, *d.shape[2:]), d.dtype), template.data)
    saved = checkpoint.tree_from("buffer.data", arrays, shaped, "buffer")
    ptr = checkpoint.array_like(arrays, "buffer.ptr", template.ptr, "buffer.ptr")
    size_ = checkpoint.array_like(arrays, "buffer.size", template.size, "buffer.size")
    data = jax.tree.map(lambda t, d: _write_rows(t, d, size), template.data, saved)
    return replay.Buffer(data, jnp.asarray(ptr), jnp.asarray(size_))


def _write_rows(dst: Array, src: Any, size: int) -> Array:
    """`dst` with `dst[i, :size] = src[i]` for every seed i, written in place chunk by chunk. The last chunk of
    a seed ends at `size` and may overlap the one before (rewriting equal rows): one chunk shape, one compile."""
    row_shape = tuple(dst.shape[2:])
    row = math.prod(row_shape)
    rows = max(1, min(size, _RESTORE_CHUNK // max(1, row * dst.dtype.itemsize)))
    for i in range(dst.shape[0]):
        for r in range(0, size, rows):
            r = min(r, size - rows)
            start = (i * size + r) * row
            flat = src.read(start, start + rows * row) if isinstance(src, checkpoint.Stored) else (
                np.asarray(src).reshape(-1)[start:start + rows * row])
            dst = _put_rows(dst, flat.reshape(rows, *row_shape), i, r)
    return dst


@partial(jax.jit, donate_argnums=0)
def _put_rows(dst: Array, rows: Array, i: Array, r: Array) -> Array:
    """`dst[i, r:r + len(rows)] = rows`, in place (dst is donated)."""
    return jax.lax.dynamic_update_slice(dst, rows[None], (i, r) + (0,) * (dst.ndim - 2))


def _check_finite(run: _Run) -> None:
    """Raise for the first non-finite thing: env data (obs/reward, which makes the losses NaN at the same step)
    or a loss (whose NaN policy then makes the env's data NaN, later)."""
    bad_data, bad_step = jax.device_get((run.carry.bad_data, run.carry.bad_step))
    kept = (f"The last good checkpoint (step {run.saved_step}, in {rundir.checkpoints_dir(run.run_dir)}) was kept."
            if run.saved_step is not None else "")
    never = np.iinfo(np.int32).max
    first_data = np.where(bad_data >= 0, bad_data, never)  # [N]
    if first_data.min() < never and (bad_step < 0 or first_data.min() <= bad_step):
        i = int(np.argmin(first_data))
        raise NonFiniteEnvError(
            f"environment {env_label(run.cfg.env)} (seed {run.seeds[i]}) returned a non-finite observation or reward "
            f"(NaN/inf) at env step {int(bad_data[i])}; stopped. {kept} Check the environment's dynamics and reward.")
    if bad_step >= 0:
        raise NonFiniteLossError(
            f"non-finite loss (NaN/inf) at env step {int(bad_step)}; stopped. {kept} Try a lower --lr, "
            f"or check the rewards and observations.")


def _save(run: _Run, step: int) -> None:
    """Checkpoint `step`. Raises (writing nothing) if the run went non-finite, and stops the run with a
    one-line CheckpointError if the write fails (full disk, no permission): the older checkpoints stay."""
    _check_finite(run)
    tensors = {**checkpoint.tree_tensors("agent", run.carry.agent), **_buffer_tensors(run.carry.buffer),
               "key": checkpoint.tensor(run.carry.key), "action": checkpoint.tensor(run.action)}
    envs = checkpoint.encode_state(run.envs.get_state(), "envs", tensors)
    meta = {"config": config_to_dict(run.cfg), "seeds": run.seeds, "envs": envs}
    try:
        checkpoint.save(rundir.checkpoints_dir(run.run_dir), step, meta, tensors)
    except OSError as err:
        kept = f"the checkpoint of step {run.saved_step} is kept" if run.saved_step is not None else "none was kept"
        raise CheckpointError(
            f"could not write the checkpoint of step {step} in {rundir.checkpoints_dir(run.run_dir)}: "
            f"{err.strerror or err}; the run stopped and {kept}. Fix that, then resume with "
            f"`softrl train --resume {run.run_dir}`") from None
    run.saved_step, run.saved_at = step, time.monotonic()
    _write_policy(run, POLICY_DIRNAME, step)


# ----- policy files and callbacks (softrl.policy, softrl.callbacks) ------------------------------------------


def _write_policy(run: _Run, name: str, step: int, eval_return: np.ndarray | None = None) -> None:
    """RUN/`name`/: the acting part of the agent states (softrl.policy). Written only at checkpoints and
    evaluations, never per step. A failed write stops the run like a failed checkpoint write."""
    env = run.envs.envs[0]
    try:
        save_policy(run.run_dir / name, algo=run.cfg.algo, agent_config=run.cfg.agent, spec=run.agent.spec,
                    states=run.carry.agent, seeds=run.seeds, env_id=env_label(run.cfg.env),
                    env_kwargs=getattr(run.cfg, "env_kwargs", None), obs_space=env.observation_space,
                    action_space=env.action_space, step=step, eval_return=eval_return)
    except OSError as err:
        kept = f"the checkpoint of step {run.saved_step} is kept" if run.saved_step is not None else "none was kept"
        raise CheckpointError(
            f"could not write the policy of step {step} in {run.run_dir / name}: {err.strerror or err}; the run "
            f"stopped and {kept}. Fix that, then resume with `softrl train --resume {run.run_dir}`") from None


def _saved_best_return(run_dir: Path) -> float:
    """The median return recorded in RUN/best_policy (-inf if none), so a resumed run keeps its best."""
    path = run_dir / BEST_POLICY_DIRNAME
    try:
        returns = read_meta(path)["eval_return"]
        return float(np.median([float(r) for r in returns]))
    except (ValueError, TypeError, KeyError):  # none yet, or unreadable: the next evaluation rewrites it
        return -np.inf


def _notify(run: _Run, kind: str, step: int, metrics: dict | None = None, returns: np.ndarray | None = None) -> None:
    if not run.callbacks:
        return
    view = make_view(kind, step, states=run.carry.agent, run_dir=run.run_dir, seeds=run.seeds,  # type: ignore[arg-type]
                     checkpoint_step=run.saved_step, metrics=metrics, eval_returns=returns)
    if notify(run.callbacks, view, f"Resume with: softrl train --resume {run.run_dir}") and run.stop_step is None:
        run.stop_step = step


def _after_eval(run: _Run, step: int, returns: np.ndarray) -> None:
    """Log an evaluation [N, E], keep RUN/best_policy when the median over seeds improves, call the callbacks."""
    assert run.logger is not None
    _log_eval(run.logger, run.seeds, step, returns)
    run.last_eval = returns
    means = returns.mean(axis=1)  # [N]
    median = float(np.median(means))
    if median > run.best_return:
        _write_policy(run, BEST_POLICY_DIRNAME, step, eval_return=means)
        run.best_return = median
    _notify(run, "eval", step, returns=returns)


def _resume_conflicts(saved: TrainConfig, cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse, naming each, the options that differ from the checkpoint's and could change the trajectory."""
    bad = [f"{k} {old!r} -> {new!r}" for k, old, new in config_diff(saved, cfg) if k not in RESUMABLE_FIELDS]
    if bad:
        raise CheckpointError(
            f"the run in {run_dir} was trained with other settings, which a resume cannot change: {'; '.join(bad)}. "
            f"Only {', '.join(f for f in RESUMABLE_FIELDS if f != 'run_dir')} may change on resume")


def _restore(run: _Run) -> None:
    """Load the newest readable checkpoint of `run.run_dir` into `run` (falls back to the previous one)."""
    rundir.refuse_legacy(run.run_dir)
    root = rundir.checkpoints_dir(run.run_dir)
    try:
        meta, arrays, path = checkpoint.load_latest(root, _note, defer=is_buffer_data)
    except CheckpointError as err:
        if rundir.has_checkpoint(run.run_dir) or root.exists():
            raise
        raise CheckpointError(f"{err}: nothing to resume; start the run again with --overwrite") from None
    _resume_conflicts(config_from_dict(meta["config"]), run.cfg, run.run_dir)
    start = int(meta["step"])
    if run.cfg.total_steps < start:
        raise ValueError(f"--total-steps {run.cfg.total_steps} is below the {start} steps the run has done")
    agent = checkpoint.tree_from("agent", arrays, run.carry.agent, "agent state")
    key = checkpoint.array_like(arrays, "key", run.carry.key, "PRNG keys")
    action = checkpoint.array_like(arrays, "action", run.action, "next action")
    buffer = _restore_buffer(run.carry.buffer, arrays)
    run.carry = run.carry._replace(agent=jax.tree.map(jnp.asarray, agent), buffer=buffer, key=jnp.asarray(key))
    run.envs.set_state(checkpoint.decode_state(meta["envs"], arrays))
    run.action, run.start, run.saved_step = action, start, start
    run.best_return = _saved_best_return(run.run_dir)
    for step, newer in checkpoint.list_checkpoints(root):
        if step > start:  # damaged, and from a future this run no longer has
            _note(f"removing the unreadable checkpoint {newer}")
            shutil.rmtree(newer, ignore_errors=True)


# ----- the named steps of train ---------------------------------------------------------------------------


def _start(cfg: TrainConfig, resume: str | Path | None, overwrite: bool) -> _Run:
    """Set up a new run (checkpointed at step 0) or reopen one at its newest checkpoint."""
    # First, before any JAX computation: the devices can only be chosen while the backend is not started.
    sharding = seed_sharding(cfg.seeds, min(use_cpu_devices(cfg.cpu_devices), cfg.cpu_devices))
    run_dir = Path(resume) if resume is not None else Path(cfg.run_dir or default_run_dir(cfg))
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    # first: an env that cannot be built leaves the disk as it was
    envs = SeedEnvs(cfg.env, seeds, cfg.env_kwargs, num_envs=cfg.num_envs)
    try:
        if cfg.agent.encoder == "cnn":  # refused on vector observations before the disk is touched
            make_agent(cfg.algo, cfg.agent, envs.spec)
        lock = rundir.open_run_dir(run_dir, resume=resume is not None, overwrite=overwrite, note=_note)
    except BaseException:
        envs.close()
        raise
    try:
        if resume is not None:
            rundir.refuse_legacy(run_dir)
        if resume is not None and (run_dir / "config.json").exists():  # refuse early, before building the agent
            _resume_conflicts(config_from_dict(json.loads((run_dir / "config.json").read_text())), cfg, run_dir)
        cfg = dataclasses.replace(cfg, run_dir=str(run_dir))
        agent = make_agent(cfg.algo, cfg.agent, envs.spec)
        envs.keep_shape(agent.spec.obs_shape)  # images stay [H, W, C] for a CNN torso
        carry = _init(agent, cfg, envs, seeds)
        # The action slot's shape and dtype: what _random_action gives (and a checkpoint must hold).
        action = jax.eval_shape(jax.vmap(partial(_random_action, agent, num_envs=cfg.num_envs)), carry.key)
    except BaseException:
        envs.close()
        lock.release()
        raise
    run = _Run(cfg, run_dir, seeds, envs, agent, carry, np.zeros(action.shape, action.dtype), 0, lock)
    try:
        obs = envs.reset()  # also before a restore: it builds what the env state is written into
        if resume is not None:
            _restore(run)
        else:
            _first_action(run, obs)
        if sharding is not None:  # seed groups on separate devices; the compiled step follows the inputs' sharding
            c = run.carry
            run.carry = c._replace(agent=jax.device_put(c.agent, sharding), buffer=jax.device_put(c.buffer, sharding),
                                   key=jax.device_put(c.key, sharding))
        _write_json(run_dir / "config.json", config_to_dict(cfg))
        (run_dir / "summary.json").unlink(missing_ok=True)  # the run is not finished (again)
        run.logger = RunLogger(run_dir, seeds, cfg.tensorboard, wandb_project=getattr(cfg, "wandb", None),
                               wandb_config=config_to_dict(cfg))
        run.logger.truncate_after(run.start, drop_eval_at_step=run.start >= cfg.total_steps)
        if resume is None:
            _save(run, 0)  # a run stopped before its first scheduled checkpoint can still be resumed
    except BaseException:
        run.close()
        raise
    return run


def _first_action(run: _Run, obs: np.ndarray) -> None:
    init_key = jax.vmap(jax.random.split)(run.carry.key)
    run.carry = run.carry._replace(key=init_key[:, 0])
    if run.cfg.learning_starts > 0:
        run.action = np.asarray(jax.vmap(partial(_random_action, run.agent, num_envs=run.cfg.num_envs))(init_key[:, 1]))
    else:
        run.action = np.asarray(act_batch(run.agent, run.carry.agent, jnp.asarray(obs), init_key[:, 1], False))


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


class _Clock:
    """Wall time of the call, and of the part after the first update (steps/s without compilation)."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.learn_t0: float | None = None
        self.learn_step0 = 0
        self.t_end = self.t0

    def first_update(self, step: int) -> None:
        if self.learn_t0 is None:
            self.learn_t0, self.learn_step0 = time.perf_counter(), step

    def timing(self, cfg: TrainConfig, start: int) -> dict[str, Any]:
        n = cfg.seeds
        out: dict[str, Any] = {"wall_s": self.t_end - self.t0, "env_steps_per_seed": cfg.total_steps - start,
                               "num_seeds": n}
        if self.learn_t0 is not None and self.t_end > self.learn_t0:
            sps = (cfg.total_steps - self.learn_step0) / (self.t_end - self.learn_t0)
            out.update(steps_per_s_after_learning_starts=sps * n,
                       seconds_after_learning_starts=self.t_end - self.learn_t0,
                       per_seed_steps_per_s=sps, updates_per_s=sps * n * cfg.gradient_steps / cfg.train_freq)
        return out


def _step_loop(run: _Run, clock: _Clock) -> tuple[int, bool]:
    """Env steps `start + 1 .. total_steps`, or until SIGINT/SIGTERM. Returns (last step done, interrupted)."""
    cfg, seeds, envs, logger = run.cfg, run.seeds, run.envs, run.logger
    assert logger is not None
    k = cfg.num_envs  # env steps per loop step (per seed)
    step_fn = make_step_fn(run.agent, cfg.agent.batch_size, cfg.gradient_steps, k, cfg.vmap_updates)

    def due(every: float, step: int) -> bool:
        """Did this loop step cross a multiple of `every`? (with K = 1: `step % every == 0`)"""
        return every > 0 and step // every > (step - k) // every

    progress = _Progress(cfg, run.start) if cfg.progress else None
    recent: list[float] = []
    metrics: dict = {}
    period = cfg.checkpoint_minutes * 60.0
    stop = _StopFlag()
    step = run.start
    try:
        for step in range(run.start + k, cfg.total_steps + 1, k):
            try:
                transition, finished = envs.step(run.action)
            except EnvStepError as err:
                raise EnvError(f"{err} (at env step {step}); stopped. The last checkpoint (step {run.saved_step}) "
                               f"is kept in {rundir.checkpoints_dir(run.run_dir)}") from err
            for i, ret, length in finished:
                logger.write(seeds[i], "episodes", {"step": step, "return": ret, "length": length})
                recent.append(ret)
            do_update = step >= cfg.learning_starts and due(cfg.train_freq, step)
            run.carry, action_dev, m = step_fn(run.carry, _to_transition(transition, envs.discrete), envs.obs,
                                               np.int32(step), do_update=do_update,
                                               random_action=step < cfg.learning_starts)
            run.action = np.asarray(action_dev)
            if do_update:
                clock.first_update(step)
            if m:
                metrics = m
            if due(cfg.log_every, step):
                _check_finite(run)
                host = _log_train(logger, seeds, step, metrics, time.perf_counter() - clock.t0, step - run.start)
                _notify(run, "log", step, metrics=host)
            if due(cfg.eval_every, step) and step < cfg.total_steps:
                _after_eval(run, step, evaluate(run.agent, run.carry.agent, cfg.env, seeds, cfg.eval_episodes,
                                                env_kwargs=cfg.env_kwargs))
            if due(cfg.checkpoint_every, step) or (
                    period and due(100, step) and time.monotonic() - run.saved_at >= period):
                _save(run, step)
                _notify(run, "checkpoint", step)
            if progress is not None:
                progress.update(step, recent[-len(seeds) * 5 :])
            if stop.requested or run.stop_step is not None:
                break
    finally:
        if progress is not None:
            progress.close()
        stop.restore()
    jax.block_until_ready(run.carry)
    clock.t_end = time.perf_counter()
    return step, stop.requested and step < cfg.total_steps


def _finish(run: _Run, clock: _Clock) -> TrainResult:
    """Final checkpoint, final evaluation and summary.json."""
    cfg, seeds = run.cfg, run.seeds
    if run.saved_step != cfg.total_steps:  # not saved already by --checkpoint-every at the last step
        _save(run, cfg.total_steps)
        _notify(run, "checkpoint", cfg.total_steps)
    eval_returns = evaluate(run.agent, run.carry.agent, cfg.env, seeds, cfg.eval_episodes, env_kwargs=cfg.env_kwargs)
    _after_eval(run, cfg.total_steps, eval_returns)
    timing = clock.timing(cfg, run.start)
    summary = {"config": config_to_dict(cfg), "timing": timing, "final_eval": summarize_returns(seeds, eval_returns)}
    _write_json(run.run_dir / "summary.json", summary)
    return TrainResult(states=run.carry.agent, eval_returns=eval_returns, run_dir=run.run_dir, timing=timing,
                       agent=run.agent, seeds=seeds, updates=np.asarray(run.carry.agent.step))


def _stopped(run: _Run, clock: _Clock, step: int) -> TrainResult:
    """A callback asked to stop at `step`: checkpoint there (resumable), no final evaluation or summary.json."""
    if run.saved_step != step:
        _save(run, step)
        _notify(run, "checkpoint", step)
    n = len(run.seeds)
    returns = run.last_eval if run.last_eval is not None else np.zeros((n, 0))
    timing = clock.timing(dataclasses.replace(run.cfg, total_steps=step), run.start)
    return TrainResult(states=run.carry.agent, eval_returns=returns, run_dir=run.run_dir, timing=timing,
                       agent=run.agent, seeds=run.seeds, updates=np.asarray(run.carry.agent.step), stopped_at=step)


def save_interrupted(run: Any, step: int, save: Callable[[Any, int], None]) -> NoReturn:
    """Ctrl-C / SIGTERM is honoured between steps, so the saved state is consistent: checkpoint `step` (unless it
    is the last one saved) and stop with the resume command. Shared by this loop and softrl.ondevice_run."""
    if run.saved_step != step:
        save(run, step)
    raise KeyboardInterrupt(f"interrupted; run saved at step {step}. Resume with: softrl train --resume {run.run_dir}")


def train(cfg: TrainConfig, *, resume: str | Path | None = None, overwrite: bool = False,
          callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train `cfg.seeds` agents at once. With `resume=RUN_DIR`, continue that run exactly.

    Returns the final states, the final deterministic evaluation and timing. Writes config, logs and
    checkpoints to the run directory (layout: softrl.rundir). A new run into a folder that holds a run is
    refused unless `overwrite=True`, which deletes it first. On resume, only the fields in
    `config.RESUMABLE_FIELDS` may differ from the checkpoint's config. SIGINT/SIGTERM stop after the current
    step with a checkpoint and raise KeyboardInterrupt.

    `callbacks` (softrl.callbacks) are called with a read-only `RunView` after each log, evaluation and
    checkpoint. One that returns `softrl.STOP` stops the run after a checkpoint at that step (resumable);
    the result then has `stopped_at` set and `eval_returns` from the latest evaluation ([N, 0] if none).
    One that raises stops the run with a CallbackError; the checkpoints on disk are kept.
    Every checkpoint also writes RUN/policy/, and each evaluation that improves the median return over
    seeds writes RUN/best_policy/ (softrl.policy.load_policy reads both).
    """
    cfg.validate()
    callbacks = tuple(callbacks)
    if not all(callable(c) for c in callbacks):
        raise TypeError("callbacks must be callables f(view) -> softrl.STOP or None")
    if is_jax_env(cfg.env):  # the whole loop on device (softrl.ondevice_run)
        from softrl import ondevice_run

        if callbacks:
            raise ValueError(f"callbacks are not supported by the on-device loop ({cfg.env}) yet; train on the "
                             "gymnasium twin to use them")
        return ondevice_run.train_run(cfg, resume=resume, overwrite=overwrite)
    run = _start(cfg, resume, overwrite)
    run.callbacks = callbacks
    try:
        clock = _Clock()
        step, interrupted = _step_loop(run, clock)
        if interrupted:
            save_interrupted(run, step, _save)
        if run.stop_step is not None and step < cfg.total_steps:
            return _stopped(run, clock, step)
        return _finish(run, clock)
    finally:
        run.close()


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


def _log_train(logger: RunLogger, seeds, step: int, metrics: dict, elapsed: float, steps_done: int) -> dict:
    """Write the metrics of every seed; returns them on the host ({name: [N]}, {} before the first update)."""
    if not metrics:
        return {}
    host = jax.device_get(metrics)
    sps = steps_done / max(elapsed, 1e-9)
    for i, s in enumerate(seeds):
        logger.write(s, "train", {"step": step, "steps_per_s": sps, **{k: float(v[i]) for k, v in host.items()}})
    return {k: np.asarray(v) for k, v in host.items()}


def _log_eval(logger: RunLogger, seeds, step: int, returns: np.ndarray) -> None:
    for s, r in zip(seeds, returns):
        logger.write(s, "eval", {"step": step, "mean_return": float(np.mean(r)), "std_return": float(np.std(r))})


class _Progress:
    """A rich progress bar with env-steps/s and the recent mean training return."""

    def __init__(self, cfg: TrainConfig, start: int):
        from rich.markup import escape
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn(f"[bold]{cfg.algo}[/] {escape(env_label(cfg.env))} x{cfg.seeds}"),
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


def load_run(run_dir: str | Path, env: EnvFactory | None = None) -> tuple[TrainConfig, Agent, Any, list[int]]:
    """Config, agent and (batched) agent states from a run directory's newest readable checkpoint.

    `env`: the zero-argument factory a run trained from Python with `TrainConfig(env=factory)` needs (the
    returned config then holds it, so that `evaluate(..., cfg.env, ...)` works); None for gymnasium ids.
    """
    run_dir = Path(run_dir)
    rundir.refuse_legacy(run_dir)
    # the replay buffer is checksummed with the rest but not read: evaluation needs only the agent states
    meta, arrays, _ = checkpoint.load_latest(rundir.checkpoints_dir(run_dir), _note, defer=is_buffer_data)
    cfg = config_from_dict(meta["config"])
    if env is not None:
        cfg = dataclasses.replace(cfg, env=env)
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    agent = _run_agent(cfg)
    template = jax.eval_shape(jax.vmap(agent.init), jnp.stack([jax.random.PRNGKey(s) for s in seeds]))
    states = checkpoint.tree_from("agent", arrays, template, "agent state")
    return cfg, agent, jax.tree.map(jnp.asarray, states), seeds


def _run_agent(cfg: TrainConfig) -> Agent:
    # the on-device loop's cached agent: its compiled evaluation is reused
    if is_jax_env(cfg.env):
        from softrl import ondevice

        return ondevice._agent(cfg.algo, cfg.agent, cfg.env)
    envs = SeedEnvs(cfg.env, [cfg.seed], cfg.env_kwargs)
    spec = envs.spec
    envs.close()
    return make_agent(cfg.algo, cfg.agent, spec)


__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "NonFiniteEnvError", "train", "evaluate", "load_run",
           "summarize_returns"]
