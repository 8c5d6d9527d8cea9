"""Statistics for comparing RL runs across tasks (Agarwal et al. 2021, "Deep RL at the Edge of the
Statistical Precipice", NeurIPS): IQM, mean, median and optimality gap with stratified bootstrap
intervals, probability of improvement, performance profiles, and IQM-vs-steps curves.

Data layout. A score set is a sequence with one array per task (environment); array `t` holds that
task's runs (seeds) on axis 0, with any trailing axes (e.g. [runs, steps] for learning curves). Tasks
may have different numbers of runs. Aggregates pool all runs of all tasks; with equal run counts per
task they equal rliable's definitions on its [runs, tasks] matrix.

Bootstrap. Stratified: each resample draws, for every task independently, as many runs as that task
has, with replacement (tasks are the strata, as in Agarwal et al. Sec. 4), then applies the statistic
to the pooled resample. Intervals are percentile intervals of 2000 resamples by default (rliable's
default method). With few runs per task a percentile interval is too narrow (it does not account for
the small-sample t factor); the report states the number of runs so that a reader can judge.

Why our own bootstrap and not `rliable`: rliable 1.2.0 imports `arch.bootstrap` at module import, and
arch 7.2 fails to import under pandas 3 (it calls a pandas-private decorator whose signature changed),
so `from rliable import library` raises TypeError in this environment. `scipy.stats.bootstrap` has no
stratified resampling of a pooled statistic over ragged strata and no vectorised multi-step form, so the
resampling is written here in numpy (a few lines), and `scipy.stats.trim_mean` gives the IQM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats as sps

Tasks = Sequence[np.ndarray]  # one array per task: [runs_t, ...]
Statistic = Callable[[np.ndarray], np.ndarray]  # reduces axis 1 of [reps, runs, ...]

DEFAULT_REPS = 2000
CONFIDENCE = 0.95


class Interval(NamedTuple):
    point: np.ndarray  # statistic on the data
    low: np.ndarray  # lower percentile bound
    high: np.ndarray  # upper percentile bound

    def to_dict(self) -> dict:
        return {"point": _py(self.point), "low": _py(self.low), "high": _py(self.high)}


def _py(x: np.ndarray):
    x = np.asarray(x, np.float64)
    return float(x) if x.ndim == 0 else x.tolist()


# ----- aggregates: each reduces axis 1 (the pooled runs axis) ------------------------------------------


def iqm(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of scores (trims int(0.25 n) from each end)."""
    return sps.trim_mean(x, 0.25, axis=axis)


def mean(x: np.ndarray, axis: int = 1) -> np.ndarray:
    return np.mean(x, axis=axis)


def median(x: np.ndarray, axis: int = 1) -> np.ndarray:
    return np.median(x, axis=axis)


def optimality_gap(x: np.ndarray, axis: int = 1, gamma: float = 1.0) -> np.ndarray:
    """How far scores fall short of `gamma` (1 = reference score): mean of max(gamma - x, 0)."""
    return gamma - np.mean(np.minimum(x, gamma), axis=axis)


AGGREGATES: dict[str, Statistic] = {"IQM": iqm, "Mean": mean, "Median": median, "Optimality gap": optimality_gap}


# ----- stratified bootstrap -------------------------------------------------------------------------------


def _as_tasks(tasks: Tasks) -> list[np.ndarray]:
    out = [np.asarray(t, np.float64) for t in tasks]
    if not out or any(t.ndim < 1 or t.shape[0] < 1 for t in out):
        raise ValueError("every task needs at least one run")
    if len({t.shape[1:] for t in out}) > 1:
        raise ValueError("all tasks must share the trailing shape (e.g. the same eval steps)")
    return out


def stratified_resamples(tasks: Tasks, reps: int, rng: np.random.Generator) -> np.ndarray:
    """Pooled resamples [reps, sum_t runs_t, ...]: each task's runs drawn with replacement, per task."""
    parts = []
    for t in _as_tasks(tasks):
        idx = rng.integers(0, t.shape[0], size=(reps, t.shape[0]))  # [reps, runs_t]
        parts.append(t[idx])
    return np.concatenate(parts, axis=1)


