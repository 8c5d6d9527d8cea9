"""Sweep specifications: parse `--grid NAME=V1,V2` / `NAME=loguniform(a,b)` / TOML, validate, expand to trials.

A sweep point is one full hyperparameter setting. Points are grouped into trials: a trial fixes everything
that changes the compiled program or the environment (algorithm, env, network sizes, batch size, auto vs
fixed alpha, and every loop setting), and holds a list of agents that differ only in values that live in
the agent state (`softrl.agents.ddpg.Hypers`, log-alpha, and the Adam learning rates, which
`softrl.agents.base.adam` keeps in the optimiser state through `optax.inject_hyperparams`). Those agents
are vmapped together with the seeds into one program (`softrl.packed.train_packed`).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import numpy as np

from softrl.config import AgentConfig, is_jax_env
from softrl.loop import TrainConfig

# Values that live in the agent state, so that agents differing only in them can share one compiled program.
PACKABLE = ("gamma", "tau", "reward_scale", "target_entropy", "init_alpha", "lr", "alpha_lr", "explore_std",
            "target_noise", "target_noise_clip", "actor_std")
# TrainConfig fields a sweep sets itself, or that do not describe what is trained.
NOT_SWEEPABLE = ("seed", "seeds", "run_dir", "progress", "tensorboard", "agent")
DISTRIBUTIONS = ("loguniform", "uniform", "choice")

AGENT_FIELDS = {f.name for f in dataclasses.fields(AgentConfig)}
TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)} - set(NOT_SWEEPABLE)
SWEEPABLE = sorted(AGENT_FIELDS | TRAIN_FIELDS)


@dataclasses.dataclass(frozen=True)
class Dist:
    """A random-search distribution: loguniform(a, b), uniform(a, b) or choice(v1, v2, ...)."""

    kind: str
    args: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.args[int(rng.integers(len(self.args)))]
        a, b = self.args
        if self.kind == "uniform":
            return float(rng.uniform(a, b))
        return float(math.exp(rng.uniform(math.log(a), math.log(b))))

    def __str__(self) -> str:
        return f"{self.kind}({', '.join(map(str, self.args))})"


# ----- values --------------------------------------------------------------------------------------------


def _field_type(name: str) -> Any:
    owner = AgentConfig if name in AGENT_FIELDS else TrainConfig
    return typing.get_type_hints(owner)[name]


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    """(T, True) for `T | None`, else (tp, False)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return tp, False


def _takes_reals(name: str) -> bool:
    return name == "alpha" or _strip_optional(_field_type(name))[0] is float


def check_name(name: str) -> None:
    if name in NOT_SWEEPABLE:
        raise ValueError(f"{name!r} cannot be swept (use --seeds/--seed for seeds; the sweep sets run dirs)")
    if name not in AGENT_FIELDS and name not in TRAIN_FIELDS:
        close = difflib.get_close_matches(name, SWEEPABLE, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(SWEEPABLE)}"
        raise ValueError(f"unknown hyperparameter {name!r}{hint}")


def coerce(name: str, value: Any) -> Any:
    """`value` (a CLI string or a TOML value) as the type of config field `name`; ValueError if it is not one."""
    tp, optional = _strip_optional(_field_type(name))
    if optional and (value is None or (isinstance(value, str) and value.lower() == "none")):
        return None
    try:
        return _coerce(tp, typing.get_args(tp), value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r}: expected {_type_name(tp)}") from None


def _coerce(tp: Any, args: tuple, value: Any) -> Any:
    if isinstance(value, bool) and tp is not bool:
        raise TypeError
    if tp is float:
        out = float(value)
        if not math.isfinite(out):
            raise ValueError
        return out
    if tp is int:
        out = float(value) if isinstance(value, str) else value
        if not float(out).is_integer():
            raise ValueError
        return int(out)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ValueError
    if typing.get_origin(tp) is tuple:
        parts = value.split("x") if isinstance(value, str) else list(typing.cast(Iterable, value))
        return tuple(_coerce(int, (), p) for p in parts)
    if typing.get_origin(tp) is typing.Literal:
        if value not in args:
            raise ValueError
        return value
    if tp is str:
        return value if isinstance(value, str) else repr(float(value)) if isinstance(value, float) else str(value)
    raise TypeError


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "integers like 256x256"
    return getattr(tp, "__name__", str(tp))


def parse_values(text: str) -> list[str]:
    """'a,b,c' -> ['a', 'b', 'c'], keeping commas inside parentheses."""
    return [v.strip() for v in re.split(r",(?![^()]*\))", text) if v.strip()]


