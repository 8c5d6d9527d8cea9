"""gymnasium 1.4's classic-control tasks in JAX: CartPole-v1, Acrobot-v1, Pendulum-v1, MountainCarContinuous-v0.

The dynamics, rewards, terminations and time limits follow gymnasium's sources step for step
(gymnasium/envs/classic_control/*.py), computed in float32 where gymnasium uses float64; the
initial-state distributions are the same, the random draws are JAX's.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from softrl.jaxenv.core import Dynamics, Env, JaxEnvSpec, time_limited

Array = jax.Array
F32 = jnp.float32


# ----- CartPole-v1 (Barto, Sutton & Anderson 1983) ------------------------------------------------------

_CP = dict(gravity=9.8, masscart=1.0, masspole=0.1, length=0.5, force_mag=10.0, tau=0.02)
_CP_THETA = 12 * 2 * math.pi / 360
_CP_X = 2.4


def cartpole_step(s: Array, action: Array, key: Array):
    """s: [4] float32 (x, x_dot, theta, theta_dot); explicit Euler as gymnasium's default integrator."""
    del key
    x, x_dot, theta, theta_dot = s[0], s[1], s[2], s[3]
    total_mass = _CP["masspole"] + _CP["masscart"]
    pml = _CP["masspole"] * _CP["length"]
    force = jnp.where(action == 1, _CP["force_mag"], -_CP["force_mag"])
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    temp = (force + pml * theta_dot**2 * sin) / total_mass
    thetaacc = (_CP["gravity"] * sin - cos * temp) / (
        _CP["length"] * (4.0 / 3.0 - _CP["masspole"] * cos**2 / total_mass)
    )
    xacc = temp - pml * thetaacc * cos / total_mass
    tau = _CP["tau"]
    s = jnp.stack([x + tau * x_dot, x_dot + tau * xacc, theta + tau * theta_dot, theta_dot + tau * thetaacc])
    terminated = (jnp.abs(s[0]) > _CP_X) | (jnp.abs(s[2]) > _CP_THETA)
    return s, s, jnp.ones((), F32), terminated  # reward 1 also on the terminal step, as gymnasium


def cartpole_reset(key: Array):
    s = jax.random.uniform(key, (4,), F32, -0.05, 0.05)
    return s, s


# ----- Acrobot-v1 (Sutton 1996, "book" dynamics) -----------------------------------------------------------

_ACRO_MAX_VEL_1 = 4 * math.pi
_ACRO_MAX_VEL_2 = 9 * math.pi


def _acrobot_dsdt(s: Array, torque: Array) -> Array:
    m1 = m2 = l1 = i1 = i2 = 1.0
    lc1 = lc2 = 0.5
    g = 9.8
    theta1, theta2, dtheta1, dtheta2 = s[0], s[1], s[2], s[3]
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * jnp.cos(theta2)) + i1 + i2
    d2 = m2 * (lc2**2 + l1 * lc2 * jnp.cos(theta2)) + i2
    phi2 = m2 * lc2 * g * jnp.cos(theta1 + theta2 - math.pi / 2.0)
    phi1 = (
        -m2 * l1 * lc2 * dtheta2**2 * jnp.sin(theta2)
        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * jnp.sin(theta2)
        + (m1 * lc1 + m2 * l1) * g * jnp.cos(theta1 - math.pi / 2)
        + phi2
    )
    ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * jnp.sin(theta2) - phi2) / (
        m2 * lc2**2 + i2 - d2**2 / d1
    )
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return jnp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2])


def _wrap(x: Array, low: float, high: float) -> Array:
    """gymnasium's `wrap`: shift by the period until in [low, high] (high itself is kept)."""
    diff = high - low
    above = jnp.ceil((x - high) / diff)  # shifts down needed when x > high
    below = jnp.ceil((low - x) / diff)  # shifts up needed when x < low
    return jnp.where(x > high, x - above * diff, jnp.where(x < low, x + below * diff, x))


def _acrobot_obs(s: Array) -> Array:
    return jnp.stack([jnp.cos(s[0]), jnp.sin(s[0]), jnp.cos(s[1]), jnp.sin(s[1]), s[2], s[3]])


