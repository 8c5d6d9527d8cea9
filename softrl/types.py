"""Shared containers. One name per concept: obs, action, reward, next_obs, terminated, truncated."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

Array = jax.Array
Params = Any
Metrics = dict[str, Array]


class Transition(NamedTuple):
    """One environment step, as stored in replay.

    `terminated` (a true terminal state) cuts the bootstrap; `truncated` (a time
    limit) does not. We never store an ambiguous `done`.
    Shapes for a batch: obs/next_obs [B, *obs_shape], action [B, *act_shape],
    reward/terminated/truncated [B].
    """

    obs: Array
    action: Array
    reward: Array
    next_obs: Array
    terminated: Array
    truncated: Array
