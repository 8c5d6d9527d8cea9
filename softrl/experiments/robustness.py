"""Section 5.1, "Robustness" (Eq. 27; Eysenbach & Levine 2021): MaxEnt policies under unseen perturbations.

Eq. 27: a monotone function of the MaxEnt objective lower-bounds the policy's worst-case return over a
set of perturbed dynamics and rewards close to the nominal ones. The empirical corollary tested here:
trained on the nominal environment only, a MaxEnt policy (SAC) should lose less return than policies
trained without entropy (DDPG, TD3, SVG(0) with a fixed noise scale) when the test environment is
perturbed in ways never seen in training.

Protocol. Every method is trained on the nominal task with `softrl.train` (several seeds in one
process), then evaluated, without further learning, on sweeps of perturbations built by
`softrl.envs.perturb`: body-mass and friction scales (MuJoCo), random external force pulses, Gaussian
action noise, and, for the point-mass task (`softrl/PointReach-v0`), a wall placed across the straight
start-goal path (Eysenbach & Levine 2021, Fig. 1). For every (task, method, perturbation kind) we draw
return-versus-perturbation curves with bands across seeds and summarise each curve by its normalised
area (AUC): returns are mapped to a score, 0 for a uniformly random policy and 1 for the best method's
nominal return, and averaged over the sweep (trapezoid rule on the level axis, log axis for scales).

Resumable: each (task, method) trains into OUT/runs/<task>/<method>/ through `report.train_or_resume`:
a finished run (summary.json) is reused, a partial one (a checkpoint, no summary) resumed, and the
evaluation sweep is cached next to it (robustness_eval.json). `SOFTRL_ROBUSTNESS_TASKS=point-mass,hopper`
restricts a run to some tasks (the report then says which were not run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import jax
import numpy as np

from softrl.config import Algo
from softrl.envs.perturb import KINDS, NOMINAL_LEVEL, is_point_mass, make_perturbed
from softrl.experiments.report import (
    Check,
    Figure,
    Report,
    band,
    check,
    fmt,
    fmt_ci,
    mean_ci,
    plot_style,
    pyplot,
    save_figure,
    train_or_resume,
)

NAME = "robustness"
SUMMARY = "trained nominal, tested perturbed (Eq. 27)"

MODES = ("stochastic", "deterministic")  # which action the evaluation policy takes; the curves use stochastic


@dataclasses.dataclass(frozen=True)
class Method:
    label: str
    algo: Algo
    alpha: str = "auto"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9.]+", "-", self.label.lower()).strip("-")


@dataclasses.dataclass(frozen=True)
class Task:
    key: str  # short name, also the runs/ folder
    env_id: str
    total_steps: int
    learning_starts: int
    hidden: tuple[int, ...]
    batch_size: int
    episodes: int  # evaluation episodes per (level, seed)
    sweeps: dict[str, tuple[float, ...]]  # perturbation kind -> levels (each includes the nominal level)
    methods: tuple[Method, ...]
    force_prob: float = 0.05
    force_duration: int = 5
    published_steps: int = 1_000_000
    train_env: str | None = None  # the env trained on (default: env_id); a `jax/` twin runs the on-device loop
    default_seeds: int = 3  # seeds when --seeds is not given


SAC_AUTO = Method("sac alpha=auto", "sac", "auto")
BASELINES = (Method("svg0", "svg0"), Method("ddpg", "ddpg"), Method("td3", "td3"))
MUJOCO_METHODS = (SAC_AUTO, Method("sac alpha=0.05", "sac", "0.05"), Method("sac alpha=0.2", "sac", "0.2"),
                  *BASELINES)
POINT_METHODS = (SAC_AUTO, Method("sac alpha=0.1", "sac", "0.1"), Method("sac alpha=0.3", "sac", "0.3"),
                 Method("sac alpha=1", "sac", "1.0"), *BASELINES)
MUJOCO_SWEEPS = {
    "mass": (0.5, 0.75, 1.0, 1.5, 2.0),
    "friction": (0.25, 0.5, 1.0, 2.0, 4.0),
    "force": (0.0, 50.0, 100.0, 200.0, 400.0),  # newtons, on the torso, pulses of 5 steps
    "action_noise": (0.0, 0.1, 0.2, 0.4, 0.8),
}
TASKS = (
    Task("point-mass", "softrl/PointReach-v0", 20_000, 1_000, (64, 64), 256, 10,
         {"mass": (0.5, 1.0, 1.5, 2.0, 3.0), "force": (0.0, 0.05, 0.1, 0.2, 0.3),
          "action_noise": (0.0, 0.2, 0.4, 0.8, 1.2), "obstacle": (0.0, 0.1, 0.2, 0.4, 0.6)},
         POINT_METHODS, force_prob=0.1, force_duration=3, published_steps=0, train_env="jax/softrl/PointReach-v0",
         default_seeds=30),
    Task("hopper", "Hopper-v5", 30_000, 5_000, (256, 256), 256, 3, MUJOCO_SWEEPS, MUJOCO_METHODS),
    Task("halfcheetah", "HalfCheetah-v5", 30_000, 5_000, (256, 256), 256, 3, MUJOCO_SWEEPS, MUJOCO_METHODS),
)
QUICK_TASK = Task("point-mass", "softrl/PointReach-v0", 1_500, 500, (32, 32), 64, 2,
                  {"mass": (0.5, 1.0, 2.0), "force": (0.0, 0.1, 0.3), "action_noise": (0.0, 0.4, 1.2),
                   "obstacle": (0.0, 0.2, 0.6)},
                  (Method("sac alpha=0.3", "sac", "0.3"), Method("ddpg", "ddpg")),
                  force_prob=0.1, force_duration=3, published_steps=0, train_env="jax/softrl/PointReach-v0")
LOG_KINDS = ("mass", "friction")  # scales: log level axis
UNITS = {"mass": "body-mass scale (x nominal)", "friction": "friction scale (x nominal)",
         "force": "force-pulse size", "action_noise": "action-noise std (half action ranges)",
         "obstacle": "wall half-length (arena units)"}


# ----- evaluation ------------------------------------------------------------------------------------


def _returns(env_fns: list, reset_seeds: list[int], policy, key: jax.Array) -> np.ndarray:
    """Undiscounted return of one episode in each env (`env_fns[i]()` builds env i, reset with `reset_seeds[i]`),
    by `softrl.rollout.rollout`; `policy(obs [B, O], key) -> actions [B, A]` in [-1, 1]. Returns [B]."""
    from softrl.rollout import rollout

    return rollout(policy, env_fns, reset_seeds, 1, key, max_steps=100_000).returns[:, 0]


def _sweep_envs(task: Task, kind: str, levels, n_seeds: int):
    """Env builders and reset seeds for all (level, seed, episode) of one sweep, in that order. The same
    reset seeds are used at every level and by every method (paired comparison)."""
    fns, seeds = [], []
    for level in levels:
        for s in range(n_seeds):
            for e in range(task.episodes):
                rs = 10**6 + 1000 * s + e
                fns.append(lambda level=level, rs=rs: make_perturbed(task.env_id, kind, level, seed=rs,
                                                                     force_prob=task.force_prob,
                                                                     force_duration=task.force_duration))
                seeds.append(rs)
    return fns, seeds


def evaluate_sweeps(task: Task, agent, states, n_seeds: int, key: jax.Array) -> dict[str, dict[str, np.ndarray]]:
    """{mode: {kind: returns [levels, seeds, episodes]}} for a trained method (leaves of `states`: [seeds, ...])."""
    act = jax.jit(jax.vmap(agent.act, in_axes=(0, 0, 0, None)), static_argnums=3)
    out: dict[str, dict[str, np.ndarray]] = {m: {} for m in MODES}
    for kind, levels in task.sweeps.items():
        fns, reset_seeds = _sweep_envs(task, kind, levels, n_seeds)
        idx = np.tile(np.repeat(np.arange(n_seeds), task.episodes), len(levels))  # env i acts with seed idx[i]
        batched = jax.tree.map(lambda x, idx=idx: x[idx], states)
        for mode in MODES:
            key, sub = jax.random.split(key)

            def policy(obs, k, det=mode == "deterministic", batched=batched):
                return act(batched, obs, jax.random.split(k, len(obs)), det)

            r = _returns(fns, reset_seeds, policy, sub)
            out[mode][kind] = r.reshape(len(levels), n_seeds, task.episodes)
    return out


def random_returns(task: Task, n_seeds: int, key: jax.Array) -> np.ndarray:
    """Returns of a uniformly random policy on the nominal env, [seeds * episodes] (the score's zero)."""
    fns, reset_seeds = _sweep_envs(task, "nominal", (0.0,), n_seeds)
    dim = int(np.prod(fns[0]().action_space.shape))

    def policy(obs, k):
        return jax.random.uniform(k, (len(obs), dim), minval=-1.0, maxval=1.0)

    return _returns(fns, reset_seeds, policy, key)


def auc(levels, scores: np.ndarray, kind: str) -> np.ndarray:
    """Normalised area under score-vs-level: trapezoid on the level axis mapped to [0, 1] (log for scales).
    scores [levels, ...] -> [...]; equals the mean score when the levels are evenly spaced on that axis."""
    x = np.log(np.asarray(levels, np.float64)) if kind in LOG_KINDS else np.asarray(levels, np.float64)
    u = (x - x.min()) / (x.max() - x.min())
    s = np.asarray(scores, np.float64)
    return np.sum(0.5 * (s[1:] + s[:-1]) * np.diff(u).reshape((-1,) + (1,) * (s.ndim - 1)), axis=0)


# ----- training (resumable) --------------------------------------------------------------------------


def _train_config(task: Task, method: Method, n_seeds: int, run_dir: Path, progress: bool):
    from softrl import AgentConfig, TrainConfig

    return TrainConfig(
        algo=method.algo, env=task.train_env or task.env_id, seed=0, seeds=n_seeds, total_steps=task.total_steps,
        learning_starts=task.learning_starts, eval_every=0, eval_episodes=task.episodes,
        log_every=max(task.total_steps // 20, 100), checkpoint_every=max(task.total_steps // 5, 1_000),
        buffer_size=task.total_steps, run_dir=str(run_dir), progress=progress,
        agent=AgentConfig(hidden=task.hidden, batch_size=task.batch_size, alpha=method.alpha),
    )


def train_or_reuse(task: Task, method: Method, n_seeds: int, run_dir: Path, progress: bool):
    """(agent, states, status, wall_s) through `report.train_or_resume`: reuses a finished run, resumes a
    partial one, else trains; a run of another configuration in `run_dir` is refused, never overwritten."""
    cfg = _train_config(task, method, n_seeds, run_dir, progress)
    t0 = time.perf_counter()
    result, status = train_or_resume(cfg, on_mismatch="error")
    wall = result.timing.get("wall_s") if status == "reused" else time.perf_counter() - t0
    return result.agent, result.states, status, wall


def _eval_key(task: Task, n_seeds: int) -> dict:
    return {"sweeps": {k: list(v) for k, v in task.sweeps.items()}, "episodes": task.episodes, "seeds": n_seeds,
            "modes": list(MODES), "force_prob": task.force_prob, "force_duration": task.force_duration}


def evaluate_or_reuse(task: Task, agent, states, n_seeds: int, run_dir: Path, status: str, seed: int):
    """The evaluation sweep, cached in run_dir/robustness_eval.json (recomputed after any new training)."""
    cache = run_dir / "robustness_eval.json"
    key = _eval_key(task, n_seeds)
    if status == "reused" and cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return {m: {k: np.asarray(v) for k, v in d.items()} for m, d in saved["returns"].items()}, True
    returns = evaluate_sweeps(task, agent, states, n_seeds, jax.random.PRNGKey(seed))
    run_dir.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "returns": {m: {k: v.tolist() for k, v in d.items()}
                                                         for m, d in returns.items()}}))
    return returns, False


