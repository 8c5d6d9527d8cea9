"""Hyperparameter presets, keyed by algorithm and environment id, in the spirit of rl-zoo's files.

One readable TOML file per algorithm lives next to this module (`dqn.toml`, `sac.toml`, ...). Each holds

- a `[defaults]` table: the algorithm's own defaults, used for environments without a table of their own
  (so the DQN family never falls back to SAC's 256x256 / lr 3e-4 / tau 0.005 / 15k steps), and
- one table per environment id (`["CartPole-v1"]`, `["softrl/MinAtar-Breakout-v1"]`), laid over `[defaults]`.

Every table names where its numbers come from (`source`: the published setting it follows) and how it was
checked (`validated`: the run that validated it, or what is still missing). A table may say
`extends = "OTHER-ENV-ID"` to start from another table of the same file. Every other key must be a field of
`TrainConfig` (budget and schedule: `total_steps`, `learning_starts`, `train_freq`, ...) or of `AgentConfig`
(`hidden`, `lr`, `tau`, ...); keys are checked against those dataclasses when the file is read, so a typo is
an error, not a silently ignored setting. Run logistics (`seed`, `seeds`, `run_dir`, `progress`, ...) are not
preset values: they are the user's choice on every run.

    preset = resolve("dqn", "CartPole-v1")        # Preset(name="dqn/CartPole-v1", source=..., values={...})
    train_fields, agent_fields = apply(preset, {"lr": 5e-4, "seeds": 3})   # flags the user passed win
    cfg = TrainConfig(algo="dqn", env="CartPole-v1", **train_fields, agent=AgentConfig(**agent_fields))
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

from softrl.config import ALGOS, AgentConfig

PRESET_DIR = Path(__file__).resolve().parent
DEFAULTS = "defaults"
META_KEYS = ("source", "validated", "notes", "extends")
# TrainConfig fields that describe one run rather than the problem: never set by a preset.
RUN_FIELDS = frozenset({"algo", "env", "seed", "seeds", "run_dir", "progress", "tensorboard", "cpu_devices",
                        "vmap_updates", "agent", "resume"})


@dataclasses.dataclass(frozen=True)
class Preset:
    """One resolved preset: `values` maps TrainConfig and AgentConfig field names to values."""

    name: str  # "ALGO/ENV-ID", or "ALGO/defaults"
    algo: str
    env: str | None  # None for the algorithm's defaults
    source: str  # the published setting it follows
    validated: str  # the validating run (RESULTS.md), or what is missing
    values: dict[str, Any]
    notes: str = ""

    @property
    def train_values(self) -> dict[str, Any]:
        """The values that are TrainConfig fields."""
        agent = _agent_fields()
        return {k: v for k, v in self.values.items() if k not in agent}

    @property
    def agent_values(self) -> dict[str, Any]:
        """The values that are AgentConfig fields."""
        agent = _agent_fields()
        return {k: v for k, v in self.values.items() if k in agent}


# ----- field checks -----------------------------------------------------------------------------------------


def _train_config_class() -> type:
    # TrainConfig lives in softrl.loop today; look in softrl.config first in case it moves there.
    import softrl.config as config

    moved = getattr(config, "TrainConfig", None)
    if moved is not None:
        return moved
    from softrl.loop import TrainConfig

    return TrainConfig


@functools.cache
def _agent_fields() -> dict[str, Any]:
    return typing.get_type_hints(AgentConfig)


@functools.cache
def _train_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(_train_config_class())
    return {k: t for k, t in hints.items() if k not in RUN_FIELDS}


def _field_type(key: str) -> Any:
    agent, train = _agent_fields(), _train_fields()
    if key in agent:
        return agent[key]
    if key in train:
        return train[key]
    raise KeyError(key)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """`value` (as TOML gives it) as an instance of the field type `tp`, or ValueError naming `where`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _coerce(value, arm, where)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(v, item, where) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a string, got {value!r}")
        return value
    return value  # a field type this checker does not know (added later): passed through unchanged


