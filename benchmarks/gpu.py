"""softrl SAC on a GPU: env-steps/s with 1, 8 and 32 seeds in one process, and peers on the same machine.

Same workload as benchmarks/throughput.py (batch 256, 2x256 networks, 1 update per env step, 1e6 replay per
seed, one env per seed, clock from the first update on), but JAX runs on its default backend. The runs, in
order of importance, each in its own subprocess:

1. softrl on the GPU with each of ``--seeds`` (default 1, 8, 32) on each env;
2. SB3 (torch on CUDA) and SBX (JAX on the GPU), one seed, if they are installed (``--peers``);
3. softrl on the same machine's CPU cores, for the GPU/CPU ratio (``--cpu-seeds``, with the seeds split over
   ``--cpu-devices`` CPU devices when that is > 1).

Each record is appended to ``--out`` (JSON lines) as soon as it exists, and the runs stop once ``--budget-s``
is spent, so a lease that ends early still leaves figures. Usage (on the GPU machine)::

    python benchmarks/gpu.py --out gpu.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
import throughput  # noqa: E402


def machine() -> dict:
    """throughput.machine() plus the GPU and package versions, read without starting JAX or torch here."""
    info = throughput.machine()
    try:
        q = "name,driver_version,memory.total"
        info["gpu"] = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = None
    for pkg in ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax", "numpy", "gymnasium",
                "mujoco", "torch", "stable-baselines3", "sbx-rl"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=["HalfCheetah-v5", "Pendulum-v1"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 8, 32], help="softrl seed counts on the GPU")
    p.add_argument("--steps", type=int, default=2000, help="timed env steps per seed")
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--peers", nargs="*", default=["sb3", "sbx"], help="peers to run on the GPU, one seed")
    p.add_argument("--cpu-seeds", nargs="*", type=int, default=[1, 8], help="softrl seed counts on the CPU")
    p.add_argument("--cpu-devices", type=int, default=8, help="CPU devices for multi-seed CPU runs (<= 1: one)")
    p.add_argument("--timeout", type=float, default=240, help="seconds before one run is killed")
    p.add_argument("--budget-s", type=float, default=1e9, help="start no run after this many seconds")
    p.add_argument("--out", type=Path, default=Path("gpu.jsonl"))
    args = p.parse_args(argv)

    info = machine()
    print(json.dumps({"machine": info}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write(json.dumps({"machine": info, "argv": sys.argv}) + "\n")

    plan: list[tuple[str, str, int, int, str]] = []  # (library, env, seeds, cpu_devices, device)
    plan += [("softrl", env, n, 1, "gpu") for env in args.envs for n in args.seeds]
    plan += [(peer, env, 1, 1, "gpu") for env in args.envs for peer in args.peers]
    plan += [("softrl", env, n, args.cpu_devices if n > 1 else 1, "cpu") for env in args.envs for n in args.cpu_seeds]

    t_start = time.perf_counter()
    records: list[dict] = []
    for lib, env_id, n, devices, device in plan:
        if time.perf_counter() - t_start > args.budget_s:
            print(f"[gpu] budget spent, skipping {lib} {env_id} seeds={n} on {device}", file=sys.stderr, flush=True)
            continue
        t = time.perf_counter()
        try:
            rec = peers.run_peer(lib, env_id, args.steps, args.learning_starts, softrl_seeds=n,
                                 softrl_cpu_devices=devices, accelerator=device == "gpu", timeout=args.timeout)
        except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
            print(f"[gpu] {lib} {env_id} seeds={n} on {device} failed: {str(exc)[-1500:]}", file=sys.stderr,
                  flush=True)
            if lib == "softrl" and device == "gpu":
                return 1  # softrl's GPU figures are the point: stop and leave the lease's time for a rerun
            continue
        rec.update(device=device, seeds=n, cpu_devices=devices, wall_s=time.perf_counter() - t)
        records.append(rec)
        with args.out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"[gpu] {lib:8s} {env_id:15s} {device} seeds={n:3d} devices={devices}: "
              f"{rec['steps_per_s']:9.1f} env-steps/s ({rec['wall_s']:.0f} s wall)", file=sys.stderr, flush=True)

    print(f"\n{'env':15s} {'library':18s} {'device':6s} {'seeds':>5s} {'agg env-steps/s':>16s} "
          f"{'per seed':>9s} {'/ softrl gpu x1':>16s}")
    for env_id in args.envs:
        base = next((r["steps_per_s"] for r in records if r["env"] == env_id and r["library"] == "softrl"
                     and r["device"] == "gpu" and r["seeds"] == 1), None)
        for r in (r for r in records if r["env"] == env_id):
            rate = r["steps_per_s"]
            ratio = f"{rate / base:16.2f}" if base else f"{'-':>16s}"
            dev = r["device"] + (f"/{r['cpu_devices']}" if r["cpu_devices"] > 1 else "")
            print(f"{env_id:15s} {r['library']:18s} {dev:6s} {r['seeds']:5d} {rate:16.1f} "
                  f"{rate / r['seeds']:9.1f} {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
