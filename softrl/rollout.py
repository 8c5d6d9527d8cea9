"""One episode loop, for evaluation and for every experiment.

`rollout(policy, envs, seeds, episodes, key)` plays `episodes` episodes in each of N gymnasium envs in
lockstep with a batched policy and returns the undiscounted returns [N, episodes]; with `record=True` it also
keeps each episode's observations, actions, rewards and log-probabilities (padded with NaN past its end).

The env side follows `softrl.collect.SeedEnvs`: env i is reset with `seeds[i]` once, later episodes reset
unseeded (the env's own RNG continues), observations are flat float32 (`ObsFlattener`), continuous actions
come from the policy in [-1, 1] and are mapped to the env's bounds (`scale_action`). An env that has played
its episodes is not stepped again; its row of the policy's input keeps its last observation (policies act per
row, so that row's output is simply unused).

`evaluate` is the evaluation of `softrl.train` and `softrl eval` written on top of `rollout`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple, cast

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from softrl.agents.base import Agent
from softrl.collect import ObsFlattener, env_spec, make_env
from softrl.config import is_jax_env
from softrl.dists import scale_action

Array = jax.Array

Policy = Callable[[np.ndarray, Array], Any]
"""`policy(obs [N, O] float32, key) -> action [N, ...]`, or `(action [N, ...], logp [N])` to also record
log pi(a|s). Continuous actions in [-1, 1]; discrete ones as integers."""


class Rollout(NamedTuple):
    """What `rollout` returns. The trajectory fields are None unless `record=True` (logp: unless the policy
    also returned log-probabilities). T is the longest episode played; entries past an episode's end are NaN."""

    returns: np.ndarray  # [N, E] undiscounted returns
    lengths: np.ndarray  # [N, E] steps per episode
    terminated: np.ndarray  # [N, E] bool: the episode ended by termination, not truncation
    obs: np.ndarray | None = None  # [N, E, T + 1, O]: the first observation, then each next one
    actions: np.ndarray | None = None  # [N, E, T, ...]: what the policy returned (in [-1, 1] when continuous)
    rewards: np.ndarray | None = None  # [N, E, T]
    logp: np.ndarray | None = None  # [N, E, T]


def _pad(episodes: list[list[list[np.ndarray | np.generic]]]) -> np.ndarray:
    """[N][E] lists of per-step arrays -> one float array [N, E, longest, ...], NaN past each end."""
    t_max = max(len(ep) for row in episodes for ep in row)
    first = next(step for row in episodes for ep in row for step in ep)
    out = np.full((len(episodes), len(episodes[0]), t_max, *np.shape(first)), np.nan)
    for i, row in enumerate(episodes):
        for j, ep in enumerate(row):
            if ep:
                out[i, j, : len(ep)] = np.stack(ep)
    return out


class _Recorder:
    """Per env and episode: the observations, actions, rewards and log-probs seen (only when recording)."""

    def __init__(self, n: int, episodes: int, obs: np.ndarray):
        self.fields: dict[str, list[list[list[np.ndarray | np.generic]]]] = {
            k: [[[] for _ in range(episodes)] for _ in range(n)] for k in ("obs", "actions", "rewards", "logp")}
        for i in range(n):
            self.fields["obs"][i][0].append(obs[i].copy())

    def step(self, i: int | np.integer, j: int, next_obs, action, reward: float, logp) -> None:
        f = self.fields
        f["obs"][i][j].append(next_obs.copy())
        f["actions"][i][j].append(np.asarray(action, np.float64))
        f["rewards"][i][j].append(np.float64(reward))
        f["logp"][i][j].append(np.float64(np.nan if logp is None else logp[i]))

    def start(self, i: int | np.integer, j: int, obs) -> None:
        self.fields["obs"][i][j].append(obs.copy())

    def arrays(self, has_logp: bool) -> dict[str, np.ndarray | None]:
        f = self.fields
        return {"obs": _pad(f["obs"]), "actions": _pad(f["actions"]), "rewards": _pad(f["rewards"]),
                "logp": _pad(f["logp"]) if has_logp else None}


def _to_env_action(env: gym.Env) -> Callable[[np.ndarray], Any]:
    """One env's action from one row of the policy's output, as `SeedEnvs.to_env_action` does it."""
    if env_spec(env).num_actions is not None:
        return int
    space = cast(gym.spaces.Box, env.action_space)  # not Discrete: num_actions is None
    low, high = np.asarray(space.low, np.float32).reshape(-1), np.asarray(space.high, np.float32).reshape(-1)
    return lambda a: scale_action(a, low, high).reshape(space.shape)


