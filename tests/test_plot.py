"""`softrl plot`: legends that tell runs apart, a 95% t-interval band, smoothing, no warnings, only the path printed."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import softrl
from softrl.log import RunLogger
from softrl.plot import curves, legend_labels, plot_runs, smooth, summarize

# t_{0.975, 3}, the 97.5% quantile of Student's t with 3 degrees of freedom, found by bisection on the closed-form
# CDF F(t) = 1/2 + (t / (sqrt(3) (1 + t^2/3)) + atan(t / sqrt(3))) / pi (tables: 3.1824).
T_975_DOF3 = 3.182446305283706


def _make_run(root: Path, name: str, evals: dict[int, list[tuple[int, float]]], episodes=None, **cfg) -> Path:
    """A run directory as `softrl train` writes it: config.json and seed_S/{eval,episodes}.csv via RunLogger."""
    run = root / name
    config = softrl.TrainConfig(**{"algo": "sac", "env": "Pendulum-v1", "seeds": len(evals), **cfg})
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))
    logger = RunLogger(run, list(evals))
    for seed, rows in evals.items():
        for step, ret in rows:
            logger.write(seed, "eval", {"step": step, "mean_return": ret, "std_return": 0.0})
        for step, ret in (episodes or {}).get(seed, []):
            logger.write(seed, "episodes", {"step": step, "return": ret, "length": 200})
    logger.close()
    return run


def _four_seeds(offset: float = 0.0) -> dict[int, list[tuple[int, float]]]:
    finals = [1.0, 2.0, 4.0, 7.0]
    return {s: [(1000, -100.0 + s), (2000, finals[s] + offset)] for s in range(4)}


def test_legends_tell_runs_apart_by_differing_config_fields(tmp_path):
    a = _make_run(tmp_path, "a", _four_seeds(), cpu_devices=1)
    b = _make_run(tmp_path, "b", _four_seeds(10.0), cpu_devices=2)
    configs = [json.loads((d / "config.json").read_text()) for d in (a, b)]
    labels = legend_labels(configs, [4, 4])
    assert labels == ["sac, cpu_devices=1 (4 seeds)", "sac, cpu_devices=2 (4 seeds)"]
    # Agent fields are named by their own name; run_dir (always different) is not a difference worth a legend.
    c = _make_run(tmp_path, "c", _four_seeds(), run_dir="elsewhere", agent=softrl.AgentConfig(lr=1e-3))
    configs = [json.loads((d / "config.json").read_text()) for d in (a, c)]
    assert legend_labels(configs, [4, 4]) == ["sac, lr=0.0003 (4 seeds)", "sac, lr=0.001 (4 seeds)"]


def test_identical_configs_fall_back_to_run_names_and_labels_override(tmp_path):
    configs = [{"algo": "sac", "env": "Pendulum-v1"}] * 2
    assert legend_labels(configs, [1, 1], names=["r1", "r2"]) == ["r1: sac (1 seed)", "r2: sac (1 seed)"]
    assert legend_labels(configs, [1, 1], labels=["x", "y"]) == ["x", "y"]
    with pytest.raises(ValueError, match="one per run"):
        legend_labels(configs, [1, 1], labels=["x"])


def test_ci95_band_matches_a_hand_computed_t_interval(tmp_path):
    run = _make_run(tmp_path, "a", _four_seeds())
    steps, values = curves(run, "eval")
    np.testing.assert_array_equal(steps, [1000, 2000])
    keep, mean, lo, hi = summarize(values, "ci95")
    x = np.array([1.0, 2.0, 4.0, 7.0])
    half = T_975_DOF3 * np.sqrt(np.sum((x - x.mean()) ** 2) / 3) / 2.0  # t * s / sqrt(n), n = 4
    assert keep.all()
    np.testing.assert_allclose([mean[1], lo[1], hi[1]], [3.5, 3.5 - half, 3.5 + half], rtol=1e-12)
    _, _, lo_mm, hi_mm = summarize(values, "minmax")
    np.testing.assert_array_equal([lo_mm[1], hi_mm[1]], [1.0, 7.0])


def test_seeds_with_different_eval_steps_give_no_warning(tmp_path, recwarn):
    # seed 0 evaluates at 1000, 2000; seed 1 at 1500, 2000; seed 2 never evaluated (empty row).
    run = _make_run(tmp_path, "a", {0: [(1000, 1.0), (2000, 3.0)], 1: [(1500, 2.0), (2000, 5.0)], 2: []})
    steps, values = curves(run, "eval")
    keep, mean, lo, hi = summarize(values, "ci95")
    np.testing.assert_array_equal(steps[keep], [1000, 1500, 2000])
    np.testing.assert_array_equal(mean, [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(lo[:2], [1.0, 2.0])  # one seed: no interval, lo = hi = mean
    assert lo[2] < 4.0 < hi[2]
    plot_runs([run], tmp_path / "out.png", band="minmax", smooth_window=3)
    assert not recwarn.list, [str(w.message) for w in recwarn.list]


def test_episode_curves_with_empty_leading_bins_give_no_warning(tmp_path):
    episodes = {0: [(900, -5.0), (1000, -3.0)], 1: [(800, -4.0), (1000, -2.0)]}
    run = _make_run(tmp_path, "a", {0: [], 1: []}, episodes=episodes)
    steps, values = curves(run, "episodes", bins=10)
    assert np.isnan(values[:, 0]).all()  # no episode had ended by the first bin: an all-NaN column
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keep, mean, _, _ = summarize(values, "ci95")
        plot_runs([run], tmp_path / "ep.png", kind="episodes")
    assert (tmp_path / "ep.png").stat().st_size > 0
    np.testing.assert_allclose(mean[-1], -2.5)
    assert not keep[0]


def test_smooth_is_a_trailing_nan_aware_moving_average():
    v = np.array([[1.0, np.nan, 3.0, 5.0, np.nan], [np.nan, np.nan, 2.0, 4.0, 6.0]])
    got = smooth(v, 2)
    want = np.array([[1.0, 1.0, 3.0, 4.0, 5.0], [np.nan, np.nan, 2.0, 3.0, 5.0]])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(smooth(v, 1)[np.isfinite(v)], v[np.isfinite(v)])
    with pytest.raises(ValueError, match="--smooth"):
        smooth(v, 0)


def test_cli_prints_only_the_output_path(tmp_path, capsys):
    from softrl.cli import main

    a = _make_run(tmp_path, "a", _four_seeds(), cpu_devices=1)
    b = _make_run(tmp_path, "b", _four_seeds(10.0), cpu_devices=2)
    out = tmp_path / "figs" / "curves.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc = main(["plot", str(a), str(b), "--out", str(out), "--smooth", "2", "--label", "one", "two"])
    captured = capsys.readouterr()
    assert rc == 0
    assert captured.out == f"{out}\n" and captured.err == ""
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_band_is_a_one_line_error(tmp_path, capsys):
    from softrl.cli import main

    a = _make_run(tmp_path, "a", _four_seeds())
    assert main(["plot", str(a), "--band", "sd", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("softrl: error: --band must be one of") and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_cli_without_run_dirs_is_a_one_line_error(capsys):
    from softrl.cli import main

    assert main(["plot"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("softrl: error: give at least one run directory") and err.count("\n") == 1
