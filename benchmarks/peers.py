"""Side-by-side SAC speed benchmark: softrl against peer libraries.

Every peer trains SAC with the same workload: batch 256, two hidden layers of 256 units for the actor and
each of the two critics, one gradient update per env step, a replay buffer of 1e6, a single env, CPU only,
float32. The clock runs only while learning: from env step ``L`` (``learning_starts``) to env step
``L + M`` (``steps``), so each timed env step includes one gradient update.

Each peer runs in its own subprocess, so imports never clash and the timing is clean. The child prints one
line ``PEERS_RESULT {json}``; the parent prints the record as one JSON line on stdout::

    {"library", "version", "env", "steps_timed", "seconds", "steps_per_s", ...}

Extra keys (``learning_starts``, ``seed``, ``backend``, ``settings``) describe the run.

Peers: ``sb3`` (stable-baselines3, torch), ``sbx`` (SBX, JAX), ``cleanrl`` (CleanRL 1.2.0's
``sac_continuous_action.py``, patched at run time for gymnasium 1.x into ``benchmarks/_work/``, which git
ignores) and ``softrl`` (this library, run by the interpreter in ``--softrl-python`` / ``$SOFTRL_PYTHON``).

Run it with the benchmark venv (see benchmarks/README.md)::

    /work/benchvenv/bin/python benchmarks/peers.py --peer sb3 --env Pendulum-v1 --steps 5000 \\
        --learning-starts 1000

Never run two benchmarks at once: the peers are compute-bound and share the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "_work"
RESULT_TAG = "PEERS_RESULT "
CPU_CAP_VAR = "PEERS_CPU_CAP"  # cores a child is pinned to (set by --threads)

PEERS = ("sb3", "sbx", "cleanrl", "softrl")

# The shared workload.
BATCH_SIZE = 256
HIDDEN = [256, 256]
BUFFER_SIZE = 1_000_000

CLEANRL_VERSION = "1.2.0"
CLEANRL_SCRIPT = "sac_continuous_action.py"
# sha256 of cleanrl/sac_continuous_action.py in the cleanrl 1.2.0 wheel, the text the patches below target.
CLEANRL_SHA256 = "02df7cfef19d728542403718484b75cfc833cafcc1be1dc34c4e8de112b32027"


# ----------------------------------------------------------------------------------------------------------
# Parent side: launching children
# ----------------------------------------------------------------------------------------------------------


def _child_env(
    pythonpath: Path | None = None, threads: int | None = None, accelerator: bool = False
) -> dict[str, str]:
    """Environment for a child: CPU only (unless ``accelerator``), float32, unbuffered output, a thread cap.

    ``threads`` caps every library alike: OpenMP/MKL threads (torch), and the child is pinned to the first
    ``threads`` cores (``_run_child`` reads ``CPU_CAP_VAR``). Pinning is what caps JAX: XLA sizes its thread
    pool from the cores the process may use, and its old single-thread flags do not cap that pool in jaxlib
    0.10.2 (a jitted GEMM chain used 1.74 cores with them). ``None`` keeps every library's own default.
    ``accelerator=True`` leaves the GPU visible, so JAX picks its default backend (benchmarks/gpu.py).
    """
    env = dict(os.environ)
    if not accelerator:
        env["CUDA_VISIBLE_DEVICES"] = ""
        env["JAX_PLATFORMS"] = "cpu"
    env.pop("JAX_ENABLE_X64", None)
    env["PYTHONUNBUFFERED"] = "1"
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", CPU_CAP_VAR):
            env[var] = str(threads)
    if pythonpath is not None:
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(pythonpath) + (os.pathsep + old if old else "")
    return env


def _run_child(
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float | None,
    verbose: bool,
) -> dict[str, Any]:
    """Run one child process to completion and return the record it printed.

    With ``env[CPU_CAP_VAR] = N`` the child is pinned to the first N cores this process may use.
    """
    pin = None
    if env.get(CPU_CAP_VAR):
        cores = sorted(os.sched_getaffinity(0))[: int(env[CPU_CAP_VAR])]
        pin = partial(os.sched_setaffinity, 0, cores)
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        preexec_fn=pin,
    )
    timed_out = threading.Event()

    def _kill() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(timeout, _kill) if timeout else None
    if timer is not None:
        timer.start()
    tail: deque[str] = deque(maxlen=40)
    record: dict[str, Any] | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(RESULT_TAG):
                record = json.loads(line[len(RESULT_TAG) :])
                continue
            tail.append(line)
            if verbose:
                sys.stderr.write(line)
        rc = proc.wait()
    finally:
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    shown = " ".join(a if len(a) <= 80 else a[:77] + "..." for a in cmd)
    if timed_out.is_set():
        raise RuntimeError(f"timed out after {timeout} s: {shown}\n{''.join(tail)}")
    if rc != 0 or record is None:
        raise RuntimeError(f"child failed (exit {rc}, record={record is not None}): {shown}\n{''.join(tail)}")
    return record


def _self_child_cmd(
    peer: str,
    env_id: str,
    steps: int,
    learning_starts: int,
    seed: int,
    accelerator: bool = False,
    *,
    python: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """This file run as a child (``--child``) for ``peer``, by ``python`` (default: the current interpreter).

    The module imports only the standard library at the top, so any interpreter that has the peer's own
    dependencies can run it.
    """
    return [
        python or sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--peer",
        peer,
        "--env",
        env_id,
        "--steps",
        str(steps),
        "--learning-starts",
        str(learning_starts),
        "--seed",
        str(seed),
        *(["--accelerator"] if accelerator else []),
        *extra,
    ]


def run_sb3_family(
    lib: str,
    env_id: str,
    steps: int,
    learning_starts: int,
    seed: int = 0,
    *,
    timeout: float | None = None,
    threads: int | None = None,
    verbose=False,
    accelerator: bool = False,
) -> dict[str, Any]:
    """SAC of stable-baselines3 (``lib="sb3"``, torch) or SBX (``"sbx"``, JAX) in a subprocess.

    CPU, or with ``accelerator`` the GPU. Both share SB3's API, so one child (``_train_sb3_family``) serves both.
    """
    if lib not in ("sb3", "sbx"):
        raise ValueError(f"not an SB3-family peer: {lib!r}; choose sb3 or sbx")
    cmd = _self_child_cmd(lib, env_id, steps, learning_starts, seed, accelerator)
    env = _child_env(threads=threads, accelerator=accelerator)
    return _run_child(cmd, cwd=_work_dir(), env=env, timeout=timeout, verbose=verbose)


def run_cleanrl(
    env_id: str,
    steps: int,
    learning_starts: int,
    seed: int = 0,
    *,
    timeout: float | None = None,
    threads: int | None = None,
    verbose=False,
    accelerator: bool = False,
) -> dict[str, Any]:
    """CleanRL 1.2.0 ``sac_continuous_action.py``, patched for gymnasium 1.x, in a subprocess (CPU only).

    CleanRL updates when ``global_step > learning_starts`` with a 0-based ``global_step``, so its first update
    follows env step ``L + 2``. The patched script starts the clock at the top of that iteration and runs
    ``L + 1 + M`` env steps in all, so ``M`` env steps, each with one critic update, are timed.
    """
    if accelerator:
        raise ValueError("the cleanrl peer runs on CPU only here")
    script = prepare_cleanrl_script()
    cmd = [
        sys.executable,
        str(script),
        "--env-id",
        env_id,
        "--seed",
        str(seed),
        "--total-timesteps",
        str(learning_starts + 1 + steps),
        "--learning-starts",
        str(learning_starts),
        "--batch-size",
        str(BATCH_SIZE),
        "--buffer-size",
        str(BUFFER_SIZE),
        "--cuda",
        "False",
        "--track",
        "False",
        "--capture-video",
        "False",
    ]
    return _run_child(cmd, cwd=_work_dir(), env=_child_env(threads=threads), timeout=timeout, verbose=verbose)


def _work_dir() -> Path:
    """benchmarks/_work/ (git-ignored): the children's working directory, so stray files land there."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    return WORK_DIR


