"""`softrl` command line: train, eval, plot, presets, report, sweep, experiment. Every option's help text comes
from the config docstrings. User errors (ValueError and its kin) print one line, `softrl: error: ...`, exit 2."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from softrl import presets
from softrl.callbacks import CallbackError, StopAtReturn
from softrl.checkpoint import CheckpointError
from softrl.collect import EnvError, env_spec, make_env
from softrl.config import ALGOS, AgentConfig, Algo, TrainConfig, config_from_dict, env_label, is_jax_env
from softrl.loop import NonFiniteEnvError, NonFiniteLossError, evaluate, load_run, summarize_returns, train
from softrl.presets import PresetsCommand, run_presets
from softrl.rundir import RunDirError, refuse_legacy


@dataclasses.dataclass(frozen=True)
class TrainCommand(TrainConfig):
    """Train ALGO on --env with --seeds agents at once; or continue a run with --resume RUN_DIR."""

    algo: Annotated[Algo, tyro.conf.Positional] = "sac"
    """Algorithm: ddpg, td3, svg0, wp, sac (continuous actions); dqn, soft-dqn, discrete-sac (discrete)."""
    env: str = "Pendulum-v1"  # type: ignore[assignment]  # the command line takes ids only (no factories)
    """Gymnasium environment id (e.g. Pendulum-v1, CartPole-v1), or module:EnvName-vN to import `module`
    first, which registers EnvName-vN (your own environment; the module must be importable, e.g. on PYTHONPATH)."""
    env_kwargs: str | None = None  # type: ignore[assignment]  # JSON text here, a dict in TrainConfig
    """Keyword arguments of the environment's constructor as a JSON object, passed to gym.make, e.g.
    --env-kwargs '{"size": 8}'. Recorded in config.json and used again by --resume, eval and plot."""
    preset: str | None = None
    """Hyperparameter preset, ALGO/ENV-ID or ENV-ID (`softrl presets` lists them), or 'none'. Default: ALGO's
    preset for --env when there is one, else ALGO's defaults. Every flag you pass overrides the preset."""
    no_preset: Annotated[bool, tyro.conf.FlagCreatePairsOff] = False
    """Use the plain TrainConfig/AgentConfig defaults instead of a preset (same as --preset none)."""
    agent: Annotated[AgentConfig, tyro.conf.OmitArgPrefixes] = dataclasses.field(default_factory=AgentConfig)
    """Agent hyperparameters."""
    resume: str | None = None
    """Continue the run in this directory exactly where its newest checkpoint left off. Options are read from
    its config.json; given with --resume, only those that cannot change the training so far are applied
    (--total-steps, --eval-every, --eval-episodes, --log-every, --checkpoint-every, --checkpoint-minutes,
    --tensorboard, --progress, --wandb); any other that differs is refused."""
    overwrite: bool = False
    """Delete the run already in --run-dir, if any, and start a new one there (without it, that is refused)."""
    stop_at_return: float | None = None
    """Stop early, with a resumable checkpoint, after the first evaluation whose median over seeds of the mean
    return is >= this (see --eval-every). Not saved with the run: give it again on --resume to keep it."""


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
    video: str | None = None
    """Instead of scoring, record --episodes episodes per seed (default 1) of the deterministic policy in
    RUN_DIR/policy as mp4 files in this directory, seed_S_episode_E.mp4 (headless; MuJoCo through EGL)."""
    fps: int | None = None
    """Frames per second of the --video files (default: the environment's render_fps)."""


