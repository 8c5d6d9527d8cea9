"""Faults inside a run: an env that raises, an env that returns inf, a disk that fills up or refuses writes, a
clock that says it is time to checkpoint. Each stops the run with one message and the last checkpoint loadable."""

import errno

import gymnasium as gym
import numpy as np
import pytest

import softrl
from softrl import checkpoint, rundir
from softrl.cli import main as cli_main
from tests.test_loop import leaves_equal, small_cfg


class Faulty(gym.Wrapper):
    """Pendulum that raises in its `at`-th call of `call`, or returns an inf observation from step `inf_at` on."""

    def __init__(self, env, call=None, at=0, inf_at=0):
        super().__init__(env)
        self.call, self.at, self.inf_at, self.counts = call, at, inf_at, {"step": 0, "reset": 0}

    def _count(self, call):
        self.counts[call] += 1
        if call == self.call and self.counts[call] == self.at:
            raise RuntimeError(f"simulator exploded in {call}")

    def reset(self, *, seed=None, options=None):
        self._count("reset")
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self._count("step")
        obs, r, term, trunc, info = self.env.step(action)
        if self.inf_at and self.counts["step"] >= self.inf_at:
            obs = np.full_like(obs, np.inf)
        return obs, r, term, trunc, info


def register(name, **kw):
    if name not in gym.registry:
        gym.register(name, entry_point=lambda: Faulty(gym.make("Pendulum-v1"), **kw))
    return name


def newest_step(run_dir):
    return checkpoint.load_latest(rundir.checkpoints_dir(run_dir), print)[0]["step"]


@pytest.mark.parametrize("call,at,step", [("step", 150, 150), ("reset", 2, 200)])
def test_env_that_raises_stops_with_env_seed_step_and_its_message(tmp_path, call, at, step):
    env = register(f"softrl/Raise{call}{at}-v0", call=call, at=at)
    with pytest.raises(softrl.collect.EnvError) as err:
        softrl.train(small_cfg(tmp_path, seed=3, env=env, total_steps=300))
    msg = str(err.value)
    for part in (env, "seed 3", f"raised in {call}", f"simulator exploded in {call}", f"env step {step}",
                 "last checkpoint (step 100)"):
        assert part in msg
    assert newest_step(tmp_path / "run") == 100


def test_env_that_raises_in_its_first_reset_leaves_the_run_dir_free(tmp_path):
    env = register("softrl/RaiseReset1-v0", call="reset", at=1)
    with pytest.raises(softrl.collect.EnvError, match="seed 0.* raised in reset"):
        softrl.train(small_cfg(tmp_path, env=env))
    # not locked: a new run may take the folder
    softrl.train(small_cfg(tmp_path, total_steps=110), overwrite=True)


def test_inf_observation_is_reported_as_the_envs(tmp_path):
    env = register("softrl/InfObs-v0", inf_at=120)
    with pytest.raises(softrl.NonFiniteEnvError, match="non-finite observation or reward .*env step 120"):
        softrl.train(small_cfg(tmp_path, env=env, total_steps=300))
    assert newest_step(tmp_path / "run") == 100


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_failed_checkpoint_write_stops_the_run_and_keeps_the_previous(tmp_path, monkeypatch, capsys, code):
    write = checkpoint._write_arrays
    calls = []

    def failing(path, tensors):  # the third checkpoint (step 200) fails after writing part of its array file
        calls.append(path)
        if len(calls) == 3:
            path.write_bytes(b"partial")
            raise OSError(code, "No space left on device" if code == errno.ENOSPC else "Permission denied")
        return write(path, tensors)

    monkeypatch.setattr(checkpoint, "_write_arrays", failing)
    args = ["train", "sac", "--total-steps", "300", "--learning-starts", "100", "--eval-every", "0",
            "--eval-episodes", "1", "--hidden", "16", "16", "--batch-size", "16", "--checkpoint-every", "100",
            "--no-progress", "--run-dir", str(tmp_path / "run")]
    capsys.readouterr()
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not write the checkpoint of step 200" in err
    assert ("No space left" if code == errno.ENOSPC else "Permission denied") in err
    assert "the checkpoint of step 100 is kept" in err
    assert [s for s, _ in checkpoint.list_checkpoints(rundir.checkpoints_dir(tmp_path / "run"))] == [0, 100]
    assert not list(rundir.checkpoints_dir(tmp_path / "run").glob(".tmp-*"))
    monkeypatch.setattr(checkpoint, "_write_arrays", write)
    assert cli_main(["train", "--resume", str(tmp_path / "run"), "--no-progress"]) == 0
    assert newest_step(tmp_path / "run") == 300


def test_checkpoints_by_time_and_at_step_zero(tmp_path):
    # checkpoint_every=0: only the clock (here: always due, checked every 100 steps) and the end save.
    a = softrl.train(small_cfg(tmp_path, "a", total_steps=250, checkpoint_every=0, checkpoint_minutes=1e-9))
    assert [s for s, _ in checkpoint.list_checkpoints(rundir.checkpoints_dir(tmp_path / "a"))] == [200, 250]
    b = softrl.train(small_cfg(tmp_path, "b", total_steps=250, checkpoint_every=0, checkpoint_minutes=0))
    assert leaves_equal(a.states, b.states)  # saving never changes the run
    # A run stopped before any scheduled checkpoint resumes from step 0.
    d = tmp_path / "c"
    softrl.train(small_cfg(tmp_path, "c", total_steps=250, checkpoint_every=0, checkpoint_minutes=0))
    for step, p in checkpoint.list_checkpoints(rundir.checkpoints_dir(d)):
        if step:
            import shutil

            shutil.rmtree(p)
    assert newest_step(d) == 0
    c = softrl.train(small_cfg(tmp_path, "c", total_steps=250, checkpoint_every=0), resume=d)
    assert leaves_equal(b.states, c.states)
