"""`softrl report` on synthetic run directories written in tmp_path (no training)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from softrl.report import SCORES, ReportCommand, run_report


def _write_run(run_dir: Path, env: str, alpha: str, seeds: dict[int, list[float]], steps: list[int]) -> None:
    config = {"algo": "sac", "env": env, "seed": min(seeds), "seeds": len(seeds), "total_steps": steps[-1],
              "run_dir": str(run_dir), "progress": False,
              "agent": {"hidden": [16, 16], "alpha": alpha, "gamma": 0.99}}
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    for s, returns in seeds.items():
        (run_dir / f"seed_{s}").mkdir()
        with open(run_dir / f"seed_{s}" / "eval.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "mean_return", "std_return"])
            for step, r in zip(steps, returns):
                w.writerow([step, r, 1.0])


def _sweep(tmp_path: Path) -> Path:
    """2 envs x 2 alphas x 3 seeds; alpha 0.2 ends higher on both envs."""
    root = tmp_path / "sweep"
    steps = [0, 100, 200]
    finals = {("Pendulum-v1", "0.2"): [-200.0, -180.0, -160.0], ("Pendulum-v1", "1.0"): [-900.0, -800.0, -700.0],
              ("CartPole-v1", "0.2"): [500.0, 480.0, 450.0], ("CartPole-v1", "1.0"): [100.0, 60.0, 80.0]}
    for k, ((env, alpha), final) in enumerate(finals.items()):
        start = SCORES[env].random
        seeds = {s: [start, (start + f) / 2, f] for s, f in enumerate(final)}
        _write_run(root / f"trial_{k}" / "agent_0", env, alpha, seeds, steps)
    return root


def test_report_end_to_end(tmp_path):
    root = _sweep(tmp_path)
    out = tmp_path / "rep"
    assert run_report(ReportCommand(inputs=(str(root),), out=str(out), reps=500)) == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result["configs"]) == {"alpha=0.2", "alpha=1.0"}  # only the differing field names the config
    pend = result["configs"]["alpha=0.2"]["per_env"]["Pendulum-v1"]
    assert pend["seeds"] == 3 and pend["final"]["point"] == pytest.approx(-180.0)
    # normalised finals of alpha=0.2, by hand: (x - random) / (reference - random)
    s_p, s_c = SCORES["Pendulum-v1"], SCORES["CartPole-v1"]
    norm = [(x - s_p.random) / (s_p.reference - s_p.random) for x in (-200.0, -180.0, -160.0)]
    norm += [(x - s_c.random) / (s_c.reference - s_c.random) for x in (500.0, 480.0, 450.0)]
    agg = result["configs"]["alpha=0.2"]["aggregates"]
    assert agg["Mean"]["point"] == pytest.approx(np.mean(norm), abs=1e-12)
    assert agg["IQM"]["point"] == pytest.approx(np.mean(sorted(norm)[1:5]), abs=1e-12)  # n=6: drop 1 each end
    poi = {(r["x"], r["y"]): r["point"] for r in result["probability_of_improvement"]}
    assert poi[("alpha=0.2", "alpha=1.0")] == 1.0 and poi[("alpha=1.0", "alpha=0.2")] == 0.0
    iqm_curve = result["configs"]["alpha=0.2"]["iqm_curve"]
    assert iqm_curve["steps"] == [0, 100, 200] and iqm_curve["point"][0] == pytest.approx(0.0, abs=1e-12)
    md = (out / "report.md").read_text()
    assert "Probability of improvement" in md and "RL Baselines3 Zoo" in md
    for png in ("curves.png", "aggregates.png", "iqm_curves.png", "profiles.png"):
        assert (out / png).stat().st_size > 10_000


def test_report_unknown_env_and_scores_flag(tmp_path):
    root = tmp_path / "runs"
    _write_run(root / "a", "Reacher-v5", "0.2", {0: [-40.0, -10.0], 1: [-40.0, -8.0]}, [0, 100])
    _write_run(root / "b", "Reacher-v5", "1.0", {0: [-40.0, -20.0], 1: [-40.0, -25.0]}, [0, 100])
    out = tmp_path / "rep"
    run_report(ReportCommand(inputs=(str(root / "a"), str(root / "b")), out=str(out), reps=200))
    result = json.loads((out / "results.json").read_text())
    assert result["normalised_envs"] == [] and "aggregates" not in result["configs"]["alpha=0.2"]
    assert "add --scores" in (out / "report.md").read_text()
    run_report(ReportCommand(inputs=(str(root),), out=str(out), reps=200, scores=("Reacher-v5=-40:-4",)))
    result = json.loads((out / "results.json").read_text())
    mean = result["configs"]["alpha=0.2"]["aggregates"]["Mean"]["point"]
    assert mean == pytest.approx((30 + 32) / 2 / 36, abs=1e-12)  # finals -10 and -8 on [-40, -4]


def test_report_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError):
        run_report(ReportCommand(inputs=(str(tmp_path / "missing"),), out=str(tmp_path / "o")))
    with pytest.raises(ValueError, match="no softrl run directories"):
        run_report(ReportCommand(inputs=(str(tmp_path),), out=str(tmp_path / "o")))
    with pytest.raises(ValueError, match="ENV=RANDOM:REFERENCE"):
        _write_run(tmp_path / "r", "Pendulum-v1", "0.2", {0: [1.0]}, [0])
        run_report(ReportCommand(inputs=(str(tmp_path / "r"),), out=str(tmp_path / "o"), scores=("Pendulum-v1",)))


def test_report_command_line():
    import tyro

    cmd = tyro.cli(ReportCommand, args=["a", "b/c", "--out", "rep", "--scores", "Reacher-v5=-43.9:-4", "--reps", "500"])
    assert cmd == ReportCommand(inputs=("a", "b/c"), out="rep", reps=500, scores=("Reacher-v5=-43.9:-4",))
