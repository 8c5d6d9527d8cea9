"""Videos: one mp4 per seed and episode that decodes with the expected number of frames, headless."""

from __future__ import annotations

import imageio.v2 as imageio
import jax
import numpy as np
import pytest

from softrl.agents import EnvSpec, make_agent
from softrl.collect import make_env
from softrl.config import AgentConfig
from softrl.policy import save_policy
from softrl.video import VideoError, VideoOptions, record_policy_videos, record_video


def _decode(path) -> list[np.ndarray]:
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return [np.asarray(frame) for frame in reader]


def test_pendulum_policy_videos_one_file_per_seed_and_episode(tmp_path):
    env = make_env("Pendulum-v1")
    spec = EnvSpec(obs_dim=3, action_dim=1)
    cfg = AgentConfig(hidden=(8,))
    states = jax.vmap(make_agent("sac", cfg, spec).init)(jax.random.split(jax.random.PRNGKey(0), 2))
    save_policy(tmp_path / "run" / "policy", algo="sac", agent_config=cfg, spec=spec, states=states, seeds=[7, 8],
                env_id="Pendulum-v1", env_kwargs={"max_episode_steps": 5}, obs_space=env.observation_space,
                action_space=env.action_space, step=0)
    paths = record_policy_videos(tmp_path / "run", VideoOptions(video=str(tmp_path / "videos"), episodes=2))
    names = sorted(p.name for p in paths)
    assert names == [f"seed_{s}_episode_{e}.mp4" for s in (7, 8) for e in (0, 1)]
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == names  # no temp files left
    for path in paths:
        frames = _decode(path)
        assert len(frames) == 6  # the reset frame and one per step of a 5-step episode
        assert frames[0].shape == (500, 500, 3)  # no rescaling to a multiple of 16
    # Different reset seeds start the pendulum at different angles: the first frames differ.
    first = {p.name: _decode(p)[0].astype(np.int16) for p in paths}
    assert np.abs(first["seed_7_episode_0.mp4"] - first["seed_8_episode_0.mp4"]).max() > 50


def test_mujoco_renders_headless(tmp_path):
    paths = record_video(lambda obs: np.zeros(6, np.float32), "HalfCheetah-v5", {"max_episode_steps": 20},
                         tmp_path, episodes=1, seeds=[0], fps=10)
    assert [p.name for p in paths] == ["seed_0_episode_0.mp4"]
    frames = _decode(paths[0])
    assert len(frames) == 21
    assert frames[0].shape == (480, 480, 3) and frames[0].std() > 10  # a scene, not a blank image
    with imageio.get_reader(paths[0], format="FFMPEG") as reader:
        assert reader.get_meta_data()["fps"] == 10


def test_an_env_that_cannot_render_is_refused_in_one_line(tmp_path):
    with pytest.raises(VideoError, match="softrl/Counter-v0 cannot render") as info:
        record_video(lambda obs: 0, "softrl/Counter-v0", {}, tmp_path / "v", episodes=1, seeds=[0])
    assert "\n" not in str(info.value)
    assert list((tmp_path / "v").iterdir()) == []
    with pytest.raises(VideoError, match="--episodes must be >= 1"):
        record_video(lambda obs: 0, "Pendulum-v1", {}, tmp_path / "v", episodes=0, seeds=[0])
