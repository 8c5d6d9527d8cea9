"""Agents by name. Continuous: ddpg, td3, svg0, wp, sac. Discrete: dqn, soft-dqn, discrete-sac."""

from __future__ import annotations

import functools
import importlib

from softrl.agents.base import Agent, EnvSpec
from softrl.config import ALGOS, DISCRETE_ALGOS, AgentConfig

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

    `agent.spec` is `resolve_spec(algo, cfg, spec)`: its `obs_shape` says whether the agent takes image
    observations in their shape (CNN torso) or flat (MLP); its act and sample accept flat ones either way.

    Cached: the same (algo, config, spec) gives the same Agent object, so jitted functions
    keyed on it compile once per process (tests and experiments train many runs).
    """
    if algo not in _MODULES:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    spec = resolve_spec(algo, cfg, spec)
    module = importlib.import_module(f"softrl.agents.{_MODULES[algo]}")
    return module.make(cfg, spec)


def resolve_spec(algo: str, cfg: AgentConfig, spec: EnvSpec) -> EnvSpec:
    """The spec the agent is built for: image observations stay [H, W, C] when the encoder (cfg.encoder, see
    `softrl.encoders.choose_encoder`) is the CNN, and are flattened (obs_shape None) for the MLP.
    Raises ValueError (one line) for --encoder cnn on vector observations or with a continuous-action algorithm."""
    from softrl.encoders import choose_encoder

    kind = choose_encoder(spec.shape, cfg.encoder)
    if kind == "cnn" and algo not in DISCRETE_ALGOS:
        if cfg.encoder == "cnn":
            raise ValueError(f"--encoder cnn is implemented for {', '.join(DISCRETE_ALGOS)}, not {algo}; "
                             f"use --encoder mlp")
        kind = "mlp"
    return spec._replace(obs_shape=spec.shape if kind == "cnn" else None)


__all__ = ["Agent", "EnvSpec", "make_agent", "resolve_spec"]