def softrl_python() -> str:
    """Interpreter for softrl: ``$SOFTRL_PYTHON`` if set, else the current one."""
    return os.environ.get("SOFTRL_PYTHON") or sys.executable


def run_softrl(
    env_id: str,
    steps: int,
    learning_starts: int,
    seeds: int = 1,
    *,
    python: str | None = None,
    timeout: float | None = None,
    threads: int | None = None,
    verbose: bool = False,
    cpu_devices: int = 1,
    accelerator: bool = False,
) -> dict[str, Any]:
    """softrl SAC through ``softrl.loop.train`` in a subprocess that runs ``train_softrl`` (this file, ``--child``).

    ``total_steps`` is ``learning_starts + steps`` per seed. ``steps_per_s`` is the aggregate env-steps/s over
    all seeds after learning starts, as ``result.timing`` reports it; ``steps_timed`` sums over seeds.
    The child runs on ``python`` (default ``softrl_python()``) with the working tree first on ``PYTHONPATH``.
    """
    with tempfile.TemporaryDirectory(prefix="softrl-bench-") as run_dir:
        extra = ("--softrl-seeds", str(seeds), "--run-dir", run_dir, "--cpu-devices", str(cpu_devices))
        cmd = _self_child_cmd("softrl", env_id, steps, learning_starts, 0, accelerator,
                              python=python or softrl_python(), extra=extra)
        env = _child_env(pythonpath=REPO_ROOT, threads=threads, accelerator=accelerator)
        return _run_child(cmd, cwd=_work_dir(), env=env, timeout=timeout, verbose=verbose)


