"""Learning curves with a band across seeds, from run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from softrl.log import read_csv


def _seed_dirs(run_dir: Path) -> list[Path]:
    dirs = sorted(run_dir.glob("seed_*"), key=lambda p: int(p.name.split("_")[1]))
    if not dirs:
        raise FileNotFoundError(f"{run_dir} has no seed_* folders: is it a softrl run directory?")
    return dirs


def curves(run_dir: Path, kind: str = "eval", bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed curves on a shared step grid: (steps [T], values [num_seeds, T]).

    `eval`: mean deterministic evaluation return at each evaluation step.
    `episodes`: training-episode returns, averaged within `bins` step bins (NaN-free by carrying forward).
    """
    rows_per_seed = []
    for d in _seed_dirs(run_dir):
        path = d / f"{kind}.csv"
        rows_per_seed.append(read_csv(path) if path.exists() else [])
    if kind == "eval":
        steps = sorted({r["step"] for rows in rows_per_seed for r in rows})
        values = np.full((len(rows_per_seed), len(steps)), np.nan)
        for i, rows in enumerate(rows_per_seed):
            for r in rows:
                values[i, steps.index(r["step"])] = r["mean_return"]
        return np.asarray(steps), values
    max_step = max((r["step"] for rows in rows_per_seed for r in rows), default=0)
    edges = np.linspace(0, max_step, bins + 1)
    values = np.full((len(rows_per_seed), bins), np.nan)
    for i, rows in enumerate(rows_per_seed):
        s = np.array([r["step"] for r in rows])
        v = np.array([r["return"] for r in rows])
        last = np.nan
        for b in range(bins):
            m = (s > edges[b]) & (s <= edges[b + 1])
            last = v[m].mean() if m.any() else last
            values[i, b] = last
    return edges[1:], values


def plot_runs(run_dirs: list[Path], out: Path, kind: str = "eval", title: str | None = None) -> Path:
    """Mean across seeds with a shaded min-max band, one line per run directory. Writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    env = None
    for run_dir in map(Path, run_dirs):
        cfg = json.loads((run_dir / "config.json").read_text())
        env = cfg["env"]
        steps, values = curves(run_dir, kind)
        if values.size == 0:
            continue
        mean = np.nanmean(values, axis=0)
        label = f"{cfg['algo']} ({values.shape[0]} seed{'s' * (values.shape[0] > 1)})"
        (line,) = ax.plot(steps, mean, label=label)
        if values.shape[0] > 1:
            ax.fill_between(steps, np.nanmin(values, axis=0), np.nanmax(values, axis=0), alpha=0.2,
                            color=line.get_color(), linewidth=0)
    what = "deterministic evaluation return" if kind == "eval" else "training episode return"
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel(f"{what} (undiscounted)")
    ax.set_title(title or f"{env}: {what}, mean and min-max band over seeds")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
