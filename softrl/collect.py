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
    # Observations with more than one axis keep their shape in the spec; `agents.resolve_spec` decides whether
    # the agent sees them so (a CNN torso) or flattened.
    shape = tuple(int(d) for d in obs_space.shape) if isinstance(obs_space, gym.spaces.Box) else ()
    obs_shape = shape if len(shape) > 1 else None
    if isinstance(act_space, gym.spaces.Box):
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            raise EnvError(f"continuous actions need finite bounds, got {act_space}")
        return EnvSpec(obs_dim=obs_dim, action_dim=int(np.prod(act_space.shape)), obs_shape=obs_shape)
    if isinstance(act_space, gym.spaces.Discrete):
        return EnvSpec(obs_dim=obs_dim, num_actions=int(act_space.n), obs_shape=obs_shape)
    raise EnvError(f"action space {act_space} is not supported (Box or Discrete only)")


class ObsFlattener:
    """Observations as flat float32 vectors (one-hot for Discrete observation spaces); with `keep_shape`,
    Box observations keep their shape (images [H, W, C] for a CNN torso)."""

    def __init__(self, space: gym.Space, keep_shape: bool = False):
        self.one_hot = int(space.n) if isinstance(space, gym.spaces.Discrete) else 0
        self.keep_shape = keep_shape and not self.one_hot

    def __call__(self, obs: Any) -> np.ndarray:
        if self.one_hot:
            out = np.zeros(self.one_hot, np.float32)
            out[int(obs)] = 1.0
            return out
        if self.keep_shape:
            return np.asarray(obs, np.float32)
        return np.asarray(obs, np.float32).reshape(-1)


def sub_env_seed(seed: int, j: int) -> int:
    """Reset seed of env j of a seed's K envs: the seed itself for j = 0 (so K = 1 is the one-env run), else
    an independent stream drawn from SeedSequence([seed, j])."""
    if j == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(j)]).generate_state(1)[0] & 0x7FFFFFFF)