# ----- identity checks of the perturbations themselves -------------------------------------------------


def _trajectory(env, seed: int, actions: np.ndarray) -> np.ndarray:
    """Observations and rewards of a fixed open-loop action sequence, [T, O + 1] (zeros after an episode end)."""
    obs, _ = env.reset(seed=seed)
    rows = []
    done = False
    for a in actions:
        if done:
            rows.append(np.zeros(len(rows[-1])))
            continue
        obs, r, term, trunc, _ = env.step(a.astype(env.action_space.dtype))
        rows.append(np.concatenate([np.asarray(obs, np.float64).ravel(), [r]]))
        done = term or trunc
    env.close()
    return np.asarray(rows)


def wrapper_checks(task_ids: list[str]) -> dict[str, Any]:
    """Nominal levels reproduce the nominal env bit for bit; other levels change the trajectory; MassScale
    scales masses exactly; ForcePulses is reproducible; the wall blocks the straight path."""
    from softrl.collect import make_env
    from softrl.envs.point_reach import PointReachEnv

    out: dict[str, Any] = {"nominal_max_abs_diff": 0.0, "min_perturbed_diff": math.inf, "per_env": {}}
    rng = np.random.default_rng(0)
    for env_id in task_ids:
        space = cast(gym.spaces.Box, make_env(env_id).action_space)  # every task here is continuous
        actions = rng.uniform(space.low, space.high, (60, *space.shape))
        if is_point_mass(env_id):
            actions[:, 0] = 1.0  # head for the goal along x, so that the wall is met
        base = _trajectory(make_env(env_id), 7, actions)
        kinds = [k for k in KINDS if k != ("friction" if is_point_mass(env_id) else "obstacle")]
        per = {}
        for kind in kinds:
            nominal = _trajectory(make_perturbed(env_id, kind, NOMINAL_LEVEL[kind], seed=7), 7, actions)
            level = {"mass": 2.0, "friction": 3.0, "force": 0.3 if is_point_mass(env_id) else 300.0,
                     "action_noise": 0.5, "obstacle": 0.4}[kind]
            # force pulses every step so that a short trajectory surely contains one
            perturbed = _trajectory(make_perturbed(env_id, kind, level, seed=7, force_prob=1.0), 7, actions)
            per[kind] = {"nominal_max_abs_diff": float(np.abs(nominal - base).max()),
                         "perturbed_max_abs_diff": float(np.abs(perturbed - base).max())}
            out["nominal_max_abs_diff"] = max(out["nominal_max_abs_diff"], per[kind]["nominal_max_abs_diff"])
            out["min_perturbed_diff"] = min(out["min_perturbed_diff"], per[kind]["perturbed_max_abs_diff"])
        force = 0.2 if is_point_mass(env_id) else 200.0
        f1 = _trajectory(make_perturbed(env_id, "force", force, seed=3, force_prob=0.2), 11, actions)
        f2 = _trajectory(make_perturbed(env_id, "force", force, seed=3, force_prob=0.2), 11, actions)
        per["force_repeat_max_abs_diff"] = float(np.abs(f1 - f2).max())
        out["per_env"][env_id] = per
        if not is_point_mass(env_id):
            env = make_perturbed(env_id, "mass", 2.0)
            u: Any = env.unwrapped  # a MuJoCo env (model)
            nominal_mass = cast(Any, make_env(env_id).unwrapped).model.body_mass
            pos = nominal_mass > 0
            out["mass_ratio_error"] = float(np.abs(u.model.body_mass[pos] / nominal_mass[pos] - 2.0).max())
    out["force_repeat_max_abs_diff"] = max(v["force_repeat_max_abs_diff"] for v in out["per_env"].values())

    # Straight-line controller: reaches the goal without the wall, never passes through it with it.
    def straight(env: PointReachEnv) -> tuple[bool, bool]:
        env.reset(seed=0)
        crossed_wall, reached = False, False
        for _ in range(60):
            prev = env.pos.copy()
            _, _, term, _, _ = env.step(np.clip((env.goal - env.pos) / env.step_size, -1, 1))
            if (prev[0] < 0) != (env.pos[0] < 0):
                y = prev[1] + (0 - prev[0]) / (env.pos[0] - prev[0]) * (env.pos[1] - prev[1])
                crossed_wall |= abs(y) <= env.obstacle_size
            if term:
                reached = True
                break
        return reached, crossed_wall

    free_reached, _ = straight(PointReachEnv())
    walled_reached, walled_crossed = straight(PointReachEnv(obstacle="wall", obstacle_size=0.4))
    out["obstacle"] = {"reached_without_wall": free_reached, "reached_with_wall": walled_reached,
                       "crossed_wall": walled_crossed}
    return out