def parse_dist(name: str, text: str) -> Dist | None:
    """`loguniform(a,b)`, `uniform(a,b)`, `choice(v1,...)`, or None if `text` is not a distribution."""
    m = re.fullmatch(r"\s*(\w+)\((.*)\)\s*", text)
    if m is None or m.group(1) not in DISTRIBUTIONS:
        if m is not None:
            raise ValueError(f"{name}: unknown distribution {m.group(1)!r}; use {', '.join(DISTRIBUTIONS)}")
        return None
    kind, raw = m.group(1), parse_values(m.group(2))
    if kind == "choice":
        if not raw:
            raise ValueError(f"{name}: choice() needs at least one value")
        return Dist(kind, tuple(coerce(name, v) for v in raw))
    if len(raw) != 2:
        raise ValueError(f"{name}: {kind}(a, b) takes two numbers, got {len(raw)}")
    try:
        a, b = (float(v) for v in raw)
    except ValueError:
        raise ValueError(f"{name}: {kind}(a, b) takes two numbers, got {text.strip()!r}") from None
    if not a < b or (kind == "loguniform" and a <= 0):
        raise ValueError(f"{name}: {kind}({a}, {b}) needs {'0 < ' if kind == 'loguniform' else ''}a < b")
    if not _takes_reals(name):
        raise ValueError(f"{name}: {kind}() samples real numbers; {name} takes {_type_name(_field_type(name))}")
    return Dist(kind, (a, b))


def parse_grid_item(item: str) -> tuple[str, list[Any] | Dist]:
    """'NAME=V1,V2' -> (name, [values]); 'NAME=loguniform(a,b)' -> (name, Dist)."""
    if "=" not in item:
        raise ValueError(f"--grid takes NAME=V1,V2,... or NAME=loguniform(a,b), got {item!r}")
    name, text = (s.strip() for s in item.split("=", 1))
    name = name.replace("-", "_")
    check_name(name)
    dist = parse_dist(name, text)
    if dist is not None:
        return name, dist
    values = parse_values(text)
    if not values:
        raise ValueError(f"--grid {name}= has no values")
    return name, [coerce(name, v) for v in values]


# ----- the spec --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """Everything that defines a sweep; two sweeps with equal specs are the same sweep."""

    algo: str
    envs: tuple[str, ...]
    seeds: int
    seed: int
    total_steps: int
    grid: dict[str, list[Any]]  # name -> values (crossed)
    random: dict[str, Dist]  # name -> distribution (sampled `samples` times)
    samples: int
    sample_seed: int
    base: dict[str, Any]  # TrainConfig fields (with 'agent' as a dict) every trial starts from

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["random"] = {k: str(v) for k, v in self.random.items()}
        d["envs"] = list(self.envs)
        return d

    @classmethod
    def from_json(cls, d: dict) -> SweepSpec:
        random = {k: parse_dist(k, v) for k, v in d["random"].items()}
        grid = {k: [coerce(k, v) for v in vs] for k, vs in d["grid"].items()}
        return cls(**{**d, "envs": tuple(d["envs"]), "grid": grid, "random": random})  # type: ignore[arg-type]


def make_spec(algo: str, envs: Iterable[str], seeds: int, seed: int, total_steps: int, grid: dict[str, Any],
              samples: int, sample_seed: int, base: TrainConfig) -> SweepSpec:
    """Validate and normalise. `grid` maps names to value lists or Dists (lists are crossed, Dists sampled)."""
    lists = {k: v for k, v in grid.items() if not isinstance(v, Dist)}
    dists = {k: v for k, v in grid.items() if isinstance(v, Dist)}
    envs = tuple(envs)
    if "env" in lists:
        envs = tuple(lists.pop("env"))
    if not envs:
        raise ValueError("give at least one --env")
    if dists and samples < 1:
        raise ValueError(f"random-search values ({', '.join(dists)}) need --samples K >= 1")
    if samples and not dists:
        raise ValueError("--samples K needs at least one NAME=loguniform(a,b)/uniform(a,b)/choice(...) value")
    base_dict = dataclasses.asdict(dataclasses.replace(base, algo=algo, seeds=seeds, seed=seed,
                                                       total_steps=total_steps, progress=False, run_dir=None))
    spec = SweepSpec(algo, envs, seeds, seed, total_steps, lists, dists, samples, sample_seed, base_dict)
    for env in envs:
        check_env(env)
    for point in points(spec):
        config_for(spec, point).validate()
    return spec


def check_env(env: str) -> None:
    """ValueError (one line) for an id that is neither a gymnasium env nor a `jax/` env (softrl.jaxenv)."""
    import gymnasium as gym

    if is_jax_env(env):  # trained in the on-device loop (softrl.packed)
        from softrl import jaxenv

        jaxenv.make(env)
        return
    try:
        gym.spec(env)
    except Exception as err:  # gymnasium raises several error types for unknown ids
        raise ValueError(f"unknown environment {env!r}: {str(err).splitlines()[0]}") from None


