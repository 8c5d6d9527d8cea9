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
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import tyro

from softrl.config import AgentConfig, Algo, is_jax_env
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
    split_trials,
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
    """CPUs Ray reserves for each running trial (trials run at once = CPUs / this)."""
    pin: bool = True
    """With --cpus-per-trial 1, run each trial in a fresh Ray worker pinned to a core of its own (so XLA runs it
    on one thread). Measured on 2 cores (benchmarks/RESULTS.md): two unpinned processes fight over both cores
    and take twice as long. --no-pin leaves placement to the OS."""
    min_trials: int = 0
    """Split packed trials by hyperparameter setting (each piece keeps all seeds) until the sweep has this many
    trials or one setting per trial. 0: on this machine's CPU (no --address, JAX backend cpu), one trial per
    CPU Ray may use, so that every core trains one pinned trial; otherwise 1 (no split: one packed program
    per trial is what a GPU wants). A new sweep's split is stored in sweep.json; --resume keeps it."""
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


def _default_backend() -> str:
    """JAX's default platform here (cpu, gpu, tpu), without starting JAX in this process: a started JAX has
    threads, and Ray then forks its services from a multithreaded process."""
    platforms = os.environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return "gpu" if platforms.split(",")[0] in ("cuda", "rocm") else platforms.split(",")[0]
    try:
        out = subprocess.run([sys.executable, "-c", "import jax; print(jax.default_backend())"], capture_output=True,
                             text=True, timeout=120, check=True)
        return out.stdout.strip().splitlines()[-1]
    except (subprocess.SubprocessError, OSError, IndexError):
        return "unknown"


def local_slots(cmd: SweepCommand) -> int:
    """Trials that run at once in a local sweep: the CPUs Ray may use over the CPUs of one trial. A Ray session
    this process already started (as `ray_session` will use it) decides the CPUs; else --num-cpus, else this
    process's cores."""
    ray = sys.modules.get("ray")  # only a process that imported Ray can have started a session
    if ray is not None and ray.is_initialized():
        cpus = ray.cluster_resources().get("CPU", 1)
    else:
        cpus = cmd.num_cpus or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    return max(1, int((cpus or 1) // cmd.cpus_per_trial))


def _cpu_defaults(spec: SweepSpec) -> SweepSpec:
    """On a CPU, packed agents update one after another (TrainConfig.vmap_updates False: XLA's batched products
    are slower there), unless the sweep sets vmap_updates or trains a `jax/` env (the on-device loop vmaps)."""
    if "vmap_updates" in spec.grid or "vmap_updates" in spec.random or any(is_jax_env(e) for e in spec.envs):
        return spec
    return dataclasses.replace(spec, base={**spec.base, "vmap_updates": False})


def run_sweep(cmd: SweepCommand) -> int:
    """Handler of `softrl sweep`: parse and validate, write sweep.json, run the unfinished trials on Ray."""
    if cmd.cpus_per_trial <= 0:
        raise ValueError(f"--cpus-per-trial must be > 0, got {cmd.cpus_per_trial}")
    if cmd.min_trials < 0:
        raise ValueError(f"--min-trials must be >= 0, got {cmd.min_trials}")
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
        local_cpu = address is None and _default_backend() == "cpu"
        spec = _cpu_defaults(spec) if local_cpu else spec
        slots = cmd.min_trials or (local_slots(cmd) if local_cpu else 1)
        all_trials = split_trials(trials(spec), slots)
        for line in notes(spec):
            print(line)
        prepare_out_dir(out, spec, all_trials)
    todo = [t for t in all_trials if not runner.is_finished(out, t)]
    agents = sum(len(t.agents) for t in all_trials)
    print(f"sweep in {out}: {len(all_trials)} trials, {agents} hyperparameter settings x {spec.seeds} seeds; "
          f"{len(all_trials) - len(todo)} already finished, running {len(todo)}", flush=True)
    if todo:
        with runner.ray_session(address, cmd.num_cpus) as ray:
            failures = runner.run_trials(ray, spec, todo, out, cmd.cpus_per_trial,
                                         pin=cmd.pin and cmd.cpus_per_trial == 1)
        if failures:
            raise ValueError(f"{len(failures)} of {len(todo)} trials failed ({failures[0]}); fix the cause and "
                             f"continue with softrl sweep --resume {out}")
    print(f"sweep finished; compare its configurations with: softrl report {out} --out {out}/report")
    return 0
