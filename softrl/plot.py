"""Learning curves across seeds, from run directories (`softrl plot`).

Each run directory is drawn as one line: the mean over its seeds, with a band that is, by default,
a Student-t 95% confidence interval of that mean (`mean +- t_{0.975, n-1} * std / sqrt(n)`, with `n` the
number of seeds that have a value at that step), as in the experiments' reports (`report.mean_ci`).
`band="minmax"` shades the range over seeds instead; `band="none"` draws the mean only.
Legends tell runs apart by the `config.json` fields that differ between them, or by user labels.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from softrl.log import read_csv

Band = Literal["ci95", "minmax", "none"]
BANDS: tuple[str, ...] = ("ci95", "minmax", "none")
KINDS: tuple[str, ...] = ("eval", "episodes")
# Config fields that never tell two runs apart in a way a reader cares about.
_IGNORED_FIELDS = frozenset({"run_dir", "progress", "tensorboard"})


def _seed_dirs(run_dir: Path) -> list[Path]:
    dirs = sorted(run_dir.glob("seed_*"), key=lambda p: int(p.name.split("_")[1]))
    if not dirs:
        raise FileNotFoundError(f"{run_dir} has no seed_* folders: is it a softrl run directory?")
    return dirs


def curves(run_dir: Path, kind: str = "eval", bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed curves on a shared step grid: (steps [T], values [num_seeds, T]); NaN where a seed has no value.

    `eval`: mean deterministic evaluation return at each evaluation step (the union of all seeds' steps).
    `episodes`: training-episode returns, averaged within `bins` equal step bins; an empty bin carries the
    seed's previous value forward (NaN before its first episode).
    """
    if kind not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    rows_per_seed = []
    for d in _seed_dirs(Path(run_dir)):
        path = d / f"{kind}.csv"
        rows_per_seed.append(read_csv(path) if path.exists() else [])
    if kind == "eval":
        steps = sorted({r["step"] for rows in rows_per_seed for r in rows})
        column = {s: j for j, s in enumerate(steps)}
        values = np.full((len(rows_per_seed), len(steps)), np.nan)
        for i, rows in enumerate(rows_per_seed):
            for r in rows:
                values[i, column[r["step"]]] = r["mean_return"]
        return np.asarray(steps, dtype=float), values
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


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over the last `window` points of each row, ignoring NaNs. [S, T] -> [S, T].

    A point stays NaN only if its whole window is NaN; the first points average over what exists so far.
    """
    if window < 1:
        raise ValueError(f"--smooth must be >= 1, got {window}")
    finite = np.isfinite(values)
    zero_filled = np.where(finite, values, 0.0)
    pad = ((0, 0), (1, 0))
    csum = np.cumsum(np.pad(zero_filled, pad), axis=1)
    ccount = np.cumsum(np.pad(finite.astype(float), pad), axis=1)
    t = np.arange(1, values.shape[1] + 1)
    start = np.maximum(t - window, 0)
    total, count = csum[:, t] - csum[:, start], ccount[:, t] - ccount[:, start]
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def summarize(values: np.ndarray, band: str = "ci95") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and its band at each step, using only the seeds that have a value there.

    values: [S, T]. Returns (keep [T] bool, mean [T'], lo [T'], hi [T']) over the kept steps, those where at
    least one seed has a value. With one seed at a step, lo = hi = mean (no interval from one sample).
    """
    if band not in BANDS:
        raise ValueError(f"--band must be one of {', '.join(BANDS)}, got {band!r}")
    finite = np.isfinite(values)
    n = finite.sum(axis=0)  # [T]
    keep = n > 0
    v, f, n = values[:, keep], finite[:, keep], n[keep]
    mean = np.where(f, v, 0.0).sum(axis=0) / n
    if band == "minmax":
        return keep, mean, np.where(f, v, np.inf).min(axis=0), np.where(f, v, -np.inf).max(axis=0)
    if band == "none":
        return keep, mean, mean, mean
    from scipy import stats

    dof = np.maximum(n - 1, 1)
    var = np.where(f, (v - mean) ** 2, 0.0).sum(axis=0) / dof
    half = np.where(n > 1, stats.t.ppf(0.975, dof) * np.sqrt(var / n), 0.0)
    return keep, mean, mean - half, mean + half


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "x".join(map(str, v))
    return str(v)