# ----- the experiment --------------------------------------------------------------------------------


def _select_tasks(quick: bool, tasks: tuple[str, ...] | None) -> tuple[list[Task], list[str]]:
    if quick:
        return [QUICK_TASK], [t.key for t in TASKS if t.key != "point-mass"]
    if tasks is None:
        env = os.environ.get("SOFTRL_ROBUSTNESS_TASKS", "").strip()
        tasks = tuple(t.strip() for t in env.split(",") if t.strip()) or tuple(t.key for t in TASKS)
    unknown = set(tasks) - {t.key for t in TASKS}
    if unknown:
        raise ValueError(f"unknown task(s) {sorted(unknown)}; choose from {[t.key for t in TASKS]}")
    return [t for t in TASKS if t.key in tasks], [t.key for t in TASKS if t.key not in tasks]


def _run_task(out: Path, task: Task, n_seeds: int, quick: bool) -> dict:
    """Train (or reuse) every method, evaluate the sweeps, normalise, and compute AUCs."""
    runs_root = out / "runs" / task.key
    methods: dict[str, dict] = {}
    for i, method in enumerate(task.methods):
        run_dir = runs_root / method.slug
        print(f"[robustness] {task.key}: {method.label} ({i + 1}/{len(task.methods)}), "
              f"{task.total_steps} steps x {n_seeds} seed(s) -> {run_dir}", flush=True)
        agent, states, status, wall = train_or_reuse(task, method, n_seeds, run_dir, progress=not quick)
        t0 = time.perf_counter()
        returns, cached = evaluate_or_reuse(task, agent, states, n_seeds, run_dir, status, seed=1 + i)
        print(f"[robustness] {task.key}: {method.label}: training {status}, evaluation "
              f"{'reused' if cached else f'{time.perf_counter() - t0:.0f} s'}", flush=True)
        methods[method.label] = {"algo": method.algo, "alpha": method.alpha, "run_dir": run_dir,
                                 "train_status": status, "train_wall_s": wall, "eval_cached": cached,
                                 "returns": returns}
    rand = random_returns(task, n_seeds, jax.random.PRNGKey(99))
    # Nominal return of a method and mode: the nominal level of every sweep, pooled ([seeds]).
    for m in methods.values():
        m["nominal_per_seed"] = {
            mode: np.mean([m["returns"][mode][k][list(lv).index(NOMINAL_LEVEL[k])] for k, lv in task.sweeps.items()],
                          axis=(0, 2))
            for mode in MODES}
    ref = {mode: max(float(np.mean(m["nominal_per_seed"][mode])) for m in methods.values()) for mode in MODES}
    zero = float(np.mean(rand))
    for m in methods.values():
        m["auc"], m["auc_per_seed"], m["nominal_score"] = {}, {}, {}
        m["nominal"] = {mode: mean_ci(m["nominal_per_seed"][mode]) for mode in MODES}
        for mode in MODES:
            span = ref[mode] - zero if abs(ref[mode] - zero) > 1e-9 else 1.0
            m["nominal_score"][mode] = mean_ci((m["nominal_per_seed"][mode] - zero) / span)
            per_kind = {}
            for kind, levels in task.sweeps.items():
                score = (m["returns"][mode][kind].mean(axis=2) - zero) / span  # [levels, seeds]
                per_kind[kind] = auc(levels, score, kind)  # [seeds]
            m["auc_per_seed"][mode] = per_kind
            m["auc"][mode] = {k: mean_ci(v) for k, v in per_kind.items()}
            mean_auc = np.mean(list(per_kind.values()), axis=0)  # [seeds]
            m["auc"][mode]["mean over kinds"] = mean_ci(mean_auc)
            # Robustness net of nominal quality: how far the sweep's mean score falls below the method's own
            # nominal score (0: nothing lost; the mass sweep's easier half can make it positive).
            m["auc_minus_nominal"] = m.get("auc_minus_nominal", {})
            m["auc_minus_nominal"][mode] = mean_ci(mean_auc - (m["nominal_per_seed"][mode] - zero) / span)
    return {"task": dataclasses.asdict(task), "num_seeds": n_seeds, "random_return": mean_ci(rand),
            "reference_nominal_return": ref, "methods": methods}


