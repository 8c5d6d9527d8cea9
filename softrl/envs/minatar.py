"""MinAtar (Young & Tian 2019) games as gymnasium environments for the discrete agents.

`softrl/MinAtar-<Game>-v1` (Asterix, Breakout, Freeway, Seaquest, SpaceInvaders): the 10x10xC
boolean frame as float32 0/1 values [10, 10, C] (the agents put the MinAtar CNN on it; `--encoder mlp`
flattens it), the game's minimal action
set as `Discrete(n)`, and gymnasium's TimeLimit at `MAX_EPISODE_STEPS`. MinAtar's defaults are
kept: sticky actions with probability 0.1 and difficulty ramping.

The game draws from its own numpy RandomState (ball start, sticky actions, enemies). Every
`reset` reseeds it from gymnasium's `np_random`, so `reset(seed=s)` fixes everything that follows
and later unseeded resets still differ from episode to episode.

A checkpoint captures the whole game through `snapshot`/`restore` (the hook `softrl.collect.env_state` calls):
every attribute of MinAtar's `Environment` and of its game object is plain data (ints, bools, None, lists and
tuples of them, numpy arrays and scalars), so it is saved as JSON + arrays; the RandomState is saved as its
`get_state()` tuple. A resumed MinAtar run is therefore bitwise the uninterrupted one, with no pickle.

The `minatar` package is optional: `softrl.envs.register_envs` registers these ids only when
it is importable, and this module imports it only when an environment is built.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np

GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
# A safety cap, not part of the games: Freeway ends itself after 2500 steps, the others end when the
# agent loses, which a good agent may postpone for very long. Truncation is stored as such and bootstraps.
MAX_EPISODE_STEPS = 10_000
# Attributes `Environment.display_state` adds (matplotlib handles): drawing state, not game state.
_DISPLAY = ("cmap", "norm", "ax")


class MinAtarEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        game: str,
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
        minimal_action_set: bool = True,
    ):
        from minatar import Environment  # optional dependency, imported only when used

        self.game = Environment(game, sticky_action_prob=sticky_action_prob, difficulty_ramping=difficulty_ramping)
        all_actions = list(range(self.game.num_actions()))
        self.actions = list(self.game.minimal_action_set()) if minimal_action_set else all_actions
        self.action_space = gym.spaces.Discrete(len(self.actions))
        self.frame_shape = tuple(self.game.state_shape())  # (10, 10, channels)
        self.observation_space = gym.spaces.Box(0.0, 1.0, self.frame_shape, np.float32)

    def _obs(self) -> np.ndarray:
        return self.game.state().astype(np.float32)  # [10, 10, C], values 0 or 1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.game.seed(int(self.np_random.integers(2**31 - 1)))
        # Sticky actions repeat the previous action; a new episode must not inherit the last one's.
        self.game.last_action = 0
        self.game.reset()
        return self._obs(), {}

    def step(self, action):
        reward, terminated = self.game.act(self.actions[int(action)])
        return self._obs(), float(reward), bool(terminated), False, {}

    # ----- exact snapshots, for checkpoints (called by softrl.collect.env_state / set_env_state) -----------

    def snapshot(self) -> dict[str, Any]:
        """The game's whole state as plain data: a deep copy of every attribute of the `Environment` (sticky
        `last_action`, ...) and of its game (positions, brick/alien maps, entity lists, timers, difficulty ramp),
        and the `get_state()` of their RandomState(s). Plain data by construction, so `checkpoint.encode_state`
        stores it as JSON + arrays; a future MinAtar attribute that is not plain data is refused there by name,
        never pickled."""
        game, inner = self.game, self.game.env
        return {
            "environment": _attrs(game, skip=("random", "env", *_DISPLAY)),
            "game": _attrs(inner, skip=("random",)),
            "random": game.random.get_state(),
            # `Environment.seed` shares one RandomState with the game (every reset here seeds); None says shared.
            "game_random": None if inner.random is game.random else inner.random.get_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Put the game back exactly as `snapshot` found it (into this or a freshly built env of the same game)."""
        name = state["environment"].get("env_name")
        if name != self.game.env_name:
            raise ValueError(f"a MinAtar {name!r} snapshot cannot be restored into a {self.game.env_name!r} env")
        game, inner = self.game, self.game.env
        for k, v in state["environment"].items():
            setattr(game, k, copy.deepcopy(v))
        for k, v in state["game"].items():
            setattr(inner, k, copy.deepcopy(v))
        game.random = _random_state(state["random"])
        inner.random = game.random if state["game_random"] is None else _random_state(state["game_random"])


def _attrs(obj: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    """Deep copies of `obj`'s attributes but `skip`: the game mutates its lists in place, so a snapshot taken
    mid-run must not share them."""
    return {k: copy.deepcopy(v) for k, v in vars(obj).items() if k not in skip}


def _random_state(state: Any) -> np.random.RandomState:
    """A RandomState at `state` (the tuple of `get_state()`; decoded checkpoints give its array back as such)."""
    rs = np.random.RandomState()
    rs.set_state(tuple(state))
    return rs


def register_minatar() -> None:
    """Register `softrl/MinAtar-<Game>-v1` for every game (the caller keeps this idempotent)."""
    for name, game in GAMES.items():
        gym.register(
            f"softrl/MinAtar-{name}-v1",
            entry_point="softrl.envs.minatar:MinAtarEnv",
            kwargs={"game": game},
            max_episode_steps=MAX_EPISODE_STEPS,
        )