def interval(
    tasks: Tasks, statistic: Statistic, reps: int = DEFAULT_REPS, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """Point estimate and stratified-bootstrap percentile interval of `statistic` on the pooled runs."""
    tasks = _as_tasks(tasks)
    point = statistic(np.concatenate(tasks, axis=0)[None])[0]
    boot = statistic(stratified_resamples(tasks, reps, np.random.default_rng(seed)))  # [reps, ...]
    return _percentiles(point, boot, confidence)


def _percentiles(point: np.ndarray, boot: np.ndarray, confidence: float) -> Interval:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    return Interval(np.asarray(point), low, high)


def aggregate_intervals(tasks: Tasks, reps: int = DEFAULT_REPS, seed: int = 0) -> dict[str, Interval]:
    """IQM, mean, median and optimality gap of normalised scores, each with its 95% stratified interval.

    One set of resamples is shared by the four statistics so that they describe the same bootstrap world.
    """
    tasks = _as_tasks(tasks)
    pooled = np.concatenate(tasks, axis=0)[None]
    boot = stratified_resamples(tasks, reps, np.random.default_rng(seed))
    return {name: _percentiles(f(pooled)[0], f(boot), CONFIDENCE) for name, f in AGGREGATES.items()}


def mean_interval(runs: np.ndarray, reps: int = DEFAULT_REPS, seed: int = 0) -> Interval:
    """Mean over runs (axis 0) with a 95% bootstrap interval over runs: one task, one stratum."""
    return interval([runs], mean, reps, CONFIDENCE, seed)


def iqm_curve(tasks: Tasks, reps: int = DEFAULT_REPS, seed: int = 0) -> Interval:
    """IQM at every step of learning curves (task arrays [runs_t, steps]) with pointwise 95% intervals."""
    return interval(tasks, iqm, reps, CONFIDENCE, seed)


# ----- probability of improvement ------------------------------------------------------------------------


def _prob_greater(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y)/2 over all pairs (the Mann-Whitney U statistic over n*m): x [..., n], y [..., m]."""
    diff = x[..., :, None] - y[..., None, :]  # [..., n, m]
    return np.mean((diff > 0) + 0.5 * (diff == 0), axis=(-2, -1))


def probability_of_improvement(x_tasks: Tasks, y_tasks: Tasks) -> float:
    """P(X > Y): the probability that a run of X beats a run of Y on a task, averaged over tasks
    (Agarwal et al. 2021, Sec. 4.2). Tasks must be given in the same order for X and Y."""
    x_tasks, y_tasks = _as_tasks(x_tasks), _as_tasks(y_tasks)
    _check_paired(x_tasks, y_tasks)
    return float(np.mean([_prob_greater(x, y) for x, y in zip(x_tasks, y_tasks)]))


def _check_paired(x_tasks: list[np.ndarray], y_tasks: list[np.ndarray]) -> None:
    if len(x_tasks) != len(y_tasks):
        raise ValueError(f"probability of improvement needs the same tasks: {len(x_tasks)} vs {len(y_tasks)}")
    if any(t.ndim != 1 for t in (*x_tasks, *y_tasks)):
        raise ValueError("probability of improvement takes one score per run: task arrays must be 1-D")


def probability_of_improvement_interval(
    x_tasks: Tasks, y_tasks: Tasks, reps: int = DEFAULT_REPS, seed: int = 0
) -> Interval:
    """P(X > Y) with a 95% interval: X's and Y's runs are resampled independently within each task."""
    x_tasks, y_tasks = _as_tasks(x_tasks), _as_tasks(y_tasks)
    _check_paired(x_tasks, y_tasks)
    rng = np.random.default_rng(seed)
    per_task = []
    for x, y in zip(x_tasks, y_tasks):
        xb = x[rng.integers(0, x.size, size=(reps, x.size))]
        yb = y[rng.integers(0, y.size, size=(reps, y.size))]
        per_task.append(_prob_greater(xb, yb))  # [reps]
    boot = np.mean(per_task, axis=0)
    return _percentiles(np.asarray(probability_of_improvement(x_tasks, y_tasks)), boot, CONFIDENCE)


# ----- performance profiles ----------------------------------------------------------------------------------


def _profile(x: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of runs (axis -1) with score > tau: x [..., runs] -> [..., len(taus)]."""
    return np.mean(x[..., None, :] > taus[:, None], axis=-1)


def performance_profile(tasks: Tasks, taus: np.ndarray, reps: int = DEFAULT_REPS, seed: int = 0) -> Interval:
    """Run-score distribution: for each tau, the fraction of runs scoring above tau, averaged over tasks
    so that each task weighs the same (Agarwal et al. 2021, Sec. 4.1); with 95% stratified bands."""
    tasks = _as_tasks(tasks)
    if any(t.ndim != 1 for t in tasks):
        raise ValueError("performance profiles take one score per run: task arrays must be 1-D")
    taus = np.asarray(taus, np.float64)
    rng = np.random.default_rng(seed)
    point = np.mean([_profile(t, taus) for t in tasks], axis=0)
    boot = np.mean([_profile(t[rng.integers(0, t.size, size=(reps, t.size))], taus) for t in tasks], axis=0)
    return _percentiles(point, boot, CONFIDENCE)


def normalise(scores: np.ndarray, random_score: float, reference_score: float) -> np.ndarray:
    """(score - random) / (reference - random): 0 is a uniformly random policy, 1 the reference agent."""
    if reference_score == random_score:
        raise ValueError("reference and random scores are equal; cannot normalise")
    return (np.asarray(scores, np.float64) - random_score) / (reference_score - random_score)