def _task_section(report: Report, task: Task, res: dict, figure: Figure) -> None:
    n_seeds = res["num_seeds"]
    methods = res["methods"]
    report.heading(f"{task.env_id}")
    trained = ", ".join(f"{k}: {v['train_status']}"
                        + (f" ({v['train_wall_s']:.0f} s of training)" if v["train_wall_s"] is not None else "")
                        for k, v in methods.items())
    report.para(
        f"Training: {task.total_steps:,} env steps per seed, {n_seeds} seed(s) in one process per method, "
        f"learning starts {task.learning_starts:,}, networks {task.hidden}, batch {task.batch_size}, one update per "
        f"step ({trained}). Evaluation: {task.episodes} episode(s) per level and seed, the same reset seeds at every "
        f"level and for every method. Force pulses: probability {task.force_prob} per step, {task.force_duration} "
        "steps long" + (" (newtons, along x, on the torso)" if not is_point_mass(task.env_id) else
                        " (displacement per step, random direction)")
        + f". Score 0 = uniform random policy ({fmt(res['random_return']['mean'], 4)} on the nominal env), "
        f"score 1 = best method's nominal return ({fmt(res['reference_nominal_return']['stochastic'], 4)} "
        "stochastic, " + f"{fmt(res['reference_nominal_return']['deterministic'], 4)} deterministic)."
    )
    kinds = list(task.sweeps)
    header = (["method", "nominal return (stochastic)"] + [f"AUC {k}" for k in kinds]
              + ["AUC mean over kinds", "AUC - own nominal score"])
    rows = []
    for label, m in methods.items():
        a = m["auc"]["stochastic"]
        rows.append([label, fmt_ci(m["nominal"]["stochastic"], 4)] + [fmt_ci(a[k], 3) for k in kinds]
                    + [fmt_ci(a["mean over kinds"], 3), fmt_ci(m["auc_minus_nominal"]["stochastic"], 3)])
    report.para("**Stochastic policy (a ~ pi, as Eysenbach & Levine evaluate the MaxEnt policy).** Normalised AUC "
                "(mean score over the sweep, 1 = best nominal return kept at every level) with 95% CI across seeds; "
                "the last column subtracts each method's own nominal score, i.e. what the perturbations cost it on "
                "average (closer to 0 = more robust, whatever the nominal quality):")
    report.table(header, rows)
    rows = []
    for label, m in methods.items():
        a = m["auc"]["deterministic"]
        rows.append([label, fmt_ci(m["nominal"]["deterministic"], 4)] + [fmt_ci(a[k], 3) for k in kinds]
                    + [fmt_ci(a["mean over kinds"], 3), fmt_ci(m["auc_minus_nominal"]["deterministic"], 3)])
    report.para("**Deterministic policy (the mean / mode action).** Same normalisation, deterministic reference:")
    report.table(["method", "nominal return (deterministic)"] + header[2:], rows)

    report.embed(figure)


