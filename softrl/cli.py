"""`softrl` command line: train, eval, plot. Every option's help text comes from the config docstrings."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from softrl.checkpoint import CheckpointError
from softrl.collect import EnvError
from softrl.config import AgentConfig, Algo
from softrl.loop import NonFiniteLossError, TrainConfig, config_from_dict, evaluate, load_run, train


@dataclasses.dataclass(frozen=True)
class TrainCommand(TrainConfig):
    """Train ALGO on --env with --seeds agents at once; or continue a run with --resume RUN_DIR."""

    algo: Annotated[Algo, tyro.conf.Positional] = "sac"
    """Algorithm: ddpg, td3, svg0, wp, sac (continuous actions); dqn, soft-dqn, discrete-sac (discrete)."""
    agent: Annotated[AgentConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=AgentConfig)
    """Agent hyperparameters."""
    resume: str | None = None
    """Continue the run in this directory exactly where its checkpoint left off (other options are read
    from its config.json; --total-steps may be raised to train longer)."""


@dataclasses.dataclass(frozen=True)
class EvalCommand:
    """Evaluate every seed of a trained run: mean and std of the return over --episodes episodes."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run directory written by `softrl train`."""
    episodes: int = 10
    """Episodes per seed."""
    deterministic: bool = True
    """Act with the policy's mode (--no-deterministic / --stochastic samples actions)."""
    stochastic: bool = False
    """Sample actions from the policy (same as --no-deterministic)."""
    json: bool = False
    """Print one JSON object: {"per_seed": [{"seed", "mean_return", "std_return"}], "median_return"}."""


@dataclasses.dataclass(frozen=True)
class PlotCommand:
    """Draw learning curves of one or more runs to a PNG: the mean over seeds with a 95% interval (or min-max)."""

    run_dirs: Annotated[tuple[str, ...], tyro.conf.Positional]
    """Run directories to draw, one line each."""
    out: str | None = None
    """PNG path (default: FIRST_RUN_DIR/curves_KIND.png)."""
    kind: str = "eval"
    """'eval' (deterministic evaluation returns) or 'episodes' (training episode returns)."""
    label: tuple[str, ...] = ()
    """Legend text, one per run directory in order (default: the algorithm and the config fields that differ)."""
    band: str = "ci95"
    """Band over seeds: 'ci95' (Student-t 95% interval of the mean), 'minmax' (range over seeds) or 'none'."""
    smooth: int | None = None
    """Trailing moving average over this many points of each seed's curve, before averaging over seeds."""
    title: str | None = None
    """Figure title (default: the environment, what is drawn and the band)."""


def run_train(cmd: TrainCommand) -> int:
    cfg_fields = {f.name: getattr(cmd, f.name) for f in dataclasses.fields(TrainConfig)}
    if cmd.resume is not None:
        saved = json.loads((Path(cmd.resume) / "config.json").read_text())
        cfg = config_from_dict(saved)
        if cmd.total_steps != TrainConfig.total_steps:
            cfg = dataclasses.replace(cfg, total_steps=cmd.total_steps)
        cfg = dataclasses.replace(cfg, progress=cmd.progress)
        result = train(cfg, resume=cmd.resume)
    else:
        result = train(TrainConfig(**cfg_fields))
    per_seed = result.eval_returns.mean(axis=1)
    print(f"run saved in {result.run_dir}")
    print(
        f"final deterministic return per seed: {np.array2string(per_seed, precision=1)}; "
        f"median {np.median(per_seed):.1f}"
    )
    if "steps_per_s_after_learning_starts" in result.timing:
        sps = result.timing["steps_per_s_after_learning_starts"]
        print(f"env-steps/s after learning starts (all seeds): {sps:.1f}")
    return 0


def run_eval(cmd: EvalCommand) -> int:
    cfg, agent, states, seeds = load_run(cmd.run_dir)
    deterministic = cmd.deterministic and not cmd.stochastic
    returns = evaluate(agent, states, cfg.env, seeds, cmd.episodes, deterministic=deterministic)
    out = {
        "per_seed": [
            {"seed": s, "mean_return": float(np.mean(r)), "std_return": float(np.std(r))}
            for s, r in zip(seeds, returns)
        ],
        "median_return": float(np.median(returns.mean(axis=1))),
    }
    if cmd.json:
        print(json.dumps(out))
    else:
        mode = "deterministic" if deterministic else "stochastic"
        print(f"{cfg.algo} on {cfg.env}, {cmd.episodes} {mode} episodes per seed")
        for row in out["per_seed"]:
            print(f"  seed {row['seed']:>3}: {row['mean_return']:10.2f} +- {row['std_return']:.2f}")
        print(f"  median over seeds: {out['median_return']:.2f}")
    return 0


def run_plot(cmd: PlotCommand) -> int:
    from softrl.plot import plot_runs

    if not cmd.run_dirs:
        raise ValueError("give at least one run directory: softrl plot RUN_DIR [RUN_DIR ...]")
    out = Path(cmd.out) if cmd.out else Path(cmd.run_dirs[0]) / f"curves_{cmd.kind}.png"
    path = plot_runs(cmd.run_dirs, out, kind=cmd.kind, title=cmd.title, labels=cmd.label or None, band=cmd.band,
                     smooth_window=cmd.smooth)
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    from softrl.experiments import ExperimentCommand, run_experiment

    commands = {"train": TrainCommand, "eval": EvalCommand, "plot": PlotCommand, "experiment": ExperimentCommand}
    handlers = {
        TrainCommand: run_train, EvalCommand: run_eval, PlotCommand: run_plot, ExperimentCommand: run_experiment
    }
    cmd = tyro.extras.subcommand_cli_from_dict(commands, prog="softrl", args=argv)
    try:
        return handlers[type(cmd)](cmd)
    except (ValueError, EnvError, CheckpointError, NonFiniteLossError, FileNotFoundError) as err:
        print(f"softrl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"softrl: {err}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
