"""Finite (tabular) MDPs as frozen JAX pytrees.

A `FiniteMDP` holds the dynamics `P[s, a, s']`, the expected reward `R[s, a]`,
the discount `gamma`, the start distribution `p0[s]` (Eq. 29 of Lecture 17),
an optional set of terminal states and an optional finite horizon `H`.

Conventions shared by every tabular module:

- Float arrays keep the user's numbers exactly, in float64: JAX arrays when x64
  is enabled, numpy arrays otherwise (JAX cannot hold float64 then; numpy
  converts silently where float32 JAX code uses them). The solvers compute in
  float64 by default without switching the process to x64
  (`softrl.tabular.precision`).
- `P`, `R`, `gamma`, `p0` and `terminal` are pytree leaves, so solvers can be
  `jit`-ed and `vmap`-ed over them (e.g. over `gamma` via `mdp.replace`).
  `horizon` is static (pytree auxiliary data): it fixes array shapes.
- Terminal states are absorbing with zero reward. Reaching one ends the
  episode: the solvers give them value 0 (no reward and no entropy bonus is
  collected after termination), which is exactly what a TD target that cuts
  the bootstrap on `terminated` (`softrl.backups.td_target`) estimates.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from softrl.tabular.precision import as_float64

Array = jax.Array

# Probability rows are checked in float64 numpy on the user's input, so this
# tolerance only has to absorb the rounding of a float32 input.
_PROB_ATOL = 1e-5


def _is_traced(x: Any) -> bool:
    return isinstance(x, Tracer)


def _validate(P, R, gamma, p0, terminal, horizon) -> None:
    """Raises ValueError on malformed concrete inputs; traced leaves are skipped."""
    if horizon is not None and (
        isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1
    ):
        raise ValueError(f"horizon must be a positive int or None, got {horizon!r}")

    shape_p = np.shape(P)
    if len(shape_p) != 3 or shape_p[0] != shape_p[2] or 0 in shape_p:
        raise ValueError(f"P must have shape [S, A, S] with S, A >= 1, got {shape_p}")
    if not _is_traced(P):
        P_np = np.asarray(P, dtype=np.float64)
        if np.any(~np.isfinite(P_np)):
            raise ValueError("P contains non-finite entries")
        if np.any(P_np < 0):
            s, a, t = np.argwhere(P_np < 0)[0]
            raise ValueError(
                f"P has negative probability P[s={s}, a={a}, s'={t}] = {P_np[s, a, t]:.6g}"
            )
        sums = P_np.sum(-1)  # [S, A]
        bad = np.abs(sums - 1.0) > _PROB_ATOL
        if np.any(bad):
            s, a = np.argwhere(bad)[0]
            raise ValueError(
                f"rows of P must sum to 1: P[s={s}, a={a}, :] sums to {sums[s, a]:.8g} "
                f"({int(bad.sum())} bad row(s))"
            )
    S, A = shape_p[0], shape_p[1]

    if np.shape(R) != (S, A):
        raise ValueError(f"R must have shape [S, A] = {(S, A)} to match P, got {np.shape(R)}")
    if not _is_traced(R) and np.any(~np.isfinite(np.asarray(R, dtype=np.float64))):
        raise ValueError("R contains non-finite entries")

    if np.shape(p0) != (S,):
        raise ValueError(f"p0 must have shape [S] = {(S,)} to match P, got {np.shape(p0)}")
    if not _is_traced(p0):
        p0_np = np.asarray(p0, dtype=np.float64)
        if np.any(p0_np < 0):
            raise ValueError(f"p0 has negative probability at state {int(np.argmin(p0_np))}")
        if abs(p0_np.sum() - 1.0) > _PROB_ATOL:
            raise ValueError(f"p0 must sum to 1, sums to {p0_np.sum():.8g}")

    if np.shape(gamma) != ():
        raise ValueError(f"gamma must be a scalar, got shape {np.shape(gamma)}")
    if not _is_traced(gamma):
        g = float(np.asarray(gamma))
        if horizon is None and not 0.0 <= g < 1.0:
            raise ValueError(f"gamma must lie in [0, 1) for an infinite-horizon MDP (horizon=None), got {g}")
        if horizon is not None and not 0.0 <= g <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1] for a finite-horizon MDP, got {g}")

    if np.shape(terminal) != (S,):
        raise ValueError(f"terminal must have shape [S] = {(S,)}, got {np.shape(terminal)}")
    if not (_is_traced(terminal) or _is_traced(P) or _is_traced(R)):
        term = np.asarray(terminal, dtype=bool)
        P_np = np.asarray(P, dtype=np.float64)
        R_np = np.asarray(R, dtype=np.float64)
        for s in np.flatnonzero(term):
            if np.any(np.abs(P_np[s, :, s] - 1.0) > _PROB_ATOL):
                raise ValueError(f"terminal state {s} must be absorbing: P[{s}, a, {s}] must be 1 for all a")
            if np.any(R_np[s] != 0):
                raise ValueError(f"terminal state {s} must have zero reward R[{s}, :], got {R_np[s]}")


@jax.tree_util.register_pytree_node_class
class FiniteMDP:
    """A finite MDP `(P, R, gamma, p0)`, optionally finite-horizon (frozen pytree).

    Args:
      P: [S, A, S] transition probabilities `p(s' | s, a)`; rows sum to 1.
      R: [S, A] expected reward `r(s, a)`.
    (P, R, gamma and p0 are stored in float64; see the module docstring.)
      gamma: scalar discount; in [0, 1) when `horizon is None`, in [0, 1] otherwise.
      p0: [S] start-state distribution `p_0(s_0)` (Eq. 29).
      horizon: None (infinite horizon, discounted) or the number of decisions H.
      terminal: optional [S] bool; terminal states must be absorbing with zero
        reward, and have value 0 in every solver (the episode is over).

    Construction validates concrete inputs and raises `ValueError` naming the
    offending state/action. Traced inputs (inside `jit`/`vmap`) cannot be
    inspected and are not checked, so `mdp.replace(gamma=traced)` works.
    """

    __slots__ = ("P", "R", "gamma", "horizon", "p0", "terminal")

    P: Array  # [S, A, S]
    R: Array  # [S, A]
    gamma: Array  # []
    p0: Array  # [S]
    terminal: Array  # [S] bool
    horizon: int | None

    def __init__(self, P, R, gamma, p0, horizon: int | None = None, terminal=None):
        if terminal is None:
            terminal = np.zeros(np.shape(P)[:1], dtype=bool)
        _validate(P, R, gamma, p0, terminal, horizon)
        object.__setattr__(self, "P", as_float64(P))
        object.__setattr__(self, "R", as_float64(R))
        object.__setattr__(self, "gamma", as_float64(gamma))
        object.__setattr__(self, "p0", as_float64(p0))
        object.__setattr__(self, "terminal", jnp.asarray(terminal, dtype=bool))
        object.__setattr__(self, "horizon", None if horizon is None else int(horizon))

    def __setattr__(self, name, value):
        raise AttributeError(f"FiniteMDP is frozen; use mdp.replace({name}=...)")

    def __delattr__(self, name):
        raise AttributeError("FiniteMDP is frozen")

    # --- pytree protocol: horizon is static, everything else is a leaf -------
    def tree_flatten(self):
        return (self.P, self.R, self.gamma, self.p0, self.terminal), self.horizon

    @classmethod
    def tree_unflatten(cls, horizon, children):
        # Bypass __init__: leaves may be tracers, None (in_axes specs) or sentinels.
        obj = object.__new__(cls)
        for name, value in zip(("P", "R", "gamma", "p0", "terminal"), children, strict=True):
            object.__setattr__(obj, name, value)
        object.__setattr__(obj, "horizon", horizon)
        return obj

    # --- convenience ---------------------------------------------------------
    def replace(self, **changes) -> FiniteMDP:
        """A copy with some fields changed, re-validated where concrete."""
        fields = {"P": self.P, "R": self.R, "gamma": self.gamma, "p0": self.p0,
                  "horizon": self.horizon, "terminal": self.terminal}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"unknown FiniteMDP field(s): {sorted(unknown)}")
        fields.update(changes)
        return FiniteMDP(**fields)

    @property
    def num_states(self) -> int:
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        return self.P.shape[1]

    def __repr__(self) -> str:
        return (f"FiniteMDP(S={self.num_states}, A={self.num_actions}, gamma={self.gamma}, "
                f"horizon={self.horizon}, terminal={int(np.sum(np.asarray(self.terminal)))} state(s))"
                if not any(_is_traced(x) for x in (self.gamma, self.terminal))
                else f"FiniteMDP(S={self.num_states}, A={self.num_actions}, horizon={self.horizon}, traced)")
