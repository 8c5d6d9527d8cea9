"""softrl: maximum-entropy reinforcement learning in JAX (SAC and its family, soft Q-learning, tabular solvers)."""

from softrl.agents import Agent, EnvSpec, make_agent
from softrl.config import ALGOS, AgentConfig
from softrl.loop import NonFiniteLossError, TrainConfig, TrainResult, evaluate, load_run, train

__version__ = "0.1.0"

__all__ = [
    "ALGOS",
    "Agent",
    "AgentConfig",
    "EnvSpec",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_run",
    "make_agent",
    "train",
]
