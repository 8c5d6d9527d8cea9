"""Test-time perturbations of an environment's dynamics, for robustness evaluation (Lecture 17 Eq. 27).

Eysenbach & Levine 2021 show that a MaxEnt policy's return lower-bounds its worst-case return under a
set of perturbed dynamics (Eq. 27). These wrappers build such perturbed test environments from a nominal
one; an agent is trained on the nominal env and only evaluated on these.

- `MassScale(env, scale)`: every body mass x scale (MuJoCo: `model.body_mass`, relative to the nominal
  masses saved at construction; point mass: `mass`, i.e. actions move it 1/scale as far).
- `FrictionScale(env, scale)`: every geom friction coefficient x scale (MuJoCo `model.geom_friction`).
- `ForcePulses(env, magnitude, prob, duration, seed)`: at each step, with probability `prob` (when no
  pulse is on), a pulse of `duration` steps starts: a horizontal force of +-`magnitude` newtons on the
  root body (MuJoCo `data.xfrc_applied`, body 1, the torso of Hopper / HalfCheetah / Walker2d), or for the
  point mass a displacement of `magnitude` per step in a random direction.
- `ActionNoise(env, std)`: a + std * N(0, I) * (high - low) / 2, clipped to the action box.

Random perturbations (`ForcePulses`, `ActionNoise`) draw from their own generator, seeded by
`reset(seed=...)` when a seed is given (else by the wrapper's `seed`), so a seeded evaluation is
reproducible and independent of the env's own randomness.
"""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np

KINDS = ("mass", "friction", "force", "action_noise", "obstacle")
NOMINAL_LEVEL = {"mass": 1.0, "friction": 1.0, "force": 0.0, "action_noise": 0.0, "obstacle": 0.0}


def _is_mujoco(env: gym.Env) -> bool:
    u = env.unwrapped
    return hasattr(u, "model") and hasattr(u, "data")


def _seed_offset(seed: int | None, salt: int) -> np.random.Generator:
    """A generator for one wrapper, distinct from the env's and from other wrappers' (salt)."""
    return np.random.default_rng(None if seed is None else [int(seed), salt])


class MassScale(gym.Wrapper):
    """All body masses times `scale` (MuJoCo), or the point mass's `mass` times `scale`."""

    def __init__(self, env: gym.Env, scale: float):
        super().__init__(env)
        if scale <= 0:
            raise ValueError(f"mass scale must be > 0, got {scale}")
        self.scale = float(scale)
        u: Any = env.unwrapped  # duck-typed: a MuJoCo env (model, data) or the point mass (mass)
        if _is_mujoco(env):
            self.nominal = np.array(u.model.body_mass, copy=True)
            u.model.body_mass[:] = self.nominal * self.scale
        elif hasattr(u, "mass"):
            self.nominal = float(u.mass)
            u.mass = self.nominal * self.scale
        else:
            raise TypeError(f"MassScale needs a MuJoCo env or one with a `mass` attribute, got {u}")


class FrictionScale(gym.Wrapper):
    """All geom friction coefficients (sliding, torsional, rolling) times `scale` (MuJoCo envs only)."""

    def __init__(self, env: gym.Env, scale: float):
        super().__init__(env)
        if scale <= 0:
            raise ValueError(f"friction scale must be > 0, got {scale}")
        if not _is_mujoco(env):
            raise TypeError(f"FrictionScale needs a MuJoCo env, got {env.unwrapped}")
        self.scale = float(scale)
        model = cast(Any, env.unwrapped).model  # a MuJoCo env, checked above
        self.nominal = np.array(model.geom_friction, copy=True)
        model.geom_friction[:] = self.nominal * self.scale