def run_peer(
    peer: str,
    env_id: str,
    steps: int,
    learning_starts: int,
    *,
    seed: int = 0,
    softrl_seeds: int = 1,
    softrl_py: str | None = None,
    timeout: float | None = None,
    threads: int | None = None,
    verbose: bool = False,
    softrl_cpu_devices: int = 1,
    accelerator: bool = False,
) -> dict[str, Any]:
    """Run one peer in its own subprocess and return its JSON record (on the GPU too with ``accelerator``)."""
    if peer == "softrl":
        record = run_softrl(
            env_id,
            steps,
            learning_starts,
            softrl_seeds,
            python=softrl_py,
            timeout=timeout,
            threads=threads,
            verbose=verbose,
            cpu_devices=softrl_cpu_devices,
            accelerator=accelerator,
        )
    else:
        runners = {"sb3": partial(run_sb3_family, "sb3"), "sbx": partial(run_sb3_family, "sbx"),
                   "cleanrl": run_cleanrl}
        if peer not in runners:
            raise ValueError(f"unknown peer {peer!r}; choose from {PEERS}")
        record = runners[peer](
            env_id, steps, learning_starts, seed, timeout=timeout, threads=threads, verbose=verbose,
            accelerator=accelerator,
        )
    record["threads_cap"] = threads
    return record


# ----------------------------------------------------------------------------------------------------------
# Child side: softrl
# ----------------------------------------------------------------------------------------------------------


def train_softrl(env_id: str, steps: int, learning_starts: int, seeds: int, run_dir: str,
                 cpu_devices: int = 1) -> dict[str, Any]:
    """Child: train softrl SAC for ``learning_starts + steps`` env steps per seed and return the record.

    Runs in the child's interpreter, so softrl and JAX are imported here, not at the top of this file.
    The config keys that only shorten the untimed wall time (final evaluation, checkpoints) are set only
    if this softrl's ``TrainConfig`` has them, so older checkouts (``--softrl-python``) run too.
    """
    import dataclasses
    from importlib.metadata import PackageNotFoundError, version

    import jax

    from softrl.loop import TrainConfig, train

    total_steps = learning_starts + steps
    kwargs: dict[str, Any] = dict(algo="sac", env=env_id, seeds=seeds, total_steps=total_steps,
                                  learning_starts=learning_starts, eval_every=0, progress=False, run_dir=run_dir)
    if cpu_devices > 1:
        kwargs["cpu_devices"] = cpu_devices
    names = {f.name for f in dataclasses.fields(TrainConfig)} if dataclasses.is_dataclass(TrainConfig) else set()
    kwargs.update({k: v for k, v in {"eval_episodes": 1, "checkpoint_every": 0}.items() if k in names})
    timing = dict(train(TrainConfig(**kwargs)).timing)
    try:
        ver = version("softrl")
    except PackageNotFoundError:
        import softrl

        ver = getattr(softrl, "__version__", "dev")
    rate = float(timing["steps_per_s_after_learning_starts"])
    steps_timed = steps * seeds
    seconds = timing.get("seconds_after_learning_starts")
    seconds = float(seconds) if seconds is not None else (steps_timed / rate if rate > 0 else float("nan"))
    per_seed = timing.get("per_seed_steps_per_s")
    per_seed = [float(x) for x in per_seed] if isinstance(per_seed, (list, tuple)) else per_seed
    return {
        "library": "softrl", "version": ver, "env": env_id, "steps_timed": steps_timed,
        "seconds": seconds, "steps_per_s": rate, "per_seed_steps_per_s": per_seed,
        "learning_starts": learning_starts, "seeds": seeds, "backend": "jax " + jax.__version__,
        "cpu_devices": len(jax.devices()),
    }


