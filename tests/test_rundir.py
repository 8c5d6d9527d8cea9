"""Run directories (softrl.rundir): one run per folder, one process per run, old pickles never read."""

import os
import subprocess
import sys
import time

import pytest

import softrl
from softrl import rundir
from softrl.cli import main as cli_main
from tests.test_loop import small_cfg

NOTES: list[str] = []


def test_a_new_run_into_a_run_dir_is_refused_unless_overwrite(tmp_path, capsys):
    first = softrl.train(small_cfg(tmp_path, "d", total_steps=110, checkpoint_every=0))
    with pytest.raises(softrl.RunDirError, match="already holds a run.*--resume.*--overwrite"):
        softrl.train(small_cfg(tmp_path, "d", total_steps=110))
    (tmp_path / "d" / "stray.txt").write_text("x")
    again = softrl.train(small_cfg(tmp_path, "d", total_steps=110, checkpoint_every=0), overwrite=True)
    assert not (tmp_path / "d" / "stray.txt").exists()
    # the logs hold one run, not two
    rows = (tmp_path / "d" / "seed_0" / "eval.csv").read_text().splitlines()
    assert len(rows) == 2 and first.eval_returns.tolist() == again.eval_returns.tolist()
    args = ["train", "sac", "--total-steps", "110", "--no-progress", "--run-dir", str(tmp_path / "d")]
    capsys.readouterr()
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err and f"--resume {tmp_path / 'd'}" in err
    assert cli_main([*args, "--overwrite", "--resume", str(tmp_path / "d")]) == 2
    assert "give only one" in capsys.readouterr().err
    (tmp_path / "file").write_text("junk")
    assert cli_main(["train", "sac", "--no-progress", "--run-dir", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert cli_main(["train", "--resume", str(tmp_path / "empty")]) == 2
    assert "holds no run" in capsys.readouterr().err


HOLD = """
import sys, time
from pathlib import Path
from softrl import rundir
lock = rundir.RunLock(Path(sys.argv[1]), print)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_second_process_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path):
    d = tmp_path / "live"
    d.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(d), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(softrl.RunDirError, match=f"in use by process {holder.pid}"):
            rundir.RunLock(d, NOTES.append)
        with pytest.raises(softrl.RunDirError, match="in use"):
            softrl.train(small_cfg(tmp_path, "live"))
    finally:
        holder.kill()  # like kill -9: the kernel drops its flock, its pid stays in the file
        holder.wait()
    assert (d / rundir.LOCK).read_text() == str(holder.pid)
    notes = []
    lock = rundir.RunLock(d, notes.append)
    assert notes == [f"taking over the lock of {d} left by process {holder.pid} (no longer running)"]
    assert (d / rundir.LOCK).read_text() == str(os.getpid())
    lock.release()
    assert (d / rundir.LOCK).read_text() == ""  # released cleanly: the next one takes it without a note
    notes.clear()
    rundir.RunLock(d, notes.append).release()
    assert notes == []


def test_old_pickle_checkpoints_are_refused_never_loaded(tmp_path, capsys):
    d = tmp_path / "old"
    d.mkdir()
    (d / "config.json").write_text("{}")
    # A pickle that would run code if it were ever unpickled.
    marker = tmp_path / "pwned"
    (d / "checkpoint.pkl").write_bytes(
        b"\x80\x04cbuiltins\nexec\n(V" + f"open({str(marker)!r}, 'w')".encode() + b"\ntR.")
    with pytest.raises(softrl.CheckpointError, match="old-format checkpoint .*pickle"):
        softrl.load_run(d)
    with pytest.raises(softrl.CheckpointError, match="old-format"):
        softrl.train(small_cfg(tmp_path, "old"), resume=d)
    capsys.readouterr()
    assert cli_main(["train", "--resume", str(d)]) == 2
    assert "old-format" in capsys.readouterr().err
    assert cli_main(["eval", str(d)]) == 2
    time.sleep(0.01)
    assert not marker.exists()