class ForcePulses(gym.Wrapper):
    """Random external pushes: pulses of `duration` steps starting with probability `prob` per step."""

    def __init__(self, env: gym.Env, magnitude: float, prob: float = 0.05, duration: int = 5,
                 seed: int | None = None, body: int = 1):
        super().__init__(env)
        if magnitude < 0 or not 0.0 <= prob <= 1.0 or duration < 1:
            raise ValueError("need magnitude >= 0, prob in [0, 1], duration >= 1")
        self.magnitude, self.prob, self.duration, self.body = float(magnitude), float(prob), int(duration), body
        self.mujoco = _is_mujoco(env)
        if not self.mujoco and not hasattr(env.unwrapped, "push"):
            raise TypeError(f"ForcePulses needs a MuJoCo env or one with a `push` attribute, got {env.unwrapped}")
        self.rng = _seed_offset(seed, 1)
        self.left = 0  # steps left in the current pulse
        self.force = np.zeros(2)  # MuJoCo: force[0] is the x force (N); point mass: a 2-D displacement per step
        self.pulses = 0  # pulses started this episode (for tests and reports)

    def _set(self, on: bool) -> None:
        u: Any = self.env.unwrapped  # duck-typed: a MuJoCo env (data) or the point mass (push)
        if self.mujoco:
            u.data.xfrc_applied[self.body, :] = 0.0
            if on:
                u.data.xfrc_applied[self.body, 0] = self.force[0]
        else:
            u.push = self.force.copy() if on else np.zeros(2)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = _seed_offset(seed, 1)
        obs, info = self.env.reset(seed=seed, options=options)
        self.left, self.pulses = 0, 0
        self._set(False)
        return obs, info

    def step(self, action):
        if self.left == 0 and self.magnitude > 0 and self.rng.random() < self.prob:
            self.left, self.pulses = self.duration, self.pulses + 1
            if self.mujoco:
                self.force = np.array([self.magnitude * self.rng.choice([-1.0, 1.0]), 0.0])
            else:
                angle = self.rng.uniform(0.0, 2 * np.pi)
                self.force = self.magnitude * np.array([np.cos(angle), np.sin(angle)])
        self._set(self.left > 0)
        self.left = max(self.left - 1, 0)
        return self.env.step(action)


class ActionNoise(gym.Wrapper):
    """Gaussian noise on every action, std in units of half the action range, then clipped to the box."""

    def __init__(self, env: gym.Env, std: float, seed: int | None = None):
        super().__init__(env)
        if std < 0:
            raise ValueError(f"action noise std must be >= 0, got {std}")
        if not isinstance(env.action_space, gym.spaces.Box):
            raise TypeError("ActionNoise needs a Box action space")
        self.std = float(std)
        self.low, self.high = env.action_space.low, env.action_space.high
        self.rng = _seed_offset(seed, 2)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = _seed_offset(seed, 2)
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        if self.std == 0.0:
            return self.env.step(action)  # exactly the nominal env, no generator draw
        action = np.asarray(action)
        noise = self.rng.standard_normal(action.shape) * self.std * (self.high - self.low) / 2
        noisy = np.clip(action + noise, self.low, self.high).astype(self.action_space.dtype)
        return self.env.step(noisy)


def is_point_mass(env_id: str) -> bool:
    return env_id.startswith("softrl/PointReach")


def make_perturbed(env_id: str, kind: str, level: float, seed: int | None = None,
                   force_prob: float = 0.05, force_duration: int = 5, **kwargs: Any) -> gym.Env:
    """The env `env_id` under one perturbation: `kind` in KINDS at `level` (a scale, newtons, a std or an
    obstacle size; `NOMINAL_LEVEL[kind]` is the unperturbed env). `obstacle` needs the point-mass env."""
    from softrl.collect import make_env

    if kind not in KINDS and kind != "nominal":
        raise ValueError(f"unknown perturbation {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "obstacle":
        if not is_point_mass(env_id):
            raise ValueError(f"the obstacle perturbation needs the point-mass env, not {env_id}")
        return make_env(env_id, obstacle="wall" if level > 0 else None, obstacle_size=float(level), **kwargs)
    env = make_env(env_id, **kwargs)
    if kind == "mass":
        return MassScale(env, level)
    if kind == "friction":
        return FrictionScale(env, level)
    if kind == "force":
        return ForcePulses(env, level, force_prob, force_duration, seed=seed)
    if kind == "action_noise":
        return ActionNoise(env, level, seed=seed)
    return env


__all__ = ["KINDS", "NOMINAL_LEVEL", "ActionNoise", "ForcePulses", "FrictionScale", "MassScale", "make_perturbed"]
