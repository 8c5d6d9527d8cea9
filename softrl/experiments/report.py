"""Shared helpers for the experiments: a `Report` that writes DIR/report.md, DIR/results.json and the
figures it embeds, confidence intervals across seeds, a common plot style and float64 for exact checks.

A report is built top to bottom (`heading`, `para`, `table`, `figure`), numbers go to `results`, and
pass/fail identities go to `check`. `write()` renders everything; figures are linked relatively, so
the output directory can be moved as a whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import platform
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Font sizes chosen to stay readable when a figure is shown at ~700 px wide in a markdown viewer.
STYLE: dict[RcKeyType, Any] = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9,
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (experiments only write files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def plot_style() -> Iterator[None]:
    """The experiments' shared matplotlib style, as a context."""
    plt = pyplot()
    with plt.rc_context(STYLE):
        yield


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Float64 JAX arrays inside the block: the tabular identities are checked to ~1e-6 or tighter,
    which float32 (eps ~ 1.2e-7, times |Q| / (1 - gamma)) cannot guarantee."""
    with jax.enable_x64(True):
        yield


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> dict[str, float | int | None]:
    """Mean and Student-t confidence interval of the mean across seeds.

    Returns {"mean", "lo", "hi", "std", "n"}; with n < 2 the interval is undefined (None).
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return {"mean": None, "lo": None, "hi": None, "std": None, "n": 0}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "lo": None, "hi": None, "std": None, "n": 1}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "std": std, "n": n}


def fmt(x: Any, digits: int = 4) -> str:
    """A number for a markdown table: general format, scientific when tiny or huge, '-' for None/NaN."""
    if x is None:
        return "-"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, str):
        return x
    x = float(x) + 0.0  # + 0.0 turns -0.0 into 0.0
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.{max(digits - 2, 1)}e}"
    return f"{x:.{digits}g}"


def fmt_ci(ci: dict[str, Any], digits: int = 4) -> str:
    """'mean [lo, hi] (n=N)' for a `mean_ci` result; 'mean (n=1)' without an interval."""
    if ci["mean"] is None:
        return "-"
    if ci["lo"] is None:
        return f"{fmt(ci['mean'], digits)} (n={ci['n']})"
    return f"{fmt(ci['mean'], digits)} [{fmt(ci['lo'], digits)}, {fmt(ci['hi'], digits)}] (n={ci['n']})"


def _cell(text: str) -> str:
    """A markdown table cell: pipes escaped so that |x| does not split the cell."""
    return str(text).replace("|", "\\|")


def public(x: Any) -> Any:
    """`x` without the dict keys, at any depth, that start with "_" (figure-only data of a `compute()` result)."""
    if isinstance(x, dict):
        return {k: public(v) for k, v in x.items() if not (isinstance(k, str) and k.startswith("_"))}
    if isinstance(x, (list, tuple)):
        return type(x)(public(v) for v in x) if not hasattr(x, "_fields") else x
    return x