def points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every hyperparameter setting: the grid crossed with `samples` random draws, envs crossed in."""
    names = list(spec.grid)
    grid_points = [dict(zip(names, vs)) for vs in itertools.product(*(spec.grid[n] for n in names))]
    rng = np.random.default_rng(spec.sample_seed)
    draws = [{n: coerce(n, d.sample(rng)) for n, d in spec.random.items()} for _ in range(spec.samples)] or [{}]
    return [{"env": env, **g, **r} for env in spec.envs for g in grid_points for r in draws]


def config_for(spec: SweepSpec, point: dict[str, Any], run_dir: str | None = None) -> TrainConfig:
    """The TrainConfig of one sweep point; ValueError (naming the point) if a value is out of range."""
    agent = {**spec.base["agent"], **{k: v for k, v in point.items() if k in AGENT_FIELDS}}
    agent["hidden"] = tuple(agent["hidden"])
    train = {**spec.base, **{k: v for k, v in point.items() if k in TRAIN_FIELDS}, "run_dir": run_dir}
    cfg = TrainConfig(**{**train, "agent": AgentConfig(**agent)})
    try:
        cfg.validate()
    except ValueError as err:
        shown = ", ".join(f"{k}={v}" for k, v in point.items() if k != "env")
        raise ValueError(f"{err} (sweep point {shown or 'base'} on {point['env']})") from None
    return cfg


# ----- trials ----------------------------------------------------------------------------------------------


def is_packable(name: str, value: Any) -> bool:
    """Can agents differing in this value share one compiled program? alpha: only fixed numbers can."""
    if name == "alpha":
        return value != "auto"
    if name in ("target_entropy", "alpha_lr") and value is None:  # 'the default' is resolved at build time
        return False
    return name in PACKABLE


def notes(spec: SweepSpec) -> list[str]:
    """One line per swept field that makes separate trials."""
    out = []
    swept = {**spec.grid, **spec.random}
    for name, values in swept.items():
        vals = values.args if isinstance(values, Dist) else values
        if len(vals) < 2 and not isinstance(values, Dist):
            continue
        if name == "alpha" and any(v == "auto" for v in vals) and any(v != "auto" for v in vals):
            out.append("note: alpha mixes 'auto' and fixed values: auto and fixed alpha make separate trials "
                       "(fixed values are packed together)")
        elif not all(is_packable(name, v) for v in vals):
            out.append(f"note: {name} is not stored in the agent state, so each of its values makes separate trials")
    if len(spec.envs) > 1:
        out.append("note: each environment makes separate trials")
    return out


@dataclasses.dataclass(frozen=True)
class Trial:
    """One algo + env + non-packable settings, and the packable settings of its agents (each with all seeds)."""

    name: str
    settings: dict[str, Any]  # non-packable values of this trial (env included)
    agents: list[dict[str, Any]]  # packable values of each agent

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def trials(spec: SweepSpec) -> list[Trial]:
    """Group points by their non-packable values, keeping first-seen order."""
    groups: dict[str, tuple[dict, list[dict]]] = {}
    for point in points(spec):
        fixed = {k: v for k, v in point.items() if not is_packable(k, v)}
        if point.get("alpha", spec.base["agent"]["alpha"]) == "auto":
            fixed["alpha"] = "auto"
        packed = {k: v for k, v in point.items() if k not in fixed}
        key = repr(sorted(fixed.items()))
        groups.setdefault(key, (fixed, []))[1].append(packed)
    return [Trial(f"trial_{i:03d}", fixed, agents) for i, (fixed, agents) in enumerate(groups.values())]


def split_trials(ts: list[Trial], slots: int) -> list[Trial]:
    """Split packed trials along their hyperparameter settings (each keeps all its seeds) until there are
    `slots` trials, or every trial holds one setting; renumbered in order. Pieces differ in size by at most one
    setting. Fewer, bigger trials when there are already `slots` or more."""
    if len(ts) >= slots:
        return ts
    pieces = -(-slots // len(ts))  # per trial
    out: list[tuple[dict, list[dict]]] = []
    for t in ts:
        n = min(pieces, len(t.agents))
        bounds = [round(i * len(t.agents) / n) for i in range(n + 1)]
        out += [(t.settings, t.agents[a:b]) for a, b in zip(bounds, bounds[1:])]
    return [Trial(f"trial_{i:03d}", settings, agents) for i, (settings, agents) in enumerate(out)]