def _task_figure(res: dict, out: Path, quick: bool) -> Figure:
    """Return versus perturbation level for every method: one panel per kind, stochastic and deterministic rows."""
    task = _task_of(res)
    n_seeds, methods = res["num_seeds"], res["methods"]
    kinds = list(task.sweeps)
    with plot_style():
        plt = pyplot()
        fig, axes = plt.subplots(2, len(kinds), figsize=(4.3 * len(kinds), 8.2), squeeze=False)
        colors = plt.get_cmap("tab10")(np.arange(len(methods)))
        spread = "ci" if n_seeds > 1 else "minmax"
        for row, mode in enumerate(MODES):
            for col, kind in enumerate(kinds):
                ax = axes[row, col]
                levels = np.asarray(task.sweeps[kind])
                lo, hi = np.inf, -np.inf
                for c, (label, m) in zip(colors, methods.items()):
                    per_seed = m["returns"][mode][kind].mean(axis=2).T  # [seeds, levels]
                    lo, hi = min(lo, per_seed.min()), max(hi, per_seed.max())
                    style: dict[str, Any] = {"linestyle": "--"} if m["algo"] != "sac" else {}
                    band(ax, levels, per_seed, label, color=c, spread=spread, marker="o", markersize=3, **style)
                # A 3-seed t-interval reaches far past the data; clip the view to the per-seed returns.
                pad = 0.08 * max(hi - lo, 1e-9)
                ax.set_ylim(min(lo, res["random_return"]["mean"]) - pad, max(hi, res["random_return"]["mean"]) + pad)
                ax.axhline(res["random_return"]["mean"], color="grey", linestyle=":", linewidth=1)
                if kind in LOG_KINDS:
                    ax.set_xscale("log")
                    ax.set_xticks(levels, [f"{x:g}" for x in levels])
                    ax.minorticks_off()
                ax.axvline(NOMINAL_LEVEL[kind], color="k", linewidth=0.8, alpha=0.5)
                force_unit = " (arena units / step)" if is_point_mass(task.env_id) else " (N)"
                ax.set_xlabel(UNITS[kind] + (force_unit if kind == "force" else ""))
                ax.set_title(f"{kind} ({mode} policy)")
                if col == 0:
                    ax.set_ylabel("episode return (undiscounted)")
        axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
        band_note = ("mean and 95% CI band over seeds (view clipped to the per-seed returns)" if n_seeds > 1
                     else "1 seed, no band")
        fig.suptitle(f"{task.env_id}, trained nominal, tested perturbed: does MaxEnt (SAC, solid) keep more return "
                     "than DDPG / TD3 / SVG(0) (dashed)?\n"
                     f"{band_note}; grey dotted: uniform random policy; vertical line: nominal level"
                     + ("; QUICK smoke test, says nothing about the claim" if quick else ""), fontsize=12)
        fig.tight_layout()
        return save_figure(fig, out, f"robustness_{task.key}.png",
                           f"{task.env_id}: return versus perturbation level, one panel per perturbation kind; "
                           "top row the stochastic policy, bottom row the deterministic one.")



