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

On CartPole-v1, DQN's settings (hidden (128, 128), lr 1e-3, batch 256, tau 0.01, 30k env steps)
with alpha auto at the default target 0.5 * log 2 reach 500; alpha settled at 0.2-0.65.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from softrl.agents import dqn
from softrl.agents.base import Agent, EnvSpec, temperature_loss
from softrl.backups import soft_policy, soft_value
from softrl.config import AgentConfig

Array = jax.Array


def boltzmann(nets: dqn.Nets, state: dqn.State, obs: Array, key: Array, deterministic: bool = False) -> Array:
    """`a ~ softmax(Q(s, .) / alpha)` (Eq. 20); argmax when deterministic. obs [O] -> int32 []."""
    q = dqn.q_values(nets, state.critic, obs[None])[0]  # [A]
    if deterministic:
        return jnp.argmax(q).astype(jnp.int32)
    probs = soft_policy(q, dqn.alpha_of(state))  # [A]; greedy (ties split) when alpha = 0
    # log 0 = -inf is a valid logit: such actions are never drawn.
    return jax.random.categorical(key, jnp.log(probs)).astype(jnp.int32)


def make(cfg: AgentConfig, spec: EnvSpec) -> Agent:
    return dqn.make(
        cfg,
        spec,
        name="soft-dqn",
        backup=soft_value,
        policy=boltzmann,
        temperature_loss=temperature_loss,
        uses_alpha=True,
    )
