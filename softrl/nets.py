"""Networks (flax linen). Every actor emits actions in [-1, 1]; the collector rescales.

Defaults follow Haarnoja et al. 2018 ("SAC Algorithms and Applications", Table 1):
two hidden layers of 256 ReLU units for actor and critics.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from softrl.dists import squash_log_std
from softrl.encoders import MinAtarCNN

Array = jax.Array


class MLP(nn.Module):
    """ReLU MLP: hidden layers, then a linear output of size `out`."""

    hidden: Sequence[int]
    out: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.out)(x)


class CNNHead(nn.Module):
    """The MinAtar paper's network on images [B, H, W, C]: `MinAtarCNN` (conv 16 3x3 -> dense 128, Young & Tian
    2019) and a linear head of size `out`, as in the paper. `hidden` is accepted (to stand in for `MLP`) and not
    used: the paper's head has no hidden layers."""

    hidden: Sequence[int]
    out: int

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return nn.Dense(self.out)(MinAtarCNN()(x))


def _head(torso: str) -> type[nn.Module]:
    """The network class of a torso: `MLP` for "mlp" (module paths, hence init values, as before torsos), else
    `CNNHead`."""
    return CNNHead if torso == "cnn" else MLP


class QNetwork(nn.Module):
    """Q(s, a) -> [B]."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        return MLP(self.hidden, 1)(jnp.concatenate([obs, action], axis=-1))[..., 0]


class QEnsemble(nn.Module):
    """`num_critics` independent Q networks evaluated as one batched network -> [num_critics, B].

    `nn.vmap` stacks their weights, so the twin critics of TD3/SAC run as batched
    matmuls (one kernel per layer, not two).
    """

    hidden: Sequence[int]
    num_critics: int = 2

    @nn.compact
    def __call__(self, obs: Array, action: Array) -> Array:
        ensemble = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            # flax leaves in_axes unannotated, so its default 0 types it as int; None (broadcast) is valid
            in_axes=None,  # pyright: ignore[reportArgumentType]
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(self.hidden)(obs, action)


class DeterministicActor(nn.Module):
    """DDPG/TD3 actor `mu(s) = tanh(f(s))` in [-1, 1] (Eq. 1)."""

    hidden: Sequence[int]
    action_dim: int

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        return jnp.tanh(MLP(self.hidden, self.action_dim)(obs))


class GaussianActor(nn.Module):
    """Pre-squash Gaussian head: (mean [B, d], log_std [B, d]).

    With `learn_std=False` the log-std is not an output at all: SVG(0) uses a
    fixed noise scale (Eq. 2-3), supplied by the algorithm.
    """

    hidden: Sequence[int]
    action_dim: int
    learn_std: bool = True

    @nn.compact
    def __call__(self, obs: Array) -> tuple[Array, Array]:
        out = MLP(self.hidden, 2 * self.action_dim if self.learn_std else self.action_dim)(obs)
        if not self.learn_std:
            return out, jnp.zeros_like(out)
        mean, raw_log_std = jnp.split(out, 2, axis=-1)
        return mean, squash_log_std(raw_log_std)


class DiscreteQ(nn.Module):
    """Q(s, .) over all actions -> [num_critics, B, A] (num_critics stacked with nn.vmap)."""

    hidden: Sequence[int]
    num_actions: int
    num_critics: int = 1
    torso: str = "mlp"  # "cnn": image observations [B, H, W, C] (see CNNHead)

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        ensemble = nn.vmap(
            _head(self.torso),
            variable_axes={"params": 0},
            split_rngs={"params": True},
            # flax leaves in_axes unannotated, so its default 0 types it as int; None (broadcast) is valid
            in_axes=None,  # pyright: ignore[reportArgumentType]
            out_axes=0,
            axis_size=self.num_critics,
        )
        return ensemble(self.hidden, self.num_actions)(obs)


class CategoricalActor(nn.Module):
    """Logits of pi(.|s) -> [B, A]."""

    hidden: Sequence[int]
    num_actions: int
    torso: str = "mlp"  # "cnn": image observations [B, H, W, C] (see CNNHead)

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        return _head(self.torso)(self.hidden, self.num_actions)(obs)