def _task_of(res: dict) -> Task:
    """The task a `_run_task` result was computed for (its methods are in the result)."""
    return Task(**{**res["task"], "methods": ()})


def figures(results: dict, out: Path, quick: bool) -> list[Figure]:
    """One figure per task run."""
    return [_task_figure(res, out, quick) for res in results["tasks"].values()]


def reading(results: dict, report: Report, figs: list[Figure], quick: bool) -> None:
    """Per task: its setup, the AUC tables and its figure; then what they say about Eq. 27."""
    for res, fig in zip(results["tasks"].values(), figs):
        _task_section(report, _task_of(res), res, fig)
    _reading(report, results["tasks"], quick, results["tasks_not_run"])


def _reading(report: Report, results: dict, quick: bool, not_run: list[str]) -> None:
    report.heading("Reading")
    if quick:
        report.para("Quick mode is a smoke test of the pipeline (point mass only, 1 seed, 1,500 env steps, 32x32 "
                    "networks, 2 methods, 3 levels per perturbation): **its numbers say nothing about the claim.** "
                    "Run without --quick for the evidence. The perturbation wrappers' checks below are exact either "
                    "way.")
        return
    parts = []
    for res in results.values():
        methods = res["methods"]
        auc_of = {k: m["auc"]["stochastic"]["mean over kinds"] for k, m in methods.items()}
        sac = {k: v for k, v in auc_of.items() if methods[k]["algo"] == "sac"}
        other = {k: v for k, v in auc_of.items() if methods[k]["algo"] != "sac"}
        best_sac = max(sac, key=lambda k: sac[k]["mean"])
        best_other = max(other, key=lambda k: other[k]["mean"])
        s, o = sac[best_sac], other[best_other]
        separated = s["lo"] is not None and o["hi"] is not None and s["lo"] > o["hi"]
        reverse = o["lo"] is not None and s["hi"] is not None and o["lo"] > s["hi"]
        verdict = ("supports the claim (intervals separated)" if separated else
                   "contradicts the claim (intervals separated the other way)" if reverse else
                   "does not separate the methods (intervals overlap)")
        text = (f"{res['task']['env_id']}: best SAC by mean AUC (stochastic, mean over kinds) is {best_sac} "
                f"{fmt_ci(s, 3)}, best non-MaxEnt method is {best_other} {fmt_ci(o, 3)}; this {verdict}.")
        cost = {k: m["auc_minus_nominal"]["stochastic"] for k, m in methods.items()}
        c_sac = max((k for k in cost if methods[k]["algo"] == "sac"), key=lambda k: cost[k]["mean"])
        c_other = max((k for k in cost if methods[k]["algo"] != "sac"), key=lambda k: cost[k]["mean"])
        text += (" Net of nominal quality (AUC minus the method's own nominal score; closer to 0 = less lost), the "
                 f"least-hurt SAC is {c_sac} {fmt_ci(cost[c_sac], 3)} and the least-hurt other method is {c_other} "
                 f"{fmt_ci(cost[c_other], 3)} (a floor effect is possible: a method with a poor nominal score has "
                 "less return to lose, so a small cost alone is not robustness).")
        if "obstacle" in res["task"]["sweeps"]:
            ob = {k: (m["auc"]["stochastic"]["obstacle"]["mean"], m["auc"]["deterministic"]["obstacle"]["mean"])
                  for k, m in methods.items()}
            text += (" On the wall of Eysenbach & Levine's Fig. 1 (obstacle AUC, stochastic / deterministic): "
                     + ", ".join(f"{k} {fmt(a, 3)} / {fmt(b, 3)}" for k, (a, b) in ob.items()) + ".")
            # Stuck in front of the wall, the point is >= 1 from the goal for most of the 50 steps: return < -40,
            # while getting past it earns the goal bonus.
            levels = res["task"]["sweeps"]["obstacle"]
            passable = [lv for j, lv in enumerate(levels) if lv > 0 and any(
                m["returns"]["stochastic"]["obstacle"][j].mean() > -40 for m in methods.values())]
            text += (" Some method's mean return shows it getting past walls of half-length "
                     + (", ".join(f"{lv:g}" for lv in passable) if passable else "none")
                     + f"; at {', '.join(f'{lv:g}' for lv in levels if lv > 0 and lv not in passable) or 'no level'} "
                       "every method stays stuck in front of the wall.")
        alphas = [(float(m["alpha"]), auc_of[k]["mean"]) for k, m in methods.items()
                  if m["algo"] == "sac" and m["alpha"] != "auto"]
        if len(alphas) > 1:
            alphas.sort()
            up = all(b[1] >= a[1] for a, b in zip(alphas, alphas[1:]))
            down = all(b[1] <= a[1] for a, b in zip(alphas, alphas[1:]))
            text += (" Across fixed alphas (" + ", ".join(f"{a:g}: {v:.3f}" for a, v in alphas) + ") the AUC "
                     + ("grows with alpha." if up else "falls as alpha grows: at this budget a larger alpha costs "
                        "nominal return and buys no matching robustness." if down else "is not monotone in alpha."))
        parts.append(text)
    text = " ".join(parts)
    text += (" The AUC mixes two things: how good a policy is on the nominal task and how much it loses when "
             "perturbed, so the nominal-return column must be read next to it; the budgets are far below the "
             "published ones, so these are small-budget policies, and a handful of seeds gives wide intervals. "
             "Eq. 27 is a bound for a particular set of adversarial perturbations, not a promise about these "
             "hand-picked sweeps.")
    if not_run:
        text += f" Tasks not run in this invocation: {', '.join(not_run)} (the claim is untested there)."
    report.para(text)


