"""Run directories: one run per folder, one process per run.

RUN_DIR/
    lock                 pid of the process training this run (empty when none); held with flock
    config.json          the run's TrainConfig
    checkpoints/         step_NNNNNNNNN/ folders, the newest two (softrl.checkpoint)
    summary.json         written when the run finishes
    seed_S/              logs of seed S (softrl.log)
    tb/                  TensorBoard files, with --tensorboard

A new run into a folder that holds a run is refused (resume it, or pass overwrite=True / --overwrite to delete
it first). A second process on a run that is being trained is refused; a lock left by a process that died is
taken over with a note. `checkpoint.pkl` is the pickle format of softrl before checkpoint version 2: it is
never loaded.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from softrl.checkpoint import CheckpointError, clean_partial, list_checkpoints

LOCK = "lock"
CHECKPOINTS = "checkpoints"
LEGACY = "checkpoint.pkl"
_RUN_FILES = ("config.json", CHECKPOINTS, LEGACY, "summary.json")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (holds another run, in use, not a folder)."""


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether `run_dir` holds at least one (complete) checkpoint to resume or evaluate."""
    return bool(list_checkpoints(checkpoints_dir(run_dir)))


def holds_run(run_dir: str | Path) -> bool:
    run_dir = Path(run_dir)
    return any((run_dir / f).exists() for f in _RUN_FILES) or any(run_dir.glob("seed_*"))


def refuse_legacy(run_dir: str | Path) -> None:
    """Raise for a run saved by an older softrl as `checkpoint.pkl` (a pickle: loading it could run code)."""
    run_dir = Path(run_dir)
    if (run_dir / LEGACY).exists() and not has_checkpoint(run_dir):
        raise CheckpointError(
            f"{run_dir / LEGACY} is an old-format checkpoint (a pickle, which can run code when loaded); this softrl "
            f"does not read it. Train the run again (softrl train ... --run-dir {run_dir} --overwrite)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive flock on RUN_DIR/lock that records the holder's pid. The kernel drops the flock when its
    process dies (even by kill -9), so a lock file whose flock is free but which names a pid is stale."""

    def __init__(self, run_dir: Path, note: Callable[[str], None]):
        self.path = Path(run_dir) / LOCK
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "?"
            os.close(self.fd)
            raise RunDirError(f"{run_dir} is in use by process {holder} (lock file {self.path}); wait for it to "
                              "finish or stop it, or use another --run-dir") from None
        old = os.pread(self.fd, 64, 0).decode(errors="replace").strip()
        if old and old != str(os.getpid()):
            state = "no longer running" if not old.isdigit() or not _pid_alive(int(old)) else "not holding it"
            note(f"taking over the lock of {run_dir} left by process {old} ({state})")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        os.fsync(self.fd)

    def release(self) -> None:
        if self.fd < 0:
            return
        os.ftruncate(self.fd, 0)  # an empty lock file: released cleanly, nothing to take over
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1


def open_run_dir(run_dir: Path, *, resume: bool, overwrite: bool, note: Callable[[str], None]) -> RunLock:
    """Create or reopen `run_dir` for training and lock it. A new run into a folder holding a run is refused
    unless `overwrite` (which deletes that run first, under the lock)."""
    if resume and overwrite:
        raise RunDirError("--overwrite deletes the run that --resume would continue; give only one of them")
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run dir {run_dir} exists and is not a folder")
    if resume and not holds_run(run_dir):
        raise RunDirError(f"{run_dir} holds no run to resume")
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir, note)
    try:
        if not resume and holds_run(run_dir):
            if not overwrite:
                raise RunDirError(f"{run_dir} already holds a run; continue it with `softrl train --resume {run_dir}`,"
                                  " or start over with --overwrite (deletes it), or choose another --run-dir")
            for p in run_dir.iterdir():
                if p.name != LOCK:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        clean_partial(checkpoints_dir(run_dir))
    except BaseException:
        lock.release()
        raise
    return lock