def to_jsonable(x: Any) -> Any:
    """Arrays to lists, numpy/JAX scalars to Python numbers, non-finite floats to None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, (jax.Array, np.ndarray)):
        return to_jsonable(np.asarray(x).tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    return x


@dataclasses.dataclass
class Check:
    """One identity the experiment verifies: `value <= tol` (or an explicit `passed`)."""

    name: str
    value: float
    tol: float
    passed: bool
    description: str


def check(name: str, value: float, tol: float, description: str, passed: bool | None = None) -> Check:
    """An identity check `value <= tol` (unless `passed` is given), as `compute()` functions return them."""
    value = float(value)
    return Check(name, value, float(tol), bool(value <= tol) if passed is None else bool(passed), description)


@dataclasses.dataclass(frozen=True)
class Figure:
    """A PNG that `figures()` saved in the output directory, and the caption the reading embeds it with."""

    filename: str
    caption: str


def save_figure(fig, out: Path, filename: str, caption: str) -> Figure:
    """Saves `fig` as out/filename (PNG) and closes it."""
    fig.savefig(Path(out) / filename, bbox_inches="tight")
    pyplot().close(fig)
    return Figure(filename, caption)


@dataclasses.dataclass
class Report:
    """Accumulates one experiment's markdown, numbers, checks and figures; `write()` saves them."""

    name: str
    title: str
    out: Path
    quick: bool
    seeds: int
    claim: str
    budget: str = ""
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    checks: list[Check] = dataclasses.field(default_factory=list)
    figures: list[str] = dataclasses.field(default_factory=list)
    _blocks: list[str] = dataclasses.field(default_factory=list)
    _t0: float = dataclasses.field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.out.mkdir(parents=True, exist_ok=True)

    # --- markdown -----------------------------------------------------------------------------
    def heading(self, text: str, level: int = 2) -> None:
        self._blocks.append("#" * level + " " + text)

    def para(self, text: str) -> None:
        self._blocks.append(text.strip())

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> None:
        """A markdown table; numbers go through `fmt`, strings are kept ('|' escaped)."""
        lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
        for row in rows:
            lines.append("| " + " | ".join(_cell(fmt(c, digits)) for c in row) + " |")
        self._blocks.append("\n".join(lines))

    def figure(self, fig, filename: str, caption: str) -> Path:
        """Saves `fig` as DIR/filename (PNG), closes it and embeds it with a relative link."""
        self.embed(save_figure(fig, self.out, filename, caption))
        return self.out / filename

    def embed(self, figure: Figure) -> None:
        """Embeds a figure already saved in the output directory, with a relative link."""
        self.figures.append(figure.filename)
        self._blocks.append(f"![{figure.caption}]({figure.filename})\n\n*{figure.caption}*")

    def record(self, results: dict[str, Any]) -> None:
        """Takes a `compute()` result: its "checks" (a list of `Check`) join the report's, the rest its numbers
        (less the keys, at any depth, that start with "_": data kept only for the figures)."""
        self.checks.extend(results.get("checks", ()))
        self.results.update(public({k: v for k, v in results.items() if k != "checks"}))

    # --- numbers ------------------------------------------------------------------------------
    def check(self, name: str, value: float, tol: float, description: str, passed: bool | None = None) -> bool:
        """Records an identity check `value <= tol` (unless `passed` is given) and returns whether it held."""
        c = check(name, value, tol, description, passed)
        self.checks.append(c)
        return c.passed

    @property
    def all_passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def _checks_block(self) -> str:
        if not self.checks:
            return ""
        lines = ["| check | value | tolerance | passed | what |", "|---|---|---|---|---|"]
        for c in self.checks:
            lines.append(f"| `{c.name}` | {fmt(c.value, 3)} | {fmt(c.tol, 3)} | {fmt(c.passed)} | "
                         f"{_cell(c.description)} |")
        return "\n".join(lines)

    # --- output -------------------------------------------------------------------------------
    def write(self) -> Path:
        """Writes DIR/report.md and DIR/results.json. Returns the report path."""
        wall = time.perf_counter() - self._t0
        command = f"softrl experiment {self.name}" + (" --quick" if self.quick else "") + f" --seeds {self.seeds}"
        head = [
            f"# {self.title}",
            f"**Claim (Lecture 17).** {self.claim.strip()}",
            (
                f"**Run.** `{command} --out {self.out}` ({'quick' if self.quick else 'full'} mode), "
                f"{wall:.1f} s wall time on {platform.machine()} "
                f"({jax.default_backend()} JAX {jax.__version__})."
            ),
        ]
        if self.budget:
            head.append(f"**Budget.** {self.budget.strip()}")
        blocks = head + self._blocks
        if self.checks:
            n_ok = sum(c.passed for c in self.checks)
            blocks += ["## Checks", f"{n_ok} of {len(self.checks)} checks passed.", self._checks_block()]
        md = "\n\n".join(blocks) + "\n"
        report_path = self.out / "report.md"
        report_path.write_text(md)
        payload = {
            "experiment": self.name,
            "title": self.title,
            "quick": self.quick,
            "seeds": self.seeds,
            "wall_s": wall,
            "figures": self.figures,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "all_checks_passed": self.all_passed,
            "results": self.results,
        }
        (self.out / "results.json").write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n")
        return report_path


def not_run_note(part: str, error: str | None, skipped: bool, quick: bool, smoke: str) -> str | None:
    """The sentence that stands for a learned part's reading when it failed, was skipped or ran as a smoke test
    (`smoke`: its budget, e.g. "1 seed, 600 steps, 32x32 networks"); None when it ran in full."""
    if error is not None:
        return f"The {part} did not run: {error}."
    if skipped:
        return f"The {part} was skipped."
    if quick:
        return (f"The {part} ran only as a smoke test ({smoke}), so its numbers say nothing about the claim; run "
                "without --quick for the evidence.")
    return None