def task_seeds(task: Task, quick: bool, seeds: int | None) -> int:
    """Seeds of one task: 1 in quick mode, else --seeds, else the task's default (30 for the point mass)."""
    return 1 if quick else (task.default_seeds if seeds is None else seeds)


def compute(out: Path, quick: bool, seeds: int | None, tasks: tuple[str, ...] | None = None) -> dict:
    """Trains and evaluates every method of the chosen tasks (see `_select_tasks`), and checks the wrappers."""
    chosen, not_run = _select_tasks(quick, tasks)
    task_ids = sorted({t.env_id for t in chosen} | {"softrl/PointReach-v0", "HalfCheetah-v5"})
    wrappers = wrapper_checks(task_ids)
    results = {task.key: _run_task(Path(out), task, task_seeds(task, quick, seeds), quick) for task in chosen}
    return {"wrapper_checks": wrappers, "tasks": results, "tasks_not_run": not_run, "curve_policy": "stochastic",
            "checks": _checks(wrappers, results)}


def _checks(wrappers: dict, results: dict) -> list[Check]:
    ob = wrappers["obstacle"]
    finite = all(np.isfinite(v).all() for res in results.values() for m in res["methods"].values()
                 for d in m["returns"].values() for v in d.values())
    return [
        check("nominal_level_is_identity", wrappers["nominal_max_abs_diff"], 0.0,
              "max |trajectory(perturbation at its nominal level) - trajectory(plain env)|, fixed actions, "
              "every kind and env (must be exactly 0)"),
        check("perturbations_change_dynamics", wrappers["min_perturbed_diff"], 1e-6,
              "min over kinds/envs of max |trajectory(perturbed) - trajectory(plain)| (passes when > 1e-6)",
              passed=wrappers["min_perturbed_diff"] > 1e-6),
        check("mass_scale_exact", wrappers["mass_ratio_error"], 1e-12,
              "HalfCheetah-v5, MassScale(2.0): max |body_mass / nominal - 2|"),
        check("force_pulses_reproducible", wrappers["force_repeat_max_abs_diff"], 0.0,
              "two ForcePulses envs with the same seed give identical trajectories"),
        check("wall_blocks_straight_path", float(ob["crossed_wall"]) + float(ob["reached_with_wall"]), 0.0,
              "a straight-line controller reaches the goal without the wall, but neither crosses the wall "
              "nor reaches the goal with it (value: crossings + reached)",
              passed=ob["reached_without_wall"] and not ob["crossed_wall"] and not ob["reached_with_wall"]),
        check("eval_returns_finite", 0.0 if finite else 1.0, 0.0, "every evaluation return is finite"),
    ]


