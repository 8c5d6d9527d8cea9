"""Policy files written by training, through the command line: `softrl eval` equals a plain gymnasium loop with
load_policy, `softrl export`, `softrl eval --video`, refusals, and a failed policy write."""

from __future__ import annotations

import errno
import json

import gymnasium as gym
import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softrl
from softrl import loop, rundir
from softrl.cli import main as cli_main
from softrl.collect import make_env
from softrl.config import AgentConfig
from softrl.policy import PolicyError, save_policy

TRAIN = ["train", "sac", "--env", "Pendulum-v1", "--seeds", "2", "--total-steps", "300", "--learning-starts", "100",
         "--eval-every", "100", "--eval-episodes", "1", "--log-every", "100", "--checkpoint-every", "0",
         "--hidden", "16", "16", "--batch-size", "32", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("wired") / "run"
    assert cli_main([*TRAIN, "--run-dir", str(path)]) == 0
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("softrl: error: ") and err.count("\n") == 1, err
    return err


def test_training_writes_the_final_policy(run_dir):
    meta = json.loads((run_dir / "policy" / "policy.json").read_text())
    assert meta["step"] == 300 and meta["seeds"] == [0, 1] and meta["env_id"] == "Pendulum-v1"
    assert meta["algo"] == "sac" and meta["agent_config"]["hidden"] == [16, 16]
    # Its actions are the checkpointed agent's (the one `softrl eval` and --resume use), to 1e-6.
    _, agent, states, seeds = loop.load_run(run_dir)
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    for i in range(len(seeds)):
        keys = jax.random.split(jax.random.PRNGKey(0), 5)
        state_i = jax.tree.map(lambda x, i=i: x[i], states)
        raw = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(state_i, jnp.asarray(obs), keys, True)
        np.testing.assert_allclose(softrl.load_policy(run_dir, i)(obs), 2.0 * np.asarray(raw), rtol=0, atol=1e-6)


def test_cli_eval_equals_a_gymnasium_loop_with_load_policy(run_dir, capsys):
    episodes = 2
    capsys.readouterr()
    assert cli_main(["eval", str(run_dir), "--episodes", str(episodes), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for i, row in enumerate(out["per_seed"]):
        policy = softrl.load_policy(run_dir, seed_index=i)
        env = gym.make("Pendulum-v1")
        obs, _ = env.reset(seed=10**6 + row["seed"])  # evaluate's reset seed; later resets continue its RNG
        returns = []
        for _ in range(episodes):
            ret, done = 0.0, False
            while not done:
                obs, reward, term, trunc, _ = env.step(policy(obs))
                ret += float(reward)
                done = term or trunc
            returns.append(ret)
            obs, _ = env.reset()
        env.close()
        # float32 rounding of seed-vmapped vs single-seed actions (2.4e-7 measured in test_policy) bounds this.
        assert row["mean_return"] == pytest.approx(np.mean(returns), rel=1e-6, abs=0)
        assert row["std_return"] == pytest.approx(np.std(returns), rel=1e-4, abs=1e-6)


def test_cli_export_matches_load_policy(run_dir, tmp_path, capsys):
    out = tmp_path / "p.jaxexport"
    capsys.readouterr()
    assert cli_main(["export", str(run_dir), "--out", str(out), "--seed-index", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    exported = jax.export.deserialize(out.read_bytes())
    obs = np.random.default_rng(1).uniform(-1, 1, (7, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(exported.call(obs)), softrl.load_policy(run_dir, 1)(obs), rtol=0, atol=1e-6)
    assert cli_main(["export", str(run_dir), "--out", str(out), "--seed-index", "2"]) == 2
    assert "seed_index 2 is out of range" in _one_line_error(capsys)


def test_cli_video_one_file_per_seed(run_dir, tmp_path, capsys):
    videos = tmp_path / "videos"
    capsys.readouterr()
    assert cli_main(["eval", str(run_dir), "--video", str(videos), "--episodes", "1", "--fps", "50"]) == 0
    names = sorted(p.name for p in videos.iterdir())
    assert names == ["seed_0_episode_0.mp4", "seed_1_episode_0.mp4"]
    for name in names:
        with imageio.get_reader(videos / name, format="FFMPEG") as reader:
            assert sum(1 for _ in reader) == 201  # Pendulum: the reset frame and 200 steps


def test_no_policy_and_no_render_are_one_line_errors(run_dir, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((run_dir / "config.json").read_text())  # a run that has no policy yet
    with pytest.raises(PolicyError, match="has no policy yet"):
        softrl.load_policy(bare)
    capsys.readouterr()
    assert cli_main(["export", str(bare), "--out", str(tmp_path / "x.jaxexport")]) == 2
    assert "has no policy yet" in _one_line_error(capsys)
    assert not (tmp_path / "x.jaxexport").exists()
    assert cli_main(["eval", str(bare), "--video", str(tmp_path / "v")]) == 2
    assert "has no policy yet" in _one_line_error(capsys)

    env = make_env("softrl/Counter-v0")  # no rgb_array render mode
    spec = softrl.EnvSpec(obs_dim=int(np.prod(env.observation_space.shape)), action_dim=1)
    states = jax.vmap(softrl.make_agent("sac", AgentConfig(hidden=(4,)), spec).init)(
        jax.random.split(jax.random.PRNGKey(0), 1))
    save_policy(tmp_path / "counter", algo="sac", agent_config=AgentConfig(hidden=(4,)), spec=spec, states=states,
                seeds=[0], env_id="softrl/Counter-v0", env_kwargs={}, obs_space=env.observation_space,
                action_space=env.action_space, step=0)
    assert cli_main(["eval", str(tmp_path / "counter"), "--video", str(tmp_path / "v2")]) == 2
    assert "softrl/Counter-v0 cannot render" in _one_line_error(capsys)


def test_failed_policy_write_stops_like_a_failed_checkpoint(tmp_path, monkeypatch, capsys):
    calls = []

    def failing(out_dir, **kw):  # the step-0 policy is written; the one of step 200 hits a full disk
        calls.append(kw["step"])
        if kw["step"] == 200:
            raise OSError(errno.ENOSPC, "No space left on device")
        return save_policy(out_dir, **kw)

    monkeypatch.setattr(loop, "save_policy", failing)
    args = [*TRAIN, "--eval-every", "0", "--checkpoint-every", "100", "--run-dir", str(tmp_path / "run")]
    capsys.readouterr()
    assert cli_main(args) == 2
    err = _one_line_error(capsys)
    assert "could not write the policy of step 200" in err and "No space left" in err
    assert "the checkpoint of step 200 is kept" in err and "--resume" in err
    assert json.loads((tmp_path / "run" / "policy" / "policy.json").read_text())["step"] == 100
    assert rundir.has_checkpoint(tmp_path / "run")
