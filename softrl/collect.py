"""Environment side of training: one gymnasium env per seed, stepped in lockstep.

Correct data by construction:
- `terminated` and `truncated` are stored separately; only `terminated` cuts the bootstrap.
- An episode's last transition stores the real final observation, and the reset
  observation is used only to act next: no stored transition crosses an episode
  boundary. We reset by hand, so gymnasium's autoreset mode never enters; for users of
  gymnasium vector envs, `vector_transitions` does the same for every autoreset mode.
- Episode returns and lengths are counted here, from the raw env rewards.
"""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Callable, Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np

from softrl.agents.base import EnvSpec
from softrl.dists import scale_action


class EnvError(ValueError):
    """An environment that softrl cannot use, with the reason and a fix."""


class EnvStepError(EnvError):
    """An environment raised inside `step` or `reset`; the message names the env id, the seed and the call."""

    def __init__(self, env_id: str | Callable[[], Any], seed: int, call: str, err: BaseException):
        super().__init__(f"environment {env_id} (seed {seed}) raised in {call}: {type(err).__name__}: {err}")
        self.env_id, self.seed, self.call = env_id, seed, call


def make_env(env_id: Any, **kwargs: Any) -> gym.Env:
    """The env for `env_id`, one line of EnvError on any failure to build it.

    `env_id` is a gymnasium id (softrl's own envs are registered first; close matches are suggested for
    unknown ids), gymnasium's `module:EnvName-vN` form (the module is imported, which registers the env), or a
    zero-argument factory returning a gymnasium.Env. `kwargs` go to the env's constructor through gym.make.
    """
    if callable(env_id):
        return _from_factory(env_id, kwargs)
    from softrl.config import FACTORY_PREFIX
    from softrl.envs import register_envs

    register_envs()
    if not isinstance(env_id, str):
        raise EnvError(f"an environment is a gymnasium id or a zero-argument factory, got {env_id!r}")
    if env_id.startswith(FACTORY_PREFIX):
        raise EnvError(f"this run's environment is the Python factory {env_id[len(FACTORY_PREFIX):-1]}, which the "
                       "command line cannot rebuild; resume or evaluate it from Python with the same factory, "
                       "e.g. softrl.train(cfg, resume=RUN_DIR) with cfg.env=factory, or "
                       "softrl.load_run(RUN_DIR, env=factory)")
    name = import_env_module(env_id)
    with_kwargs = f" with env_kwargs {json.dumps(kwargs)}" if kwargs else ""
    try:
        return gym.make(name, **kwargs)
    except (gym.error.NameNotFound, gym.error.NamespaceNotFound, gym.error.VersionNotFound) as err:
        close = difflib.get_close_matches(name, list(gym.registry.keys()), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise EnvError(f"unknown environment id {env_id!r}.{hint} (gymnasium said: {_first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - the env's constructor may raise anything; report it in one line
        raise EnvError(f"could not build environment {env_id}{with_kwargs}: {type(err).__name__}: "
                       f"{_first_line(err)}") from None


def import_env_module(env_id: str) -> str:
    """For gymnasium's `module:EnvName-vN` form, import `module` (so that it registers its envs) and return
    `EnvName-vN`; any other id is returned as it is. EnvError naming the module if it cannot be imported."""
    if ":" not in env_id:
        return env_id
    module, _, name = env_id.partition(":")
    if not module or not name:
        raise EnvError(f"--env {env_id!r}: the module form is module:EnvName-vN, with both parts")
    try:
        importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 - ImportError, or whatever the module raises while it runs
        raise EnvError(f"cannot import module {module!r} (from --env {env_id}): {type(err).__name__}: "
                       f"{_first_line(err)}; is it on PYTHONPATH?") from None
    return name


def _from_factory(factory: Callable[..., Any], kwargs: dict[str, Any]) -> gym.Env:
    from softrl.config import env_label

    label = env_label(factory)[len("<factory "):-1]
    try:
        env = factory(**kwargs)
    except Exception as err:  # noqa: BLE001 - the user's factory may raise anything; report it in one line
        raise EnvError(f"the environment factory {label} raised {type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(env, gym.Env):
        raise EnvError(f"the environment factory {label} returned {type(env).__name__}, not a gymnasium.Env; "
                       "it must take no arguments and return an env")
    return env


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def env_spec(env: gym.Env) -> EnvSpec:
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gym.spaces.Box):
        if isinstance(obs_space, gym.spaces.Discrete):
            obs_dim = int(obs_space.n)
        else:
            raise EnvError(f"observation space {obs_space} is not supported (Box or Discrete only)")
    else:
        obs_dim = int(np.prod(obs_space.shape))
    if isinstance(act_space, gym.spaces.Box):
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            raise EnvError(f"continuous actions need finite bounds, got {act_space}")
        return EnvSpec(obs_dim=obs_dim, action_dim=int(np.prod(act_space.shape)))
    if isinstance(act_space, gym.spaces.Discrete):
        return EnvSpec(obs_dim=obs_dim, num_actions=int(act_space.n))
    raise EnvError(f"action space {act_space} is not supported (Box or Discrete only)")


class ObsFlattener:
    """Observations as flat float32 vectors (one-hot for Discrete observation spaces)."""

    def __init__(self, space: gym.Space):
        self.one_hot = int(space.n) if isinstance(space, gym.spaces.Discrete) else 0

    def __call__(self, obs: Any) -> np.ndarray:
        if self.one_hot:
            out = np.zeros(self.one_hot, np.float32)
            out[int(obs)] = 1.0
            return out
        return np.asarray(obs, np.float32).reshape(-1)


class SeedEnvs:
    """`len(seeds)` independent envs, env i seeded with `seeds[i]` at its first reset."""

    def __init__(self, env_id: str | Callable[[], Any], seeds: Sequence[int], env_kwargs: dict | None = None):
        self.env_id = env_id
        self.envs = [make_env(env_id, **(env_kwargs or {})) for _ in seeds]
        self.seeds = list(seeds)
        self.spec = env_spec(self.envs[0])
        space: Any = self.envs[0].action_space  # a Box unless discrete
        self.discrete = self.spec.num_actions is not None
        self.low = None if self.discrete else np.asarray(space.low, np.float32).reshape(-1)
        self.high = None if self.discrete else np.asarray(space.high, np.float32).reshape(-1)
        self.act_shape = space.shape
        self.flat = ObsFlattener(self.envs[0].observation_space)
        n = len(seeds)
        self.episode_return = np.zeros(n, np.float64)
        self.episode_length = np.zeros(n, np.int64)
        self.obs: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        obs = []
        for env, s in zip(self.envs, self.seeds):
            try:
                obs.append(self.flat(env.reset(seed=s)[0]))
            except Exception as err:  # noqa: BLE001 - any env failure is reported the same way, with its message
                raise EnvStepError(self.env_id, s, "reset", err) from err
        self.obs = np.stack(obs)
        return self.obs

    def to_env_action(self, action: np.ndarray, i: int) -> Any:
        if self.discrete:
            return int(action[i])
        low, high = cast(np.ndarray, self.low), cast(np.ndarray, self.high)  # both set when not discrete
        return scale_action(action[i], low, high).reshape(self.act_shape)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], list[tuple[int, float, int]]]:
        """Step every env with `action` ([N, d] in [-1, 1], or [N] ints).

        Returns the transition to store (leaves [N, ...]; `next_obs` is the true next
        observation) and finished episodes as (seed index, return, length). Afterwards
        `self.obs` holds the observation to act on next (a reset one after an episode end).
        """
        n = len(self.envs)
        next_obs = np.empty_like(self.obs)
        reward = np.empty(n, np.float32)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        act_next = np.empty_like(self.obs)
        finished = []
        for i, env in enumerate(self.envs):
            call = "step"
            try:  # free when nothing is raised (Python >= 3.11)
                o, r, term, trunc, _ = env.step(self.to_env_action(action, i))
                next_obs[i] = self.flat(o)
                reward[i], terminated[i], truncated[i] = r, term, trunc
                self.episode_return[i] += float(r)
                self.episode_length[i] += 1
                if term or trunc:
                    finished.append((i, float(self.episode_return[i]), int(self.episode_length[i])))
                    self.episode_return[i] = 0.0
                    self.episode_length[i] = 0
                    call = "reset"
                    act_next[i] = self.flat(env.reset()[0])
                else:
                    act_next[i] = next_obs[i]
            except Exception as err:  # noqa: BLE001 - any env failure is reported the same way, with its message
                raise EnvStepError(self.env_id, self.seeds[i], call, err) from err
        transition = {
            "obs": self.obs,
            "action": np.asarray(action),
            "reward": reward,
            "next_obs": next_obs,
            "terminated": terminated,
            "truncated": truncated,
        }
        self.obs = act_next
        return transition, finished

    # ----- exact snapshots, for checkpoints that resume bitwise ---------------------------------------

    def get_state(self) -> dict:
        return {
            "envs": [env_state(env) for env in self.envs],
            "obs": self.obs,
            "episode_return": self.episode_return.copy(),
            "episode_length": self.episode_length.copy(),
        }

    def set_state(self, state: dict) -> None:
        for env, s in zip(self.envs, state["envs"], strict=True):
            set_env_state(env, s)
        self.obs = np.asarray(state["obs"])
        self.episode_return = np.asarray(state["episode_return"]).copy()
        self.episode_length = np.asarray(state["episode_length"]).copy()

    def close(self) -> None:
        for env in self.envs:
            env.close()