def check_values(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check every key against TrainConfig/AgentConfig and coerce its value; ValueError naming `where`."""
    out = {}
    for key, value in values.items():
        try:
            tp = _field_type(key)
        except KeyError:
            known = sorted(set(_train_fields()) | set(_agent_fields()))
            raise ValueError(f"{where}: {key!r} is not a TrainConfig or AgentConfig field "
                             f"(preset keys: {', '.join(known)})") from None
        out[key] = _coerce(value, tp, f"{where}: {key}")
    return out


# ----- reading the files ------------------------------------------------------------------------------------


def _table(tables: Mapping[str, Any], key: str, path: Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The table `key` of one file, with its `extends` chain resolved (without `[defaults]`)."""
    if key in seen:
        raise ValueError(f"{path.name}: 'extends' cycle {' -> '.join((*seen, key))}")
    if key not in tables or not isinstance(tables[key], dict):
        raise ValueError(f"{path.name}: table {key!r} (named by 'extends' in {seen[-1]!r}) does not exist")
    table = dict(tables[key])
    parent = table.pop("extends", None)
    if parent is None:
        return table
    return {**_table(tables, parent, path, (*seen, key)), **table}


def _preset(algo: str, env: str | None, tables: Mapping[str, Any], path: Path) -> Preset:
    key = DEFAULTS if env is None else env
    merged = dict(tables.get(DEFAULTS, {}))
    if env is not None:
        merged.update(_table(tables, env, path, ()))
    merged.pop("extends", None)
    meta = {k: merged.pop(k, "") for k in ("source", "validated", "notes")}
    name = f"{algo}/{key}"
    if not meta["source"]:
        raise ValueError(f"{path.name}: [{key}] names no 'source' (every preset says where it came from)")
    values = check_values(merged, f"{path.name} [{key}]")
    return Preset(name=name, algo=algo, env=env, source=str(meta["source"]).strip(),
                  validated=str(meta["validated"]).strip() or "not validated", values=values,
                  notes=str(meta["notes"]).strip())


@functools.cache
def _load_file(algo: str) -> dict[str, Preset]:
    """Every preset of one algorithm, keyed by env id (and `defaults`); {} when it has no file."""
    path = PRESET_DIR / f"{algo}.toml"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        try:
            tables = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path.name}: not valid TOML ({e})") from None
    for key, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"{path.name}: top-level key {key!r} must be a table ([\"ENV-ID\"] or [defaults])")
    out = {DEFAULTS: _preset(algo, None, tables, path)}
    for key in tables:
        if key != DEFAULTS:
            out[key] = _preset(algo, key, tables, path)
    return out


def _lookup_id(env_id: str) -> str:
    # gymnasium's "module:EnvName-vN" form: the part after the colon is the registered id.
    return env_id.rsplit(":", 1)[-1] if ":" in env_id else env_id


# ----- public API -------------------------------------------------------------------------------------------


def list_presets() -> list[Preset]:
    """Every preset of every algorithm, algorithms in `ALGOS` order, each algorithm's defaults first."""
    out: list[Preset] = []
    for algo in ALGOS:
        presets = _load_file(algo)
        out += [presets[k] for k in presets if k == DEFAULTS]
        out += [presets[k] for k in presets if k != DEFAULTS]
    return out


def preset_names() -> list[str]:
    """Names of every preset, "ALGO/ENV-ID" or "ALGO/defaults"."""
    return [p.name for p in list_presets()]


def get_preset(name: str) -> Preset:
    """The preset called `name` ("ALGO/ENV-ID" or "ALGO/defaults"); ValueError listing the names if unknown."""
    algo, _, env = name.partition("/")
    presets = _load_file(algo) if algo in ALGOS else {}
    if env in presets:
        return presets[env]
    raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(preset_names())}")


