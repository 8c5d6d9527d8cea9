"""Frozen configs. Field docstrings are the CLI's `--help` (tyro reads them).

Defaults for the continuous family follow Haarnoja et al. 2018, "Soft Actor-Critic
Algorithms and Applications" (Table 1): Adam 3e-4, batch 256, 2x256 ReLU, gamma 0.99,
tau 0.005, target entropy -dim(A), one gradient step per env step. TD3 settings follow
Fujimoto et al. 2018 (policy noise 0.2, clip 0.5, delay 2).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

CONTINUOUS_ALGOS = ("ddpg", "td3", "svg0", "wp", "sac")
DISCRETE_ALGOS = ("dqn", "soft-dqn", "discrete-sac")
ALGOS = CONTINUOUS_ALGOS + DISCRETE_ALGOS
Algo = Literal["ddpg", "td3", "svg0", "wp", "sac", "dqn", "soft-dqn", "discrete-sac"]


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Hyperparameters of the agent. Values a user may vmap over are copied into the agent state."""

    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of actor and critics."""
    lr: float = 3e-4
    """Adam learning rate for actor and critics (SAC paper: 3e-4)."""
    alpha_lr: float | None = None
    """Adam learning rate of log-alpha when alpha is auto-tuned (default: same as --lr)."""
    batch_size: int = 256
    """Minibatch size of each gradient step."""
    gamma: float = 0.99
    """Discount factor, in [0, 1)."""
    tau: float = 0.005
    """Polyak averaging rate of the target networks (target <- tau*online + (1-tau)*target)."""
    alpha: str = "auto"
    """Entropy temperature: 'auto' tunes log-alpha to --target-entropy, a number fixes it (>= 0)."""
    init_alpha: float = 1.0
    """Starting alpha when --alpha auto."""
    target_entropy: float | None = None
    """Target entropy for auto alpha. Default: -dim(A) (continuous), 0.5*log|A| (discrete-sac)."""
    target_entropy_scale: float = 0.5
    """discrete-sac only: target entropy = scale * log|A| when --target-entropy is not given."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before the TD target (the 'reward-scale' form of SAC: alpha 1, rewards scaled)."""
    num_critics: int | None = None
    """Number of critics whose min is used (default: 1 for ddpg/dqn/soft-dqn, 2 for the rest)."""
    explore_std: float = 0.1
    """ddpg/td3: std of the Gaussian exploration noise, in units of half the action range."""
    target_noise: float = 0.2
    """td3: std of the target policy smoothing noise."""
    target_noise_clip: float = 0.5
    """td3: clip of the target policy smoothing noise."""
    policy_delay: int | None = None
    """Critic updates per actor (and target) update (default: 2 for td3, 1 otherwise)."""
    actor_std: float = 0.3
    """svg0: the fixed std of the pre-tanh Gaussian noise (Eq. 3)."""
    epsilon_start: float = 1.0
    """dqn: initial epsilon of epsilon-greedy exploration."""
    epsilon_end: float = 0.05
    """dqn: final epsilon."""
    epsilon_decay_steps: int = 10_000
    """dqn: env steps over which epsilon decays linearly (per seed)."""
    target_update_every: int = 1
    """dqn/soft-dqn: hard-copy the target network every N updates if tau == 1; with tau < 1, Polyak every update."""

    def resolved_alpha(self) -> float | None:
        """The fixed alpha, or None when auto-tuned. Raises ValueError with a fix on bad input."""
        if self.alpha == "auto":
            return None
        try:
            value = float(self.alpha)
        except ValueError:
            raise ValueError(f"--alpha must be 'auto' or a number >= 0, got {self.alpha!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"--alpha must be 'auto' or a finite number >= 0, got {self.alpha!r}")
        return value

    def validate(self) -> None:
        """Raise ValueError naming the bad field and its allowed range."""
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.lr <= 0 or (self.alpha_lr is not None and self.alpha_lr <= 0):
            raise ValueError("learning rates must be > 0")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.init_alpha <= 0:
            raise ValueError(f"init_alpha must be > 0 (alpha is parametrised by its log), got {self.init_alpha}")
        if self.num_critics is not None and self.num_critics < 1:
            raise ValueError(f"num_critics must be >= 1, got {self.num_critics}")
        if self.policy_delay is not None and self.policy_delay < 1:
            raise ValueError(f"policy_delay must be >= 1, got {self.policy_delay}")
        if self.actor_std <= 0:
            raise ValueError(f"actor_std must be > 0, got {self.actor_std}")
        self.resolved_alpha()