def band(ax, x, values: np.ndarray, label: str, color=None, log: bool = False, spread: str = "minmax", **line_kw):
    """Draws a centre line and a band of `values` [num_seeds, T] over x; returns the line.

    Centre: the mean, or the geometric mean when `log` (for quantities plotted on log axes).
    Band: `spread="minmax"` (min to max over seeds) or `"ci"` (95% Student-t interval of the mean,
    see `mean_ci`); no band with a single seed.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[None]
    if log:
        centre = np.exp(np.nanmean(np.log(np.maximum(values, 1e-300)), axis=0))
    else:
        centre = np.nanmean(values, axis=0)
    (line,) = ax.plot(x, centre, label=label, color=color, **line_kw)
    if values.shape[0] > 1:
        if spread == "ci":
            cis = [mean_ci(values[:, j]) for j in range(values.shape[1])]
            lo = np.array([np.nan if c["lo"] is None else c["lo"] for c in cis])
            hi = np.array([np.nan if c["hi"] is None else c["hi"] for c in cis])
        else:
            lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


# The TrainConfig fields that decide what a run trains (logging and evaluation cadence do not).
_TRAINING_KEYS = ("algo", "env", "seed", "seeds", "total_steps", "learning_starts", "train_freq", "gradient_steps",
                  "buffer_size", "agent")


def train_or_resume(cfg, on_mismatch: str = "error", log=print):
    """`(TrainResult, how)` for `cfg.run_dir`; `how` is "reused", "resumed" or "trained".

    A run is finished when `softrl.train` wrote summary.json; a checkpoint without it is a partial run,
    resumed with `softrl.train(cfg, resume=run_dir)`. A reused run's `eval_returns` are the per-seed means
    from summary.json, shape [N, 1], and its `timing` is the one it was trained with. A folder holding a run
    of another configuration (config.json differs in a `_TRAINING_KEYS` field) raises
    (`on_mismatch="error"`) or is deleted and retrained (`"retrain"`); so does a folder with a config but
    nothing to resume, so that old logs never mix with the new run's.
    """
    import shutil

    from softrl import TrainResult, load_run, train
    from softrl.loop import config_to_dict
    from softrl.rundir import has_checkpoint

    if on_mismatch not in ("error", "retrain"):
        raise ValueError(f"on_mismatch must be 'error' or 'retrain', got {on_mismatch!r}")
    run_dir = Path(cfg.run_dir)
    summary, config = run_dir / "summary.json", run_dir / "config.json"
    mine = json.loads(json.dumps(config_to_dict(cfg)))  # tuples -> lists, as stored
    if config.exists():
        saved = json.loads(config.read_text())
        diff = [k for k in _TRAINING_KEYS if saved.get(k) != mine.get(k)]
        if diff and on_mismatch == "error":
            raise ValueError(f"{run_dir} holds a run with a different configuration ({', '.join(diff)}); "
                             "remove it or use another --out")
        if diff or not has_checkpoint(run_dir):
            log(f"{run_dir} holds " + (f"another configuration ({', '.join(diff)})" if diff else "no checkpoint")
                + "; training from scratch")
            shutil.rmtree(run_dir)
    if summary.exists():
        saved = json.loads(summary.read_text())
        _, agent, states, seeds = load_run(run_dir)
        means = np.asarray([s["mean_return"] for s in saved["final_eval"]["per_seed"]])  # [N]
        result = TrainResult(states, means[:, None], run_dir, saved.get("timing", {}), agent, seeds,
                             np.asarray(states.step))
        return result, "reused"
    if has_checkpoint(run_dir):
        return train(cfg, resume=run_dir), "resumed"
    return train(cfg), "trained"


def cis_overlap(cis: Sequence[dict[str, Any]]) -> bool:
    """Whether `mean_ci` intervals share a point (an interval of a single seed counts as its mean)."""
    lo = max(c["lo"] if c["lo"] is not None else c["mean"] for c in cis)
    hi = min(c["hi"] if c["hi"] is not None else c["mean"] for c in cis)
    return bool(lo <= hi)


def finish_figure(fig, out: Path, filename: str, caption: str, title: str | None = None, fontsize: int = 12) -> Figure:
    """The last step of a `figures()` helper: the figure's suptitle (when given), a tight layout, `save_figure`."""
    if title is not None:
        fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    return save_figure(fig, out, filename, caption)
