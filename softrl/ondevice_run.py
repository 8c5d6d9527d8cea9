"""Run directories for the on-device loop: `softrl.train` on a `jax/` environment.

The same run as `softrl.loop.train` gives for a gymnasium env, from the outside: RUN_DIR with lock,
config.json, checkpoints/ (checkpoint format v2: tensors + JSON meta), seed_S/{train,episodes,eval}.csv,
summary.json and policy/ (`softrl.policy`, with the spaces of the env's gymnasium twin so that the policy
file runs there). A new run into a folder holding a run is refused without `overwrite`; a resume may change
only `config.RESUMABLE_FIELDS`, and continues bitwise (the carry is the whole loop state and chunking does
not change the result, `softrl.ondevice`).

Inside, one compiled `lax.scan` (`ondevice.Loop.run_chunk`) runs all agents from one log, evaluation or
checkpoint step to the next; the host only writes what the chunk returns. SIGINT/SIGTERM and the
`checkpoint_minutes` clock are honoured between chunks (at most `MAX_CHUNK` env steps apart).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from softrl import checkpoint, jaxenv, ondevice, rundir
from softrl import loop as gym_loop
from softrl.checkpoint import CheckpointError
from softrl.config import TrainConfig, config_from_dict, config_to_dict, env_label
from softrl.log import RunLogger

MAX_CHUNK = 10_000  # env steps per compiled call when no log/eval/checkpoint comes sooner
_CARRY_FIELDS = ("env_state", "obs", "action", "key", "env_key", "episode_return", "episode_length", "metrics",
                 "step", "bad_step")  # saved as carry.FIELD...; agent and buffer as the gymnasium loop saves them


@dataclasses.dataclass
class _Run:
    cfg: TrainConfig
    run_dir: Path
    loop: ondevice.Loop
    carry: ondevice.Carry
    lock: rundir.RunLock
    start: int = 0
    logger: RunLogger | None = None
    saved_step: int | None = None
    saved_at: float = dataclasses.field(default_factory=time.monotonic)
    best_return: float = -np.inf  # median over seeds of the mean return of RUN/best_policy

    @property
    def seeds(self) -> list[int]:
        return self.loop.seeds

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
        self.lock.release()


# ----- checkpoints ---------------------------------------------------------------------------------------


def _tensors(carry: ondevice.Carry) -> dict[str, checkpoint.Tensor]:
    out = {**checkpoint.tree_tensors("agent", carry.agent), **gym_loop._buffer_tensors(carry.buffer)}
    for name in _CARRY_FIELDS:
        out.update(checkpoint.tree_tensors(f"carry.{name}", getattr(carry, name)))
    return out


def _check_finite(run: _Run) -> None:
    bad = int(run.carry.bad_step)
    if bad >= 0:
        kept = (f"The last good checkpoint (step {run.saved_step}, in {rundir.checkpoints_dir(run.run_dir)}) was "
                "kept." if run.saved_step is not None else "")
        raise gym_loop.NonFiniteLossError(f"non-finite loss (NaN/inf) at env step {bad}; stopped. {kept} Try a lower "
                                          "--lr, or check the rewards and observations.")


def _save(run: _Run, step: int) -> None:
    """As `loop._save`: refuse a non-finite state, one-line CheckpointError on a failed write; then policy/."""
    _check_finite(run)
    meta = {"config": config_to_dict(run.cfg), "seeds": run.seeds, "loop": "ondevice"}
    try:
        checkpoint.save(rundir.checkpoints_dir(run.run_dir), step, meta, _tensors(run.carry))
        write_policy(run.run_dir, run.cfg, run.loop, run.carry.agent, step)
    except OSError as err:
        kept = f"the checkpoint of step {run.saved_step} is kept" if run.saved_step is not None else "none was kept"
        raise CheckpointError(
            f"could not write the checkpoint of step {step} in {run.run_dir}: {err.strerror or err}; the run stopped "
            f"and {kept}. Fix that, then resume with `softrl train --resume {run.run_dir}`") from None
    run.saved_step, run.saved_at = step, time.monotonic()


def _after_eval(run: _Run, step: int, returns: np.ndarray) -> None:
    """Log an evaluation [N, E] and keep RUN/best_policy when the median over seeds improves (as `loop`)."""
    from softrl.policy import BEST_POLICY_DIRNAME

    assert run.logger is not None
    gym_loop._log_eval(run.logger, run.seeds, step, returns)
    means = returns.mean(axis=1)  # [N]
    if float(np.median(means)) > run.best_return:
        write_policy(run.run_dir, run.cfg, run.loop, run.carry.agent, step, means, BEST_POLICY_DIRNAME)
        run.best_return = float(np.median(means))


def write_policy(run_dir: Path, cfg: TrainConfig, loop: ondevice.Loop, states: Any, step: int,
                 eval_return: np.ndarray | None = None, name: str = "policy") -> Path:
    """RUN/policy/: `softrl.policy.save_policy` with the gymnasium twin's id and spaces (`spec.gym_id`), so
    `softrl.policy.load_policy` acts on gymnasium observations (the twins' observations are the same)."""
    from softrl.collect import make_env
    from softrl.policy import POLICY_DIRNAME, save_policy

    gym_id = loop.env.spec.gym_id or env_label(cfg.env)
    env = make_env(gym_id)
    try:
        return save_policy(run_dir / (name or POLICY_DIRNAME), algo=cfg.algo, agent_config=cfg.agent,
                           spec=loop.agent.spec, states=states, seeds=loop.seeds, env_id=gym_id, env_kwargs=None,
                           obs_space=env.observation_space, action_space=env.action_space, step=step,
                           eval_return=eval_return)
    finally:
        env.close()


def _restore(run: _Run) -> None:
    """The newest readable checkpoint into `run.carry` (as `loop._restore`: same refusals, same fallback)."""
    rundir.refuse_legacy(run.run_dir)
    root = rundir.checkpoints_dir(run.run_dir)
    try:
        meta, arrays, _ = checkpoint.load_latest(root, gym_loop._note, defer=gym_loop.is_buffer_data)
    except CheckpointError as err:
        if rundir.has_checkpoint(run.run_dir) or root.exists():
            raise
        raise CheckpointError(f"{err}: nothing to resume; start the run again with --overwrite") from None
    gym_loop._resume_conflicts(config_from_dict(meta["config"]), run.cfg, run.run_dir)
    if meta.get("loop") != "ondevice":
        raise CheckpointError(f"the checkpoint in {root} was not written by the on-device loop")
    c = run.carry
    fields = {name: checkpoint.tree_from(f"carry.{name}", arrays, getattr(c, name), f"carry.{name}")
              for name in _CARRY_FIELDS}
    agent = checkpoint.tree_from("agent", arrays, c.agent, "agent state")
    buffer = gym_loop._restore_buffer(c.buffer, arrays)  # written in place into the run's own buffer
    # Fresh device arrays for every leaf: the next chunk donates them. The buffer's already are (no second copy
    # of it on the device).
    restored = c._replace(agent=agent, buffer=None, **fields)
    run.carry = jax.tree.map(lambda x: jnp.array(x, copy=True), restored)._replace(buffer=buffer)
    start = int(meta["step"])
    if run.cfg.total_steps < start:
        raise ValueError(f"--total-steps {run.cfg.total_steps} is below the {start} steps the run has done")
    run.start = run.saved_step = start
    for step, newer in checkpoint.list_checkpoints(root):
        if step > start:
            gym_loop._note(f"removing the unreadable checkpoint {newer}")
            shutil.rmtree(newer, ignore_errors=True)


# ----- the run -------------------------------------------------------------------------------------------


def check_config(cfg: TrainConfig) -> None:
    """ValueError (one line) for options the on-device loop does not implement."""
    if cfg.env_kwargs:
        raise ValueError(f"--env-kwargs apply to gymnasium envs; the JAX env {cfg.env} takes none")
    if cfg.cpu_devices != 1:
        raise ValueError(f"--cpu-devices {cfg.cpu_devices}: the on-device loop ({cfg.env}) runs all agents in one "
                         "compiled program; leave --cpu-devices at 1")
    if not cfg.vmap_updates:
        raise ValueError(f"--no-vmap-updates applies to gymnasium envs; the on-device loop ({cfg.env}) vmaps the "
                         "whole step over its agents")
    if cfg.num_envs != 1 or cfg.agent.normalize_obs:  # the on-device step does not implement them (yet)
        raise ValueError(f"--num-envs and --normalize-obs apply to gymnasium envs; the on-device loop ({cfg.env}) "
                         "runs one env per agent without observation normalisation")


def _start(cfg: TrainConfig, resume: str | Path | None, overwrite: bool) -> _Run:
    check_config(cfg)
    run_dir = Path(resume) if resume is not None else Path(cfg.run_dir or gym_loop.default_run_dir(cfg))
    cfg = dataclasses.replace(cfg, run_dir=str(run_dir))
    loop = ondevice.build(cfg)  # refuses a bad env id, algorithm or buffer size before the run dir is touched
    lock = rundir.open_run_dir(run_dir, resume=resume is not None, overwrite=overwrite, note=gym_loop._note)
    try:
        if resume is not None:
            rundir.refuse_legacy(run_dir)
            if (run_dir / "config.json").exists():
                import json

                saved = config_from_dict(json.loads((run_dir / "config.json").read_text()))
                gym_loop._resume_conflicts(saved, cfg, run_dir)
        run = _Run(cfg, run_dir, loop, loop.init(), lock)
    except BaseException:
        lock.release()
        raise
    try:
        if resume is not None:
            _restore(run)
            run.best_return = gym_loop._saved_best_return(run_dir)
        gym_loop._write_json(run_dir / "config.json", config_to_dict(cfg))
        (run_dir / "summary.json").unlink(missing_ok=True)
        run.logger = RunLogger(run_dir, run.seeds, cfg.tensorboard)
        run.logger.truncate_after(run.start)
        if resume is None:
            _save(run, 0)
    except BaseException:
        run.close()
        raise
    return run


def _next_stop(cfg: TrainConfig, step: int) -> int:
    """The next env step at which something happens on the host."""
    stops = [cfg.total_steps, step + MAX_CHUNK]
    for every in (cfg.log_every, cfg.eval_every, cfg.checkpoint_every):
        if every:
            stops.append((step // every + 1) * every)
    return min(stops)


def _log_chunk(run: _Run, first: int, stats: ondevice.ChunkStats) -> list[float]:
    """episodes.csv rows of every episode that ended in the chunk whose first env step is `first`; returns
    the returns of the chunk's last episodes (for the progress bar)."""
    assert run.logger is not None
    done, ret, length = (np.asarray(x) for x in (stats.done, stats.episode_return, stats.episode_length))
    for i, s in enumerate(run.seeds):
        for t in np.flatnonzero(done[:, i]):
            run.logger.write(s, "episodes", {"step": first + int(t), "return": float(ret[t, i]),
                                             "length": int(length[t, i])})
    return ret[done].tolist()[-5 * len(run.seeds):]


def _step_loop(run: _Run, clock: gym_loop._Clock) -> tuple[int, bool]:
    """Chunks up to `total_steps`, or until SIGINT/SIGTERM. Returns (last step done, interrupted)."""
    cfg, logger = run.cfg, run.logger
    assert logger is not None
    stop = gym_loop._StopFlag()
    progress = gym_loop._Progress(cfg, run.start) if cfg.progress else None
    step = run.start
    try:
        while step < cfg.total_steps and not stop.requested:
            nxt = _next_stop(cfg, step)
            run.carry, stats = run.loop.run_chunk(run.carry, nxt - step)
            recent = _log_chunk(run, step + 1, stats)
            step = nxt
            if progress is not None:
                progress.update(step - step % 100, recent)  # it draws on multiples of 100 steps
            if step >= cfg.learning_starts:
                clock.first_update(step)
            if cfg.log_every and step % cfg.log_every == 0:
                _check_finite(run)
                if step >= cfg.learning_starts:
                    gym_loop._log_train(logger, run.seeds, step, run.carry.metrics, time.perf_counter() - clock.t0,
                                        step - run.start)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.total_steps:
                _after_eval(run, step, run.loop.evaluate(run.carry.agent, cfg.eval_episodes))
            period = cfg.checkpoint_minutes * 60.0
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or (
                    period and time.monotonic() - run.saved_at >= period):
                _save(run, step)
    finally:
        if progress is not None:
            progress.close()
        stop.restore()
    jax.block_until_ready(run.carry)
    clock.t_end = time.perf_counter()
    return step, stop.requested and step < cfg.total_steps


def _finish(run: _Run, clock: gym_loop._Clock) -> gym_loop.TrainResult:
    cfg, seeds = run.cfg, run.seeds
    if run.saved_step != cfg.total_steps:
        _save(run, cfg.total_steps)
    eval_returns = run.loop.evaluate(run.carry.agent, cfg.eval_episodes)
    _after_eval(run, cfg.total_steps, eval_returns)
    timing = {**clock.timing(cfg, run.start), "loop": "ondevice"}
    summary = {"config": config_to_dict(cfg), "timing": timing,
               "final_eval": gym_loop.summarize_returns(seeds, eval_returns)}
    gym_loop._write_json(run.run_dir / "summary.json", summary)
    return gym_loop.TrainResult(states=run.carry.agent, eval_returns=eval_returns, run_dir=run.run_dir, timing=timing,
                                agent=run.loop.agent, seeds=seeds, updates=np.asarray(run.carry.agent.step))


def train_run(cfg: TrainConfig, *, resume: str | Path | None = None, overwrite: bool = False) -> gym_loop.TrainResult:
    """`softrl.train` for a `jax/` env (`cfg.env`): same run directory, checkpoints, logs and result."""
    run = _start(cfg, resume, overwrite)
    try:
        clock = gym_loop._Clock()
        step, interrupted = _step_loop(run, clock)
        if interrupted:
            gym_loop.save_interrupted(run, step, _save)
        return _finish(run, clock)
    finally:
        run.close()


def evaluate(agent, states: Any, env_id: str, seeds: list[int], episodes: int, deterministic: bool = True):
    """`loop.evaluate` on a `jax/` env: [num_seeds, episodes] returns, agent i's envs from PRNGKey(10**6 + seed)."""
    return ondevice._evaluate_fn(agent, jaxenv.make(env_id), tuple(seeds), deterministic)(states, episodes)


def gym_twin(env_id: str) -> str:
    """The gymnasium id whose dynamics the `jax/` env `env_id` reproduces (`softrl eval --gym`); a gymnasium
    id is returned as it is."""
    if not jaxenv.is_jax_id(env_id):
        return env_id
    twin = jaxenv.make(env_id).spec.gym_id
    if twin is None:
        raise ValueError(f"{env_id} has no gymnasium twin; evaluate it without --gym")
    return twin


__all__ = ["MAX_CHUNK", "check_config", "evaluate", "gym_twin", "train_run", "write_policy"]
