"""Wall time of a hyperparameter sweep: `softrl sweep` against the same runs as separate processes.

Workload (issue 15, item 6): SAC on Pendulum-v1, 4 fixed alphas x 4 seeds, 10k env steps each.
Contenders, each timed from start to the last process's exit:
- `sweep`: one `softrl sweep` (local Ray; the fixed alphas make one trial, whose 4 x 4 = 16 agents are one
  packed, jitted program: softrl.packed);
- `train`: 16 `softrl train --seeds 1` processes, two at a time; `train-pinned`: the same, each process
  pinned to its own core with `taskset` (XLA then sizes its thread pool to one core);
- `sb3`, `sbx`: 16 runs of benchmarks/peers.py's SAC (run by the benchmark venv's Python, --bench-python),
  two at a time, each with its fixed alpha (SB3's `ent_coef`), through peers.py's child entry point,
  with `--peer-threads` (default 1) OpenMP/MKL threads each: torch's default of one thread per core, in
  two processes on two cores, oversubscribes the cores (JAX ignores these variables).
  SB3/SBX (and torch) are only in the bench extra (benchmarks/requirements-bench.txt), not in softrl's
  environment: without that Python these contenders are reported as skipped.

Every contender uses the same loop settings (softrl's defaults: 1000 random steps, eval every 5000 steps).
Prints one JSON line per contender: {"contender", "wall_s", "runs", "total_steps", ...}. Never run two
benchmarks at once. The full workload (the integrator's command, on a quiet machine)::

    python benchmarks/sweep.py --contenders sweep train sb3 sbx --total-steps 10000
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"), **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(cmd: list[str], **extra: str) -> None:
    proc = subprocess.run(cmd, env=_env(**extra), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")


def _common(args) -> list[str]:
    return ["--total-steps", str(args.total_steps), "--hidden", *map(str, args.hidden)]


def time_sweep(args, work: Path, name: str) -> dict:
    """`sweep`: Ray runs as many trials at once as there are CPUs (1 CPU per trial), each trial's XLA using
    every core; `sweep-serial`: one trial at a time (all CPUs per trial); `sweep-1thread`: 1 CPU per trial and
    single-threaded XLA (each trial on about one core). The three differ only with several trials (--env A B)."""
    cpus = str(os.cpu_count() or 1) if name == "sweep-serial" else "1"
    extra = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"} if name == "sweep-1thread" else {}
    cmd = [sys.executable, "-m", "softrl.sweep", "sac", "--env", *args.env, "--seeds", str(args.seeds),
           "--grid", "alpha=" + ",".join(args.alphas), "--out", str(work / name), "--cpus-per-trial", cpus,
           *_common(args)]
    t0 = time.perf_counter()
    _run(cmd, **extra)
    return {"wall_s": time.perf_counter() - t0, "runs": len(args.alphas) * args.seeds * len(args.env)}


def time_parallel(cmds: list[list[str]], at_once: int, **extra: str) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(lambda cmd: _run(cmd, **extra), cmds))
    return time.perf_counter() - t0


def time_parallel_pinned(cmds: list[list[str]], at_once: int) -> float:
    """As time_parallel, each process pinned to its own core (`taskset`), which caps XLA's thread pool too."""
    cores: queue.Queue[int] = queue.Queue()
    for c in range(at_once):
        cores.put(c)

    def pinned(cmd: list[str]) -> None:
        core = cores.get()
        try:
            _run(["taskset", "-c", str(core), *cmd])
        finally:
            cores.put(core)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(pinned, cmds))
    return time.perf_counter() - t0


def time_train(args, work: Path, pinned: bool = False) -> dict:
    cmds = [[sys.executable, "-m", "softrl.cli", "train", "sac", "--env", e, "--seeds", "1", "--seed", str(s),
             "--alpha", a, "--no-progress", "--run-dir", str(work / f"train-{e}-{a}-{s}"), *_common(args)]
            for e in args.env for a in args.alphas for s in range(args.seeds)]
    wall = time_parallel_pinned(cmds, args.at_once) if pinned else time_parallel(cmds, args.at_once)
    return {"wall_s": wall, "runs": len(cmds)}


def time_peer(args, peer: str) -> dict:
    # One torch thread per process when several run at once: torch's default (one OpenMP thread per core)
    # in two processes on two cores oversubscribes them (SB3 crawled at well under a tenth of its speed).
    extra = {"OMP_NUM_THREADS": str(args.peer_threads), "MKL_NUM_THREADS": str(args.peer_threads)}
    cmds = [[args.bench_python, str(ROOT / "benchmarks" / "peers.py"), "--child", "--peer", peer, "--env", e,
             "--steps", str(args.total_steps - args.learning_starts), "--learning-starts", str(args.learning_starts),
             "--seed", str(s), "--ent-coef", a] for e in args.env for a in args.alphas for s in range(args.seeds)]
    return {"wall_s": time_parallel(cmds, args.at_once, **extra), "runs": len(cmds), "peer_threads": args.peer_threads}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contenders", nargs="+", default=["sweep", "train", "sb3", "sbx"],
                   help="sweep, sweep-serial, sweep-1thread, train, train-pinned, sb3, sbx")
    p.add_argument("--env", nargs="+", default=["Pendulum-v1"], help="several envs make several trials")
    p.add_argument("--alphas", nargs="+", default=["0.05", "0.1", "0.2", "0.4"])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--total-steps", type=int, default=10_000)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--learning-starts", type=int, default=1_000, help="peers only (softrl's default is 1000)")
    p.add_argument("--at-once", type=int, default=2, help="separate processes running at once")
    p.add_argument("--peer-threads", type=int, default=1, help="OMP/MKL threads of each SB3/SBX process")
    p.add_argument("--bench-python", default=os.environ.get("BENCH_PYTHON", "/work/benchvenv/bin/python"))
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="softrl-sweep-bench-"))
    try:
        for name in args.contenders:
            if name in ("sweep", "sweep-serial", "sweep-1thread"):
                rec = time_sweep(args, work, name)
            elif name in ("train", "train-pinned"):
                rec = time_train(args, work, pinned=name == "train-pinned")
            elif name in ("sb3", "sbx"):
                if not Path(args.bench_python).exists():
                    print(json.dumps({"contender": name, "skipped": f"no benchmark Python at {args.bench_python} "
                                      "(SB3/SBX need benchmarks/requirements-bench.txt)"}), flush=True)
                    continue
                rec = time_peer(args, name)
            else:
                raise SystemExit(f"unknown contender {name!r}")
            print(json.dumps({"contender": name, "env": args.env, "alphas": args.alphas, "seeds": args.seeds,
                              "total_steps": args.total_steps, "cpus": os.cpu_count(), **rec}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
