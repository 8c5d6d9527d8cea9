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
from softrl.config import ALGOS, AgentConfig, Algo, TrainConfig, config_from_dict
from softrl.loop import NonFiniteEnvError, NonFiniteLossError, evaluate, load_run, summarize_returns, train
from softrl.rundir import RunDirError, refuse_legacy


@dataclasses.dataclass(frozen=True)
class TrainCommand(TrainConfig):
    """Train ALGO on --env with --seeds agents at once; or continue a run with --resume RUN_DIR."""

    algo: Annotated[Algo, tyro.conf.Positional] = "sac"
    """Algorithm: ddpg, td3, svg0, wp, sac (continuous actions); dqn, soft-dqn, discrete-sac (discrete)."""
    agent: Annotated[AgentConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=AgentConfig)
    """Agent hyperparameters."""
    resume: str | None = None
    """Continue the run in this directory exactly where its newest checkpoint left off. Options are read from
    its config.json; given with --resume, only those that cannot change the training so far are applied
    (--total-steps, --eval-every, --eval-episodes, --log-every, --checkpoint-every, --checkpoint-minutes,
    --tensorboard, --progress); any other that differs is refused."""
    overwrite: bool = False
    """Delete the run already in --run-dir, if any, and start a new one there (without it, that is refused)."""


@dataclasses.dataclass(frozen=True)
class EvalCommand:
    """Evaluate every seed of a trained run: mean and std of the return over --episodes episodes."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run directory written by `softrl train`."""
    episodes: int | None = None
    """Episodes per seed (default: the run's --eval-episodes, so that a finished run reproduces its final
    evaluation)."""
    deterministic: bool = True
    """Act with the policy's mode (--no-deterministic / --stochastic samples actions)."""
    stochastic: bool = False
    """Sample actions from the policy (same as --no-deterministic)."""
    gym: bool = False
    """For a run trained on a `jax/` env: evaluate on its gymnasium twin (e.g. CartPole-v1 for jax/CartPole-v1)
    instead of the jax/ env itself (the default, which reproduces the run's final evaluation)."""
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


def given_options(args: list[str]) -> set[str]:
    """The TrainConfig fields (agent ones as `agent.NAME`) that `args`, the words after `train`, set."""
    top = {f.name for f in dataclasses.fields(TrainConfig)} - {"agent"}
    agent = {f.name for f in dataclasses.fields(AgentConfig)}
    flags_without_value = {"--progress", "--no-progress", "--tensorboard", "--no-tensorboard", "--overwrite",
                           "--no-overwrite"}
    given = set()
    for i, word in enumerate(args):
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0].replace("-", "_")
            for cand in (name, name.removeprefix("no_")):
                if cand in top or cand in agent:
                    given.add(cand if cand in top else f"agent.{cand}")
                    break
        elif word in ALGOS:  # the positional ALGO, unless it is the value of the option before it
            before = args[i - 1] if i else ""
            if not before.startswith("--") or "=" in before or before in flags_without_value:
                given.add("algo")
    return given


def resume_config(cmd: TrainCommand, given: set[str]) -> TrainConfig:
    """The run's config.json with the options the user gave applied (train() refuses those that may not change)."""
    run_dir = Path(cmd.resume or "")
    if "run_dir" in given and Path(cmd.run_dir or "") != run_dir:
        raise ValueError(f"--run-dir {cmd.run_dir} with --resume {run_dir}: a resumed run stays in its folder")
    config = run_dir / "config.json"
    if not config.exists():
        refuse_legacy(run_dir)
        raise RunDirError(f"{run_dir} holds no run to resume (no {config})")
    cfg = config_from_dict(json.loads(config.read_text()))
    top = {k: getattr(cmd, k) for k in given if "." not in k and k != "run_dir"}
    agent = {k[6:]: getattr(cmd.agent, k[6:]) for k in given if k.startswith("agent.")}
    return dataclasses.replace(cfg, **top, agent=dataclasses.replace(cfg.agent, **agent))


def run_train(cmd: TrainCommand, args: list[str] | None = None) -> int:
    if cmd.resume is not None:
        result = train(resume_config(cmd, given_options(args or [])), resume=cmd.resume, overwrite=cmd.overwrite)
    else:
        result = train(TrainConfig(**{f.name: getattr(cmd, f.name) for f in dataclasses.fields(TrainConfig)}),
                       overwrite=cmd.overwrite)
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
    episodes = cfg.eval_episodes if cmd.episodes is None else cmd.episodes
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    env_id = cfg.env
    if cmd.gym:
        from softrl.ondevice_run import gym_twin

        env_id = gym_twin(cfg.env)
    out = summarize_returns(seeds, evaluate(agent, states, env_id, seeds, episodes, deterministic=deterministic))
    if cmd.json:
        print(json.dumps(out))
    else:
        mode = "deterministic" if deterministic else "stochastic"
        print(f"{cfg.algo} on {env_id}, {episodes} {mode} episodes per seed")
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
    args = sys.argv[1:] if argv is None else list(argv)
    cmd = tyro.extras.subcommand_cli_from_dict(commands, prog="softrl", args=args)
    try:
        if isinstance(cmd, TrainCommand):  # resume needs to know which options were typed, not just their values
            return run_train(cmd, args[args.index("train") + 1 :] if "train" in args else [])
        return handlers[type(cmd)](cmd)
    except (ValueError, EnvError, CheckpointError, NonFiniteLossError, NonFiniteEnvError, OSError) as err:
        print(f"softrl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"softrl: {err}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
