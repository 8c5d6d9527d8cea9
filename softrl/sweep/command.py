"""`softrl sweep`: the command's options, TOML form, out-dir checks and the handler.

The TOML form of `softrl sweep sac --env Pendulum-v1 Hopper-v5 --seeds 5 --grid alpha=0.05,0.1,0.2
--grid lr=loguniform(1e-4,1e-3) --samples 4 --total-steps 100000 --hidden 64 64 --out sweeps/alpha`:

    algo = "sac"
    env = ["Pendulum-v1", "Hopper-v5"]
    seeds = 5
    total_steps = 100000
    samples = 4
    out = "sweeps/alpha"
    [grid]
    alpha = [0.05, 0.1, 0.2]
    lr = "loguniform(1e-4, 1e-3)"
    [base]
    hidden = [64, 64]

Command-line --out and --address override the file's.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import tyro

from softrl.config import AgentConfig, Algo
from softrl.loop import TrainConfig
from softrl.sweep import runner
from softrl.sweep.spec import (
    AGENT_FIELDS,
    SweepSpec,
    Trial,
    check_name,
    coerce,
    make_spec,
    notes,
    parse_dist,
    parse_grid_item,
    trials,
)

SWEEP_FILE = "sweep.json"


@dataclasses.dataclass(frozen=True)
class SweepCommand:
    """Train a grid or random search of hyperparameters x environments x seeds as Ray tasks (local by default)."""

    algo: Annotated[Algo | None, tyro.conf.Positional] = None
    """Algorithm (as for `softrl train`); may instead come from --config."""
    env: tuple[str, ...] = ()
    """Environments; each makes separate trials."""
    seeds: int = 1
    """Seeds per hyperparameter setting (vmapped in one program)."""
    seed: int = 0
    """First seed."""
    grid: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    """NAME=V1,V2,... (crossed with the other grids), or NAME=loguniform(a,b) / uniform(a,b) / choice(v1,v2)
    for random search with --samples. NAME is any `softrl train` option (agent or loop), e.g. alpha=0.05,0.2."""
    samples: int = 0
    """Random search: draws of the distributions in --grid (crossed with the list-valued grids)."""
    sample_seed: int = 0
    """Seed of the random-search draws."""
    total_steps: int = 15_000
    """Environment steps per seed."""
    out: str | None = None
    """Sweep directory (refused if it holds another sweep)."""
    config: str | None = None
    """TOML file with the same keys (algo, env, seeds, seed, total_steps, samples, sample_seed, out, address),
    a [grid] table NAME = [values] or "loguniform(a,b)", and a [base] table of fixed `softrl train` options."""
    resume: str | None = None
    """Continue the sweep in this directory: trials with summary.json are skipped, the others resume from
    their last checkpoint."""
    address: str | None = None
    """Ray cluster to run on: 'auto' (the cluster this machine belongs to) or HOST:PORT. Default: start Ray
    on this machine, bound to 127.0.0.1."""
    num_cpus: int | None = None
    """Local Ray only: CPUs Ray may use (default: all)."""
    cpus_per_trial: float = 1.0
    """CPUs Ray reserves for each running trial (trials run at once = CPUs / this). A trial's XLA threads are
    not pinned: measured on 2 shared cores, running 2 trials at once, one at a time (--cpus-per-trial 2), or 2 at
    once single-threaded (XLA_FLAGS=--xla_cpu_multi_thread_eigen=false) took the same time within noise
    (benchmarks/RESULTS.md); a packed trial already fills the cores with its vmapped agents."""
    agent: Annotated[AgentConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=AgentConfig)
    """Fixed agent hyperparameters of every trial (e.g. --hidden 16 16); fix a loop option such as
    learning_starts with a one-value grid (--grid learning_starts=100)."""


def spec_from_command(cmd: SweepCommand) -> tuple[SweepSpec, str | None, str | None]:
    """(spec, out dir, address) from the command line, or from --config with command-line values on top."""
    if cmd.config is None:
        if cmd.algo is None:
            raise ValueError("give ALGO (e.g. softrl sweep sac --env Pendulum-v1 ...) or --config sweep.toml")
        grid = dict(parse_grid_item(item) for item in cmd.grid)
        spec = make_spec(cmd.algo, cmd.env, cmd.seeds, cmd.seed, cmd.total_steps, grid, cmd.samples,
                         cmd.sample_seed, TrainConfig(agent=cmd.agent))
        return spec, cmd.out, cmd.address
    return spec_from_toml(Path(cmd.config), cmd)


def spec_from_toml(path: Path, cmd: SweepCommand) -> tuple[SweepSpec, str | None, str | None]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None
    known = {"algo", "env", "seeds", "seed", "total_steps", "samples", "sample_seed", "out", "address", "grid", "base"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    grid: dict[str, Any] = {}
    for name, values in doc.get("grid", {}).items():
        check_name(name)
        dist = parse_dist(name, values) if isinstance(values, str) else None
        grid[name] = dist if dist is not None else [coerce(name, v) for v in (values if isinstance(values, list)
                                                                               else [values])]
    base = base_from_table(doc.get("base", {}), TrainConfig(agent=cmd.agent))
    envs = doc.get("env", cmd.env)
    envs = [envs] if isinstance(envs, str) else envs
    algo = doc.get("algo", cmd.algo)
    if algo is None:
        raise ValueError(f"{path}: set algo")
    spec = make_spec(algo, envs, doc.get("seeds", cmd.seeds), doc.get("seed", cmd.seed),
                     doc.get("total_steps", cmd.total_steps), grid, doc.get("samples", cmd.samples),
                     doc.get("sample_seed", cmd.sample_seed), base)
    return spec, cmd.out or doc.get("out"), cmd.address or doc.get("address")


def base_from_table(table: dict[str, Any], base: TrainConfig) -> TrainConfig:
    agent, train = {}, {}
    for name, value in table.items():
        check_name(name)
        (agent if name in AGENT_FIELDS else train)[name] = coerce(name, value)
    return dataclasses.replace(base, **train, agent=dataclasses.replace(base.agent, **agent))


def _canonical(spec_json: dict) -> dict:
    return json.loads(json.dumps(spec_json))


def prepare_out_dir(out: Path, spec: SweepSpec, all_trials: list[Trial]) -> None:
    """Refuse a directory that holds another sweep or other files; write sweep.json."""
    existing = out / SWEEP_FILE
    if existing.exists():
        saved = json.loads(existing.read_text())
        if _canonical(saved.get("spec", {})) != _canonical(spec.to_json()):
            raise ValueError(f"{out} holds another sweep; choose a new --out, or continue that one with "
                             f"softrl sweep --resume {out}")
        raise ValueError(f"{out} already holds this sweep; continue it with softrl sweep --resume {out}")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no sweep; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1, "spec": spec.to_json(), "trials": [t.to_json() for t in all_trials],
           "command": " ".join(sys.argv) if sys.argv else ""}
    (out / SWEEP_FILE).write_text(json.dumps(doc, indent=2))


def load_sweep(out: Path) -> tuple[SweepSpec, list[Trial]]:
    path = out / SWEEP_FILE
    if not path.exists():
        raise FileNotFoundError(f"{out} holds no {SWEEP_FILE}: is it a directory written by softrl sweep?")
    doc = json.loads(path.read_text())
    return SweepSpec.from_json(doc["spec"]), [Trial(**t) for t in doc["trials"]]


def run_sweep(cmd: SweepCommand) -> int:
    """Handler of `softrl sweep`: parse and validate, write sweep.json, run the unfinished trials on Ray."""
    if cmd.cpus_per_trial <= 0:
        raise ValueError(f"--cpus-per-trial must be > 0, got {cmd.cpus_per_trial}")
    if cmd.address is not None:
        runner.check_address(cmd.address)  # before anything is written
    if cmd.resume is not None:
        out = Path(cmd.resume)
        spec, all_trials = load_sweep(out)
        address = cmd.address
    else:
        spec, out_str, address = spec_from_command(cmd)
        if out_str is None:
            raise ValueError("give --out DIR for the sweep")
        out = Path(out_str)
        if address is not None and address != cmd.address:
            runner.check_address(address)
        all_trials = trials(spec)
        for line in notes(spec):
            print(line)
        prepare_out_dir(out, spec, all_trials)
    todo = [t for t in all_trials if not runner.is_finished(out, t)]
    agents = sum(len(t.agents) for t in all_trials)
    print(f"sweep in {out}: {len(all_trials)} trials, {agents} hyperparameter settings x {spec.seeds} seeds; "
          f"{len(all_trials) - len(todo)} already finished, running {len(todo)}", flush=True)
    if todo:
        with runner.ray_session(address, cmd.num_cpus) as ray:
            failures = runner.run_trials(ray, spec, todo, out, cmd.cpus_per_trial)
        if failures:
            raise ValueError(f"{len(failures)} of {len(todo)} trials failed ({failures[0]}); fix the cause and "
                             f"continue with softrl sweep --resume {out}")
    print(f"sweep finished; compare its configurations with: softrl report {out} --out {out}/report")
    return 0
