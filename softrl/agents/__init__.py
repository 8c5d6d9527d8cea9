"""Agents by name. Continuous: ddpg, td3, svg0, wp, sac. Discrete: dqn, soft-dqn, discrete-sac."""

from __future__ import annotations

import functools
import importlib

from softrl.agents.base import Agent, EnvSpec
from softrl.config import ALGOS, AgentConfig

_MODULES = {
    "ddpg": "ddpg",
    "td3": "td3",
    "svg0": "svg0",
    "wp": "wp",
    "sac": "sac",
    "dqn": "dqn",
    "soft-dqn": "soft_dqn",
    "discrete-sac": "discrete_sac",
}


@functools.lru_cache(maxsize=64)
def make_agent(algo: str, cfg: AgentConfig, spec: EnvSpec) -> Agent:
    """Build the named agent. Raises ValueError for unknown names or a mismatched action space.

    Cached: the same (algo, config, spec) gives the same Agent object, so jitted functions
    keyed on it compile once per process (tests and experiments train many runs).
    """
    if algo not in _MODULES:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    module = importlib.import_module(f"softrl.agents.{_MODULES[algo]}")
    return module.make(cfg, spec)


__all__ = ["Agent", "EnvSpec", "make_agent"]