def resolve(algo: str, env_id: str) -> Preset | None:
    """The preset for `algo` on `env_id`: its own table when the file has one, else the algorithm's defaults.

    None only when `algo` has no preset file at all. Unknown algorithm names raise ValueError.
    """
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    presets = _load_file(algo)
    if not presets:
        return None
    return presets.get(_lookup_id(env_id), presets[DEFAULTS])


def apply(preset: Preset | None, explicit_overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split preset values and the user's explicit flags into (TrainConfig fields, AgentConfig fields).

    `explicit_overrides` holds only what the user passed (flat field names; an `agent.` prefix is accepted),
    and every one of them wins over the preset. Run fields (`seeds`, `run_dir`, ...) pass through to the
    TrainConfig side. An override that is no field of either dataclass is a ValueError.
    """
    agent_names = set(_agent_fields())
    train_names = set(typing.get_type_hints(_train_config_class())) - {"agent"}
    train: dict[str, Any] = {}
    agent: dict[str, Any] = {}
    if preset is not None:
        for key, value in preset.values.items():
            (agent if key in agent_names else train)[key] = value
    for key, value in explicit_overrides.items():
        name = key.removeprefix("agent.")
        if name in agent_names:
            agent[name] = value
        elif name in train_names:
            train[name] = value
        else:
            raise ValueError(f"{key!r} is not a TrainConfig or AgentConfig field")
    return train, agent


def passed_fields(argv: Sequence[str]) -> set[str]:
    """Names of the TrainConfig/AgentConfig fields the user set on the command line (`--lr 1e-3`, `--lr=1e-3`,
    `--no-progress`), so that `apply` can let exactly those win over the preset."""
    fields = set(_agent_fields()) | set(typing.get_type_hints(_train_config_class()))
    out = set()
    for token in argv:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        name = token[2:].split("=", 1)[0].replace("-", "_")
        if name not in fields and name.startswith("no_") and name[3:] in fields:
            name = name[3:]
        if name in fields:
            out.add(name)
    return out


@dataclasses.dataclass(frozen=True)
class PresetsCommand:
    """List every hyperparameter preset and where it came from."""

    algo: str | None = None
    """Only this algorithm's presets."""
    env: str | None = None
    """Only presets for this environment id (substring match, e.g. MinAtar)."""
    values: bool = False
    """Also print each preset's values, as the flags of `softrl train`."""


def to_flags(values: Mapping[str, Any]) -> list[str]:
    """The command-line flags of `softrl train` that set `values` (e.g. ["--hidden", "128", "128", "--lr", "0.001"])."""
    flags: list[str] = []
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, tuple | list):
            flags += [flag, *map(str, value)]
        else:
            flags += [flag, str(value)]
    return flags


def run_presets(cmd: PresetsCommand) -> int:
    """`softrl presets`: print every preset (name, source, validating run); returns the exit status 0."""
    if cmd.algo is not None and cmd.algo not in ALGOS:
        raise ValueError(f"unknown algorithm {cmd.algo!r}; choose one of {', '.join(ALGOS)}")
    shown = [p for p in list_presets()
             if (cmd.algo is None or p.algo == cmd.algo)
             and (cmd.env is None or (p.env is not None and cmd.env.lower() in p.env.lower()))]
    if not shown:
        print(f"no preset matches algo={cmd.algo!r} env={cmd.env!r}; `softrl presets` lists them all")
        return 0
    for p in shown:
        print(p.name)
        print(f"    source:    {p.source}")
        print(f"    validated: {p.validated}")
        if p.notes:
            print(f"    notes:     {p.notes}")
        if cmd.values:
            print(f"    flags:     {' '.join(to_flags(p.values))}")
    print(f"{len(shown)} preset(s) in {PRESET_DIR}")
    return 0


__all__ = ["Preset", "PresetsCommand", "apply", "check_values", "get_preset", "list_presets", "passed_fields",
           "preset_names", "resolve", "run_presets", "to_flags"]
