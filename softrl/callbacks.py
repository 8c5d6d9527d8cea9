"""Callbacks: watch a run while it trains, and stop it early.

`softrl.train(cfg, callbacks=[f, ...])` calls every `f(view)` after each log (every `log_every` env steps),
each evaluation (every `eval_every` steps and the final one) and each checkpoint written while training
(not the step-0 one written when the run is created), in that order within a step. `view` is a
read-only `RunView`.

To stop the run, a callback returns `softrl.STOP` (any other return value, None included, continues).
The run then writes a checkpoint at that step (unless it just wrote one) and `train` returns with
`TrainResult.stopped_at` set; `softrl train --resume RUN_DIR` continues it to `total_steps`, exactly as
if it had not stopped. A STOP during the final checkpoint or evaluation changes nothing: the run is done.

A callback that raises stops the run at once with a `CallbackError` that names it and the error; the
checkpoints already written stay as they are (the newest one can be resumed).

`StopAtReturn(x)` is the built-in early stop (`softrl train --stop-at-return X`): it stops after the
first evaluation whose median over seeds of the mean evaluation return is >= x.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

EventKind = Literal["log", "eval", "checkpoint"]


class _Stop:
    """The value a callback returns to ask the run to stop (`softrl.STOP`)."""

    _instance: _Stop | None = None

    def __new__(cls) -> _Stop:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "softrl.STOP"


STOP = _Stop()


class CallbackError(RuntimeError):
    """A callback raised; the run stopped and its checkpoints were kept."""


@dataclasses.dataclass(frozen=True)
class RunView:
    """What a callback sees. Nothing in it can change the run: numpy arrays are read-only, JAX arrays immutable.

    kind: 'log', 'eval' or 'checkpoint'. step: env steps done by each seed.
    metrics: for 'log', the latest training metrics, each a numpy array [num_seeds] ({} before the first update);
        for the other kinds, {}.
    eval_returns: for 'eval', the undiscounted returns [num_seeds, eval_episodes] of that evaluation
        (deterministic policy, eval env i seeded 10**6 + seeds[i]); else None.
    states: the agent states, every leaf [num_seeds, ...] (JAX arrays).
    run_dir: the run directory. seeds: the seed of each row.
    checkpoint_step: the step of the newest checkpoint on disk.
    """

    kind: EventKind
    step: int
    metrics: Mapping[str, np.ndarray]
    eval_returns: np.ndarray | None
    states: Any
    run_dir: Path
    seeds: tuple[int, ...]
    checkpoint_step: int | None

    @property
    def median_return(self) -> float | None:
        """For 'eval': the median over seeds of the mean return over episodes; else None."""
        if self.eval_returns is None:
            return None
        return float(np.median(self.eval_returns.mean(axis=1)))


Callback = Callable[[RunView], Any]


def _read_only(x: Any) -> np.ndarray:
    a = np.array(x, copy=True)
    a.flags.writeable = False
    return a


def make_view(kind: EventKind, step: int, *, states: Any, run_dir: Path, seeds: list[int],
              checkpoint_step: int | None, metrics: Mapping[str, Any] | None = None,
              eval_returns: np.ndarray | None = None) -> RunView:
    """A RunView whose numpy parts are read-only copies."""
    host = types.MappingProxyType({k: _read_only(v) for k, v in (metrics or {}).items()})
    returns = None if eval_returns is None else _read_only(eval_returns)
    return RunView(kind, int(step), host, returns, states, Path(run_dir), tuple(seeds), checkpoint_step)


def _name(callback: Callback) -> str:
    return getattr(callback, "__qualname__", None) or type(callback).__name__


def notify(callbacks: tuple[Callback, ...] | list[Callback], view: RunView, resume_hint: str) -> bool:
    """Call every callback with `view` (all of them, even after one asks to stop). True if one returned STOP.
    A callback that raises becomes a one-line CallbackError (the original error is its `__cause__`)."""
    stop = False
    for callback in callbacks:
        try:
            stop |= callback(view) is STOP
        except Exception as err:  # noqa: BLE001 - any error of user code stops the run the same way
            reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
            kept = (f"the checkpoint of step {view.checkpoint_step} is kept" if view.checkpoint_step is not None
                    else "no checkpoint was written")
            raise CallbackError(
                f"callback {_name(callback)} raised {type(err).__name__}{': ' + reason if reason else ''} "
                f"(at the {view.kind} of step {view.step}); the run stopped and {kept}. {resume_hint}") from err
    return stop


@dataclasses.dataclass(frozen=True)
class StopAtReturn:
    """Stop once the median over seeds of the mean evaluation return reaches `threshold`
    (`softrl train --stop-at-return X`)."""

    threshold: float

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not math.isfinite(self.threshold):
            raise ValueError(f"--stop-at-return must be a finite number, got {self.threshold!r}")

    def __call__(self, view: RunView) -> Any:
        median = view.median_return
        if median is not None and median >= self.threshold:
            return STOP
        return None


__all__ = ["STOP", "Callback", "CallbackError", "RunView", "StopAtReturn", "make_view", "notify"]
