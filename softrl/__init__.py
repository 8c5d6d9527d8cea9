"""softrl: maximum-entropy reinforcement learning in JAX (SAC and its family, soft Q-learning, tabular solvers)."""

from softrl.agents import Agent, EnvSpec, make_agent
from softrl.callbacks import STOP, CallbackError, RunView, StopAtReturn
from softrl.checkpoint import CheckpointError
from softrl.config import ALGOS, AgentConfig, TrainConfig
from softrl.loop import (
    NonFiniteEnvError,
    NonFiniteLossError,
    TrainResult,
    evaluate,
    load_run,
    summarize_returns,
    train,
)
from softrl.policy import Policy, PolicyError, export_policy, load_policy
from softrl.rundir import RunDirError

__version__ = "0.1.0"

__all__ = [
    "ALGOS",
    "STOP",
    "Agent",
    "AgentConfig",
    "CallbackError",
    "CheckpointError",
    "EnvSpec",
    "NonFiniteEnvError",
    "NonFiniteLossError",
    "Policy",
    "PolicyError",
    "RunView",
    "RunDirError",
    "StopAtReturn",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "export_policy",
    "load_policy",
    "load_run",
    "make_agent",
    "summarize_returns",
    "train",
]
