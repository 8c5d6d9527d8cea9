"""--num-envs K: K environments per seed, K transitions per loop step into that seed's buffer, the update count
that --gradient-steps sets, bitwise resume, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softrl
from softrl import checkpoint, replay, rundir
from softrl.collect import SeedEnvs, sub_env_seed
from softrl.config import AgentConfig, TrainConfig
from softrl.types import Transition


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(algo="sac", env="softrl/Counter-v0", seeds=2, num_envs=4, total_steps=80, learning_starts=40,
                gradient_steps=4, eval_every=0, eval_episodes=1, log_every=40, checkpoint_every=0,
                progress=False, run_dir=str(tmp_path), agent=AgentConfig(hidden=(16, 16), batch_size=8))
    base.update(kw)
    return TrainConfig(**base)


def test_add_many_matches_a_numpy_ring():
    """K rows per seed land at ptr..ptr+K-1 mod capacity, wrapping, for every seed alike."""
    cap, k, n = 5, 3, 2
    example = Transition(jnp.zeros(2), jnp.zeros((), jnp.int32), jnp.zeros(()), jnp.zeros(2), jnp.zeros((), bool),
                         jnp.zeros((), bool))
    buf = jax.vmap(lambda _: replay.init(cap, example))(jnp.arange(n))
    ref = np.zeros((n, cap))
    add = jax.jit(replay.add_lockstep_many)
    for call in range(4):  # 12 rows through a ring of 5
        reward = np.arange(n * k, dtype=np.float32).reshape(n, k) + 100 * call
        t = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, k, *x.shape)), example)._replace(reward=jnp.asarray(reward))
        buf = add(buf, t)
        for j in range(k):
            ref[:, (call * k + j) % cap] = reward[:, j]
    np.testing.assert_array_equal(np.asarray(buf.data.reward), ref)
    assert np.asarray(buf.ptr).tolist() == [12 % cap] * n and np.asarray(buf.size).tolist() == [cap] * n


def test_seed_envs_with_k_envs_per_seed():
    """Env (i, 0) is the one-env run's env i; the other K - 1 get their own reset seeds; layout [N, K, ...]."""
    one = SeedEnvs("Pendulum-v1", [0, 1])
    many = SeedEnvs("Pendulum-v1", [0, 1], num_envs=3)
    o1, ok = one.reset(), many.reset()
    assert ok.shape == (2, 3, 3)
    np.testing.assert_array_equal(ok[:, 0], o1)
    assert len({tuple(r) for r in ok.reshape(6, 3)}) == 6
    assert many.env_seeds[:3] == [0, sub_env_seed(0, 1), sub_env_seed(0, 2)]
    t, _ = many.step(np.zeros((2, 3, 1), np.float32))
    assert t["obs"].shape == (2, 3, 3) and t["reward"].shape == (2, 3) and t["next_obs"].shape == (2, 3, 3)
    one.close()
    many.close()
    with pytest.raises(ValueError, match="--num-envs must be >= 1"):
        SeedEnvs("Pendulum-v1", [0], num_envs=0)


def test_k_transitions_per_step_into_each_seeds_buffer(tmp_path):
    """Counter-v0 (obs [episode, t], 5-step episodes): slot s holds env s % K's transition, and slot s + K
    continues slot s's episode (obs = previous next_obs) unless that episode ended. Updates: one call of
    --gradient-steps per loop step from learning_starts on."""
    result = softrl.train(_cfg(tmp_path))
    assert np.asarray(result.updates).tolist() == [11 * 4] * 2  # loop steps at env steps 40, 44, ..., 80
    _, arrays, _ = checkpoint.load_latest(rundir.checkpoints_dir(tmp_path), print)
    obs, next_obs = arrays["buffer.data.obs"], arrays["buffer.data.next_obs"]  # [N, 80, 2]
    trunc = arrays["buffer.data.truncated"]
    assert obs.shape == (2, 80, 2) and np.asarray(arrays["buffer.size"]).tolist() == [80, 80]
    np.testing.assert_array_equal(next_obs[..., 1], obs[..., 1] + 1)  # within one episode
    k = 4
    cont = ~trunc[:, :-k]
    np.testing.assert_array_equal(obs[:, k:][cont], next_obs[:, :-k][cont])
    np.testing.assert_array_equal(obs[:, k:, 1][~cont], 0)  # a fresh episode after each end
    assert trunc.sum() == 2 * 80 // 5


def test_resume_with_k_envs_is_bitwise(tmp_path):
    full = softrl.train(_cfg(tmp_path / "full", num_envs=3, total_steps=60, checkpoint_every=30,
                             agent=AgentConfig(hidden=(16, 16), batch_size=8, normalize_obs=True)))
    part = _cfg(tmp_path / "part", num_envs=3, total_steps=30, checkpoint_every=30,
                agent=AgentConfig(hidden=(16, 16), batch_size=8, normalize_obs=True))
    softrl.train(part)
    resumed = softrl.train(part.__class__(**{**part.__dict__, "total_steps": 60}), resume=tmp_path / "part")
    jax.tree.map(np.testing.assert_array_equal, full.states, resumed.states)
    np.testing.assert_array_equal(full.eval_returns, resumed.eval_returns)


def test_bad_num_envs_is_one_line(tmp_path, capsys):
    from softrl.cli import main

    for args, words in ((["--num-envs", "0"], "--num-envs must be >= 1, got 0"),
                        (["--num-envs", "3", "--total-steps", "100"], "multiple of --num-envs")):
        rc = main(["train", "sac", "--env", "Pendulum-v1", "--run-dir", str(tmp_path / "r"), *args])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and words in err, err
        assert not (tmp_path / "r").exists()
