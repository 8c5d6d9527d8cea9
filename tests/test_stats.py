"""softrl.stats against hand computations (numpy float64) and bootstrap coverage on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from softrl import stats


def test_aggregates_by_hand():
    x = np.array([[8.0, 1.0, 7.0, 2.0, 6.0, 3.0, 5.0, 4.0]])  # sorted 1..8; IQM drops 2 at each end
    assert stats.iqm(x)[0] == pytest.approx((3 + 4 + 5 + 6) / 4, abs=1e-12)
    y = np.array([[10.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, -50.0]])  # n=10: int(2.5)=2 dropped per end
    assert stats.iqm(y)[0] == pytest.approx((1 + 2 + 3 + 4 + 5 + 6) / 6, abs=1e-12)
    g = np.array([[0.5, 1.2, 0.8]])
    assert stats.optimality_gap(g)[0] == pytest.approx((0.5 + 0.0 + 0.2) / 3, abs=1e-12)
    assert stats.median(g)[0] == 0.8 and stats.mean(g)[0] == pytest.approx(2.5 / 3, abs=1e-12)


def test_point_estimates_pool_ragged_tasks():
    tasks = [np.array([0.0, 1.0, 2.0]), np.array([3.0, 4.0, 5.0, 6.0, 7.0])]
    out = stats.aggregate_intervals(tasks, reps=200)
    assert out["IQM"].point == pytest.approx((2 + 3 + 4 + 5) / 4, abs=1e-12)  # n=8, drop 2 each end
    assert out["Mean"].point == pytest.approx(28 / 8, abs=1e-12)
    assert out["Median"].point == pytest.approx(3.5, abs=1e-12)
    for iv in out.values():
        assert iv.low <= iv.point <= iv.high or np.isclose(iv.low, iv.point) or np.isclose(iv.high, iv.point)


def test_bootstrap_is_stratified_exact_distribution():
    """Task A runs {0, 1}, task B runs {10, 10}. Resampling within tasks, the pooled mean is (a1+a2+20)/4:
    5.0, 5.25, 5.5 with probabilities 1/4, 1/2, 1/4, so the 2.5% and 97.5% percentiles are exactly 5.0 and 5.5.
    Resampling the pooled runs (unstratified) would reach 0 and 10."""
    iv = stats.interval([np.array([0.0, 1.0]), np.array([10.0, 10.0])], stats.mean, reps=4000, seed=1)
    assert iv.point == 5.25 and iv.low == 5.0 and iv.high == 5.5


def test_interval_matches_a_plain_loop():
    """The vectorised resampler equals a loop that draws the same indices one replicate at a time."""
    tasks = [np.array([0.3, 2.0, 1.1, 0.7]), np.array([5.0, 4.2, 6.1])]
    reps, seed = 300, 7
    iv = stats.interval(tasks, stats.iqm, reps=reps, seed=seed)
    rng = np.random.default_rng(seed)
    idx = [rng.integers(0, len(t), size=(reps, len(t))) for t in tasks]
    boot = [sps.trim_mean(np.concatenate([t[i[r]] for t, i in zip(tasks, idx)]), 0.25) for r in range(reps)]
    np.testing.assert_allclose([iv.low, iv.high], np.percentile(boot, [2.5, 97.5]), rtol=0, atol=1e-12)


def test_probability_of_improvement_by_hand():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0])
    # pairs: (1,2)x2 -> 0, (2,2)x2 -> 1/2 each, (3,2)x2 -> 1 each: 3/6
    assert stats.probability_of_improvement([x], [y]) == pytest.approx(0.5, abs=1e-12)
    x2, y2 = np.array([5.0, 6.0]), np.array([1.0, 7.0, 0.0])  # 4 of 6 pairs won: 2/3
    assert stats.probability_of_improvement([x, x2], [y, y2]) == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-12)
    u = sps.mannwhitneyu(x2, y2).statistic  # Mann-Whitney U of x over y
    assert stats.probability_of_improvement([x2], [y2]) == pytest.approx(u / (2 * 3), abs=1e-12)
    iv = stats.probability_of_improvement_interval([x, x2], [y, y2], reps=500)
    assert 0.0 <= iv.low <= iv.point <= iv.high <= 1.0


def test_performance_profile_by_hand():
    tasks = [np.array([0.1, 0.5, 0.9]), np.array([0.2, 0.6])]
    prof = stats.performance_profile(tasks, np.array([0.0, 0.5, 1.0]), reps=300)
    # tau 0.5: task 1 has 1 of 3 above (0.5 is not above), task 2 has 1 of 2: mean 5/12
    np.testing.assert_allclose(prof.point, [1.0, 5 / 12, 0.0], atol=1e-12)
    assert np.all(prof.low <= prof.point + 1e-12) and np.all(prof.high >= prof.point - 1e-12)


def test_iqm_curve_is_pointwise():
    rng = np.random.default_rng(0)
    tasks = [rng.normal(size=(5, 4)), rng.normal(size=(3, 4)) + 2.0]
    curve = stats.iqm_curve(tasks, reps=100)
    pooled = np.concatenate(tasks)
    np.testing.assert_allclose(curve.point, [sps.trim_mean(pooled[:, s], 0.25) for s in range(4)], atol=1e-12)
    assert curve.low.shape == (4,)


def test_normalise():
    np.testing.assert_allclose(stats.normalise([-1200.0, -150.0], -1200.0, -150.0), [0.0, 1.0])
    with pytest.raises(ValueError):
        stats.normalise([1.0], 2.0, 2.0)


# ----- coverage ---------------------------------------------------------------------------------------------
# 200 synthetic data sets; the fraction whose 95% interval holds the true value is Binomial(200, p)/200.
# If p were exactly 0.95 its standard deviation would be sqrt(0.95 * 0.05 / 200) = 0.0154; we accept
# |coverage - 0.95| <= 3 sd = 0.046, i.e. coverage in [0.904, 0.996]. The percentile bootstrap's own
# small-sample shortfall at these run counts is about one standard deviation, inside the band.
DATASETS = 200
TOL = 3 * math.sqrt(0.95 * 0.05 / DATASETS)


def _coverage(make, truth, statistic, reps=1000):
    rng = np.random.default_rng(123)
    hits = 0
    for i in range(DATASETS):
        iv = stats.interval(make(rng), statistic, reps=reps, seed=i)
        hits += bool(iv.low <= truth <= iv.high)
    return hits / DATASETS


def test_coverage_mean_one_task():
    cov = _coverage(lambda rng: [rng.normal(3.0, 2.0, size=30)], 3.0, stats.mean)
    assert abs(cov - 0.95) <= TOL, cov


def test_coverage_stratified_mean_three_tasks():
    """Tasks with different distributions, 20 runs each: the pooled mean's truth is the mean of task means."""

    def make(rng):
        return [rng.normal(0.0, 1.0, 20), rng.exponential(2.0, 20), rng.uniform(5.0, 9.0, 20)]

    cov = _coverage(make, (0.0 + 2.0 + 7.0) / 3, stats.mean)
    assert abs(cov - 0.95) <= TOL, cov


def test_coverage_iqm_symmetric():
    """For a symmetric distribution the population interquartile mean is its centre."""
    cov = _coverage(lambda rng: [rng.logistic(1.0, 1.0, size=40)], 1.0, stats.iqm)
    assert abs(cov - 0.95) <= TOL, cov
