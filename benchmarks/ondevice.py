"""On-device loop vs the gymnasium loop: aggregate agent-steps/s and peak memory, dqn on CartPole-v1.

The workload of benchmarks/discrete.py (ReLU MLP 128x128, Adam 1e-3, batch 256, Polyak 0.01, one update per
env step, 1000 random steps first), with a smaller replay (`--buffer-size`, default 1e4) so 256 buffers fit
anywhere. softrl.ondevice on `jax/CartPole-v1` with each of `--agents` agents vmapped in one process, and
softrl.train on gymnasium `CartPole-v1` with each of `--gym-seeds` seeds. Every configuration runs in its own
child process (peak RSS, and on an accelerator the peak device memory, are per configuration).

Timing leaves compilation out: on-device, the clock runs over one learning chunk of `--steps` env steps
(per agent; fewer for many agents, see `_steps`) after a first learning chunk has compiled and run; the
gymnasium loop reports its own steps/s after the first update.

    python benchmarks/ondevice.py --agents 1 8 64 256 --gym-seeds 1 8 --out benchmarks/results/ondevice.json

Run it alone on the machine: two benchmarks at once measure nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LEARNING_STARTS = 1000


def _config(env: str, seeds: int, total_steps: int, buffer_size: int, run_dir: str | None = None):
    import softrl

    return softrl.TrainConfig(
        algo="dqn", env=env, seeds=seeds, total_steps=total_steps, learning_starts=LEARNING_STARTS,
        buffer_size=buffer_size, eval_every=0, eval_episodes=1, log_every=0, checkpoint_every=0, progress=False,
        run_dir=run_dir,
        agent=softrl.AgentConfig(hidden=(128, 128), lr=1e-3, batch_size=256, tau=0.01, epsilon_end=0.1,
                                 epsilon_decay_steps=5_000),
    )


def _steps(agents: int, steps: int) -> int:
    """Timed env steps per agent: `steps`, capped so that one chunk is at most ~20k agent-steps (short runs)."""
    return max(20, min(steps, 20_000 // agents))


def _peak_memory() -> dict:
    import jax

    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        out["peak_device_mib"] = (dev.memory_stats() or {}).get("peak_bytes_in_use", 0) / 2**20
    return out


def child_ondevice(agents: int, steps: int, buffer_size: int) -> dict:
    import jax

    from softrl import ondevice

    n = _steps(agents, steps)
    cfg = _config("jax/CartPole-v1", agents, LEARNING_STARTS + 2 * n, buffer_size)
    loop = ondevice.build(cfg)
    carry = loop.init()
    t0 = time.perf_counter()
    carry, _ = loop.run_chunk(carry, LEARNING_STARTS - 1 + n)  # warm-up, then the first learning chunk compiles
    jax.block_until_ready(carry)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    carry, _ = loop.run_chunk(carry, n)
    jax.block_until_ready(carry)
    wall = time.perf_counter() - t0
    return {"loop": "ondevice", "agents": agents, "timed_steps_per_agent": n, "wall_s": wall,
            "first_chunk_s": first, "agent_steps_per_s": agents * n / wall, **_peak_memory()}


def child_gym(seeds: int, steps: int, buffer_size: int) -> dict:
    import softrl

    n = _steps(seeds, steps)
    with tempfile.TemporaryDirectory() as tmp:
        result = softrl.train(_config("CartPole-v1", seeds, LEARNING_STARTS + n, buffer_size, tmp))
    return {"loop": "gymnasium", "agents": seeds, "timed_steps_per_agent": n,
            "agent_steps_per_s": result.timing["steps_per_s_after_learning_starts"], **_peak_memory()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, nargs="*", default=[1, 8, 64, 256])
    p.add_argument("--gym-seeds", type=int, nargs="*", default=[1, 8])
    p.add_argument("--steps", type=int, default=500, help="timed env steps per agent (capped for many agents)")
    p.add_argument("--buffer-size", type=int, default=10_000)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", nargs=2, metavar=("LOOP", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        fn = child_ondevice if args.child[0] == "ondevice" else child_gym
        print(json.dumps(fn(int(args.child[1]), args.steps, args.buffer_size)))
        return
    runs = [("ondevice", n) for n in args.agents] + [("gym", n) for n in args.gym_seeds]
    rows = []
    for loop, n in runs:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", loop, str(n), "--steps", str(args.steps),
               "--buffer-size", str(args.buffer_size)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        mem = f"{row['peak_rss_mib']:8.0f} MiB RSS" + (f", {row['peak_device_mib']:.0f} MiB device"
                                                       if "peak_device_mib" in row else "")
        print(f"{row['loop']:>9} x{n:<4} {row['agent_steps_per_s']:10.0f} agent-steps/s  {mem}", flush=True)
    base = {r["agents"]: r["agent_steps_per_s"] for r in rows if r["loop"] == "gymnasium"}
    for r in rows:
        if r["loop"] == "ondevice" and base:
            ref = max(base.values())
            print(f"ondevice x{r['agents']}: {r['agent_steps_per_s'] / ref:.1f}x the best gymnasium-loop aggregate")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"argv": sys.argv, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