_PLAIN = (int, float, bool, str, type(None), np.ndarray, np.generic)


def _plain_vars(obj: Any) -> dict:
    """Attributes that are plain data (numbers, arrays): an env's simulation state and counters."""
    out = {}
    for k, v in vars(obj).items():
        if isinstance(v, _PLAIN) or (isinstance(v, (tuple, list)) and all(isinstance(x, _PLAIN) for x in v)):
            out[k] = v.copy() if isinstance(v, np.ndarray) else v
    return out


def env_state(env: gym.Env) -> dict:
    """Snapshot of a (wrapped) env: every wrapper's counters, the RNG, and the physics state."""
    levels = []
    e: Any = env
    while True:
        levels.append(_plain_vars(e))
        if not isinstance(e, gym.Wrapper):
            break
        e = e.env
    state: dict[str, Any] = {"levels": levels}
    if getattr(e, "_np_random", None) is not None:
        state["np_random"] = e._np_random.bit_generator.state
    if hasattr(e, "data") and hasattr(e, "model"):
        import mujoco as mj

        mujoco = cast(Any, mj)  # compiled bindings without a type stub
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        buf = np.empty(mujoco.mj_stateSize(e.model, spec), np.float64)
        mujoco.mj_getState(e.model, e.data, buf, spec)
        state["mujoco"] = buf
    return state


