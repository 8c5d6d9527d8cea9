"""Float64 for the exact tabular solvers without switching the whole process to x64.

JAX computes in float32 unless `jax_enable_x64` is set, and setting it process-wide would turn the
deep agents (networks, replay buffers) into float64 too. The tabular solvers instead run inside
`jax.enable_x64(True)`, a thread-local context: arrays created inside it are float64, and jit keys its
caches on the x64 flag and the argument dtypes, so a solver compiled for float64 is never reused for
float32 inputs or the other way round. Outside the context nothing changes.

With float32, soft value iteration at gamma = 0.99 stops a few `eps * max|Q| / (1 - gamma)` from the
fixed point (eps ~ 1.2e-7), i.e. ~1e-5 relative; float64 (eps ~ 2.2e-16) honours `tol` down to 1e-12.

Where results go: float64 results come back as JAX arrays when the caller is in x64 mode, and as numpy
float64 arrays otherwise (a float64 JAX array outside x64 mode is truncated to float32 by the next
`jnp` operation, with warnings; numpy keeps the digits and converts silently when passed on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

T = TypeVar("T")


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """JAX arrays created inside the block are float64 (x64 mode, this thread only)."""
    with jax.enable_x64(True):
        yield


def x64_enabled() -> bool:
    """Whether JAX currently creates float64 arrays (process-wide flag or an enclosing `float64()`)."""
    # a flag jax.config sets at runtime, absent from its type stub
    return bool(jax.config.jax_enable_x64)  # pyright: ignore[reportAttributeAccessIssue]


def as_float64(x: Any) -> Any:
    """Concrete float input as a float64 array JAX can hold in the current mode, else as numpy float64.

    Used by the MDP constructors so they keep the user's numbers exactly: numpy float64 outside x64
    (it converts silently to float32 where float32 code uses it), a JAX float64 array under x64.
    Tracers are returned in JAX's current float dtype.
    """
    if isinstance(x, Tracer):
        return jnp.asarray(x, dtype=jnp.zeros((), dtype=float).dtype)
    return jnp.asarray(x, jnp.float64) if x64_enabled() else np.asarray(x, np.float64)


def _is_float(x: Any) -> bool:
    return isinstance(x, float) or (hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating))


def cast_floats(tree: Any, dtype: Any) -> Any:
    """`tree` with every floating leaf (arrays and Python floats) as a JAX array of `dtype`.

    Integers, bools, keys and None are left alone, so static arguments (`max_iters`, `steps`) stay
    Python ints. Works on `FiniteMDP` and `SparseMDP` (pytrees) without re-validating them.
    """
    return jax.tree.map(lambda x: jnp.asarray(x, dtype) if _is_float(x) else x, tree)


def _traced(tree: Any) -> bool:
    return any(isinstance(x, Tracer) for x in jax.tree.leaves(tree))


def solve_in(dtype: Any, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` with every floating input cast to `dtype`, computed in `dtype`.

    The tabular solvers call their jitted bodies through this; `dtype` is their `dtype=` argument.
    - `dtype=jnp.float64` (their default), called eagerly: runs under `float64()`; results are JAX
      float64 arrays if the caller is in x64 mode, numpy float64 arrays otherwise (module docstring).
    - `dtype=jnp.float32`: plain float32 JAX, JAX arrays out; the process mode is untouched.
    - Inside `jit`/`vmap` (traced inputs) the mode cannot change mid-trace: it computes in `dtype` as
      far as the enclosing trace allows (float32 unless that trace runs in x64 mode, e.g. in `float64()`).
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a float dtype such as jnp.float64 or jnp.float32, got {dtype}")
    if dtype != jnp.float64 or _traced((args, kwargs)):
        args, kwargs = cast_floats((args, kwargs), jax.dtypes.canonicalize_dtype(dtype))
        return fn(*args, **kwargs)
    to_host = not x64_enabled()
    with float64():
        args, kwargs = cast_floats((args, kwargs), dtype)
        out = fn(*args, **kwargs)
        return jax.tree.map(np.asarray, out) if to_host else out
