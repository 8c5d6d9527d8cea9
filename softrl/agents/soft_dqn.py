"""Soft Q-learning with a deep Q-network: DQN with the soft backup and the Boltzmann policy (Section 4).

Its deltas from `dqn`, the first two from `softrl.backups`:
- the TD target uses `soft_value(Q'(s', .), alpha) = alpha * logsumexp(Q'(s', .) / alpha)`
  (Eq. 24-25), the exact expectation `E_pi[Q' - alpha log pi]` under the optimal actor
  `pi = softmax(Q' / alpha)` (Eq. 21-23), so no actor network is needed;
- the behaviour policy samples `softmax(Q(s, .) / alpha)` (Eq. 20) instead of epsilon-greedy;
  deterministic acting is `argmax_a Q(s, a)`, the alpha -> 0 limit;
- with `--alpha auto`, a temperature step after each Q step.

alpha is fixed (`--alpha 0.5`; it lives in the state as `log_alpha`, so a vmapped sweep can mix
values) or tuned (`--alpha auto`) by `base.temperature_loss` towards a target entropy, default
`target_entropy_scale * log|A|`, using the exact entropy of `softmax(Q / alpha)` at batch states.
With `alpha = 0` the backup is `max` (Eq. 26) and the target is DQN's exactly; the policy is then
greedy with no exploration at all.

What it reaches on CartPole-v1 with DQN's settings: benchmarks/RESULTS.md, sections 5 and 8.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.agents import dqn
from softrl.agents.base import Agent, EnvSpec, temperature_loss
from softrl.backups import soft_policy, soft_value
from softrl.config import AgentConfig

Array = jax.Array


def boltzmann(nets: dqn.Nets, state: dqn.State, obs: Array, key: Array) -> tuple[Array, Array]:
    """`a ~ softmax(Q(s, .) / alpha)` (Eq. 20) and `log pi(a|s)`. obs [..., O] -> int32 [...], [...]."""
    q = dqn.state_q(nets, state, obs)  # [..., A]
    probs = soft_policy(q, dqn.alpha_of(state))  # greedy (ties split) when alpha = 0
    # log 0 = -inf is a valid logit: such actions are never drawn.
    logits = jnp.log(probs)
    action = jax.random.categorical(key, logits).astype(jnp.int32)
    return action, jnp.take_along_axis(logits, action[..., None], axis=-1)[..., 0]


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    return dqn.make(
        cfg, spec, name="soft-dqn", backup=soft_value, policy=boltzmann, temperature_loss=temperature_loss
    )
