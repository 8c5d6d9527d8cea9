"""SAC sample efficiency on MuJoCo at 100k steps, against published SAC figures.

Trains `softrl train sac` on HalfCheetah-v5, Hopper-v5 and Walker2d-v5 with N seeds in one
process each (SAC paper defaults, learning_starts 5000), evaluating every 10k steps with 10
deterministic episodes per seed. Runs are resumable: rerunning the command continues any
run directory that already has a checkpoint. Prints and writes a table against the SAC
reference of ../shared/ANCHORS.md (SimbaV2 authors' baseline, Gym MuJoCo v4, mean of 10
seeds at 100k steps) and a learning-curve figure per env.

    python benchmarks/sample_efficiency.py --seeds 3 --steps 100000 --out benchmarks/results/sample_efficiency
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import softrl
from softrl.plot import curves, plot_runs

# SAC, mean evaluation return of 10 seeds (SimbaV2 baseline results/baseline/sac.csv, via ../shared/ANCHORS.md).
REFERENCE_100K = {"HalfCheetah-v5": 6156.0, "Hopper-v5": 1103.0, "Walker2d-v5": 690.0}


def run_env(env_id: str, seeds: int, steps: int, out: Path) -> dict:
    run_dir = out / env_id
    cfg = softrl.TrainConfig(algo="sac", env=env_id, seeds=seeds, total_steps=steps, learning_starts=5000,
                             eval_every=10_000, eval_episodes=10, checkpoint_every=10_000, run_dir=str(run_dir))
    if (run_dir / "summary.json").exists() and json.loads((run_dir / "summary.json").read_text())["config"][
            "total_steps"] >= steps:
        pass  # already finished
    elif (run_dir / "checkpoint.pkl").exists():
        softrl.train(cfg, resume=run_dir)
    else:
        softrl.train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    per_seed = [row["mean_return"] for row in summary["final_eval"]["per_seed"]]
    plot_runs([run_dir], out / f"{env_id}.png", title=f"softrl SAC on {env_id}: deterministic evaluation return")
    steps_grid, values = curves(run_dir, "eval")
    return {"env": env_id, "per_seed": per_seed, "mean": float(np.mean(per_seed)),
            "std": float(np.std(per_seed)), "reference_100k": REFERENCE_100K.get(env_id),
            "curve_steps": steps_grid.tolist(), "curve_mean": np.nanmean(values, axis=0).tolist(),
            "steps_per_s": summary["timing"].get("steps_per_s_after_learning_starts")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=list(REFERENCE_100K))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sample_efficiency"))
    args = p.parse_args(argv)
    rows = [run_env(e, args.seeds, args.steps, args.out) for e in args.envs]
    print(f"\n{'env':16s} {'softrl SAC (mean +- std over seeds)':>38s} {'reference SAC @100k':>20s}")
    for r in rows:
        ref = "-" if r["reference_100k"] is None else f"{r['reference_100k']:.0f}"
        print(f"{r['env']:16s} {r['mean']:30.0f} +- {r['std']:5.0f} {ref:>20s}")
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
