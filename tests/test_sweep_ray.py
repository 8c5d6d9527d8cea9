"""`softrl sweep` end to end on a local Ray session (bound to 127.0.0.1, no usage stats), shared by the module.

A tiny sweep: SAC, 2 envs x 2 fixed alphas x 2 seeds, 200 steps, 16x16 networks. Then --resume of a copy in
which one trial was interrupted half-way: only that trial runs, it resumes from its step-100 checkpoints, and
ends bitwise equal to the uninterrupted sweep. Each trial is one packed program (softrl.packed).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before Ray is imported
import ray  # noqa: E402

from softrl import checkpoint, load_run, rundir  # noqa: E402
from softrl.report import ReportCommand, run_report  # noqa: E402
from softrl.sweep import SweepCommand, run_sweep, runner  # noqa: E402
from softrl.sweep.command import load_sweep  # noqa: E402

ARGS = dict(algo="sac", env=("Pendulum-v1", "MountainCarContinuous-v0"), seeds=2, total_steps=200,
            grid=("alpha=0.1,0.2", "learning_starts=100", "eval_every=100", "eval_episodes=1",
                  "checkpoint_every=100"), num_cpus=2)  # as the session below: 2 trials at once, no split


@pytest.fixture(scope="module")
def ray_session():
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def finished_sweep(ray_session, tmp_path_factory) -> Path:
    from softrl.config import AgentConfig

    out = tmp_path_factory.mktemp("sweep") / "s"
    cmd = SweepCommand(**ARGS, out=str(out), agent=AgentConfig(hidden=(16, 16), batch_size=32))
    assert run_sweep(cmd) == 0
    return out


def test_sweep_writes_runs_that_softrl_can_load_and_report(finished_sweep, tmp_path):
    doc = json.loads((finished_sweep / "sweep.json").read_text())
    assert [t["settings"]["env"] for t in doc["trials"]] == ["Pendulum-v1", "MountainCarContinuous-v0"]
    assert doc["spec"]["base"]["vmap_updates"] is False  # the CPU default: packed agents update one by one
    cores = [json.loads((finished_sweep / t["name"] / "worker.json").read_text())["core"] for t in doc["trials"]]
    assert all(isinstance(c, int) and c in os.sched_getaffinity(0) for c in cores)  # each trial pinned to a core
    for t in doc["trials"]:
        summary = json.loads((finished_sweep / t["name"] / "summary.json").read_text())
        assert [a["hypers"] for a in summary["agents"]] == [{"alpha": "0.1"}, {"alpha": "0.2"}]
        assert all(len(a["final_eval"]["per_seed"]) == 2 for a in summary["agents"])
    cfg, _, states, seeds = load_run(finished_sweep / "trial_000" / "agent_01")
    assert cfg.agent.alpha == "0.2" and cfg.env == "Pendulum-v1" and seeds == [0, 1]
    assert np.allclose(np.exp(np.asarray(states.log_alpha)), 0.2)
    out = tmp_path / "report"
    assert run_report(ReportCommand(inputs=(str(finished_sweep),), out=str(out), reps=200)) == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result["configs"]) == {"alpha=0.1", "alpha=0.2"}
    assert result["normalised_envs"] == ["MountainCarContinuous-v0", "Pendulum-v1"]


def test_resume_runs_only_the_interrupted_trial_and_matches(finished_sweep, tmp_path):
    copy = tmp_path / "s"
    shutil.copytree(finished_sweep, copy)
    spec, trials = load_sweep(copy)
    # Interrupt trial_001 half-way: replace it by the same trial trained to step 100, minus its summaries.
    shutil.rmtree(copy / "trial_001")
    half = {**spec.to_json(), "total_steps": 100}
    half["base"] = {**half["base"], "total_steps": 100}
    ray.get(ray.remote(runner.run_trial).remote(half, trials[1].to_json(), str(copy)))
    for p in (copy / "trial_001").rglob("summary.json"):
        p.unlink()
    stamp = (copy / "trial_000" / "summary.json").stat().st_mtime_ns

    assert run_sweep(SweepCommand(resume=str(copy))) == 0

    assert (copy / "trial_000" / "summary.json").stat().st_mtime_ns == stamp  # finished trial not rerun
    summary = json.loads((copy / "trial_001" / "summary.json").read_text())
    assert [a["resumed"] for a in summary["agents"]] == [True, True]
    for agent in ("agent_00", "agent_01"):
        a, b = finished_sweep / "trial_001" / agent, copy / "trial_001" / agent
        for s in ("seed_0", "seed_1"):
            assert (a / s / "eval.csv").read_text() == (b / s / "eval.csv").read_text()
        assert_same_final_checkpoint(a, b, 200)


def assert_same_final_checkpoint(a: Path, b: Path, step: int) -> None:
    """The newest checkpoints of run dirs a and b are at `step` and hold bitwise-equal arrays."""
    (ma, xa, _), (mb, xb, _) = (checkpoint.load_latest(rundir.checkpoints_dir(d), print) for d in (a, b))
    assert ma["step"] == mb["step"] == step
    assert xa.keys() == xb.keys() and all(np.array_equal(xa[k], xb[k]) for k in xa)


def test_resume_of_a_finished_sweep_runs_nothing(finished_sweep, capsys):
    assert run_sweep(SweepCommand(resume=str(finished_sweep))) == 0
    assert "2 already finished, running 0" in capsys.readouterr().out