# ----------------------------------------------------------------------------------------------------------
# Child side: SB3 and SBX, which share SB3's callback API
# ----------------------------------------------------------------------------------------------------------


def _rate_after_first(steps_timed: int, t_after_first: float | None, t_end: float) -> float | None:
    """Env-steps/s once the first update is done: leaves out one-off costs such as JAX compilation."""
    if t_after_first is None or steps_timed < 2 or t_end <= t_after_first:
        return None
    return (steps_timed - 1) / (t_end - t_after_first)


def make_sb3_family_sac(
    lib: str, env_id: str, learning_starts: int, seed: int, accelerator: bool = False, ent_coef: str = "auto"
) -> tuple[Any, str, str]:
    """SB3's or SBX's SAC on `env_id` with the shared workload: (model, version, backend).

    ``ent_coef``: "auto" (tuned alpha, SB3's default) or a fixed alpha such as "0.2" (benchmarks/sweep.py).

    ``accelerator``: SB3 on ``device="auto"`` (CUDA if torch sees it); SBX always follows JAX's backend.
    """
    from importlib.metadata import version

    import gymnasium as gym

    if lib == "sb3":
        import torch
        from stable_baselines3 import SAC

        version_str = version("stable-baselines3")
        device = "auto" if accelerator else "cpu"
        backend = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
        extra: dict[str, Any] = {"device": device}
    elif lib == "sbx":
        import jax
        from sbx import SAC

        version_str = version("sbx-rl")
        backend = f"jax {jax.__version__} ({jax.default_backend()})"
        extra = {}
    else:
        raise ValueError(lib)
    model = SAC(
        "MlpPolicy",
        gym.make(env_id),
        learning_rate=3e-4,
        buffer_size=BUFFER_SIZE,
        learning_starts=learning_starts,
        batch_size=BATCH_SIZE,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        ent_coef=ent_coef if ent_coef == "auto" else float(ent_coef),
        target_entropy="auto",
        policy_kwargs={"net_arch": list(HIDDEN)},
        seed=seed,
        verbose=0,
        **extra,
    )
    if lib == "sb3":
        backend += f" on {model.device}"
    return model, version_str, backend


def _train_sb3_family(
    lib: str, env_id: str, steps: int, learning_starts: int, seed: int, accelerator: bool = False,
    ent_coef: str = "auto",
) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import BaseCallback

    class LearningClock(BaseCallback):
        """Timestamps env step ``learning_starts``, the step after the first update, and the end of training.

        SB3's loop calls ``on_step`` after each env step and trains after it once ``num_timesteps >
        learning_starts``; ``on_training_end`` comes after the last update.
        """

        def __init__(self, start_at: int) -> None:
            super().__init__()
            self.start_at = start_at
            self.t0: float | None = None
            self.t_after_first: float | None = None
            self.t1: float | None = None
            self.steps_at_start = 0

        def _mark(self) -> None:
            self.t0 = time.perf_counter()
            self.steps_at_start = self.model.num_timesteps

        def _on_training_start(self) -> None:
            if self.start_at <= 0:
                self._mark()

        def _on_step(self) -> bool:
            if self.t0 is None and self.num_timesteps >= self.start_at:
                self._mark()
            elif (
                self.t0 is not None
                and self.t_after_first is None
                and self.num_timesteps >= self.steps_at_start + 2
            ):
                self.t_after_first = time.perf_counter()
            return True

        def _on_training_end(self) -> None:
            self.t1 = time.perf_counter()

    model, version_str, backend = make_sb3_family_sac(lib, env_id, learning_starts, seed, accelerator, ent_coef)
    clock = LearningClock(learning_starts)
    model.learn(total_timesteps=learning_starts + steps, callback=clock, progress_bar=False)
    assert clock.t0 is not None and clock.t1 is not None
    steps_timed = model.num_timesteps - clock.steps_at_start
    seconds = clock.t1 - clock.t0
    settings = {
        "learning_rate": float(model.learning_rate) if not callable(model.learning_rate) else "schedule",
        "batch_size": model.batch_size,
        "buffer_size": model.buffer_size,
        "tau": model.tau,
        "gamma": model.gamma,
        "train_freq": model.train_freq.frequency,
        "gradient_steps": model.gradient_steps,
        "ent_coef": str(getattr(model, "ent_coef_init", model.ent_coef)),
        "target_entropy": float(model.target_entropy),
        "net_arch": list(HIDDEN),
        "n_updates": int(model._n_updates),
    }
    if lib == "sbx":
        settings["policy_delay"] = model.policy_delay
        settings["qf_learning_rate"] = float(model.qf_learning_rate or model.learning_rate)
    else:
        settings["target_update_interval"] = model.target_update_interval
    model.get_env().close()
    return {
        "library": "stable-baselines3" if lib == "sb3" else "sbx",
        "version": version_str,
        "env": env_id,
        "steps_timed": int(steps_timed),
        "seconds": seconds,
        "steps_per_s": steps_timed / seconds if seconds > 0 else float("nan"),
        "steps_per_s_after_first_update": _rate_after_first(steps_timed, clock.t_after_first, clock.t1),
        "first_update_s": None if clock.t_after_first is None else clock.t_after_first - clock.t0,
        "learning_starts": learning_starts,
        "seed": seed,
        "backend": backend,
        "settings": settings,
    }


