"""Callbacks: what they see at each log, evaluation and checkpoint; STOP gives a resumable checkpoint; a raising
callback stops the run and keeps the checkpoints; --stop-at-return from the command line."""

from __future__ import annotations

import csv
import dataclasses
import json

import jax
import numpy as np
import pytest

import softrl
from softrl import checkpoint, rundir
from softrl.callbacks import STOP, RunView, StopAtReturn, make_view
from softrl.cli import main as cli_main
from softrl.config import AgentConfig, TrainConfig

# 400 steps; logs every 100, evaluations every 100 (the final one at 400 too), checkpoints every 150 and at the end.
EXPECTED_EVENTS = [("log", 100), ("eval", 100), ("checkpoint", 150), ("log", 200), ("eval", 200), ("log", 300),
                   ("eval", 300), ("checkpoint", 300), ("log", 400), ("checkpoint", 400), ("eval", 400)]


def _cfg(run_dir, **kw) -> TrainConfig:
    base = dict(algo="sac", env="Pendulum-v1", seeds=2, total_steps=400, learning_starts=100, log_every=100,
                eval_every=100, eval_episodes=1, checkpoint_every=150, checkpoint_minutes=0, run_dir=str(run_dir),
                progress=False, agent=AgentConfig(hidden=(16, 16), batch_size=32))
    return TrainConfig(**{**base, **kw})