def rollout(
    policy: Policy,
    envs: str | Sequence[Callable[[], gym.Env]],
    seeds: Sequence[int],
    episodes: int,
    key: Array,
    record: bool = False,
    max_steps: int | None = None,
) -> Rollout:
    """`episodes` episodes in each of N = len(seeds) envs, stepped in lockstep by one batched policy.

    `envs`: an env id (N envs built with `softrl.collect.make_env`) or N factories (`envs[i]()` builds env i,
    e.g. a perturbed one). Env i is reset with `seeds[i]` first. Each lockstep step splits `key` once,
    `key, sub = split(key)`, and calls `policy(obs, sub)`. `max_steps` bounds the lockstep steps (a guard for
    envs without a time limit); episodes unfinished by then are dropped, their returns NaN.
    """
    built = [make_env(envs) for _ in seeds] if isinstance(envs, str) else [f() for f in envs]
    if len(built) != len(seeds):
        raise ValueError(f"got {len(built)} env factories for {len(seeds)} reset seeds")
    flat = ObsFlattener(built[0].observation_space)
    to_env = _to_env_action(built[0])
    n = len(built)
    obs = np.stack([flat(env.reset(seed=s)[0]) for env, s in zip(built, seeds)])  # [N, O]
    returns = np.full((n, episodes), np.nan)
    lengths = np.zeros((n, episodes), np.int64)
    terminated = np.zeros((n, episodes), bool)
    played = np.zeros(n, np.int64)  # finished episodes per env
    ep_return = np.zeros(n, np.float64)
    rec = _Recorder(n, episodes, obs) if record else None
    has_logp, steps = False, 0
    while (played < episodes).any() and (max_steps is None or steps < max_steps):
        key, sub = jax.random.split(key)
        out = policy(obs, sub)
        action, logp = out if isinstance(out, tuple) else (out, None)
        action = np.asarray(action)
        logp = None if logp is None else np.asarray(logp)
        has_logp = has_logp or logp is not None
        steps += 1
        for i in np.flatnonzero(played < episodes):
            o, r, term, trunc, _ = built[i].step(to_env(action[i]))
            j = played[i]
            obs[i] = flat(o)
            ep_return[i] += float(r)
            lengths[i, j] += 1
            if rec is not None:
                rec.step(i, j, obs[i], action[i], float(r), logp)
            if term or trunc:
                returns[i, j], terminated[i, j] = ep_return[i], term
                ep_return[i] = 0.0
                played[i] += 1
                if played[i] < episodes:
                    obs[i] = flat(built[i].reset()[0])
                    if rec is not None:
                        rec.start(i, played[i], obs[i])
    for env in built:
        env.close()
    traj = rec.arrays(has_logp) if rec is not None else {}
    return Rollout(returns, lengths, terminated, **traj)


# ----- evaluation ---------------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("agent", "deterministic"))
def act_batch(agent: Agent, states: Any, obs: Array, keys: Array, deterministic: bool) -> Array:
    return jax.vmap(agent.act, in_axes=(0, 0, 0, None))(states, obs, keys, deterministic)


def evaluate(
    agent: Agent,
    states: Any,
    env_id: str | Callable[[], gym.Env],
    seeds: list[int],
    episodes: int,
    deterministic: bool = True,
    key: Array | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> np.ndarray:
    """Returns [num_seeds, episodes] undiscounted returns. Eval env i is seeded `10**6 + seeds[i]`.

    Stochastic evaluation draws its action noise from `key` (default: PRNGKey(10**6 + seeds[0])); each lockstep
    step splits it once and gives seed i the i-th of `split(sub, num_seeds)`. `env_id` may also be a zero-argument
    env factory, and `env_kwargs` go to the env's constructor, as in training (`TrainConfig.env/env_kwargs`).
    """
    if is_jax_env(env_id):  # on device (ondevice_run.evaluate); no `key` there
        from softrl import ondevice_run

        return ondevice_run.evaluate(agent, states, env_id, seeds, episodes, deterministic)
    n = len(seeds)
    envs: str | list[Callable[[], gym.Env]] = env_id if isinstance(env_id, str) and not env_kwargs else \
        [partial(make_env, env_id, **(env_kwargs or {}))] * n
    key = jax.random.PRNGKey(10**6 + seeds[0]) if key is None else key

    def policy(obs: np.ndarray, sub: Array) -> Array:
        return act_batch(agent, states, jnp.asarray(obs), jax.random.split(sub, n), deterministic)

    return rollout(policy, envs, [10**6 + s for s in seeds], episodes, key).returns


# ----- sampling with log-probabilities ------------------------------------------------------------------------


__all__ = ["Policy", "Rollout", "act_batch", "evaluate", "rollout"]