# ----------------------------------------------------------------------------------------------------------
# CleanRL: fetch the 1.2.0 script, patch it for gymnasium 1.x, instrument it
# ----------------------------------------------------------------------------------------------------------

_NOOP_WRITER = '''
class SummaryWriter:
    """Benchmark stand-in: tensorboard logging switched off."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None
'''

_STRTOBOOL = '''
def strtobool(value):
    """Benchmark stand-in for the removed distutils helper."""
    value = str(value).strip().lower()
    if value in ("y", "yes", "t", "true", "on", "1"):
        return 1
    if value in ("n", "no", "f", "false", "off", "0"):
        return 0
    raise ValueError(f"invalid truth value {value!r}")
'''

_EPISODE_LOG = """\\1# [bench] gymnasium 1.x, same-step autoreset: episode stats are in infos["final_info"]
\\1_fin = infos.get("final_info", {})
\\1if "episode" in _fin:
\\1    for _i in np.flatnonzero(_fin["_episode"]):
\\1        print(f"global_step={global_step}, episodic_return={_fin['episode']['r'][_i]}")
\\1        writer.add_scalar("charts/episodic_return", _fin["episode"]["r"][_i], global_step)
\\1        writer.add_scalar("charts/episodic_length", _fin["episode"]["l"][_i], global_step)
\\1        break
"""

_CLOCK_START = """\\1\\2
\\1    # [bench] start the clock at the top of the first iteration that runs an update
\\1    if global_step == args.learning_starts + 1:
\\1        _bench_t0 = time.perf_counter()
\\1    elif global_step == args.learning_starts + 2:
\\1        _bench_t_after_first = time.perf_counter()
"""

_CLOCK_END = """\\1# [bench] stop the clock and print one JSON record
\\1_bench_t1 = time.perf_counter()
\\1_bench_seconds = _bench_t1 - _bench_t0
\\1_bench_steps = args.total_timesteps - (args.learning_starts + 1)
\\1print("{tag}" + json.dumps({{
\\1    "library": "cleanrl", "version": "{version}", "env": args.env_id, "steps_timed": _bench_steps,
\\1    "seconds": _bench_seconds, "steps_per_s": _bench_steps / _bench_seconds,
\\1    "steps_per_s_after_first_update": (_bench_steps - 1) / (_bench_t1 - _bench_t_after_first),
\\1    "first_update_s": _bench_t_after_first - _bench_t0,
\\1    "learning_starts": args.learning_starts, "seed": args.seed,
\\1    "backend": f"torch {{torch.__version__}} ({{torch.get_num_threads()}} threads)",
\\1    "settings": {{
\\1        "policy_lr": args.policy_lr, "q_lr": args.q_lr, "alpha_lr": args.q_lr,
\\1        "batch_size": args.batch_size,
\\1        "buffer_size": args.buffer_size, "tau": args.tau, "gamma": args.gamma,
\\1        "policy_frequency": args.policy_frequency,
\\1        "target_network_frequency": args.target_network_frequency, "autotune": args.autotune,
\\1        "target_entropy": float(target_entropy) if args.autotune else None, "net_arch": [256, 256],
\\1    }},
\\1}}), flush=True)
\\1\\2"""