class Recorder:
    def __init__(self, stop_at: tuple[str, int] | None = None):
        self.views: list[RunView] = []
        self.stop_at = stop_at

    def __call__(self, view: RunView):
        self.views.append(view)
        return STOP if (view.kind, view.step) == self.stop_at else None


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One uninterrupted run, watched by a recording callback."""
    run_dir = tmp_path_factory.mktemp("full") / "run"
    rec = Recorder()
    result = softrl.train(_cfg(run_dir), callbacks=[rec])
    return result, rec.views


def _eval_csv(run_dir, seed) -> dict[int, float]:
    with open(run_dir / f"seed_{seed}" / "eval.csv") as f:
        return {int(float(r["step"])): float(r["mean_return"]) for r in csv.DictReader(f)}


def test_callback_sees_each_log_eval_and_checkpoint(full_run):
    result, views = full_run
    assert [(v.kind, v.step) for v in views] == EXPECTED_EVENTS
    assert result.stopped_at is None
    for v in views:
        assert v.seeds == (0, 1) and v.run_dir == result.run_dir
        assert all(leaf.shape[0] == 2 for leaf in jax.tree.leaves(v.states))
        if v.kind == "log":
            assert v.eval_returns is None and v.median_return is None
            assert {"critic_loss", "actor_loss", "alpha"} <= set(v.metrics)
            assert all(isinstance(m, np.ndarray) and m.shape == (2,) for m in v.metrics.values())
        elif v.kind == "eval":
            assert v.metrics == {} and v.eval_returns.shape == (2, 1)
            for i in range(2):  # the returns the callback sees are the logged ones
                assert v.eval_returns[i].mean() == pytest.approx(_eval_csv(result.run_dir, i)[v.step], rel=1e-12)
        else:
            assert v.checkpoint_step == v.step and v.eval_returns is None
    final = views[-1]
    np.testing.assert_array_equal(final.eval_returns, result.eval_returns)
    # The states the final views hold are the run's final states.
    for a, b in zip(jax.tree.leaves(final.states), jax.tree.leaves(result.states)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_view_is_read_only(full_run):
    _, views = full_run
    log, ev = views[0], views[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        log.step = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        ev.eval_returns[0, 0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        log.metrics["critic_loss"][0] = 0.0
    with pytest.raises(TypeError):
        log.metrics["new"] = np.zeros(2)  # type: ignore[index]


def test_policy_and_best_policy_are_written(full_run):
    result, views = full_run
    run_dir = result.run_dir
    policy = json.loads((run_dir / "policy" / "policy.json").read_text())
    best = json.loads((run_dir / "best_policy" / "policy.json").read_text())
    assert policy["step"] == 400 and policy["eval_return"] is None
    medians = {v.step: v.median_return for v in views if v.kind == "eval"}
    best_step = max(medians, key=lambda s: (medians[s], -s))  # the first evaluation that reached the maximum
    assert best["step"] == best_step
    np.testing.assert_allclose(best["eval_return"], [v for v in views if v.kind == "eval"
                                                     and v.step == best_step][0].eval_returns.mean(axis=1))
    # best_policy holds the states of that step: its actions differ from the final policy's unless best is final.
    p_best, p_last = softrl.load_policy(run_dir / "best_policy"), softrl.load_policy(run_dir)
    obs = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -2.0]], np.float32)
    assert (best_step == 400) == np.array_equal(p_best(obs), p_last(obs))


def test_stop_gives_a_checkpoint_that_resume_continues_exactly(full_run, tmp_path):
    full, _ = full_run
    run_dir = tmp_path / "run"
    rec = Recorder(stop_at=("eval", 200))
    stopped = softrl.train(_cfg(run_dir), callbacks=[rec])
    assert stopped.stopped_at == 200
    # The stop checkpoint is the last event; nothing after the stop request ran.
    assert [(v.kind, v.step) for v in rec.views] == EXPECTED_EVENTS[:5] + [("checkpoint", 200)]
    assert [s for s, _ in checkpoint.list_checkpoints(rundir.checkpoints_dir(run_dir))][-1] == 200
    assert not (run_dir / "summary.json").exists()
    assert stopped.eval_returns.shape == (2, 1)
    resumed = softrl.train(_cfg(run_dir), resume=run_dir)
    assert resumed.stopped_at is None
    for a, b in zip(jax.tree.leaves(resumed.states), jax.tree.leaves(full.states)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(resumed.eval_returns, full.eval_returns)
    # The resumed run kept the best evaluation from before the stop: best_policy is the uninterrupted run's.
    best = [json.loads((d / "best_policy" / "policy.json").read_text()) for d in (run_dir, full.run_dir)]
    assert best[0]["step"] == best[1]["step"] and best[0]["eval_return"] == best[1]["eval_return"]
    assert best[0]["arrays_sha256"] == best[1]["arrays_sha256"]


def test_a_raising_callback_stops_the_run_and_keeps_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"

    def boom(view):
        if view.kind == "log" and view.step == 200:
            raise KeyError("no such metric\nsecond line")

    with pytest.raises(softrl.CallbackError) as info:
        softrl.train(_cfg(run_dir), callbacks=[boom])
    msg = str(info.value)
    assert "\n" not in msg and "boom raised KeyError" in msg and "log of step 200" in msg
    assert "the checkpoint of step 150 is kept" in msg and f"--resume {run_dir}" in msg
    assert isinstance(info.value.__cause__, KeyError)
    meta, _, _ = checkpoint.load_latest(rundir.checkpoints_dir(run_dir), lambda msg: None)
    assert meta["step"] == 150
    assert not (run_dir / "summary.json").exists()


def test_stop_at_return_rule():
    def view(kind, returns=None):
        return make_view(kind, 100, states=None, run_dir=".", seeds=[0, 1, 2], checkpoint_step=0,
                         eval_returns=None if returns is None else np.asarray(returns, np.float64))

    returns = [[-5.0, -5.0], [0.0, 2.0], [3.0, 3.0]]  # per-seed means -5, 1, 3: median 1
    assert StopAtReturn(1.0)(view("eval", returns)) is STOP
    assert StopAtReturn(1.0001)(view("eval", returns)) is None
    assert StopAtReturn(-1e9)(view("log")) is None
    for bad in (float("nan"), float("inf"), "3"):
        with pytest.raises(ValueError, match="--stop-at-return must be a finite number"):
            StopAtReturn(bad)  # type: ignore[arg-type]


def test_cli_stop_at_return(tmp_path, capsys):
    args = ["train", "sac", "--seeds", "2", "--total-steps", "400", "--learning-starts", "100", "--eval-every", "100",
            "--eval-episodes", "1", "--hidden", "16", "16", "--batch-size", "32", "--checkpoint-every", "0",
            "--no-progress", "--run-dir", str(tmp_path / "run")]
    assert cli_main([*args, "--stop-at-return", "-1e9"]) == 0
    out = capsys.readouterr().out
    assert "stopped at env step 100" in out and f"softrl train --resume {tmp_path / 'run'}" in out
    assert [s for s, _ in checkpoint.list_checkpoints(rundir.checkpoints_dir(tmp_path / "run"))][-1] == 100

    assert cli_main([*args, "--overwrite", "--stop-at-return", "nan"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--stop-at-return must be a finite number" in err
    with pytest.raises(SystemExit) as exit_info:  # tyro refuses a non-number before anything runs
        cli_main([*args, "--overwrite", "--stop-at-return", "abc"])
    assert exit_info.value.code == 2
    assert (tmp_path / "run" / "policy").exists()  # the refused commands left the stopped run alone


def test_cli_shows_a_raising_callback_in_one_line(tmp_path, monkeypatch, capsys):
    import softrl.cli

    class Broken(StopAtReturn):
        def __call__(self, view):
            if view.kind == "eval":
                raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(softrl.cli, "StopAtReturn", Broken)  # the CLI's only callback, made to raise
    args = ["train", "sac", "--seeds", "2", "--total-steps", "400", "--learning-starts", "100", "--eval-every", "100",
            "--eval-episodes", "1", "--hidden", "16", "16", "--batch-size", "32", "--checkpoint-every", "0",
            "--no-progress", "--run-dir", str(tmp_path / "run"), "--stop-at-return", "0"]
    capsys.readouterr()
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("softrl: error: callback ")
    assert "raised ZeroDivisionError: division by zero (at the eval of step 100)" in err
    assert "the checkpoint of step 0 is kept" in err