class SeedEnvs:
    """`len(seeds) * num_envs` independent envs: env j of seed i is seeded `sub_env_seed(seeds[i], j)` at its
    first reset. With num_envs K > 1, observations, actions and transitions carry a [N, K, ...] layout; with
    K = 1 they are [N, ...], exactly as before K existed."""

    def __init__(self, env_id: str | Callable[[], Any], seeds: Sequence[int], env_kwargs: dict | None = None,
                 num_envs: int = 1):
        if num_envs < 1:
            raise ValueError(f"--num-envs must be >= 1, got {num_envs}")
        self.env_id = env_id
        self.num_envs = num_envs
        self.envs = [make_env(env_id, **(env_kwargs or {})) for _ in range(len(seeds) * num_envs)]
        self.seeds = list(seeds)
        self.env_seeds = [sub_env_seed(s, j) for s in seeds for j in range(num_envs)]  # [N * K], seed-major
        self.spec = env_spec(self.envs[0])
        space: Any = self.envs[0].action_space  # a Box unless discrete
        self.discrete = self.spec.num_actions is not None
        self.low = None if self.discrete else np.asarray(space.low, np.float32).reshape(-1)
        self.high = None if self.discrete else np.asarray(space.high, np.float32).reshape(-1)
        self.act_shape = space.shape
        self.flat = ObsFlattener(self.envs[0].observation_space)
        n = len(self.envs)
        self.episode_return = np.zeros(n, np.float64)
        self.episode_length = np.zeros(n, np.int64)
        self._obs: np.ndarray | None = None  # [N * K, ...]

    def keep_shape(self, obs_shape: tuple[int, ...] | None) -> None:
        """Hand observations over in `obs_shape` (an agent's `spec.obs_shape`: images for a CNN) instead of flat.
        Call before `reset`."""
        self.flat = ObsFlattener(self.envs[0].observation_space, keep_shape=obs_shape is not None)

    def _layout(self, x: np.ndarray) -> np.ndarray:
        """[N * K, ...] -> [N, K, ...] when K > 1 (a view); unchanged for K = 1."""
        return x if self.num_envs == 1 else x.reshape(len(self.seeds), self.num_envs, *x.shape[1:])

    @property
    def obs(self) -> np.ndarray | None:
        """The observations to act on next: [N, ...], or [N, K, ...] with K > 1 envs per seed."""
        return None if self._obs is None else self._layout(self._obs)

    def reset(self) -> np.ndarray:
        obs = []
        for env, s in zip(self.envs, self.env_seeds):
            try:
                obs.append(self.flat(env.reset(seed=s)[0]))
            except Exception as err:  # noqa: BLE001 - any env failure is reported the same way, with its message
                raise EnvStepError(self.env_id, s, "reset", err) from err
        self._obs = np.stack(obs)
        return self._layout(self._obs)

    def to_env_action(self, action: np.ndarray, i: int) -> Any:
        """Env i's action (i over all N * K envs) from `action` [N * K, ...]."""
        if self.discrete:
            return int(action[i])
        low, high = cast(np.ndarray, self.low), cast(np.ndarray, self.high)  # both set when not discrete
        return scale_action(action[i], low, high).reshape(self.act_shape)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], list[tuple[int, float, int]]]:
        """Step every env with `action` ([N, d] in [-1, 1], or [N] ints; [N, K, ...] with K envs per seed).

        Returns the transition to store (leaves [N, ...] or [N, K, ...]; `next_obs` is the true next
        observation) and finished episodes as (seed index, return, length). Afterwards
        `self.obs` holds the observation to act on next (a reset one after an episode end).
        """
        assert self._obs is not None, "reset() first"
        n = len(self.envs)
        action = np.asarray(action)
        flat_action = action.reshape(n, *action.shape[2:]) if self.num_envs > 1 else action
        next_obs = np.empty_like(self._obs)
        reward = np.empty(n, np.float32)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        act_next = np.empty_like(self._obs)
        finished = []
        for i, env in enumerate(self.envs):
            call = "step"
            try:  # free when nothing is raised (Python >= 3.11)
                o, r, term, trunc, _ = env.step(self.to_env_action(flat_action, i))
                next_obs[i] = self.flat(o)
                reward[i], terminated[i], truncated[i] = r, term, trunc
                self.episode_return[i] += float(r)
                self.episode_length[i] += 1
                if term or trunc:
                    finished.append((i // self.num_envs, float(self.episode_return[i]), int(self.episode_length[i])))
                    self.episode_return[i] = 0.0
                    self.episode_length[i] = 0
                    call = "reset"
                    act_next[i] = self.flat(env.reset()[0])
                else:
                    act_next[i] = next_obs[i]
            except Exception as err:  # noqa: BLE001 - any env failure is reported the same way, with its message
                raise EnvStepError(self.env_id, self.env_seeds[i], call, err) from err
        lay = self._layout
        transition = {
            "obs": lay(self._obs),
            "action": action,
            "reward": lay(reward),
            "next_obs": lay(next_obs),
            "terminated": lay(terminated),
            "truncated": lay(truncated),
        }
        self._obs = act_next
        return transition, finished

    # ----- exact snapshots, for checkpoints that resume bitwise ---------------------------------------

    def get_state(self) -> dict:
        return {
            "envs": [env_state(env) for env in self.envs],
            "obs": self._obs,
            "episode_return": self.episode_return.copy(),
            "episode_length": self.episode_length.copy(),
        }

    def set_state(self, state: dict) -> None:
        for env, s in zip(self.envs, state["envs"], strict=True):
            set_env_state(env, s)
        self._obs = np.asarray(state["obs"])
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
    """Snapshot of a (wrapped) env: every wrapper's counters, the RNG, the physics state, and the env's own state
    when it has the hook: an unwrapped env with both `snapshot()` (plain data: numbers, strings, None, numpy
    arrays, and lists/tuples/str-keyed dicts of them) and `restore(snapshot)` (e.g. softrl's MinAtar games, whose
    state lives in a game object that the plain attributes above do not reach)."""
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
    if _has_hook(e):
        state["snapshot"] = e.snapshot()
    return state


def _has_hook(env: Any) -> bool:
    return callable(getattr(env, "snapshot", None)) and callable(getattr(env, "restore", None))


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
    if "snapshot" in state:
        e.restore(state["snapshot"])


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