# (what, regex, replacement, expected number of matches). Anchors are kept short; replacements are ours.
_CLEANRL_PATCHES: list[tuple[str, str, str, int]] = [
    ("gym -> gymnasium", r"^import gym$", "import gymnasium as gym", 1),
    ("json for the record", r"^import time$", "import json\nimport time", 1),
    ("distutils is deprecated", r"^from distutils\.util import strtobool$", _STRTOBOOL.strip("\n"), 1),
    (
        "no tensorboard",
        r"^from torch\.utils\.tensorboard import SummaryWriter$",
        _NOOP_WRITER.strip("\n"),
        1,
    ),
    ("Env.seed() is gone; seed via reset(seed=...)", r"^[ \t]+env\.seed\(seed\)\n", "", 1),
    (
        "same-step autoreset gives final_obs like old gym's terminal_observation",
        r"gym\.vector\.SyncVectorEnv\(\[(.*)\]\)",
        r"gym.vector.SyncVectorEnv([\1], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)",
        1,
    ),
    ("reset returns (obs, info)", r"\bobs = envs\.reset\(\)", "obs, _ = envs.reset(seed=args.seed)", 1),
    (
        "step returns terminations and truncations",
        r"^([ \t]+)next_obs, rewards, dones, infos = envs\.step\(actions\)$",
        (
            "\\1next_obs, rewards, terminations, truncations, infos = envs.step(actions)\n"
            "\\1dones = np.logical_or(terminations, truncations)"
        ),
        1,
    ),
    (
        "infos is a dict of arrays",
        r"^([ \t]+)for info in infos:\n(?:\1[ \t]+.*\n)*?\1[ \t]+break\n",
        _EPISODE_LOG,
        1,
    ),
    ("final_obs key", r"infos\[idx\]\[\"terminal_observation\"\]", 'infos["final_obs"][idx]', 1),
    (
        "bootstrap through truncation: store terminations only",
        r"rb\.add\(obs, real_next_obs, actions, rewards, dones, infos\)",
        "rb.add(obs, real_next_obs, actions, rewards, terminations, [{}])",
        1,
    ),
    (
        "timeouts handled by storing terminations",
        r"handle_timeout_termination=True",
        "handle_timeout_termination=False",
        1,
    ),
    (
        "clock start",
        r"^([ \t]+)(for global_step in range\(args\.total_timesteps\):)$",
        _CLOCK_START.rstrip("\n"),
        1,
    ),
]


