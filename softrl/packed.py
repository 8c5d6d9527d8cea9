"""Packed trials: H hyperparameter settings x S seeds trained as H*S agents on one vmapped axis, in one jitted
program (the gymnasium loop's own `_step`, or for a `jax/` env the on-device loop's `lax.scan` chunk,
`softrl.ondevice`), with the settings' values in the agent states.

Agent (h, s) gets PRNG key `PRNGKey(s)` and env seed `s`, exactly as seed `s` of a separate `softrl train`
run with setting h; after `agent.init` its state gets setting h's values through `with_hypers`. So a packed
trial computes what the H separate runs compute, up to float rounding (vmap over more agents can change how
XLA groups the arithmetic; tests/test_packed.py states the measured difference).

Layout of a packed trial directory:
    TRIAL/packed/          the trial's own run directory: config.json (the first setting, seeds = H*S),
                           hypers.json (each agent's values), lock, and checkpoints/ holding ALL agents'
                           states, buffers, keys and env states (one combined checkpoint; resume is exact)
    TRIAL/agent_KK/        one `softrl train` run directory per setting: config.json with ITS values,
                           seed_S/ logs, and, once the trial finished, summary.json, policy/ and a full
                           checkpoint of its S agents at the last step (no best_policy/: evaluations during
                           the trial are logged per agent, but the best is not tracked per setting).
                           `softrl eval`, `softrl plot`, `softrl report`, `softrl.load_run` and even
                           `softrl train --resume` (to train longer) work on it.
While a trial runs, the agent directories hold only their config and logs; the trial is resumed from
TRIAL/packed with `train_packed(..., resume=True)`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from softrl import loop, ondevice, ondevice_run, rundir
from softrl.agents import make_agent
from softrl.checkpoint import CheckpointError
from softrl.collect import SeedEnvs
from softrl.config import TrainConfig, config_to_dict, is_jax_env
from softrl.log import RunLogger

Array = jax.Array

# AgentConfig fields whose values live in the agent state (the Hypers fields, alpha, and the Adam rates).
STATE_FIELDS = ("gamma", "tau", "reward_scale", "target_entropy", "init_alpha", "lr", "alpha_lr", "explore_std",
                "target_noise", "target_noise_clip", "actor_std", "alpha")
_OPTIMISERS = ("actor_opt", "critic_opt")


# ----- the values of a setting in a state -----------------------------------------------------------------


def _set_lr(opt_state: Any, lr: Any) -> Any:
    """The optimiser state with learning rate `lr`; states without injected hyperparameters are kept."""
    if lr is None or not hasattr(opt_state, "hyperparams"):
        return opt_state
    old = opt_state.hyperparams["learning_rate"]
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": jnp.asarray(lr, old.dtype)})


def with_hypers(state: Any, values: dict[str, Any]) -> Any:
    """`state` (an actor-critic or DQN agent state) with the given state-held hyperparameters set.

    values: any of the `Hypers` field names (gamma, tau, reward_scale, target_entropy, ...), `alpha` (a fixed
    temperature: log_alpha = log(alpha), -inf for 0), `init_alpha` (log_alpha of an auto-tuned alpha), `lr`
    (the actor's and critics' Adam rate, and log-alpha's unless `alpha_lr` is given) and `alpha_lr`. Scalars
    or 0-d arrays, so it can be vmapped. A fixed alpha's optimiser has no learning rate (it never moves),
    so `lr`/`alpha_lr` leave it as it is. Raises ValueError for a name the state does not hold.
    """
    hp_fields = {f.name for f in dataclasses.fields(state.hp)}
    unknown = sorted(set(values) - hp_fields - {"alpha", "init_alpha", "lr", "alpha_lr"})
    if unknown:
        raise ValueError(f"{type(state).__module__} agents hold no {', '.join(unknown)} in their state")
    hp = state.hp.replace(**{k: jnp.asarray(v, getattr(state.hp, k).dtype) for k, v in values.items()
                             if k in hp_fields})
    state = state.replace(hp=hp)
    if "alpha" in values or "init_alpha" in values:
        alpha = jnp.asarray(values["alpha"] if "alpha" in values else values["init_alpha"], jnp.float32)
        # as base.initial_log_alpha: alpha = 0 is log_alpha = -inf, so that exp gives exactly 0
        state = state.replace(log_alpha=jnp.where(alpha == 0, -jnp.inf, jnp.log(alpha)))
    lr = values.get("lr")
    for name in _OPTIMISERS:
        if hasattr(state, name):
            state = state.replace(**{name: _set_lr(getattr(state, name), lr)})
    return state.replace(alpha_opt=_set_lr(state.alpha_opt, values.get("alpha_lr", lr)))


def state_values(cfg: TrainConfig) -> dict[str, float]:
    """The state-held values of `cfg`, as `with_hypers` takes them (fields of other algorithms included:
    `train_packed` keeps those the agent's state holds). Fields left at None (target_entropy, alpha_lr: 'the
    default') are omitted; `check_packable` refuses to pack None with numbers."""
    a = cfg.agent
    out = {k: float(getattr(a, k)) for k in STATE_FIELDS if k not in ("alpha", "init_alpha")
           if getattr(a, k) is not None}
    if cfg.algo != "dqn":  # dqn has no temperature: its log_alpha is -inf whatever --alpha says
        fixed = a.resolved_alpha()
        out.update({"alpha": fixed} if fixed is not None else {"init_alpha": a.init_alpha})
    return out


def _static(cfg: TrainConfig) -> dict:
    """What must be equal within a packed trial: everything but the state-held values and the run dir."""
    d = config_to_dict(cfg)
    d.pop("run_dir")
    d["agent"] = {k: v for k, v in d["agent"].items() if k not in STATE_FIELDS}
    d["agent"]["alpha_is_auto"] = cfg.agent.alpha == "auto"
    for name in ("target_entropy", "alpha_lr"):  # None (the default) or a number: not packable together
        d["agent"][f"{name}_is_default"] = getattr(cfg.agent, name) is None
    return d


def check_packable(cfgs: Sequence[TrainConfig]) -> None:
    """ValueError unless the configs differ only in values that live in the agent state."""
    if not cfgs:
        raise ValueError("a packed trial needs at least one configuration")
    first = _static(cfgs[0])
    for i, cfg in enumerate(cfgs[1:], 1):
        other = _static(cfg)
        diff = sorted({k for k in first if first[k] != other[k] and k != "agent"}
                      | {f"agent.{k}" for k in first["agent"] if first["agent"][k] != other["agent"][k]})
        if diff:
            raise ValueError(f"configuration {i} differs from the first in {', '.join(diff)}, which change the "
                             "compiled program or the environment: train it in a separate trial")


# ----- logs: one RunLogger per setting --------------------------------------------------------------------


class AgentSeed(int):
    """A seed that also names the setting it belongs to. The loop logs by seed (`logger.write(seeds[i], ...)`)
    and seeds repeat across settings; this int keeps the seed's value for the env and eval seeds and lets
    `_SettingLogs` route the row to the right run directory."""

    setting: int

    def __new__(cls, seed: int, setting: int) -> AgentSeed:
        out = super().__new__(cls, seed)
        out.setting = setting
        return out


class _SettingLogs:
    """The loop's logger interface over one RunLogger per setting."""

    def __init__(self, loggers: list[RunLogger]):
        self.loggers = loggers

    def write(self, seed: AgentSeed, kind: str, row: dict[str, Any]) -> None:
        self.loggers[seed.setting].write(int(seed), kind, row)

    def truncate_after(self, step: int) -> None:
        for logger in self.loggers:
            logger.truncate_after(step)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


class _EnvsView:
    """A slice of the packed envs (their gym envs and saved state), for one setting's checkpoint and policy."""

    def __init__(self, envs: SeedEnvs, state: dict, rows: slice):
        self.envs = envs.envs[rows]
        self.state = {"envs": state["envs"][rows], "obs": state["obs"][rows],
                      "episode_return": state["episode_return"][rows],
                      "episode_length": state["episode_length"][rows]}

    def get_state(self) -> dict:
        return self.state


# ----- the two loops: what differs between a gymnasium and a `jax/` packed trial ---------------------------


class _Side(NamedTuple):
    """The loop-specific steps of a packed trial; everything else (locks, hypers.json, per-setting logs, configs
    and summaries) is shared. `run` is a `loop._Run` (gymnasium) or an `ondevice_run._Run` (`jax/` envs)."""

    build: Callable[[TrainConfig, list[int], Callable[[Any], Any], Path, rundir.RunLock], Any]  # fresh run
    prepare: Callable[[Any, bool], None]  # restore the newest checkpoint (True), or take the first action
    save: Callable[[Any, int], None]
    step_loop: Callable[[Any, loop._Clock], tuple[int, bool]]
    evaluate: Callable[[Any], np.ndarray]  # [N, eval_episodes] of every agent
    setting_run: Callable[[Any, slice, TrainConfig, rundir.RunLock], Any]  # rows as a run of their own
    timing: dict[str, Any]


def _gym_build(tcfg: TrainConfig, seeds: list[int], set_values: Callable[[Any], Any], run_dir: Path,
               lock: rundir.RunLock) -> loop._Run:
    envs = SeedEnvs(tcfg.env, seeds, tcfg.env_kwargs)
    try:
        agent = make_agent(tcfg.algo, tcfg.agent, envs.spec)
        envs.keep_shape(agent.spec.obs_shape)  # images stay [H, W, C] for a CNN torso
        carry = loop._init(agent, tcfg, envs, seeds)
        carry = carry._replace(agent=set_values(carry.agent))
        action = jax.eval_shape(jax.vmap(lambda k: loop._random_action(agent, k)), carry.key)
    except BaseException:
        envs.close()
        raise
    return loop._Run(tcfg, run_dir, seeds, envs, agent, carry, np.zeros(action.shape, action.dtype), 0, lock)


def _gym_prepare(run: loop._Run, resume: bool) -> None:
    obs = run.envs.reset()  # also before a restore: it builds what the env state is written into
    if resume:
        loop._restore(run)
    else:
        loop._first_action(run, obs)


def _gym_evaluate(run: loop._Run) -> np.ndarray:
    return loop.evaluate(run.agent, run.carry.agent, run.cfg.env, [int(x) for x in run.seeds],
                         run.cfg.eval_episodes, env_kwargs=run.cfg.env_kwargs)


def _gym_setting_run(run: loop._Run, rows: slice, cfg: TrainConfig, lock: rundir.RunLock) -> loop._Run:
    cut = _rows_of(rows)
    carry = loop.Carry(cut(run.carry.agent), cut(run.carry.buffer), run.carry.key[rows], run.carry.bad_step,
                       run.carry.bad_data[rows])
    view: Any = _EnvsView(run.envs, run.envs.get_state(), rows)
    seeds = [int(x) for x in run.seeds[rows]]
    return loop._Run(cfg, Path(cfg.run_dir or ""), seeds, view, run.agent, carry, run.action[rows], run.start, lock)


def _ondevice_build(tcfg: TrainConfig, seeds: list[int], set_values: Callable[[Any], Any], run_dir: Path,
                    lock: rundir.RunLock) -> ondevice_run._Run:
    """The on-device loop over the H*S agents: seed list and values go into `ondevice.init_carry`."""
    ondevice_run.check_config(tcfg)
    compiled = ondevice.build(tcfg, seeds, set_values)
    return ondevice_run._Run(tcfg, run_dir, compiled, compiled.init(), lock)


def _ondevice_prepare(run: ondevice_run._Run, resume: bool) -> None:
    if resume:  # the first action is part of the carry (ondevice.init_carry)
        ondevice_run._restore(run)
        run.best_return = loop._saved_best_return(run.run_dir)


def _ondevice_setting_run(run: ondevice_run._Run, rows: slice, cfg: TrainConfig,
                          lock: rundir.RunLock) -> ondevice_run._Run:
    """Rows of the carry (every leaf is [N, ...] but the step counters, which all agents share)."""
    carry = jax.tree.map(lambda x: x[rows] if x.ndim else x, run.carry)
    compiled = run.loop._replace(seeds=[int(x) for x in run.loop.seeds[rows]])
    return ondevice_run._Run(cfg, Path(cfg.run_dir or ""), compiled, carry, lock, start=run.start)


_GYM = _Side(_gym_build, _gym_prepare, loop._save, loop._step_loop, _gym_evaluate, _gym_setting_run, {})
_ONDEVICE = _Side(_ondevice_build, _ondevice_prepare, ondevice_run._save, ondevice_run._step_loop,
                  lambda run: run.loop.evaluate(run.carry.agent, run.cfg.eval_episodes), _ondevice_setting_run,
                  {"loop": "ondevice"})


def _rows_of(rows: slice):
    return lambda tree: jax.tree.map(lambda x: x[rows], tree)


# ----- the packed run -------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Packed:
    run: Any  # loop._Run or ondevice_run._Run over all H*S agents
    side: _Side
    cfgs: list[TrainConfig]
    agent_dirs: list[Path]
    locks: list[rundir.RunLock]

    def close(self) -> None:
        try:
            self.run.close()
        finally:
            for lock in self.locks:
                lock.release()


def _stacked_values(cfgs: Sequence[TrainConfig]) -> dict[str, np.ndarray]:
    """{name: [H*S] values}: setting h's values repeated for each of its S seeds."""
    per = [state_values(c) for c in cfgs]
    return {k: np.repeat(np.array([p[k] for p in per], np.float64), cfgs[0].seeds) for k in per[0]}


def _values_setter(cfgs: Sequence[TrainConfig]) -> Callable[[Any], Any]:
    """states [H*S, ...] -> the same with agent (h, s) holding setting h's values (those its state holds)."""
    stacked = _stacked_values(cfgs)

    def set_values(states: Any) -> Any:
        held = {f.name for f in dataclasses.fields(states.hp)} | {"alpha", "init_alpha", "lr", "alpha_lr"}
        values = {k: jnp.asarray(v, jnp.float32) for k, v in stacked.items() if k in held}
        return jax.jit(jax.vmap(with_hypers))(states, values)

    return set_values


def _hypers_doc(cfgs: Sequence[TrainConfig], agent_dirs: Sequence[Path]) -> dict:
    return {"agents": [{"run_dir": d.name, "seeds": [c.seed + j for j in range(c.seeds)], "values": state_values(c)}
                       for c, d in zip(cfgs, agent_dirs)]}


def _check_saved_hypers(packed_dir: Path, cfgs: Sequence[TrainConfig], agent_dirs: Sequence[Path]) -> None:
    path = packed_dir / "hypers.json"
    saved = json.loads(path.read_text()) if path.exists() else None
    if saved != json.loads(json.dumps(_hypers_doc(cfgs, agent_dirs))):
        raise CheckpointError(f"the packed trial in {packed_dir} was trained with other agents or values "
                              "(hypers.json differs); it cannot be resumed with these")


def _open(cfgs: list[TrainConfig], trial_dir: Path, resume: bool, side: _Side) -> _Packed:
    """Lock the trial's run dirs, build the H*S agents (agent (h, s) seeded s, with setting h's values)."""
    packed_dir = trial_dir / "packed"
    agent_dirs = [Path(c.run_dir) if c.run_dir else trial_dir / f"agent_{h:02d}" for h, c in enumerate(cfgs)]
    n_seeds = cfgs[0].seeds
    tcfg = dataclasses.replace(cfgs[0], seeds=len(cfgs) * n_seeds, run_dir=str(packed_dir), cpu_devices=1)
    lock = rundir.open_run_dir(packed_dir, resume=resume, overwrite=not resume, note=loop._note)
    locks: list[rundir.RunLock] = []
    try:
        if resume:
            _check_saved_hypers(packed_dir, cfgs, agent_dirs)
        for d in agent_dirs:
            keep = resume and rundir.holds_run(d)
            locks.append(rundir.open_run_dir(d, resume=keep, overwrite=not keep, note=loop._note))
        seeds: list[int] = [AgentSeed(c.seed + j, h) for h, c in enumerate(cfgs) for j in range(n_seeds)]
        run = side.build(tcfg, seeds, _values_setter(cfgs), packed_dir, lock)
    except BaseException:
        for held in [lock, *locks]:
            held.release()
        raise
    cfgs = [dataclasses.replace(c, run_dir=str(d)) for c, d in zip(cfgs, agent_dirs)]
    return _Packed(run, side, cfgs, agent_dirs, locks)


def _prepare(p: _Packed, resume: bool) -> None:
    """Restore or take the first action; write the configs; open the logs; checkpoint step 0."""
    run = p.run
    p.side.prepare(run, resume)
    loop._write_json(run.run_dir / "config.json", config_to_dict(run.cfg))
    loop._write_json(run.run_dir / "hypers.json", _hypers_doc(p.cfgs, p.agent_dirs))
    loggers = []
    for h, (cfg, d) in enumerate(zip(p.cfgs, p.agent_dirs)):
        loop._write_json(d / "config.json", config_to_dict(cfg))
        (d / "summary.json").unlink(missing_ok=True)
        loggers.append(RunLogger(d, [int(s) for s in run.seeds if s.setting == h], cfg.tensorboard,
                                 wandb_project=getattr(cfg, "wandb", None), wandb_config=config_to_dict(cfg)))
    logs = _SettingLogs(loggers)
    run.logger = logs  # the loops' logger interface
    logs.truncate_after(run.start)
    if not resume:
        p.side.save(run, 0)


def _finish(p: _Packed, clock: loop._Clock) -> list[dict[str, Any]]:
    """The combined final checkpoint, one evaluation of all agents, and per setting: a full checkpoint, the
    final eval rows and summary.json (as `softrl train` writes them)."""
    run, side, s = p.run, p.side, p.cfgs[0].seeds
    total = run.cfg.total_steps
    if run.saved_step != total:
        side.save(run, total)
    returns = side.evaluate(run)
    timing = {**clock.timing(run.cfg, run.start), "packed_agents": len(run.seeds), **side.timing}
    out = []
    for h, cfg in enumerate(p.cfgs):
        rows = slice(h * s, (h + 1) * s)
        sub = side.setting_run(run, rows, cfg, p.locks[h])
        side.save(sub, total)
        loop._log_eval(run.logger.loggers[h], sub.seeds, total, returns[rows])
        summary = {"config": config_to_dict(cfg), "timing": timing,
                   "final_eval": loop.summarize_returns(sub.seeds, returns[rows]),
                   "packed": {"trial_dir": str(run.run_dir.parent), "setting": h, "settings": len(p.cfgs)}}
        loop._write_json(p.agent_dirs[h] / "summary.json", summary)
        out.append(summary)
    return out


def train_packed(cfgs: Sequence[TrainConfig], trial_dir: str | Path, *, resume: bool = False) -> list[dict[str, Any]]:
    """Train H configurations x their S seeds as one packed trial in `trial_dir`; returns each setting's summary.

    The configurations must differ only in state-held values (`STATE_FIELDS`; `check_packable` says which
    field does not) and have equal `seed` and `seeds`. `cfg.run_dir` is setting h's run directory (default
    TRIAL/agent_HH). On a `jax/` env the trial runs in the on-device loop (`softrl.ondevice_run`), otherwise
    in the gymnasium loop (`softrl.loop`). With `resume=True`, continue the trial from TRIAL/packed's newest
    checkpoint, exactly; `total_steps` and the other `config.RESUMABLE_FIELDS` may change. SIGINT/SIGTERM stop
    after the current step (or chunk) with a checkpoint and raise KeyboardInterrupt.
    """
    cfgs = list(cfgs)
    for cfg in cfgs:
        cfg.validate()
    check_packable(cfgs)
    if cfgs[0].num_envs != 1:  # _EnvsView and the on-device loop run one env per agent
        raise ValueError(f"packed trials run one env per seed; --num-envs {cfgs[0].num_envs} is not supported there")
    side = _ONDEVICE if is_jax_env(cfgs[0].env) else _GYM
    p = _open(cfgs, Path(trial_dir), resume, side)
    try:
        _prepare(p, resume)
        clock = loop._Clock()
        step, interrupted = side.step_loop(p.run, clock)
        if interrupted:
            if p.run.saved_step != step:
                side.save(p.run, step)
            raise KeyboardInterrupt(f"interrupted; packed trial saved at step {step} in {p.run.run_dir}")
        return _finish(p, clock)
    finally:
        p.close()


__all__ = ["STATE_FIELDS", "check_packable", "state_values", "train_packed", "with_hypers"]
