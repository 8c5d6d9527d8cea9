"""Run a sweep's trials as Ray core tasks; each trial trains its agents with softrl's own checkpoints.

Layout of a sweep directory:
    OUT/sweep.json                      the spec and its trials (written first; identifies the sweep)
    OUT/trial_000/trial.json            the trial's settings and agents
    OUT/trial_000/packed/               the trial's combined checkpoints: all its agents in one program
    OUT/trial_000/agent_00/...          a `softrl train` run directory (config.json, seed_S/, and when the
                                        trial is done summary.json and checkpoints/); see softrl.packed
    OUT/trial_000/summary.json          written last: the trial is finished

A trial trains all its agents (settings x seeds) as one packed, jitted program (`softrl.packed.train_packed`);
on a `jax/` env that program is the on-device loop's `lax.scan` (`softrl.ondevice`).

Fault tolerance: a Ray task whose worker process or node dies is retried (`max_retries`) on any live
worker. The retried trial resumes from the newest combined checkpoint in OUT/trial_NNN/packed/, which
continues exactly (same states, buffers, keys and env states as an uninterrupted run); a trial that died
before its first checkpoint (step 0, written at once) is restarted clean.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from softrl.rundir import has_checkpoint
from softrl.sweep.spec import SweepSpec, Trial, config_for

MAX_RETRIES = 3
PACKED = "packed"  # the trial's combined run directory (softrl.packed)


def use_compile_cache(sweep_dir: Path) -> None:
    """Share compiled programs between the agents and trials of a sweep through JAX's persistent cache.

    Agents that differ only in packable values compile to the same program (the values live in the state),
    so every agent after the first of a trial, and every trial on a worker that ran one like it, loads the
    program from the cache instead of compiling it again. A cache directory set by the user is kept.
    """
    import jax

    # a flag jax.config sets at runtime, absent from its type stub
    if jax.config.jax_compilation_cache_dir:  # pyright: ignore[reportAttributeAccessIssue]
        return
    jax.config.update("jax_compilation_cache_dir", str(sweep_dir / ".jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


_HELD_CORE: list = []  # the open lock file of the core this worker process claimed (released when it exits)


def core_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"softrl-cores-{os.getuid()}"


def pin_to_free_core(lock_dir: Path | None = None) -> int | None:
    """Claim a core that no other trial on this machine holds (an flock on LOCK_DIR/core_N.lock, kept until
    this process exits) and pin this process to it; None when every core is taken or pinning is unsupported.

    Must run before JAX starts its CPU backend in this process: XLA sizes its thread pool by the cores the
    process may use, so a pinned trial computes on one thread instead of contending with the trial on the
    next core (measured in benchmarks/RESULTS.md, "Wall time, the issue's workload")."""
    if not hasattr(os, "sched_setaffinity") or _HELD_CORE:
        return None
    lock_dir = lock_dir or core_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    for core in sorted(os.sched_getaffinity(0)):
        f = open(lock_dir / f"core_{core}.lock", "a")  # noqa: SIM115 (held open for the process's lifetime)
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _HELD_CORE.append(f)
        os.sched_setaffinity(0, {core})
        return core
    return None


def run_trial(spec_json: dict, trial_json: dict, sweep_dir: str, pin: bool = False) -> dict:
    """Train every agent of one trial as one packed program (resuming it from its combined checkpoint if it has
    one); write and return the trial's summary. `pin`: first pin this process to a free core (pin_to_free_core;
    the Ray task must run in a fresh worker process, max_calls=1)."""
    core = pin_to_free_core() if pin else None
    from softrl.packed import train_packed

    use_compile_cache(Path(sweep_dir))
    spec, trial = SweepSpec.from_json(spec_json), Trial(**trial_json)
    trial_dir = Path(sweep_dir) / trial.name
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "trial.json").write_text(json.dumps(trial.to_json(), indent=2))
    # Which process runs the trial now (rewritten by a retry): for `ps`, logs, and the fault-injection test.
    (trial_dir / "worker.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                                        "core": core}))
    t0 = time.perf_counter()
    run_dirs = [trial_dir / f"agent_{k:02d}" for k in range(len(trial.agents))]
    cfgs = [config_for(spec, {**trial.settings, **packed}, run_dir=str(d)) for packed, d in zip(trial.agents, run_dirs)]
    resumed = False
    if not all((d / "summary.json").exists() for d in run_dirs):
        # An attempt that died before its first checkpoint left at most logs: start it clean.
        resumed = has_checkpoint(trial_dir / PACKED)
        train_packed(cfgs, trial_dir, resume=resumed)
    agents = []
    for packed, d in zip(trial.agents, run_dirs):
        summary = json.loads((d / "summary.json").read_text())
        agents.append({"run_dir": d.name, "hypers": packed, "resumed": resumed, "final_eval": summary["final_eval"]})
    out = {"trial": trial.name, "settings": trial.settings, "agents": agents, "wall_s": time.perf_counter() - t0,
           "host": socket.gethostname(), "pid": os.getpid()}
    tmp = trial_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, trial_dir / "summary.json")
    return out


def is_finished(sweep_dir: Path, trial: Trial) -> bool:
    return (sweep_dir / trial.name / "summary.json").exists()


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast with one line if HOST:PORT does not accept connections (Ray would otherwise wait long)."""
    if address == "auto" or address.startswith("ray://"):
        target = address.removeprefix("ray://")
        if address == "auto":
            return
    else:
        target = address
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--address must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ValueError(f"cannot reach a Ray cluster at {address} ({err.strerror or err}); start one with "
                         "`ray start --head` there, or drop --address to run on this machine") from None


@contextmanager
def ray_session(address: str | None, num_cpus: int | None):
    """Use the Ray session already started in this process, or start/join one and shut it down after."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        yield ray
        return
    if address is None:
        # Ray starts its workers at niceness 15; a local sweep is the user's own job, and at 15 it loses the CPU
        # to anything else running (measured: the trial ran at nice 15 beside nice-0 processes).
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=False, configure_logging=False)
    else:
        check_address(address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"cannot join the Ray cluster at {address}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def run_trials(ray: Any, spec: SweepSpec, todo: list[Trial], sweep_dir: Path, cpus_per_trial: float,
               pin: bool = False) -> list[str]:
    """Submit every trial as a Ray task and wait; returns one line per failed trial. `pin`: each trial runs in
    a fresh worker process pinned to a free core of its node (`pin_to_free_core`)."""
    remote = ray.remote(num_cpus=cpus_per_trial, max_retries=MAX_RETRIES, max_calls=1 if pin else 0)(run_trial)
    spec_json = spec.to_json()
    refs = {remote.remote(spec_json, t.to_json(), str(sweep_dir.resolve()), pin): t for t in todo}
    failures = []
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        trial = refs[done[0]]
        try:
            result = ray.get(done[0])
            finals = [a["final_eval"]["median_return"] for a in result["agents"]]
            print(f"{trial.name} done in {result['wall_s']:.0f} s: median final return per agent "
                  + ", ".join(f"{f:.1f}" for f in finals), flush=True)
        except Exception as err:  # a trial's own error (bad env, NaN loss, ...) after its retries
            cause = getattr(err, "cause", None) or err
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
            failures.append(f"{trial.name} failed: {first}")
            print(failures[-1], flush=True)
    return failures