def acrobot_step(s: Array, action: Array, key: Array):
    """One rk4 step of dt = 0.2 (gymnasium's `rk4` over [0, dt]), then wrap angles, bound velocities."""
    del key
    torque = jnp.asarray([-1.0, 0.0, 1.0], F32)[action]
    dt = 0.2
    k1 = _acrobot_dsdt(s, torque)
    k2 = _acrobot_dsdt(s + dt / 2 * k1, torque)
    k3 = _acrobot_dsdt(s + dt / 2 * k2, torque)
    k4 = _acrobot_dsdt(s + dt * k3, torque)
    ns = s + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    ns = jnp.stack([
        _wrap(ns[0], -math.pi, math.pi),
        _wrap(ns[1], -math.pi, math.pi),
        jnp.clip(ns[2], -_ACRO_MAX_VEL_1, _ACRO_MAX_VEL_1),
        jnp.clip(ns[3], -_ACRO_MAX_VEL_2, _ACRO_MAX_VEL_2),
    ])
    terminated = -jnp.cos(ns[0]) - jnp.cos(ns[1] + ns[0]) > 1.0
    return ns, _acrobot_obs(ns), jnp.where(terminated, 0.0, -1.0).astype(F32), terminated


def acrobot_reset(key: Array):
    s = jax.random.uniform(key, (4,), F32, -0.1, 0.1)
    return s, _acrobot_obs(s)


# ----- Pendulum-v1 --------------------------------------------------------------------------------------------


def _pendulum_obs(s: Array) -> Array:
    return jnp.stack([jnp.cos(s[0]), jnp.sin(s[0]), s[1]])


def pendulum_step(s: Array, action: Array, key: Array):
    """s: [2] (theta, theta_dot); action: [1] torque. Semi-implicit Euler, dt = 0.05, g = 10."""
    del key
    g, m, length, dt, max_speed = 10.0, 1.0, 1.0, 0.05, 8.0
    th, thdot = s[0], s[1]
    u = jnp.clip(action[0], -2.0, 2.0)
    angle = ((th + math.pi) % (2 * math.pi)) - math.pi
    costs = angle**2 + 0.1 * thdot**2 + 0.001 * u**2
    newthdot = jnp.clip(thdot + (3 * g / (2 * length) * jnp.sin(th) + 3.0 / (m * length**2) * u) * dt,
                        -max_speed, max_speed)
    ns = jnp.stack([th + newthdot * dt, newthdot])
    return ns, _pendulum_obs(ns), -costs, jnp.zeros((), bool)


def pendulum_reset(key: Array):
    s = jax.random.uniform(key, (2,), F32, jnp.array([-math.pi, -1.0]), jnp.array([math.pi, 1.0]))
    return s, _pendulum_obs(s)


# ----- MountainCarContinuous-v0 (Moore 1990) --------------------------------------------------------------


def mountain_car_step(s: Array, action: Array, key: Array):
    """s: [2] (position, velocity); action: [1] force in [-1, 1]."""
    del key
    min_pos, max_pos, max_speed, goal, power = -1.2, 0.6, 0.07, 0.45, 0.0015
    position, velocity = s[0], s[1]
    force = jnp.clip(action[0], -1.0, 1.0)
    velocity = jnp.clip(velocity + force * power - 0.0025 * jnp.cos(3 * position), -max_speed, max_speed)
    position = jnp.clip(position + velocity, min_pos, max_pos)
    velocity = jnp.where((position == min_pos) & (velocity < 0), 0.0, velocity)
    terminated = (position >= goal) & (velocity >= 0.0)
    reward = jnp.where(terminated, 100.0, 0.0) - action[0] ** 2 * 0.1  # the unclipped action, as gymnasium
    ns = jnp.stack([position, velocity])
    return ns, ns, reward, terminated


def mountain_car_reset(key: Array):
    s = jnp.stack([jax.random.uniform(key, (), F32, -0.6, -0.4), jnp.zeros((), F32)])
    return s, s


def make_cartpole() -> Env:
    spec = JaxEnvSpec((4,), num_actions=2, max_episode_steps=500, gym_id="CartPole-v1")
    return time_limited("jax/CartPole-v1", Dynamics(cartpole_reset, cartpole_step), spec)


def make_acrobot() -> Env:
    spec = JaxEnvSpec((6,), num_actions=3, max_episode_steps=500, gym_id="Acrobot-v1")
    return time_limited("jax/Acrobot-v1", Dynamics(acrobot_reset, acrobot_step), spec)


def make_pendulum() -> Env:
    spec = JaxEnvSpec((3,), action_low=(-2.0,), action_high=(2.0,), max_episode_steps=200, gym_id="Pendulum-v1")
    return time_limited("jax/Pendulum-v1", Dynamics(pendulum_reset, pendulum_step), spec)


def make_mountain_car_continuous() -> Env:
    spec = JaxEnvSpec((2,), action_low=(-1.0,), action_high=(1.0,), max_episode_steps=999,
                      gym_id="MountainCarContinuous-v0")
    return time_limited("jax/MountainCarContinuous-v0", Dynamics(mountain_car_reset, mountain_car_step), spec)
