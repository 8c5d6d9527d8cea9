"""`softrl report DIR_OR_RUN_DIRS... --out REPORT_DIR`: compare configurations across environments.

Input: softrl run directories (each has config.json and seed_S/eval.csv with step, mean_return,
std_return; see softrl/log.py), or any directory above them (a sweep directory). Runs are grouped into
configurations by the config fields that differ between them (env, seeds and bookkeeping fields aside);
each seed of each run is one run of that configuration on that environment (task).

Output (REPORT_DIR): report.md, results.json, and PNGs:
- per environment: final deterministic evaluation return and learning-curve tables with 95% bootstrap
  intervals over seeds (`softrl.stats.mean_interval`), and `curves.png`;
- across environments: scores normalised as (score - random) / (reference - random) with the random and
  reference score of each environment stated; IQM, mean, median and optimality gap with stratified
  bootstrap intervals (`aggregates.png`); probability of improvement between every pair of
  configurations; performance profiles (`profiles.png`); IQM-vs-steps curves (`iqm_curves.png`).
Statistics follow Agarwal et al. 2021 (see softrl/stats.py for the method and why rliable is not used).

Normalisation scores (`SCORES`). Random: the mean return of uniformly random actions, measured with
`measure_random_score` (100 episodes for classic control, 20 for MuJoCo, episode seeds 0..n-1).
Reference: the trained-agent returns published in the RL Baselines3 Zoo benchmark table (Raffin et al.,
https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md): its SAC row for continuous-action
tasks and its DQN row for discrete ones. The Zoo's MuJoCo rows are for the v3 tasks; v5 keeps their reward
definitions, so they are used as the reference for v5 with that caveat. Environments missing from the table
can be given with `--scores ENV=RANDOM:REFERENCE`; others are reported per environment only.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import numpy as np
import tyro

from softrl import stats
from softrl.log import read_csv

ZOO = "RL Baselines3 Zoo benchmark.md"


class EnvScores(NamedTuple):
    random: float  # mean return of uniformly random actions
    reference: float  # published trained-agent return
    source: str  # where the reference comes from


SCORES: dict[str, EnvScores] = {
    "Pendulum-v1": EnvScores(-1207.56, -156.995, f"{ZOO}, SAC, 20k steps"),
    "MountainCarContinuous-v0": EnvScores(-33.25, 94.679, f"{ZOO}, SAC, 50k steps"),
    "CartPole-v1": EnvScores(23.68, 500.0, f"{ZOO}, DQN, 50k steps"),
    "Acrobot-v1": EnvScores(-497.08, -76.639, f"{ZOO}, DQN, 100k steps"),
    "HalfCheetah-v5": EnvScores(-260.79, 9535.451, f"{ZOO}, SAC, HalfCheetah-v3, 1M steps"),
    "Hopper-v5": EnvScores(24.8, 2325.547, f"{ZOO}, SAC, Hopper-v3, 1M steps"),
    "Walker2d-v5": EnvScores(2.23, 3863.203, f"{ZOO}, SAC, Walker2d-v3, 1M steps"),
    "Ant-v5": EnvScores(-19.45, 4615.791, f"{ZOO}, SAC, Ant-v3, 1M steps"),
    "Humanoid-v5": EnvScores(105.58, 6232.287, f"{ZOO}, SAC, Humanoid-v3, 2M steps"),
    "Swimmer-v5": EnvScores(-3.15, 345.568, f"{ZOO}, SAC, Swimmer-v3, 1M steps"),
}

# Config fields that say how a run was executed or which seeds it holds, not what was trained.
IGNORED_FIELDS = {"env", "seed", "seeds", "run_dir", "progress", "tensorboard", "cpu_devices", "vmap_updates",
                  "log_every", "checkpoint_every", "eval_every", "eval_episodes"}


@dataclasses.dataclass(frozen=True)
class ReportCommand:
    """Compare run directories (or sweep directories holding them) with bootstrap statistics across envs."""

    inputs: Annotated[tuple[str, ...], tyro.conf.Positional]
    """Run directories written by `softrl train`/`softrl sweep`, or directories above them."""
    out: str = "report"
    """Directory for report.md, results.json and the PNGs."""
    reps: int = 2000
    """Bootstrap resamples."""
    scores: tuple[str, ...] = ()
    """Extra or replacement normalisation scores, ENV=RANDOM:REFERENCE (e.g. Reacher-v5=-43.9:-4)."""
    seed: int = 0
    """Seed of the bootstrap resampling."""


class Run(NamedTuple):
    fields: dict[str, Any]  # flattened config (agent fields without prefix)
    env: str
    steps: np.ndarray  # [T] eval steps common to all seeds
    returns: np.ndarray  # [seeds, T] mean deterministic eval return


# ----- loading --------------------------------------------------------------------------------------------


def find_run_dirs(inputs: list[Path]) -> list[Path]:
    """Every directory with config.json and seed_* folders, at or below each input, sorted."""
    found: set[Path] = set()
    for p in inputs:
        if not p.exists():
            raise FileNotFoundError(f"{p} does not exist")
        candidates = [p] if (p / "config.json").exists() else [c.parent for c in p.rglob("config.json")]
        found.update(c for c in candidates if any(c.glob("seed_*/eval.csv")))
    if not found:
        where = ", ".join(map(str, inputs))
        raise ValueError(f"no softrl run directories (config.json + seed_*/eval.csv) under {where}")
    return sorted(found)


def _flatten(config: dict) -> dict[str, Any]:
    flat = {k: v for k, v in config.items() if k != "agent"}
    for k, v in config.get("agent", {}).items():
        flat[k] = tuple(v) if isinstance(v, list) else v
    return flat


def load_run(run_dir: Path) -> Run:
    config = json.loads((run_dir / "config.json").read_text())
    per_seed = []
    for d in sorted(run_dir.glob("seed_*"), key=lambda p: int(p.name.split("_")[1])):
        if (d / "eval.csv").exists():
            rows = read_csv(d / "eval.csv")
            per_seed.append({r["step"]: r["mean_return"] for r in rows if "mean_return" in r})
    common = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
    if not common:
        raise ValueError(f"{run_dir}: its seeds share no evaluation step")
    returns = np.array([[s[t] for t in common] for s in per_seed], np.float64)
    return Run(_flatten(config), config["env"], np.asarray(common, np.int64), returns)


def config_labels(runs: list[Run]) -> tuple[list[str], list[str]]:
    """A label per run naming the fields that differ between runs, and the list of those fields."""
    keys = sorted({k for r in runs for k in r.fields} - IGNORED_FIELDS)
    varying = [k for k in keys if len({repr(r.fields.get(k)) for r in runs}) > 1]
    if not varying:
        return [str(r.fields.get("algo", "config")) for r in runs], []
    return [", ".join(f"{k}={_fmt(r.fields.get(k))}" for k in varying) for r in runs], varying


def _fmt(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "x".join(map(str, v))
    return str(v)


def group(runs: list[Run]) -> dict[str, dict[str, Run]]:
    """{config label: {env: Run}}, merging runs of one config and env (their seeds are stacked)."""
    labels, _ = config_labels(runs)
    out: dict[str, dict[str, Run]] = {}
    for label, run in zip(labels, runs):
        envs = out.setdefault(label, {})
        envs[run.env] = _merge(envs[run.env], run) if run.env in envs else run
    return out


def _merge(a: Run, b: Run) -> Run:
    common = np.intersect1d(a.steps, b.steps)
    if common.size == 0:
        raise ValueError(f"runs of one configuration on {a.env} share no evaluation step")
    pick = lambda r: r.returns[:, np.searchsorted(r.steps, common)]
    return Run(a.fields, a.env, common, np.concatenate([pick(a), pick(b)]))


def parse_scores(items: tuple[str, ...]) -> dict[str, EnvScores]:
    table = dict(SCORES)
    for item in items:
        try:
            env, values = item.split("=", 1)
            random_score, reference = (float(v) for v in values.split(":"))
        except ValueError:
            raise ValueError(f"--scores takes ENV=RANDOM:REFERENCE, got {item!r}") from None
        table[env] = EnvScores(random_score, reference, "given with --scores")
    return table


# ----- analysis -------------------------------------------------------------------------------------------


def analyse(groups: dict[str, dict[str, Run]], table: dict[str, EnvScores], reps: int, seed: int) -> dict:
    """Everything the report shows, as plain JSON-able data."""
    envs = sorted({e for g in groups.values() for e in g})
    norm_envs = [e for e in envs if e in table]
    result: dict[str, Any] = {
        "envs": {e: (table[e]._asdict() if e in table else None) for e in envs},
        "normalised_envs": norm_envs,
        "configs": {},
        "probability_of_improvement": [],
    }
    for label, by_env in groups.items():
        result["configs"][label] = _analyse_config(by_env, table, norm_envs, reps, seed)
    result["probability_of_improvement"] = _poi_table(groups, reps, seed)
    result["performance_profiles"] = _profiles(groups, table, norm_envs, reps, seed)
    return result


def _analyse_config(by_env: dict[str, Run], table, norm_envs: list[str], reps: int, seed: int) -> dict:
    per_env = {}
    for env, run in sorted(by_env.items()):
        curve = stats.mean_interval(run.returns, reps, seed)
        per_env[env] = {
            "seeds": int(run.returns.shape[0]),
            "final_step": int(run.steps[-1]),
            "final": stats.mean_interval(run.returns[:, -1], reps, seed).to_dict(),
            "curve": {"steps": run.steps.tolist(), **curve.to_dict()},
        }
    out: dict[str, Any] = {"per_env": per_env}
    mine = [e for e in norm_envs if e in by_env]
    if mine:
        final = [stats.normalise(by_env[e].returns[:, -1], table[e].random, table[e].reference) for e in mine]
        out["normalised_envs"] = mine
        out["aggregates"] = {k: v.to_dict() for k, v in stats.aggregate_intervals(final, reps, seed).items()}
        out["iqm_curve"] = _iqm_curve([by_env[e] for e in mine], table, reps, seed)
    return out


def _iqm_curve(runs: list[Run], table, reps: int, seed: int) -> dict | None:
    """IQM of normalised eval returns at the eval steps shared by every env of the config."""
    steps = runs[0].steps
    for r in runs[1:]:
        steps = np.intersect1d(steps, r.steps)
    if steps.size == 0:
        return None
    curves = [
        stats.normalise(r.returns[:, np.searchsorted(r.steps, steps)], table[r.env].random, table[r.env].reference)
        for r in runs
    ]
    return {"steps": steps.tolist(), **stats.iqm_curve(curves, reps, seed).to_dict()}


def _poi_table(groups: dict[str, dict[str, Run]], reps: int, seed: int) -> list[dict]:
    """P(X > Y) for every ordered pair, on the envs both ran (raw returns: the statistic is rank-based)."""
    rows = []
    labels = list(groups)
    for x in labels:
        for y in labels:
            common = sorted(set(groups[x]) & set(groups[y]))
            if x == y or not common:
                continue
            xs = [groups[x][e].returns[:, -1] for e in common]
            ys = [groups[y][e].returns[:, -1] for e in common]
            iv = stats.probability_of_improvement_interval(xs, ys, reps, seed)
            rows.append({"x": x, "y": y, "envs": common, **iv.to_dict()})
    return rows


def _profiles(groups, table, norm_envs: list[str], reps: int, seed: int) -> dict | None:
    finals = {
        label: [stats.normalise(g[e].returns[:, -1], table[e].random, table[e].reference) for e in norm_envs if e in g]
        for label, g in groups.items()
    }
    finals = {k: v for k, v in finals.items() if v}
    if not finals:
        return None
    every = np.concatenate([np.concatenate(v) for v in finals.values()])
    taus = np.linspace(min(0.0, every.min()), max(1.0, every.max()), 81)
    out = {"taus": taus.tolist()}
    for label, tasks in finals.items():
        out[label] = stats.performance_profile(tasks, taus, reps, seed).to_dict()
    return out


# ----- writing --------------------------------------------------------------------------------------------


def run_report(cmd: ReportCommand) -> int:
    """Handler of `softrl report`: load, analyse, write report.md, results.json and PNGs."""
    if cmd.reps < 100:
        raise ValueError(f"--reps must be >= 100 for a 95% percentile interval, got {cmd.reps}")
    run_dirs = find_run_dirs([Path(p) for p in cmd.inputs])
    groups = group([load_run(d) for d in run_dirs])
    result = analyse(groups, parse_scores(cmd.scores), cmd.reps, cmd.seed)
    result["run_dirs"] = [str(d) for d in run_dirs]
    out = Path(cmd.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    figures = write_figures(result, out)
    (out / "report.md").write_text(render_markdown(result, figures, cmd.reps))
    print(f"report of {len(run_dirs)} runs, {len(groups)} configurations, written to {out / 'report.md'}")
    return 0


def _iv(d: dict, fmt: str = ".1f") -> str:
    return f"{d['point']:{fmt}} [{d['low']:{fmt}}, {d['high']:{fmt}}]"


def render_markdown(result: dict, figures: list[str], reps: int) -> str:
    labels = list(result["configs"])
    lines = ["# softrl report", "", f"{len(result['run_dirs'])} run directories, {len(labels)} configurations. "
             f"Intervals: 95% percentile bootstrap, {reps} resamples (stratified over environments for aggregates)."]
    lines += ["", "## Final return per environment", "", "Mean deterministic evaluation return over seeds at the "
              "last evaluation step, with a 95% bootstrap interval over seeds.", ""]
    lines += ["| env | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for env in result["envs"]:
        cells = []
        for lab in labels:
            e = result["configs"][lab]["per_env"].get(env)
            cells.append(f"{_iv(e['final'])} (n={e['seeds']}, step {e['final_step']})" if e else "-")
        lines.append(f"| {env} | " + " | ".join(cells) + " |")
    lines += _curve_tables(result, labels)
    lines += _normalised_section(result, labels)
    lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def _curve_tables(result: dict, labels: list[str], max_rows: int = 10) -> list[str]:
    lines = ["", "## Learning curves", "", "Mean evaluation return over seeds [95% bootstrap interval] at (up to "
             f"{max_rows}) evaluation steps.", ""]
    for env in result["envs"]:
        have = [lab for lab in labels if env in result["configs"][lab]["per_env"]]
        curves = {lab: result["configs"][lab]["per_env"][env]["curve"] for lab in have}
        steps = sorted({s for c in curves.values() for s in c["steps"]})
        picks = np.unique(np.linspace(0, len(steps) - 1, min(max_rows, len(steps))).round().astype(int))
        shown = [steps[i] for i in picks]
        lines += [f"### {env}", "", "| step | " + " | ".join(have) + " |", "|---|" + "---|" * len(have)]
        for s in shown:
            cells = []
            for lab in have:
                c = curves[lab]
                i = c["steps"].index(s) if s in c["steps"] else None
                cells.append("-" if i is None else f"{c['point'][i]:.1f} [{c['low'][i]:.1f}, {c['high'][i]:.1f}]")
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _normalised_section(result: dict, labels: list[str]) -> list[str]:
    lines = ["## Normalised scores across environments", "",
             "score_norm = (return - random) / (reference - random): 0 = uniformly random actions, 1 = reference.", "",
             "| env | random | reference | reference source |", "|---|---|---|---|"]
    for env, s in result["envs"].items():
        lines.append(f"| {env} | {s['random']:.2f} | {s['reference']:.2f} | {s['source']} |" if s
                     else f"| {env} | - | - | not in the table: reported per environment only (add --scores) |")
    agg = [lab for lab in labels if "aggregates" in result["configs"][lab]]
    if agg:
        names = list(result["configs"][agg[0]]["aggregates"])
        lines += ["", "### Aggregates (stratified bootstrap over environments)", "",
                  "| configuration | envs | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for lab in agg:
            c = result["configs"][lab]
            cells = [_iv(c["aggregates"][n], ".3f") for n in names]
            lines.append(f"| {lab} | {len(c['normalised_envs'])} | " + " | ".join(cells) + " |")
    if result["probability_of_improvement"]:
        lines += ["", "### Probability of improvement", "", "P(X > Y): chance that a run of X beats a run of Y on "
                  "the same environment, averaged over the environments both ran (Mann-Whitney form).", "",
                  "| X | Y | P(X > Y) [95%] | envs |", "|---|---|---|---|"]
        for row in result["probability_of_improvement"]:
            lines.append(f"| {row['x']} | {row['y']} | {_iv(row, '.3f')} | {len(row['envs'])} |")
    return lines


def measure_random_score(env_id: str, episodes: int, seed: int = 0) -> float:
    """Mean return of uniformly random actions over `episodes` episodes (episode i reset with seed + i)."""
    import gymnasium as gym

    env = gym.make(env_id)
    env.action_space.seed(seed)
    total = 0.0
    for i in range(episodes):
        env.reset(seed=seed + i)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
    env.close()
    return total / episodes


# ----- figures --------------------------------------------------------------------------------------------


def write_figures(result: dict, out: Path) -> list[str]:
    """Draw the PNGs that the data allows; returns their file names (relative to `out`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for name, draw in (("curves.png", _fig_curves), ("aggregates.png", _fig_aggregates),
                       ("iqm_curves.png", _fig_iqm_curves), ("profiles.png", _fig_profiles)):
        fig = draw(result, plt)
        if fig is not None:
            fig.savefig(out / name, dpi=120, bbox_inches="tight")
            plt.close(fig)
            names.append(name)
    return names


def _colors(labels: list[str], plt) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


def _fig_curves(result: dict, plt):
    envs, labels = list(result["envs"]), list(result["configs"])
    colors = _colors(labels, plt)
    cols = min(3, len(envs))
    rows = -(-len(envs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, env in zip(axes.flat, envs):
        for lab in labels:
            e = result["configs"][lab]["per_env"].get(env)
            if e:
                _band(ax, e["curve"]["steps"], e["curve"], colors[lab], lab)
        ax.set(title=env, xlabel="env steps", ylabel="eval return")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(envs):]:
        ax.axis("off")
    _legend(fig, axes.flat[0])
    fig.suptitle("Mean evaluation return over seeds (95% bootstrap band)")
    return fig


def _band(ax, x, d: dict, color, label: str) -> None:
    """d["point"] against x with its [d["low"], d["high"]] band; markers where the points are few, so that a
    curve with one evaluation (a short run) still shows."""
    ax.plot(x, d["point"], color=color, label=label, marker="o" if len(x) <= 20 else None, ms=4)
    ax.fill_between(x, d["low"], d["high"], color=color, alpha=0.2)


def _legend(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ncol = min(3, len(labels))
        fig.legend(handles, labels, loc="upper center", ncol=ncol, bbox_to_anchor=(0.5, 0.0), frameon=False)


def _fig_aggregates(result: dict, plt):
    labels = [lab for lab, c in result["configs"].items() if "aggregates" in c]
    if not labels:
        return None
    names = list(result["configs"][labels[0]]["aggregates"])
    colors = _colors(list(result["configs"]), plt)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 0.5 * len(labels) + 1.6), sharey=True)
    for ax, name in zip(axes, names):
        for y, lab in enumerate(labels):
            d = result["configs"][lab]["aggregates"][name]
            ax.plot([d["low"], d["high"]], [y, y], color=colors[lab], lw=6, alpha=0.5, solid_capstyle="butt")
            ax.plot([d["point"]], [y], "|", color="black", ms=14)
        ax.set(title=name, xlabel="normalised score")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels)
    fig.suptitle("Aggregates of normalised final scores (95% stratified bootstrap intervals)", y=1.02)
    return fig


def _fig_iqm_curves(result: dict, plt):
    labels = [lab for lab, c in result["configs"].items() if c.get("iqm_curve")]
    if not labels:
        return None
    colors = _colors(list(result["configs"]), plt)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lab in labels:
        _band(ax, result["configs"][lab]["iqm_curve"]["steps"], result["configs"][lab]["iqm_curve"], colors[lab], lab)
    ax.set(xlabel="env steps", ylabel="IQM normalised score", title="IQM over runs and environments (95% band)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _fig_profiles(result: dict, plt):
    prof = result.get("performance_profiles")
    if not prof:
        return None
    labels = [k for k in prof if k != "taus"]
    colors = _colors(list(result["configs"]), plt)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for lab in labels:
        _band(ax, prof["taus"], prof[lab], colors[lab], lab)
    ax.set(xlabel=r"normalised score $\tau$", ylabel=r"fraction of runs with score > $\tau$",
           title="Performance profiles (95% stratified bands)", ylim=(-0.02, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


if __name__ == "__main__":  # `python -m softrl.report ...` is `softrl report ...`
    import sys

    from softrl.cli import main

    raise SystemExit(main(["report", *sys.argv[1:]]))
