"""Wall time to a fixed number of env steps with K envs per seed (`--num-envs K`), SAC, and the return reached.

For each K two update-to-data settings: UTD 1 (`--gradient-steps K`, one update per stored transition, as
with one env) and one gradient step per vector step (`--gradient-steps 1`, UTD 1/K). K = 1 is the same run in
both. Everything else is softrl's SAC default (2x256, batch 256, lr 3e-4, learning_starts 1000).

    python benchmarks/num_envs.py --env HalfCheetah-v5 --total-steps 100000 --ks 1 4 8 \
        --out benchmarks/results/num_envs.json

Run it alone on the machine: two benchmarks at once measure nothing. `cpu_s` (the process's CPU time, all
threads) is printed beside the wall time: it is the work done, and moves much less than the wall time when
something else shares the machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import softrl
from softrl.config import AgentConfig, TrainConfig


def one_run(env: str, k: int, gradient_steps: int, total_steps: int, seeds: int, eval_episodes: int,
            hidden: tuple[int, ...]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(algo="sac", env=env, seeds=seeds, num_envs=k, gradient_steps=gradient_steps,
                          total_steps=total_steps, learning_starts=min(1000, total_steps // 2), eval_every=0,
                          eval_episodes=eval_episodes, checkpoint_every=0, checkpoint_minutes=0.0,
                          progress=False, run_dir=tmp, agent=AgentConfig(hidden=hidden))
        t0, c0 = time.perf_counter(), time.process_time()
        result = softrl.train(cfg)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    returns = result.eval_returns.mean(axis=1)
    return {"num_envs": k, "gradient_steps": gradient_steps, "utd": gradient_steps / k, "wall_s": wall,
            "cpu_s": cpu,
            "train_loop_s": result.timing["wall_s"], "updates": int(np.asarray(result.updates)[0]),
            "median_return": float(np.median(returns)), "per_seed_return": returns.tolist()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--total-steps", type=int, default=100_000)
    p.add_argument("--ks", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    rows = []
    for k in args.ks:
        for gs in sorted({k, 1}, reverse=True):  # UTD 1, then one gradient step per vector step
            row = one_run(args.env, k, gs, args.total_steps, args.seeds, args.eval_episodes, tuple(args.hidden))
            rows.append(row)
            if args.out is not None:  # after every run, so an interrupted benchmark keeps its rows
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"env": args.env, "total_steps": args.total_steps, "rows": rows},
                                               indent=1))
            print(f"K={k} gradient_steps={gs} (UTD {row['utd']:.3g}): {row['wall_s']:.1f} s wall, "
                  f"{row['cpu_s']:.1f} s CPU, "
                  f"{row['updates']} updates, median return {row['median_return']:.1f}", flush=True)
    print("\n| K | gradient steps per vector step | UTD | wall s | CPU s | updates | median return |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['num_envs']} | {r['gradient_steps']} | {r['utd']:.3g} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
              f"{r['updates']} | {r['median_return']:.1f} |")


if __name__ == "__main__":
    main()