@dataclasses.dataclass(frozen=True)
class ExportCommand:
    """Write a run's deterministic policy as a serialized jax.export program (StableHLO) that runs with jax alone."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run directory written by `softrl train` (its policy/), or a policy directory (e.g. RUN_DIR/best_policy)."""
    out: str
    """File to write (e.g. policy.jaxexport). Load it with jax.export.deserialize(open(FILE, 'rb').read())."""
    seed_index: int = 0
    """Which seed of the run to export: 0 for the first (--seed), up to --seeds - 1."""


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
    try:
        saved = json.loads(config.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunDirError(f"{config} is not a run's config (not JSON: {err}); is {run_dir} a softrl run?") from None
    try:
        cfg = config_from_dict(saved)
    except (ValueError, TypeError) as err:
        raise RunDirError(f"{config} is not a valid softrl config: {err}") from None
    top = {k: getattr(cmd, k) for k in given if "." not in k and k != "run_dir"}
    if "env_kwargs" in top:
        top["env_kwargs"] = parse_env_kwargs(cmd.env_kwargs)
    agent = {k[6:]: getattr(cmd.agent, k[6:]) for k in given if k.startswith("agent.")}
    return dataclasses.replace(cfg, **top, agent=dataclasses.replace(cfg.agent, **agent))


def parse_env_kwargs(text: str | None) -> dict[str, Any] | None:
    """--env-kwargs: a JSON object (or None); ValueError with an example otherwise."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--env-kwargs must be a JSON object such as '{{\"size\": 8}}', got {text!r} "
                         f"({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"--env-kwargs must be a JSON object such as '{{\"size\": 8}}', got {text!r}")
    return value


def preset_env_id(env_id: str) -> str:
    """The id whose preset a run on `env_id` takes: a `jax/` env's gymnasium twin (`jax/MinAtar-Breakout-v1` ->
    softrl/MinAtar-Breakout-v1), else `env_id` itself. An unknown `jax/` id is left to `check_env` to refuse."""
    if not is_jax_env(env_id):
        return env_id
    from softrl import jaxenv

    try:
        twin = jaxenv.make(env_id).spec.gym_id
    except ValueError:
        twin = None
    return twin or env_id.removeprefix("jax/")


def choose_preset(cmd: TrainCommand) -> presets.Preset | None:
    """The preset of a new run: --preset NAME, none (--no-preset / --preset none), or ALGO's preset for --env."""
    name = cmd.preset
    if name is not None and name.strip().lower() == "none":
        return None
    if cmd.no_preset:
        if name is not None:
            raise ValueError(f"--no-preset with --preset {name}: give one of them")
        return None
    if name is None:  # a jax/ env takes its gymnasium twin's preset (same dynamics)
        return presets.resolve(cmd.algo, preset_env_id(cmd.env))
    full = name if name.split("/", 1)[0] in ALGOS else f"{cmd.algo}/{name}"
    if full not in presets.preset_names():
        mine = [n for n in presets.preset_names() if n.startswith(f"{cmd.algo}/")]
        raise ValueError(f"unknown preset {name!r}; presets for {cmd.algo}: {', '.join(mine)} "
                         f"(`softrl presets` lists every algorithm's; --no-preset uses the plain defaults)")
    preset = presets.get_preset(full)
    if preset.algo != cmd.algo:
        raise ValueError(f"preset {full} is for {preset.algo}, not {cmd.algo}; use {cmd.algo}/ENV-ID "
                         f"or train {preset.algo}")
    return preset


def new_config(cmd: TrainCommand, args: list[str]) -> tuple[TrainConfig, presets.Preset | None]:
    """A new run's config: the preset's values, with every flag the user typed (`args`) on top."""
    preset = choose_preset(cmd)
    agent_names = {f.name for f in dataclasses.fields(AgentConfig)}
    typed = presets.passed_fields(args) - {"algo", "env", "env_kwargs", "agent"}
    explicit = {k: getattr(cmd.agent, k) if k in agent_names else getattr(cmd, k) for k in typed}
    train_fields, agent_fields = presets.apply(preset, explicit)
    cfg = TrainConfig(algo=cmd.algo, env=cmd.env, env_kwargs=parse_env_kwargs(cmd.env_kwargs), **train_fields,
                      agent=AgentConfig(**agent_fields))
    return cfg, preset


def check_env(cfg: TrainConfig) -> None:
    """Build the env once (EnvError in one line if it cannot be built or softrl cannot use its spaces)."""
    if is_jax_env(cfg.env):  # a JAX env (the on-device loop): one-line ValueError for an unknown id
        from softrl import jaxenv

        jaxenv.make(cfg.env)
        return
    env = make_env(cfg.env, **(cfg.env_kwargs or {}))
    try:
        env_spec(env)
    finally:
        env.close()