def run(out: Path, quick: bool = False, seeds: int | None = None, tasks: tuple[str, ...] | None = None) -> Report:
    """Train each method on the nominal task(s), evaluate on unseen perturbations, report curves and AUCs.
    `seeds`: per task (default: each task's `default_seeds`, 30 for the point mass, 3 for MuJoCo)."""
    chosen, not_run = _select_tasks(quick, tasks)
    if quick:
        budget = ("Quick smoke test: point mass only, 2 methods (SAC alpha 0.3, DDPG) x 1 seed x 1,500 env steps, "
                  "32x32 networks, 3 levels per perturbation, 2 episodes each (~1-2 min on 2 CPU cores). "
                  "Eysenbach & Levine 2021 train for about 1M steps per MuJoCo task.")
    else:
        budget = (
            "; ".join(f"{t.train_env or t.env_id}: {t.total_steps:,} env steps x {task_seeds(t, quick, seeds)} seeds x "
                      f"{len(t.methods)} methods"
                      + (f" (published SAC/TD3 budgets: ~{t.published_steps:,} steps, so "
                         f"{t.total_steps / t.published_steps:.0%} of it)" if t.published_steps
                         else " (our version of their 2-D task; no published budget)")
                      for t in TASKS)
            + ". The point mass trains on its JAX twin (the on-device loop, all seeds in one compiled program); "
              "evaluation steps the gymnasium env with the perturbation wrappers. Measured on 2 CPU cores before "
              "the on-device loop (3 seeds): point mass 17 min; Hopper and HalfCheetah ~65-70 min each, trained side "
              "by side (two processes, one core each: SOFTRL_ROBUSTNESS_TASKS=hopper and =halfcheetah with "
              "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false, 7-13 min per method) plus 15-60 s of evaluation per "
              "method; ~2.5 h of machine time in all. Resumable: finished runs are reused, partial ones resumed, "
              "so it can be spread over sessions. This invocation ran: " + ", ".join(t.key for t in chosen)
            + (f"; not run: {', '.join(not_run)}." if not_run else ".")
        )
    report = Report(
        NAME, "Robustness of MaxEnt policies to unseen perturbations (Eq. 27)", out, quick,
        max(task_seeds(t, quick, seeds) for t in chosen),
        claim="Section 5.1, Robustness: \"Because we're learning many ways of solving the task, we should still be "
              "able to solve the task if one of those strategies is disabled.\" Eq. 27 (Eysenbach & Levine 2021): "
              "f(J_MaxEnt(pi; p, r)) <= min over nearby (p~, r~) of E_{p~, pi}[sum_t r~], so a MaxEnt policy trained "
              "on the nominal dynamics keeps a guaranteed return under perturbed ones.",
        budget=budget,
    )
    report.para(
        "Methods: SAC (MaxEnt, several alpha), and three methods without an entropy term: SVG(0) (stochastic actor "
        "with a fixed noise scale 0.3), DDPG and TD3 (deterministic actors). Trained on the nominal env only; "
        "then evaluated with frozen weights on perturbations never seen in training (`softrl.envs.perturb`): body "
        "mass and friction scales, random force pulses, Gaussian action noise, and a wall across the straight "
        "start-goal path of the point-mass task (Eysenbach & Levine 2021, Fig. 1). The curves and the first table "
        "use the **stochastic** policy (DDPG/TD3: their Gaussian exploration noise, std 0.1 of the half range; "
        "SVG(0): its fixed std), as Eysenbach & Levine evaluate the MaxEnt policy; the second table uses the "
        "deterministic (mean) action."
    )
    results = compute(report.out, quick, seeds, tasks)
    reading(results, report, figures(results, report.out, quick), quick)
    report.record(results)
    return report
