"""Videos of a policy acting: one mp4 per seed and episode, rendered offscreen (no display needed).

MuJoCo renders headless through EGL (`MUJOCO_GL=egl`, Mesa's software EGL when there is no GPU): this
module sets it before gymnasium's MuJoCo renderer is created, unless the user chose a backend already.
The system libraries EGL needs (`libegl1 libegl-mesa0 libgl1-mesa-dri libgles2` on Debian/Ubuntu) are
installed by `.ci/run`; mp4 encoding uses the ffmpeg binary bundled with `imageio-ffmpeg`.

Episode e of seed s is the e-th episode of an env seeded `reset_seed_offset + s` at its first reset,
and reset without a seed after that: with the default offset (10**6), the episodes `softrl.evaluate`
scores for that seed.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # before any MuJoCo rendering context exists
# pygame-drawn envs (Pendulum, CartPole) render to an offscreen surface: no display, and no SDL complaint
# ("XDG_RUNTIME_DIR is invalid") on a headless machine.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

EVAL_SEED_OFFSET = 10**6
DEFAULT_FPS = 30


class VideoError(ValueError):
    """An environment that cannot render, or a video that cannot be written."""


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """Record evaluation episodes as mp4 (`softrl eval RUN --video DIR --episodes N`)."""

    video: str | None = None
    """Directory for the mp4 files, one per seed and episode (seed_S_episode_E.mp4). None: no video."""
    episodes: int = 1
    """Episodes to record per seed."""
    fps: int | None = None
    """Frames per second of the mp4 (default: the env's render_fps, else 30)."""

    def validate(self) -> None:
        if self.episodes < 1:
            raise VideoError(f"--episodes must be >= 1, got {self.episodes}")
        if self.fps is not None and self.fps < 1:
            raise VideoError(f"--fps must be >= 1, got {self.fps}")


def _render(env: Any, env_id: str) -> np.ndarray:
    """One RGB frame [H, W, 3] uint8, or a one-line VideoError naming the env and the fix."""
    try:
        frame = env.render()
    except Exception as err:  # noqa: BLE001 - GL backends fail with many exception types
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = ""
        if hasattr(env.unwrapped, "mujoco_renderer"):
            hint = (f"; MUJOCO_GL={os.environ.get('MUJOCO_GL')}: install libegl1 libegl-mesa0 libgl1-mesa-dri "
                    f"libgles2, or try MUJOCO_GL=osmesa")
        raise VideoError(f"{env_id} cannot render offscreen ({reason}){hint}") from None
    frame = None if frame is None else np.asarray(frame)
    if frame is None or frame.ndim != 3 or frame.shape[-1] not in (3, 4):
        raise VideoError(f"{env_id} cannot render: it has no 'rgb_array' render mode (env.render() gave no image)")
    return np.ascontiguousarray(frame[..., :3].astype(np.uint8))


def _make_render_env(env_id: str, env_kwargs: Mapping[str, Any] | None) -> Any:
    import gymnasium as gym

    from softrl.collect import EnvError, make_env

    try:
        env = make_env(env_id, render_mode="rgb_array", **dict(env_kwargs or {}))
    except (TypeError, EnvError) as err:  # an env class that takes no render_mode at all
        if "render_mode" not in str(err):
            raise
        raise VideoError(f"{env_id} cannot render: it does not accept render_mode='rgb_array'") from None
    modes = env.metadata.get("render_modes", [])
    if "rgb_array" not in modes:
        env.close()
        raise VideoError(f"{env_id} cannot render: its render modes are {list(modes)}, not 'rgb_array'")
    assert isinstance(env, gym.Env)
    return env


def record_episode(env: Any, env_id: str, policy: Callable[[Any], Any], seed: int | None) -> list[np.ndarray]:
    """Frames of one episode: the reset frame, then one after every step. [T + 1] x [H, W, 3]"""
    obs, _ = env.reset(seed=seed)
    frames = [_render(env, env_id)]
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        frames.append(_render(env, env_id))
        done = terminated or truncated
    return frames


def write_mp4(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """H.264 mp4 via imageio-ffmpeg, written to a temp name and renamed."""
    import imageio.v2 as imageio

    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    with warnings.catch_warnings():
        # JAX warns on any os.fork; imageio starts ffmpeg with fork + exec at once, which is safe.
        warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
        # macro_block_size 2: yuv420p needs even sizes; the default 16 would rescale e.g. 500x500 frames.
        with imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2) as writer:
            for frame in frames:
                # the stub types get_writer's result as the base class; the FFMPEG writer has append_data
                writer.append_data(frame)  # pyright: ignore[reportAttributeAccessIssue]
    os.replace(tmp, path)


def record_video(
    policy: Callable[[Any], Any] | Mapping[int, Callable[[Any], Any]],
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    out_dir: str | Path,
    episodes: int,
    seeds: list[int],
    fps: int | None = None,
    reset_seed_offset: int = EVAL_SEED_OFFSET,
) -> list[Path]:
    """Record `episodes` episodes per seed to `out_dir/seed_S_episode_E.mp4` (E from 0). Returns the paths.

    policy: `obs -> env action` (e.g. a `softrl.load_policy` result), the same for every seed, or a
    mapping seed -> policy. The env is made with `render_mode="rgb_array"` and `env_kwargs`.
    Raises VideoError (one line) for an env that cannot render.
    """
    VideoOptions(video=str(out_dir), episodes=episodes, fps=fps).validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        act = policy[seed] if isinstance(policy, Mapping) else policy
        env = _make_render_env(env_id, env_kwargs)
        try:
            rate = fps or int(env.metadata.get("render_fps") or DEFAULT_FPS)
            for e in range(episodes):
                frames = record_episode(env, env_id, act, reset_seed_offset + seed if e == 0 else None)
                path = out / f"seed_{seed}_episode_{e}.mp4"
                write_mp4(path, frames, rate)
                paths.append(path)
        finally:
            env.close()
    return paths


def record_policy_videos(
    path: str | Path, options: VideoOptions, env_kwargs: Mapping[str, Any] | None = None
) -> list[Path]:
    """`softrl eval RUN --video DIR --episodes N`: every seed of the policy in `path` (run or policy dir),
    on the env id and kwargs saved with it (`env_kwargs` entries override them, e.g. max_episode_steps)."""
    from softrl.policy import load_policy

    if options.video is None:
        return []
    first = load_policy(path, 0)
    meta = first.meta
    policies = {s: first if i == 0 else load_policy(path, i) for i, s in enumerate(meta["seeds"])}
    kwargs = {**meta.get("env_kwargs", {}), **dict(env_kwargs or {})}
    return record_video(policies, meta["env_id"], kwargs, options.video, options.episodes, meta["seeds"], options.fps)


__all__ = ["VideoError", "VideoOptions", "record_policy_videos", "record_video"]