def legend_labels(configs: Sequence[dict[str, Any]], num_seeds: Sequence[int],
                  labels: Sequence[str] | None = None, names: Sequence[str] | None = None) -> list[str]:
    """One legend entry per run: `labels` if given, else the algorithm plus the config fields that differ.

    `configs` are the runs' config.json dicts (agent fields flattened to their own names). If two runs have
    identical configs, `names` (the run directories' names) tell them apart.
    """
    if labels:
        if len(labels) != len(configs):
            raise ValueError(f"--label was given {len(labels)} time(s) for {len(configs)} run(s): give one per run")
        return list(labels)
    flat = [_flatten({k: v for k, v in c.items() if k != "agent"}) | _flatten(c.get("agent", {})) for c in configs]
    keys = [k for k in dict.fromkeys(k for f in flat for k in f) if k not in _IGNORED_FIELDS and k != "algo"]
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    out = []
    for i, f in enumerate(flat):
        parts = [f"{k}={_fmt(f.get(k))}" for k in differ]
        text = ", ".join([str(f.get("algo", "?")), *parts])
        out.append(f"{text} ({num_seeds[i]} seed{'s' * (num_seeds[i] != 1)})")
    if len(set(out)) < len(out) and names:
        out = [f"{name}: {o}" for name, o in zip(names, out)]
    return out


def _title(configs: Sequence[dict[str, Any]], kind: str, band: str, smooth_window: int | None) -> str:
    envs = ", ".join(dict.fromkeys(str(c.get("env", "?")) for c in configs))
    what = "deterministic evaluation return" if kind == "eval" else "training episode return"
    shade = {"ci95": "95% t-interval of the mean", "minmax": "min-max", "none": "no band"}[band]
    extra = f", moving average of {smooth_window}" if smooth_window and smooth_window > 1 else ""
    return f"{envs}: {what}, mean over seeds ({shade}{extra})"


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path, kind: str = "eval", title: str | None = None,
              labels: Sequence[str] | None = None, band: str = "ci95", smooth_window: int | None = None) -> Path:
    """Draw one line per run directory (mean over seeds, with `band`) and write a PNG. Returns its path.

    Prints nothing and emits no warnings: steps where no seed has a value are skipped.
    """
    if band not in BANDS:
        raise ValueError(f"--band must be one of {', '.join(BANDS)}, got {band!r}")
    dirs = [Path(d) for d in run_dirs]
    configs = []
    for d in dirs:
        if not (d / "config.json").exists():
            raise FileNotFoundError(f"{d} has no config.json: is it a softrl run directory?")
        configs.append(json.loads((d / "config.json").read_text()))
    data = [curves(d, kind) for d in dirs]
    if smooth_window is not None:
        data = [(steps, smooth(values, smooth_window)) for steps, values in data]
    names = [d.resolve().name for d in dirs]
    texts = legend_labels(configs, [v.shape[0] for _, v in data], labels, names)
    return _draw(data, texts, Path(out), kind, title or _title(configs, kind, band, smooth_window), band)


def _draw(data, labels: list[str], out: Path, kind: str, title: str, band: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for (steps, values), label in zip(data, labels):
        keep, mean, lo, hi = summarize(values, band)
        if not keep.any():
            continue
        (line,) = ax.plot(steps[keep], mean, label=label)
        if band != "none":
            ax.fill_between(steps[keep], lo, hi, alpha=0.2, color=line.get_color(), linewidth=0)
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel(("evaluation" if kind == "eval" else "episode") + " return (undiscounted)")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize="medium")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


__all__ = ["BANDS", "KINDS", "curves", "legend_labels", "plot_runs", "smooth", "summarize"]
