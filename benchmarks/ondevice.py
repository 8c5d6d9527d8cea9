"""On-device loop vs the gymnasium loop: aggregate agent-steps/s, peak memory, and where the time goes.

The workload of benchmarks/discrete.py (Adam 1e-3, batch 256, Polyak 0.01, one update per env step, 1000
random steps first) for dqn, soft-dqn and discrete-sac on CartPole-v1, or sac on Pendulum-v1 (SAC defaults),
with `--hidden` hidden layers (default 64x64, the "small network" of issue 14; benchmarks/discrete.py uses
128x128) and a smaller replay (`--buffer-size`, default 1e4) so 256 buffers fit anywhere. softrl.ondevice on
the `jax/` twin with each of `--agents` agents vmapped in one process, and softrl.train on the gymnasium env
with each of `--gym-seeds` seeds. Every configuration runs in its own child process (peak RSS, and on an
accelerator the peak device memory, are per configuration).

Timing leaves compilation out: on-device, the clock runs over one learning chunk of `--steps` env steps
(per agent; fewer for many agents, see `_steps`) after a first learning chunk has compiled and run; the
gymnasium loop reports its own steps/s after the first update. `--profile` adds, per on-device row, the time
of a step without updates (env step, buffer insert, random action: a run whose warm-up never ends) and the
update's FLOPs from XLA's cost analysis, so a row splits into collection and update time.

    python benchmarks/ondevice.py --algo dqn --agents 1 8 64 256 --gym-seeds 1 8 --profile \
        --out benchmarks/results/ondevice_dqn.json

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
ENVS = {"dqn": "CartPole-v1", "soft-dqn": "CartPole-v1", "discrete-sac": "CartPole-v1", "sac": "Pendulum-v1"}
OPTS: dict = {}  # set from the command line in each process: algo, hidden, batch_size


def _config(env: str, seeds: int, total_steps: int, buffer_size: int, run_dir: str | None = None,
            learning_starts: int = LEARNING_STARTS):
    import softrl

    algo, hidden, batch, train_freq = OPTS["algo"], OPTS["hidden"], OPTS["batch_size"], OPTS["train_freq"]
    agent = (softrl.AgentConfig(hidden=hidden, batch_size=batch) if algo == "sac" else
             softrl.AgentConfig(hidden=hidden, lr=1e-3, batch_size=batch, tau=0.01, epsilon_end=0.1,
                                epsilon_decay_steps=5_000))
    return softrl.TrainConfig(
        algo=algo, env=env, seeds=seeds, total_steps=total_steps, learning_starts=learning_starts,
        train_freq=train_freq, buffer_size=buffer_size, eval_every=0, eval_episodes=1, log_every=0,
        checkpoint_every=0, progress=False, run_dir=run_dir, agent=agent)


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


def _timed(loop, carry, n: int):
    import jax

    t0 = time.perf_counter()
    carry, _ = loop.run_chunk(carry, n)
    jax.block_until_ready(carry)
    return carry, time.perf_counter() - t0


def _profile(agents: int, n: int, buffer_size: int) -> dict:
    """Per env step of all agents: the time without updates, and the update's FLOPs (XLA cost analysis)."""
    from functools import partial

    import jax

    from softrl import ondevice
    from softrl.loop import _update_k

    env = "jax/" + ENVS[OPTS["algo"]]
    loop = ondevice.build(_config(env, agents, 10**9, buffer_size, learning_starts=10**9))
    carry, _ = _timed(loop, loop.init(), n)  # compiles
    carry, collect_s = _timed(loop, carry, n)
    update = jax.jit(jax.vmap(partial(_update_k, loop.agent, OPTS["batch_size"], 1)))
    keys = jax.random.split(jax.random.PRNGKey(0), agents)
    cost = update.lower(carry.agent, carry.buffer, keys).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return {"collect_step_ms": 1e3 * collect_s / n, "update_gflop_per_step": float(cost.get("flops", 0.0)) / 1e9}