def run_train(cmd: TrainCommand, args: list[str] | None = None) -> int:
    callbacks = [] if cmd.stop_at_return is None else [StopAtReturn(cmd.stop_at_return)]
    if cmd.resume is not None:
        if cmd.preset is not None or cmd.no_preset:
            raise ValueError("--preset/--no-preset apply to new runs; a resumed run keeps its config.json")
        result = train(resume_config(cmd, given_options(args or [])), resume=cmd.resume, overwrite=cmd.overwrite,
                       callbacks=callbacks)
    else:
        cfg, preset = new_config(cmd, args or [])
        cfg.validate()  # before the preset line: a refused run says only why
        check_env(cfg)
        if preset is not None:
            # stdout, with the run's other output: stderr holds only errors and notes
            print(f"preset {preset.name} (flags you pass override it; --no-preset for the plain defaults; "
                  f"`softrl presets --algo {preset.algo}` says where it comes from)", flush=True)
        result = train(cfg, overwrite=cmd.overwrite, callbacks=callbacks)
    print(f"run saved in {result.run_dir}")
    if result.stopped_at is not None:
        median = float(np.median(result.eval_returns.mean(axis=1))) if result.eval_returns.size else float("nan")
        print(f"stopped at env step {result.stopped_at}: median evaluation return {median:.1f} reached "
              f"--stop-at-return {cmd.stop_at_return}. Continue with: softrl train --resume {result.run_dir}")
        return 0
    per_seed = result.eval_returns.mean(axis=1)
    print(
        f"final deterministic return per seed: {np.array2string(per_seed, precision=1)}; "
        f"median {np.median(per_seed):.1f}"
    )
    if "steps_per_s_after_learning_starts" in result.timing:
        sps = result.timing["steps_per_s_after_learning_starts"]
        print(f"env-steps/s after learning starts (all seeds): {sps:.1f}")
    return 0


def run_video(cmd: EvalCommand) -> int:
    from softrl.video import VideoOptions, record_policy_videos

    episodes = 1 if cmd.episodes is None else cmd.episodes
    paths = record_policy_videos(cmd.run_dir, VideoOptions(video=cmd.video, episodes=episodes, fps=cmd.fps))
    print(f"{len(paths)} videos in {cmd.video}")
    return 0


def run_eval(cmd: EvalCommand) -> int:
    if cmd.episodes is not None and cmd.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {cmd.episodes}")
    if cmd.video is not None:
        return run_video(cmd)
    cfg, agent, states, seeds = load_run(cmd.run_dir)
    deterministic = cmd.deterministic and not cmd.stochastic
    episodes = cfg.eval_episodes if cmd.episodes is None else cmd.episodes
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    env_id = cfg.env
    if cmd.gym:
        from softrl.ondevice_run import gym_twin

        env_id = gym_twin(env_label(cfg.env))
    returns = evaluate(agent, states, env_id, seeds, episodes, deterministic=deterministic, env_kwargs=cfg.env_kwargs)
    out = summarize_returns(seeds, returns)
    if cmd.json:
        print(json.dumps(out))
    else:
        mode = "deterministic" if deterministic else "stochastic"
        kwargs = f" {json.dumps(cfg.env_kwargs)}" if cfg.env_kwargs else ""
        print(f"{cfg.algo} on {env_label(env_id)}{kwargs}, {episodes} {mode} episodes per seed")
        for row in out["per_seed"]:
            print(f"  seed {row['seed']:>3}: {row['mean_return']:10.2f} +- {row['std_return']:.2f}")
        print(f"  median over seeds: {out['median_return']:.2f}")
    return 0


def run_export(cmd: ExportCommand) -> int:
    from softrl.policy import export_policy

    print(export_policy(cmd.run_dir, cmd.out, seed_index=cmd.seed_index))
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
    from softrl.report import ReportCommand, run_report
    from softrl.sweep import SweepCommand, run_sweep

    commands = {"train": TrainCommand, "eval": EvalCommand, "export": ExportCommand, "plot": PlotCommand,
                "presets": PresetsCommand, "sweep": SweepCommand, "report": ReportCommand,
                "experiment": ExperimentCommand}
    handlers: dict[type, Any] = {
        TrainCommand: run_train, EvalCommand: run_eval, ExportCommand: run_export, PlotCommand: run_plot,
        PresetsCommand: run_presets, SweepCommand: run_sweep, ReportCommand: run_report,
        ExperimentCommand: run_experiment,
    }
    args = sys.argv[1:] if argv is None else list(argv)
    cmd = tyro.extras.subcommand_cli_from_dict(commands, prog="softrl", args=args)
    try:
        if isinstance(cmd, TrainCommand):  # resume needs to know which options were typed, not just their values
            return run_train(cmd, args[args.index("train") + 1 :] if "train" in args else [])
        return handlers[type(cmd)](cmd)
    except (ValueError, EnvError, CheckpointError, NonFiniteLossError, NonFiniteEnvError, OSError,
            CallbackError) as err:
        print(f"softrl: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # empty when a second Ctrl-C stops at once: then say that much
        print(f"softrl: {str(err) or 'interrupted; resume from the last checkpoint: softrl train --resume RUN_DIR'}",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
