"""Wall time of a hyperparameter sweep: `softrl sweep` against the same runs as separate processes.

Workload (issue 15, item 6): SAC on Pendulum-v1, 4 fixed alphas x 4 seeds, 10k env steps each.
Contenders, each timed from start to the last process's exit:
- `sweep`: one `softrl sweep` with its defaults (local Ray; on 2 CPU cores the fixed alphas make 2 trials of
  2 alphas x 4 seeds = 8 agents, each one packed, jitted program (softrl.packed) pinned to its own core);
  `sweep-packed`: all 16 agents in one vmapped program on both cores (the defaults before the split);
- `train`: 16 `softrl train --seeds 1` processes, two at a time; `train-pinned`: the same, each process
  pinned to its own core with `taskset` (XLA then sizes its thread pool to one core);
- `sb3`, `sbx`: 16 runs of benchmarks/peers.py's SAC (run by the benchmark venv's Python, --bench-python),
  two at a time, each with its fixed alpha (SB3's `ent_coef`), through peers.py's child entry point,
  with `--peer-threads` (default 1) OpenMP/MKL threads each: torch's default of one thread per core, in
  two processes on two cores, oversubscribes the cores (JAX ignores these variables); and each pinned to
  its own core with `taskset` as `train-pinned` (`--no-peer-pin`: not), which gives SBX's XLA one core too.
  SB3/SBX (and torch) are only in the bench extra (benchmarks/requirements-bench.txt), not in softrl's
  environment: without that Python these contenders are reported as skipped.

Every contender uses the same loop settings (softrl's defaults: 1000 random steps, eval every 5000 steps).
Prints one JSON line per contender: {"contender", "wall_s", "runs", "total_steps", ...}. Never run two
benchmarks at once. The full workload (the integrator's command, on a quiet machine)::

    python benchmarks/sweep.py --contenders sweep train train-pinned sb3 sbx --total-steps 10000
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
    """`sweep`: softrl sweep's defaults (on this CPU: the packed agents split into one trial per core, each
    trial pinned to its core, agents updated one after another); `sweep-packed`: all agents in one packed,
    vmapped program using every core (--min-trials 1 --no-pin --grid vmap_updates=true)."""
    packed = ["--min-trials", "1", "--no-pin", "--grid", "vmap_updates=true"] if name == "sweep-packed" else []
    cmd = [sys.executable, "-m", "softrl.sweep", "sac", "--env", *args.env, "--seeds", str(args.seeds),
           "--grid", "alpha=" + ",".join(args.alphas), "--out", str(work / name), *packed, *_common(args)]
    t0 = time.perf_counter()
    _run(cmd)
    return {"wall_s": time.perf_counter() - t0, "runs": len(args.alphas) * args.seeds * len(args.env)}


def time_parallel(cmds: list[list[str]], at_once: int, **extra: str) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(lambda cmd: _run(cmd, **extra), cmds))
    return time.perf_counter() - t0


def time_parallel_pinned(cmds: list[list[str]], at_once: int, **extra: str) -> float:
    """As time_parallel, each process pinned to its own core (`taskset`), which caps XLA's thread pool too."""
    cores: queue.Queue[int] = queue.Queue()
    for c in range(at_once):
        cores.put(c)

    def pinned(cmd: list[str]) -> None:
        core = cores.get()
        try:
            _run(["taskset", "-c", str(core), *cmd], **extra)
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
    if args.peer_pin:
        wall = time_parallel_pinned(cmds, args.at_once, **extra)
    else:
        wall = time_parallel(cmds, args.at_once, **extra)
    return {"wall_s": wall, "runs": len(cmds), "peer_threads": args.peer_threads, "pinned": args.peer_pin}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contenders", nargs="+", default=["sweep", "train", "sb3", "sbx"],
                   help="sweep, sweep-packed, train, train-pinned, sb3, sbx")
    p.add_argument("--env", nargs="+", default=["Pendulum-v1"], help="several envs make several trials")
    p.add_argument("--alphas", nargs="+", default=["0.05", "0.1", "0.2", "0.4"])
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--total-steps", type=int, default=10_000)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--learning-starts", type=int, default=1_000, help="peers only (softrl's default is 1000)")
    p.add_argument("--at-once", type=int, default=2, help="separate processes running at once")
    p.add_argument("--peer-threads", type=int, default=1, help="OMP/MKL threads of each SB3/SBX process")
    p.add_argument("--no-peer-pin", dest="peer_pin", action="store_false",
                   help="do not pin each SB3/SBX process to its own core (default: pinned, as train-pinned)")
    p.add_argument("--bench-python", default=os.environ.get("BENCH_PYTHON", "/work/benchvenv/bin/python"))
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="softrl-sweep-bench-"))
    try:
        for name in args.contenders:
            if name in ("sweep", "sweep-packed"):
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