def _find_cleanrl_original() -> Path:
    """The unpatched script: from an installed ``cleanrl`` 1.2.0, else a wheel downloaded into _work/."""
    cached = WORK_DIR / f"cleanrl-{CLEANRL_VERSION}" / CLEANRL_SCRIPT
    spec = importlib.util.find_spec("cleanrl")
    candidates = (
        [Path(loc) / CLEANRL_SCRIPT for loc in (spec.submodule_search_locations or [])] if spec else []
    )
    for cand in [*candidates, cached]:
        # Another installed cleanrl version has a different script; the patches target 1.2.0's.
        if cand.is_file() and hashlib.sha256(cand.read_bytes()).hexdigest() == CLEANRL_SHA256:
            return cand
    dl = WORK_DIR / "download"
    dl.mkdir(parents=True, exist_ok=True)
    # cleanrl 1.2.0 declares python <3.11, hence --ignore-requires-python; the script itself runs fine.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--ignore-requires-python",
            "-d",
            str(dl),
            f"cleanrl=={CLEANRL_VERSION}",
        ],
        stdout=sys.stderr,
        check=True,
    )
    wheel = next(dl.glob(f"cleanrl-{CLEANRL_VERSION}-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(f"cleanrl/{CLEANRL_SCRIPT}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return cached


def patch_cleanrl_source(src: str) -> str:
    """Apply the gymnasium 1.x fixes and the timing instrumentation to the CleanRL 1.2.0 script text."""
    for what, pattern, repl, expected in _CLEANRL_PATCHES:
        src, n = re.subn(pattern, repl, src, flags=re.MULTILINE)
        if n != expected:
            raise RuntimeError(f"CleanRL patch {what!r} matched {n} times, expected {expected}")
    # The clock stops after the loop, just before the envs are closed (the first top-level envs.close()).
    end = _CLOCK_END.format(tag=RESULT_TAG, version=CLEANRL_VERSION)
    src, n = re.subn(r"^([ \t]+)(envs\.close\(\))$", end, src, count=1, flags=re.MULTILINE)
    if n != 1:
        raise RuntimeError("CleanRL patch 'clock end' did not match")
    return src


def prepare_cleanrl_script() -> Path:
    """Write the patched CleanRL script into benchmarks/_work/ (git-ignored) and return its path."""
    original = _find_cleanrl_original()
    raw = original.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CLEANRL_SHA256:
        print(
            f"warning: {original} has sha256 {digest}, not the 1.2.0 script the patches target",
            file=sys.stderr,
        )
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    out = WORK_DIR / f"cleanrl_{CLEANRL_VERSION.replace('.', '_')}_{CLEANRL_SCRIPT}"
    out.write_text(patch_cleanrl_source(raw.decode()))
    return out


# ----------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------


def _parse_peers(text: str) -> list[str]:
    peers = list(PEERS) if text == "all" else [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown peer(s) {bad}; choose from {PEERS} or 'all'")
    return peers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", default="all", help=f"comma-separated subset of {PEERS}, or 'all'")
    parser.add_argument(
        "--env", default="Pendulum-v1", help="gymnasium env id, e.g. Pendulum-v1, HalfCheetah-v5"
    )
    parser.add_argument("--steps", type=int, default=2000, help="timed env steps M after learning starts")
    parser.add_argument("--learning-starts", type=int, default=1000, help="untimed warm-up env steps L")
    parser.add_argument("--seed", type=int, default=0, help="seed for sb3/sbx/cleanrl")
    parser.add_argument("--softrl-seeds", type=int, default=1, help="number of seeds softrl trains at once")
    parser.add_argument(
        "--softrl-python",
        default=None,
        help="interpreter with softrl's deps (default: $SOFTRL_PYTHON, else this one)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="rounds; peers alternate within each round")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before a child is killed")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="pin every child to this many cores, OpenMP/MKL threads alike (default: library defaults)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also append each record as a JSON line here")
    parser.add_argument("--verbose", action="store_true", help="echo the children's output to stderr")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ent-coef", default="auto", help=argparse.SUPPRESS)  # sb3/sbx child only (sweep.py)
    parser.add_argument("--accelerator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)  # softrl child only
    parser.add_argument("--cpu-devices", type=int, default=1, help=argparse.SUPPRESS)  # softrl child only
    args = parser.parse_args(argv)

    if args.child:
        if args.peer == "softrl":
            record = train_softrl(args.env, args.steps, args.learning_starts, args.softrl_seeds, args.run_dir,
                                  args.cpu_devices)
        else:
            record = _train_sb3_family(
                args.peer, args.env, args.steps, args.learning_starts, args.seed, args.accelerator, args.ent_coef
            )
        print(RESULT_TAG + json.dumps(record), flush=True)
        return 0

    if args.steps < 2 or args.learning_starts < 0:
        parser.error("need --steps >= 2 and --learning-starts >= 0")
    peers = _parse_peers(args.peer)
    failures = 0
    for rnd in range(args.repeats):
        for peer in peers:
            print(
                f"[peers] round {rnd + 1}/{args.repeats}: {peer} on {args.env} ...",
                file=sys.stderr,
                flush=True,
            )
            t = time.perf_counter()
            try:
                record = run_peer(
                    peer,
                    args.env,
                    args.steps,
                    args.learning_starts,
                    seed=args.seed,
                    softrl_seeds=args.softrl_seeds,
                    softrl_py=args.softrl_python,
                    timeout=args.timeout,
                    threads=args.threads,
                    verbose=args.verbose,
                )
            except (RuntimeError, OSError, ValueError, StopIteration, subprocess.SubprocessError) as exc:
                # keep going: one broken peer should not sink the others
                failures += 1
                print(f"[peers] {peer} failed: {exc}", file=sys.stderr, flush=True)
                continue
            line = json.dumps(record)
            print(line, flush=True)
            if args.out is not None:
                with args.out.open("a") as f:
                    f.write(line + "\n")
            print(
                f"[peers] {peer}: {record['steps_per_s']:.1f} env-steps/s "
                f"({record['steps_timed']} steps in {record['seconds']:.1f} s; "
                f"wall {time.perf_counter() - t:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
