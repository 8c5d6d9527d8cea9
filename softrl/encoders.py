"""Observation encoders: the torso that turns an observation into features for Q networks and actors.

`MinAtarCNN` is the network of the MinAtar paper (Young & Tian 2019, "MinAtar: An Atari-Inspired Testbed for
Thorough and Reproducible Reinforcement Learning Experiments", Sec. 5): one convolution with 16 filters of
3x3, stride 1, no padding, ReLU, flatten, a dense layer of 128 units, ReLU. The paper's Q head (a dense layer
with one output per action) is not part of the torso: the agents put their own heads on the features.

`choose_encoder` picks the torso from the observation shape: a CNN for small images [H, W, C] (MinAtar's
10x10xC frames), an MLP on the flattened observation otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

EncoderKind = Literal["auto", "mlp", "cnn"]
ENCODERS = ("auto", "mlp", "cnn")
# "auto" picks the CNN for images no larger than this on each side: the MinAtar torso has no striding or
# pooling, so its dense layer grows with H*W (10x10 -> 1024 inputs; 84x84 would be 107,584).
MAX_AUTO_SIDE = 32


class MinAtarCNN(nn.Module):
    """The MinAtar paper's torso: Conv(16, 3x3, stride 1, VALID) -> ReLU -> flatten -> Dense(128) -> ReLU.

    Takes obs [..., H, W, C] (any number of leading batch dims, any dtype; MinAtar's are bool) and returns
    features [..., features]. H and W must be >= kernel.
    """

    filters: int = 16
    kernel: int = 3
    features: int = 128

    @nn.compact
    def __call__(self, obs: Array) -> Array:
        if obs.ndim < 3:
            raise ValueError(f"MinAtarCNN needs observations [..., H, W, C], got shape {obs.shape}")
        lead = obs.shape[:-3]  # batch dims, flattened into one for the convolution
        x = jnp.asarray(obs, jnp.float32).reshape((-1, *obs.shape[-3:]))  # [B, H, W, C]
        x = nn.Conv(self.filters, (self.kernel, self.kernel), strides=(1, 1), padding="VALID", name="conv")(x)
        x = nn.relu(x)  # [B, H-k+1, W-k+1, filters]
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(self.features, name="dense")(x))  # [B, features]
        return x.reshape((*lead, self.features))


def _is_small_image(obs_shape: Sequence[int], kernel: int = 3) -> bool:
    return len(obs_shape) == 3 and all(kernel <= side <= MAX_AUTO_SIDE for side in obs_shape[:2])


def choose_encoder(obs_shape: Sequence[int], requested: str = "auto") -> str:
    """The torso for observations of `obs_shape`: "cnn" or "mlp".

    "auto": "cnn" for 3-D observations [H, W, C] with 3 <= H, W <= MAX_AUTO_SIDE (MinAtar's frames), "mlp"
    (on the flattened observation) otherwise. "mlp" is always possible. "cnn" on anything that is not such an
    image is a ValueError naming the shape.
    """
    shape = tuple(int(s) for s in obs_shape)
    if requested not in ENCODERS:
        raise ValueError(f"unknown encoder {requested!r}; choose one of {', '.join(ENCODERS)}")
    if requested == "mlp":
        return "mlp"
    if requested == "cnn":
        if len(shape) != 3 or min(shape[:2]) < 3:
            raise ValueError(f"--encoder cnn needs image observations [H, W, C] with H, W >= 3; this environment's "
                             f"observations have shape {shape} (use --encoder mlp or auto)")
        return "cnn"
    return "cnn" if _is_small_image(shape) else "mlp"


__all__ = ["ENCODERS", "MAX_AUTO_SIDE", "EncoderKind", "MinAtarCNN", "choose_encoder"]
