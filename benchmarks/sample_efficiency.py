"""SAC sample efficiency on MuJoCo at 100k steps, against published SAC figures.

Trains softrl SAC on HalfCheetah-v5, Hopper-v5 and Walker2d-v5 with N seeds in one process per env
(SAC paper defaults: 2x256, batch 256, lr 3e-4, tau 0.005, auto alpha with target entropy -dim(A);
learning_starts 5000), evaluating every 10k steps with 10 deterministic episodes per seed. One env
at a time, resumable: a finished run is reused and an interrupted one continues from its checkpoint
(`softrl.experiments.report.train_or_resume`), so the ~1.5 h of a 2-core machine can be spread over
sessions (`--envs Hopper-v5` runs one). Prints and writes a table against the SAC reference of
../shared/ANCHORS.md (SimbaV2 authors' baseline, Gym MuJoCo v4, mean of 10 seeds at 100k steps)
and a learning-curve figure per env. Run directories (checkpoints with the replay buffer) go to
`--runs-dir`, outside the committed results.

    python benchmarks/sample_efficiency.py --seeds 3 --steps 100000 --out benchmarks/results/sample_efficiency
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import softrl
from softrl.experiments.report import mean_ci, train_or_resume
from softrl.plot import curves, plot_runs

# SAC, mean evaluation return of 10 seeds (SimbaV2 baseline results/baseline/sac.csv, via ../shared/ANCHORS.md).
REFERENCE_100K = {"HalfCheetah-v5": 6156.0, "Hopper-v5": 1103.0, "Walker2d-v5": 690.0}


def run_env(env_id: str, seeds: int, steps: int, runs_dir: Path, out: Path) -> dict:
    run_dir = runs_dir / env_id
    cfg = softrl.TrainConfig(algo="sac", env=env_id, seeds=seeds, total_steps=steps, learning_starts=5000,
                             eval_every=10_000, eval_episodes=10, checkpoint_every=10_000, run_dir=str(run_dir))
    result, how = train_or_resume(cfg)
    per_seed = result.eval_returns.mean(axis=1)  # [seeds]
    out.mkdir(parents=True, exist_ok=True)
    plot_runs([run_dir], out / f"{env_id}.png", title=f"softrl SAC on {env_id}: deterministic evaluation return")
    steps_grid, values = curves(run_dir, "eval")  # [T], [seeds, T]
    return {"env": env_id, "how": how, "per_seed": per_seed.tolist(), "mean": float(np.mean(per_seed)),
            "ci95": mean_ci(per_seed), "reference_100k": REFERENCE_100K.get(env_id),
            "curve_steps": steps_grid.tolist(), "curve_mean": np.nanmean(values, axis=0).tolist(),
            "steps_per_s": result.timing.get("steps_per_s_after_learning_starts"),
            "wall_s": result.timing.get("wall_s")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=list(REFERENCE_100K))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sample_efficiency"))
    p.add_argument("--runs-dir", type=Path, default=Path("benchmarks/_work/sample_efficiency"))
    args = p.parse_args(argv)
    rows = [run_env(e, args.seeds, args.steps, args.runs_dir, args.out) for e in args.envs]
    print(f"\n{'env':16s} {'softrl SAC: mean [95% CI] over seeds':>40s} {'reference SAC @100k':>20s}")
    for r in rows:
        ref = "-" if r["reference_100k"] is None else f"{r['reference_100k']:.0f}"
        ci = r["ci95"]
        lo_hi = "" if ci["lo"] is None else f" [{ci['lo']:.0f}, {ci['hi']:.0f}]"
        print(f"{r['env']:16s} {r['mean']:28.0f}{lo_hi:>12s} {ref:>20s}")
    path = args.out / "results.json"
    old = json.loads(path.read_text()) if path.exists() else []
    keep = [r for r in old if r["env"] not in {row["env"] for row in rows}]  # one env per session adds up
    path.write_text(json.dumps(keep + rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
