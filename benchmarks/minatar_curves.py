"""softrl DQN on MinAtar against the published DQN learning curves (Young & Tian 2019), one figure.

The published statistic is the moving average of *training* episode returns over 100 episodes (epsilon-greedy,
mean of 30 runs); this script draws the same statistic for each softrl seed (mean and min-max over seeds),
plus softrl's greedy evaluations, and the published values read by eye from `img/learning_curves.gif` in
github.com/kenjyoung/MinAtar at the frames below.

    python benchmarks/minatar_curves.py runs/minatar-Breakout runs/minatar-SpaceInvaders \
        --out benchmarks/results/minatar_dqn.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# (frames, return) read by eye from the paper's DQN curve; +-1 on Breakout, +-3 on Space Invaders.
PUBLISHED = {
    "Breakout": [(50_000, 3.5), (100_000, 5.5), (200_000, 7.0), (500_000, 8.7), (1_000_000, 9.5)],
    "SpaceInvaders": [(50_000, 9.0), (100_000, 17.0), (250_000, 22.5), (500_000, 27.0), (1_000_000, 33.0)],
}


def moving_average_at(run: Path, seed: int, steps: np.ndarray, window: int = 100) -> np.ndarray:
    """Mean return of the last `window` training episodes that ended by each step in `steps`."""
    ends, returns = np.loadtxt(run / f"seed_{seed}" / "episodes.csv", delimiter=",", skiprows=1, usecols=(0, 1)).T
    return np.array([returns[ends <= s][-window:].mean() if (ends <= s).any() else np.nan for s in steps])


def game_of(run: Path) -> str:
    env = json.loads((run / "config.json").read_text())["env"]
    return env.split("MinAtar-")[1].removesuffix("-v1")


def draw(ax, run: Path) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    seeds, total = cfg["seeds"], cfg["total_steps"]
    steps = np.linspace(total / 50, total, 50)
    curves = np.stack([moving_average_at(run, s, steps) for s in range(seeds)])  # [seeds, points]
    ax.plot(steps, curves.mean(0), color="C0", label=f"softrl dqn, training (100-episode average, {seeds} seeds)")
    ax.fill_between(steps, curves.min(0), curves.max(0), color="C0", alpha=0.2)
    evals = [np.genfromtxt(run / f"seed_{s}" / "eval.csv", delimiter=",", names=True) for s in range(seeds)]
    eval_steps = np.atleast_1d(evals[0]["step"])
    eval_med = np.median(np.stack([np.atleast_1d(e["mean_return"]) for e in evals]), axis=0)
    ax.plot(eval_steps, eval_med, "s", color="C2", label="softrl dqn, greedy evaluation (median over seeds)")
    game = game_of(run)
    ref = [(f, r) for f, r in PUBLISHED[game] if f <= total * 1.05]
    ax.plot(*zip(*ref), "o--", color="C3", label="published DQN (read by eye)")
    ax.set_title(f"MinAtar {game}")
    ax.set_xlabel("env steps (frames)")
    ax.set_ylabel("return")
    return {"game": game, "steps": total, "softrl_training_avg_at_end": curves[:, -1].tolist(),
            "softrl_eval_median": dict(zip(map(int, eval_steps), map(float, eval_med))), "published": ref}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/minatar_dqn.png"))
    args = p.parse_args()
    fig, axes = plt.subplots(1, len(args.runs), figsize=(6 * len(args.runs), 4.2), squeeze=False)
    summary = [draw(ax, run) for ax, run in zip(axes[0], args.runs)]
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(json.dumps(summary, indent=1))
    print(args.out)


if __name__ == "__main__":
    main()
