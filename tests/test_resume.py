"""Exact resume through the CLI: after SIGINT, SIGTERM or kill -9 mid-run, after a run that ended, with a replay
buffer smaller than the run (wrapped around), and with options given on --resume (applied or refused)."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from softrl import checkpoint, rundir
from softrl.cli import TrainCommand, given_options, resume_config
from softrl.cli import main as cli_main
from tests.test_loop import without_timing

TOTAL = 400
# --buffer-size 150 < TOTAL: every resume here restores a buffer that has wrapped around.
ARGS = ["--env", "Pendulum-v1", "--total-steps", str(TOTAL), "--learning-starts", "100", "--eval-every", "0",
        "--eval-episodes", "1", "--hidden", "16", "16", "--batch-size", "16", "--buffer-size", "150",
        "--log-every", "50", "--checkpoint-every", "100", "--no-progress"]

# The CLI in a child process that signals itself just before its AT-th training env step.
CHILD = """
import os, sys
from softrl import collect
from softrl.cli import main
sig, at = int(sys.argv[1]), int(sys.argv[2])
step, count = collect.SeedEnvs.step, [0]
def signalled_step(self, action):
    count[0] += 1
    if count[0] == at:
        os.kill(os.getpid(), sig)
    return step(self, action)
collect.SeedEnvs.step = signalled_step
sys.exit(main(sys.argv[3:]))
"""


def final_arrays(run_dir):
    meta, arrays, _ = checkpoint.load_latest(rundir.checkpoints_dir(run_dir), print)
    return meta["step"], arrays


def assert_same_run(a, b):
    step_a, arr_a = final_arrays(a)
    step_b, arr_b = final_arrays(b)
    assert step_a == step_b == TOTAL and sorted(arr_a) == sorted(arr_b)
    for name in arr_a:
        np.testing.assert_array_equal(arr_a[name], arr_b[name], err_msg=name)
    for name in ("episodes.csv", "train.csv"):
        assert without_timing(a / "seed_0" / name) == without_timing(b / "seed_0" / name)
    final = [json.loads((d / "summary.json").read_text())["final_eval"] for d in (a, b)]
    assert final[0] == final[1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref") / "run"
    assert cli_main(["train", "sac", *ARGS, "--run-dir", str(d)]) == 0
    return d


@pytest.mark.parametrize("sig,at,code,saved", [(signal.SIGINT, 250, 130, 250), (signal.SIGTERM, 250, 130, 250),
                                               (signal.SIGKILL, 250, -signal.SIGKILL, 200)])
def test_interrupted_run_resumes_bitwise(tmp_path, reference, sig, at, code, saved):
    d = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(int(sig)), str(at), "train", "sac", *ARGS,
                           "--run-dir", str(d)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == code, proc.stderr[-2000:]
    if sig != signal.SIGKILL:
        assert f"run saved at step {saved}" in proc.stderr
    assert checkpoint.list_checkpoints(rundir.checkpoints_dir(d))[-1][0] == saved
    assert cli_main(["train", "--resume", str(d), "--no-progress"]) == 0
    assert_same_run(reference, d)


def test_ended_run_continued_through_the_cli_equals_the_longer_run(tmp_path, reference, capsys):
    d = tmp_path / "run"
    short = [a if a != str(TOTAL) else "250" for a in ARGS]
    assert cli_main(["train", "sac", *short, "--run-dir", str(d)]) == 0
    assert cli_main(["train", "--resume", str(d), "--total-steps", str(TOTAL), "--no-progress"]) == 0
    assert_same_run(reference, d)
    # a finished run evaluated by `softrl eval` gives its final evaluation from training, exactly
    capsys.readouterr()
    assert cli_main(["eval", str(d), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((d / "summary.json").read_text())["final_eval"]


def test_pendulum_buffer_holds_truncations_but_no_terminations(reference):
    _, arrays = final_arrays(reference)
    assert not arrays["buffer.data.terminated"].any()  # Pendulum only ends by its time limit
    assert arrays["buffer.data.truncated"].sum() == 1  # step 400 ends the second 200-step episode


def test_options_given_with_resume_are_applied_or_refused(reference, capsys):
    # Flags the user typed count, even when they equal the default (15000 is --total-steps' default).
    assert given_options(["--resume", "x", "--total-steps", "15000", "--no-progress", "--alpha=0.3", "dqn"]) == {
        "total_steps", "progress", "agent.alpha", "algo"}
    assert given_options(["--resume", "x", "--env", "sac"]) == {"env"}  # "sac" is --env's value here
    cmd = TrainCommand(resume=str(reference), total_steps=15000)
    assert resume_config(cmd, {"total_steps"}).total_steps == 15000
    assert resume_config(cmd, set()).total_steps == TOTAL
    capsys.readouterr()
    assert cli_main(["train", "dqn", "--resume", str(reference), "--seeds", "2", "--alpha", "0.3", "--lr", "1e-3",
                     "--buffer-size", "150", "--total-steps", "450"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for part in ("algo 'sac' -> 'dqn'", "seeds 1 -> 2", "agent.alpha 'auto' -> '0.3'", "agent.lr 0.0003 -> 0.001"):
        assert part in err
    assert "buffer_size" not in err  # given, but equal to the run's
    assert cli_main(["train", "--resume", str(reference), "--total-steps", "300"]) == 2
    assert "below the 400 steps" in capsys.readouterr().err
    # total steps, evaluation and logging cadence, progress: applied
    assert cli_main(["train", "--resume", str(reference), "--total-steps", "450", "--eval-every", "25",
                     "--log-every", "10", "--no-progress"]) == 0
    cfg = json.loads((reference / "config.json").read_text())
    assert (cfg["total_steps"], cfg["eval_every"], cfg["log_every"]) == (450, 25, 10)
    evals = [r.split(",")[0] for r in (reference / "seed_0" / "eval.csv").read_text().splitlines()[1:]]
    assert evals == ["400", "425", "450"]
    assert final_arrays(reference)[0] == 450


def test_resuming_a_finished_run_logs_its_final_evaluation_once(tmp_path, reference):
    """A finished run resumed at its own total_steps evaluates again; eval.csv and metrics.jsonl keep one row."""
    import shutil

    d = tmp_path / "run"
    shutil.copytree(reference, d)  # finished (other tests here may have extended it: it is finished either way)

    def eval_steps():
        rows = [json.loads(ln) for ln in (d / "seed_0" / "metrics.jsonl").read_text().splitlines()]
        return [r["step"] for r in rows if r["kind"] == "eval"]

    before_csv, before_steps = (d / "seed_0" / "eval.csv").read_text(), eval_steps()
    assert len(before_steps) == len(set(before_steps)) >= 1
    assert cli_main(["train", "--resume", str(d), "--no-progress"]) == 0
    assert (d / "seed_0" / "eval.csv").read_text() == before_csv
    assert eval_steps() == before_steps
