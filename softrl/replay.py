"""A pure ring buffer: `init / add / sample`, jittable and vmappable over seeds.

The buffer is a pytree of fixed-size arrays, so `jax.vmap` over a leading seed axis
gives every seed its own buffer, and `jit(..., donate_argnums=...)` updates it in
place instead of copying it each step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from softrl.types import Transition

Array = jax.Array


class Buffer(NamedTuple):
    data: Transition  # every leaf: [capacity, ...]
    ptr: Array  # int32 []: next slot to write
    size: Array  # int32 []: number of valid slots (<= capacity)


def init(capacity: int, example: Transition) -> Buffer:
    """An empty buffer whose slots look like `example` (one unbatched transition)."""
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)
    return Buffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buffer: Buffer, transition: Transition) -> Buffer:
    """Write one transition at `ptr`, overwriting the oldest once full."""
    cap = buffer.data.reward.shape[0]
    data = jax.tree.map(lambda d, x: d.at[buffer.ptr].set(x), buffer.data, transition)
    return Buffer(data, (buffer.ptr + 1) % cap, jnp.minimum(buffer.size + 1, cap))


def sample(buffer: Buffer, key: Array, batch_size: int) -> Transition:
    """Uniform sample with replacement from the valid slots. Returns leaves [batch_size, ...]."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)


def add_lockstep(buffer: Buffer, transition: Transition) -> Buffer:
    """`vmap(add)` for seeds that step in lockstep (every seed's `ptr` is equal), done as one in-place slice write.

    buffer leaves: [N, capacity, ...]; transition leaves: [N, ...]. Under `vmap`, `add`'s
    per-seed index turns into a masked select over the *whole* buffer (O(capacity) per
    step); a shared index keeps the write O(1).
    """
    ptr = buffer.ptr[0]
    cap = buffer.data.reward.shape[1]
    data = jax.tree.map(
        lambda d, x: jax.lax.dynamic_update_slice_in_dim(d, x[:, None].astype(d.dtype), ptr, axis=1),
        buffer.data,
        transition,
    )
    return Buffer(data, (buffer.ptr + 1) % cap, jnp.minimum(buffer.size + 1, cap))


def add_lockstep_many(buffer: Buffer, transition: Transition) -> Buffer:
    """K transitions per seed at once (`--num-envs K`), for seeds in lockstep: leaves [N, K, ...] go to slots
    `ptr, ..., ptr + K - 1` (mod capacity) of every seed's buffer, env j's transition at `ptr + j`."""
    ptr = buffer.ptr[0]
    cap = buffer.data.reward.shape[1]
    k = transition.reward.shape[1]
    idx = (ptr + jnp.arange(k)) % cap  # [K]
    data = jax.tree.map(lambda d, x: d.at[:, idx].set(x.astype(d.dtype)), buffer.data, transition)
    return Buffer(data, (buffer.ptr + k) % cap, jnp.minimum(buffer.size + k, cap))