def set_env_state(env: gym.Env, state: dict) -> None:
    e: Any = env
    for level in state["levels"]:
        for k, v in level.items():
            setattr(e, k, v.copy() if isinstance(v, np.ndarray) else v)
        if not isinstance(e, gym.Wrapper):
            break
        e = e.env
    if "np_random" in state:
        if getattr(e, "_np_random", None) is None:
            e._np_random = np.random.Generator(np.random.PCG64())
        e._np_random.bit_generator.state = state["np_random"]
    if "mujoco" in state:
        import mujoco as mj

        mujoco = cast(Any, mj)  # compiled bindings without a type stub
        mujoco.mj_setState(e.model, e.data, state["mujoco"], mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(e.model, e.data)


def vector_transitions(
    autoreset_mode: Any,
    obs: np.ndarray,
    next_obs: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    info: dict,
    prev_done: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For a gymnasium vector env step: the true next observations and which rows are real transitions.

    - NEXT_STEP (gymnasium's default): the step after an episode end only resets; that
      row is not a transition (`prev_done`), so it is masked out.
    - SAME_STEP: the returned obs is already the reset one; the true one is `info["final_obs"]`.
    - DISABLED: every row is a transition (the caller resets).
    Returns (true_next_obs [N, ...], valid [N] bool).
    """
    mode = getattr(autoreset_mode, "value", autoreset_mode)
    valid = np.ones(len(terminated), bool)
    true_next = np.array(next_obs, copy=True)
    if mode == "NextStep":
        valid = ~np.asarray(prev_done)
    elif mode == "SameStep":
        done = np.asarray(terminated) | np.asarray(truncated)
        for i in np.flatnonzero(done):
            true_next[i] = info["final_obs"][i]
    elif mode != "Disabled":
        raise ValueError(f"unknown autoreset mode {autoreset_mode!r}")
    return true_next, valid