def child_ondevice(agents: int, steps: int, buffer_size: int, profile: bool = False) -> dict:
    from softrl import ondevice

    n = _steps(agents, steps)
    cfg = _config("jax/" + ENVS[OPTS["algo"]], agents, LEARNING_STARTS + 2 * n, buffer_size)
    loop = ondevice.build(cfg)
    carry, first = _timed(loop, loop.init(), LEARNING_STARTS - 1 + n)  # warm-up, then the first learning chunk
    carry, wall = _timed(loop, carry, n)
    row = {"loop": "ondevice", "algo": OPTS["algo"], "hidden": list(OPTS["hidden"]),
           "train_freq": OPTS["train_freq"], "agents": agents,
           "timed_steps_per_agent": n, "wall_s": wall, "first_chunk_s": first, "agent_steps_per_s": agents * n / wall,
           "step_ms": 1e3 * wall / n}
    if profile:
        row.update(_profile(agents, n, buffer_size))
        row["update_gflop_per_s"] = row["update_gflop_per_step"] / max(row["step_ms"] - row["collect_step_ms"],
                                                                       1e-9) * 1e3
    return {**row, **_peak_memory()}


def child_gym(seeds: int, steps: int, buffer_size: int) -> dict:
    import softrl

    n = _steps(seeds, steps)
    with tempfile.TemporaryDirectory() as tmp:
        result = softrl.train(_config(ENVS[OPTS["algo"]], seeds, LEARNING_STARTS + n, buffer_size, tmp))
    return {"loop": "gymnasium", "algo": OPTS["algo"], "hidden": list(OPTS["hidden"]),
            "train_freq": OPTS["train_freq"], "agents": seeds,
            "timed_steps_per_agent": n,
            "agent_steps_per_s": result.timing["steps_per_s_after_learning_starts"], **_peak_memory()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, nargs="*", default=[1, 8, 64, 256])
    p.add_argument("--gym-seeds", type=int, nargs="*", default=[1, 8])
    p.add_argument("--steps", type=int, default=500, help="timed env steps per agent (capped for many agents)")
    p.add_argument("--buffer-size", type=int, default=10_000)
    p.add_argument("--algo", choices=sorted(ENVS), default="dqn")
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--train-freq", type=int, default=1, help="env steps per update (1: the issue's workload)")
    p.add_argument("--profile", action="store_true", help="split on-device rows into collection and update")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--child", nargs=2, metavar=("LOOP", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    OPTS.update(algo=args.algo, hidden=tuple(args.hidden), batch_size=args.batch_size, train_freq=args.train_freq)
    common = ["--steps", str(args.steps), "--buffer-size", str(args.buffer_size), "--algo", args.algo,
              "--hidden", *map(str, args.hidden), "--batch-size", str(args.batch_size),
              "--train-freq", str(args.train_freq)]
    if args.child:
        n = int(args.child[1])
        row = (child_ondevice(n, args.steps, args.buffer_size, args.profile) if args.child[0] == "ondevice"
               else child_gym(n, args.steps, args.buffer_size))
        print(json.dumps(row))
        return
    runs = [("ondevice", n) for n in args.agents] + [("gym", n) for n in args.gym_seeds]
    rows = []
    for loop, n in runs:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", loop, str(n), *common,
               *(["--profile"] if args.profile else [])]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        mem = f"{row['peak_rss_mib']:8.0f} MiB RSS" + (f", {row['peak_device_mib']:.0f} MiB device"
                                                       if "peak_device_mib" in row else "")
        prof = (f"  step {row['step_ms']:.2f} ms = collect {row['collect_step_ms']:.2f} ms + update "
                f"({row['update_gflop_per_step']:.3f} GFLOP, {row['update_gflop_per_s']:.1f} GFLOP/s)"
                if "collect_step_ms" in row else "")
        print(f"{row['loop']:>9} x{n:<4} {row['agent_steps_per_s']:10.0f} agent-steps/s  {mem}{prof}", flush=True)
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
