"""Section 5.1, "Exploration and Optimization": MaxEnt "helps discover multiple solutions to the problem".

Setting: the multi-goal point mass of Haarnoja et al. 2017 (`softrl/MultiGoal-v0`, see
`softrl.envs.multigoal`): four equally rewarding goals around the start. The soft-optimal policy
(Eq. 20, `pi = softmax(Q / alpha)`) puts probability on every equally good way of solving the task,
so a MaxEnt agent should keep reaching several goals, while an agent that maximises return alone
(DDPG, TD3, SVG(0), Eq. 1-3) has no reason to keep more than one.

Procedure: train DDPG, TD3, SVG(0) (fixed noise), SAC with auto alpha and SAC with a fixed larger
alpha on N seeds each (`softrl.train`, all seeds in one process). Then, per seed, run many stochastic
rollouts (the policy as it explores: DDPG/TD3 with their Gaussian exploration noise, SVG(0) with its
fixed-std noise, SAC sampling its tanh-Gaussian), as many deterministic ones (the actor's mean;
start states still random) and as many stochastic ones all started at exactly (0, 0) (so that only
the action noise can send them to different goals), and count the goals reached: a goal counts if at
least `MIN_FRACTION` of the rollouts end in it. Reported with 95% Student-t intervals across seeds.

Resumable: every method trains into OUT/runs/<slug>/ through `report.train_or_resume`: a completed run
with the same configuration is loaded instead of retrained, an interrupted one continues with
`softrl.train(cfg, resume=run_dir)`, and one of another configuration is replaced.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

import softrl
from softrl.config import Algo
from softrl.envs.multigoal import MAX_EPISODE_STEPS, MultiGoalParams, Rollouts, rollouts, step_batch
from softrl.experiments import report as rep
from softrl.experiments.report import Figure, Report, check, fmt, fmt_ci, mean_ci, train_or_resume

NAME = "exploration"
SUMMARY = "MaxEnt reaches several goals (Sec. 5.1)"

ENV_ID = "softrl/MultiGoal-v0"
# Training runs on the env's JAX twin: the whole loop in one compiled scan per chunk, all seeds vmapped
# (`softrl.ondevice`), which makes 30 seeds cheap; the rollouts below use the gymnasium env's own dynamics.
TRAIN_ENV_ID = "jax/" + ENV_ID
DEFAULT_SEEDS = 30  # seeds when --seeds is not given (intervals across seeds need many)
PARAMS = MultiGoalParams()  # the registered env's defaults
MIN_FRACTION = 0.05  # a goal "is reached by the policy" if >= 5% of its rollouts end there
FIXED_ALPHA = "0.5"
# Rollout sets per seed: sampled actions from random starts, the actor's mean from random starts, sampled
# actions all from exactly (0, 0).
MODES = ("stochastic", "deterministic", "origin")


@dataclasses.dataclass(frozen=True)
class Method:
    label: str
    slug: str  # run directory name under OUT/runs/
    algo: Algo
    alpha: str = "auto"
    maxent: bool = False


METHODS = (
    Method("DDPG", "ddpg", "ddpg"),
    Method("TD3", "td3", "td3"),
    Method("SVG(0)", "svg0", "svg0"),
    Method("SAC (auto alpha)", "sac", "sac", maxent=True),
    Method(f"SAC (alpha={FIXED_ALPHA})", f"sac-alpha{FIXED_ALPHA}", "sac", alpha=FIXED_ALPHA, maxent=True),
)


@dataclasses.dataclass(frozen=True)
class Budget:
    total_steps: int
    learning_starts: int
    hidden: tuple[int, ...]
    batch_size: int
    eval_every: int
    eval_episodes: int
    log_every: int
    checkpoint_every: int
    rollouts: int  # stochastic and deterministic rollouts per seed, each


QUICK = Budget(total_steps=1_500, learning_starts=500, hidden=(32, 32), batch_size=64, eval_every=500,
               eval_episodes=5, log_every=250, checkpoint_every=0, rollouts=100)
FULL = Budget(total_steps=20_000, learning_starts=1_000, hidden=(64, 64), batch_size=256, eval_every=2_000,
              eval_episodes=10, log_every=500, checkpoint_every=2_000, rollouts=200)


def train_config(method: Method, budget: Budget, seeds: int, run_dir: Path, progress: bool) -> softrl.TrainConfig:
    return softrl.TrainConfig(
        algo=method.algo, env=TRAIN_ENV_ID, seed=0, seeds=seeds, total_steps=budget.total_steps,
        learning_starts=budget.learning_starts, eval_every=budget.eval_every, eval_episodes=budget.eval_episodes,
        log_every=budget.log_every, checkpoint_every=budget.checkpoint_every, buffer_size=budget.total_steps,
        run_dir=str(run_dir), progress=progress,
        agent=softrl.AgentConfig(alpha=method.alpha, hidden=budget.hidden, batch_size=budget.batch_size),
    )


# ----- rollouts and goal statistics ------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _batched_act(agent):
    """One seed's state, a batch of observations and keys -> a batch of actions (jitted)."""
    return jax.jit(jax.vmap(agent.act, in_axes=(None, 0, 0, None)), static_argnums=3)


def policy_rollouts(agent, state, n: int, key: jax.Array, rng: np.random.Generator, deterministic: bool,
                    params: MultiGoalParams = PARAMS, from_origin: bool = False) -> tuple[Rollouts, np.ndarray]:
    """n episodes of one seed's policy, stepped together by `rollouts` (the env's own `step_batch`); all from
    exactly (0, 0) with `from_origin`, else from the env's random start states.

    Returns the rollouts and the actions taken [n, T, 2] (for replaying them in the gym env)."""
    act_fn = _batched_act(agent)
    actions: list[np.ndarray] = []
    keys = iter(jax.random.split(key, MAX_EPISODE_STEPS))  # one fresh key per step, never reused

    def act(obs: np.ndarray) -> np.ndarray:
        step_keys = jax.random.split(next(keys), obs.shape[0])
        action = np.asarray(act_fn(state, jnp.asarray(obs), step_keys, deterministic))  # [n, 2] in [-1, 1]
        actions.append(action)
        return action

    ro = rollouts(params, act, rng, n, init_pos=np.zeros((n, 2)) if from_origin else None)
    acts = np.zeros((n, MAX_EPISODE_STEPS, 2), np.float32)
    acts[:, : len(actions)] = np.stack(actions, axis=1)
    return ro, acts


def goal_stats(goal: np.ndarray, returns: np.ndarray, num_goals: int, min_fraction: float = MIN_FRACTION) -> dict:
    """Goal statistics of n rollouts. goal [n]: index reached or -1; returns [n].

    fractions [K]: share of all rollouts ending in each goal; distinct: goals with fraction >= min_fraction;
    entropy: of the goal distribution among successful rollouts (nats; log K when uniform, 0 for one goal).
    """
    goal = np.asarray(goal)
    n = goal.size
    counts = np.bincount(goal[goal >= 0], minlength=num_goals).astype(np.float64)  # [K]
    fractions = counts / n
    p = counts / counts.sum() if counts.sum() > 0 else counts
    nz = p[p > 0]
    return {
        "fractions": fractions,
        "none": float(np.mean(goal < 0)),
        "distinct": int(np.sum(fractions >= min_fraction)),
        "entropy": float(-np.sum(nz * np.log(nz))) + 0.0,
        "success": float(np.mean(goal >= 0)),
        "mean_return": float(np.mean(returns)),
    }


def replay_in_gym(ro: Rollouts, actions: np.ndarray, count: int) -> float:
    """Max discrepancy between `count` vectorised rollouts and the same actions replayed in the registered gym
    env (positions, rewards; +1 per episode whose length, goal or truncation differs)."""
    env = gym.make(ENV_ID)
    worst = 0.0
    for i in range(count):
        obs, _ = env.reset(seed=i, options={"pos": ro.pos[i, 0]})
        goal, length, truncated = -1, 0, False
        for t in range(MAX_EPISODE_STEPS):
            obs, reward, terminated, truncated, info = env.step(actions[i, t])
            worst = max(worst, float(np.abs(obs - ro.pos[i, t + 1]).max()), abs(reward - ro.reward[i, t]))
            length, goal = t + 1, info["goal"]
            if terminated or truncated:
                break
        expect_truncated = ro.goal[i] < 0 and ro.length[i] == MAX_EPISODE_STEPS
        worst += float(length != ro.length[i]) + float(goal != ro.goal[i]) + float(truncated != expect_truncated)
    env.close()
    return worst


def rotation_symmetry_error(params: MultiGoalParams = PARAMS, n: int = 2_000, seed: int = 0) -> float:
    """Max |r(s, a) - r(R s, R a)| over random (s, a), R the 90-degree rotation (goal k -> k+1); +1 per
    mismatch in termination or goal index. Zero when the goals are symmetric as documented."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(-params.bound, params.bound, (n, 2))
    pos[: n // 2] *= 0.8  # half of them well inside, half anywhere (the box clip is symmetric too)
    action = rng.uniform(-1, 1, (n, 2))
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    p1, r1, d1, g1 = step_batch(params, pos, action)
    p2, r2, d2, g2 = step_batch(params, pos @ rot.T, action @ rot.T)
    k = len(params.goals)
    err = float(np.abs(r1 - r2).max()) + float(np.abs(p1 @ rot.T - p2).max())
    return err + float(np.sum(d1 != d2)) + float(np.sum(np.where(d1, (g1 + 1) % k, -1) != g2))


def _seed_state(states, i: int):
    return jax.tree.map(lambda x: x[i], states)


# ----- the experiment ---------------------------------------------------------------------------------------


def _evaluate_method(agent, states, seeds: list[int], budget: Budget) -> dict:
    k = len(PARAMS.goals)
    per_seed = []
    for i, s in enumerate(seeds):
        state = _seed_state(states, i)
        key = jax.random.fold_in(jax.random.PRNGKey(2_000_003), s)
        k_sto, k_det = jax.random.split(key)
        rng_sto, rng_det = np.random.default_rng([s, 1]), np.random.default_rng([s, 2])
        sto, sto_actions = policy_rollouts(agent, state, budget.rollouts, k_sto, rng_sto, deterministic=False)
        det, _ = policy_rollouts(agent, state, budget.rollouts, k_det, rng_det, deterministic=True)
        # From one and the same state: only the action noise can send rollouts to different goals.
        k_origin = jax.random.fold_in(key, 1)
        origin, _ = policy_rollouts(agent, state, budget.rollouts, k_origin, rng_det, deterministic=False,
                                    from_origin=True)
        per_seed.append({
            "seed": s,
            "stochastic": goal_stats(sto.goal, sto.returns, k),
            "deterministic": goal_stats(det.goal, det.returns, k),
            "origin": goal_stats(origin.goal, origin.returns, k),
            "updates": int(np.asarray(state.step)),
            "_rollouts": sto, "_actions": sto_actions,
        })
    summary = {}
    for mode in MODES:
        for stat in ("distinct", "entropy", "success", "mean_return"):
            summary[f"{mode}_{stat}"] = mean_ci([r[mode][stat] for r in per_seed])
    return {"per_seed": per_seed, "summary": summary}


def _finish(fig, out: Path, quick: bool, filename: str, title: str, caption: str) -> Figure:
    """Titles (marking a quick run), lays out and saves one of the figures."""
    fig.suptitle(title + (" [quick smoke test]" if quick else ""), fontsize=12)
    fig.tight_layout()
    return rep.save_figure(fig, out, filename, caption)


def _plot_trajectories(out: Path, evals: dict[str, dict], quick: bool) -> Figure:
    plt = rep.pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle
    goal_colors = plt.get_cmap("tab10")(np.arange(len(PARAMS.goals)))
    n_methods = len(evals)
    fig, axes = plt.subplots(2, n_methods, figsize=(3.3 * n_methods, 7.0), sharex=True, sharey=True)
    axes = np.asarray(axes).reshape(2, n_methods)
    lim = PARAMS.bound
    for j, (label, ev) in enumerate(evals.items()):
        first = ev["per_seed"][0]
        ro = first["_rollouts"]
        ax = axes[0, j]
        for i in range(min(100, ro.goal.size)):
            c = "0.6" if ro.goal[i] < 0 else goal_colors[ro.goal[i]]
            ax.plot(ro.pos[i, : ro.length[i] + 1, 0], ro.pos[i, : ro.length[i] + 1, 1], color=c, lw=0.7, alpha=0.6)
        ax.set_title(f"{label}\nseed {first['seed']}: {first['stochastic']['distinct']} goal(s)", fontsize=10)
        ax = axes[1, j]
        seed_colors = plt.get_cmap("Set1")(np.arange(len(ev["per_seed"])) % 9)
        for si, r in enumerate(ev["per_seed"]):
            ro = r["_rollouts"]
            for i in range(min(30, ro.goal.size)):
                ax.plot(ro.pos[i, : ro.length[i] + 1, 0], ro.pos[i, : ro.length[i] + 1, 1], color=seed_colors[si],
                        lw=0.7, alpha=0.6, label=f"seed {r['seed']}" if i == 0 else None)
        ax.set_title("all seeds, 30 rollouts each", fontsize=10)
        if j == n_methods - 1:
            ax.legend(loc="lower left", bbox_to_anchor=(1.02, 0.0), fontsize=8)
    for ax in axes.ravel():
        for gi, g in enumerate(PARAMS.goals):
            ax.add_patch(Circle(g, PARAMS.goal_radius, fill=False, color=goal_colors[gi], lw=1.5))
        ax.plot(0, 0, marker="x", color="k", ms=6)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    for ax in axes[1]:
        ax.set_xlabel("x position (env units)")
    for ax in axes[:, 0]:
        ax.set_ylabel("y position (env units)")
    handles = [Line2D([], [], color=goal_colors[gi], label=f"goal {gi} reached") for gi in range(len(PARAMS.goals))]
    handles.append(Line2D([], [], color="0.6", label="no goal (time limit)"))
    axes[0, -1].legend(handles=handles, loc="lower left", bbox_to_anchor=(1.02, 0.0), fontsize=8)
    return _finish(fig, out, quick, "trajectories.png",
                   "Does MaxEnt discover multiple solutions? Stochastic rollouts on the 4-goal point mass "
                   "(circles: goals, x: start)",
                   "Stochastic rollouts of each trained policy (actions sampled as during training). Top: 100 "
                   "rollouts of the first seed, coloured by the goal reached. Bottom: 30 rollouts of every "
                   "seed, coloured by seed.")


def _plot_goals(out: Path, evals: dict[str, dict], quick: bool) -> Figure:
    plt = rep.pyplot()
    labels = list(evals)
    x = np.arange(len(labels))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
    width = 0.27
    mode_styles = ((-width, "stochastic", "tab:blue", "sampled, random starts"),
                   (0.0, "deterministic", "tab:orange", "mean action, random starts"),
                   (width, "origin", "tab:green", "sampled, all from (0, 0)"))
    for ax, stat, ylabel in ((axes[0], "distinct", "distinct goals reached (>= 5% of rollouts)"),
                             (axes[1], "entropy", "entropy of reached-goal distribution (nats)")):
        for off, mode, color, what in mode_styles:
            per = [np.array([r[mode][stat] for r in evals[lab]["per_seed"]], float) for lab in labels]
            cis = [evals[lab]["summary"][f"{mode}_{stat}"] for lab in labels]
            means = np.array([c["mean"] for c in cis])
            err = np.array([[c["mean"] - c["lo"] if c["lo"] is not None else 0.0 for c in cis],
                            [c["hi"] - c["mean"] if c["hi"] is not None else 0.0 for c in cis]])
            ax.bar(x + off, means, width, yerr=err, capsize=3, color=color, alpha=0.75,
                   label=f"{what} (mean, 95% CI)")
            for xi, vals in zip(x + off, per):
                jitter = np.linspace(-0.08, 0.08, vals.size) if vals.size > 1 else np.zeros(1)
                ax.scatter(xi + jitter, vals, color="k", s=12, zorder=3,
                           label="one seed" if (xi == x[0] + off and mode == "stochastic") else None)
        ax.set_xticks(x, labels, rotation=20, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_xlabel("method")
    k = len(PARAMS.goals)
    axes[0].axhline(k, color="k", linestyle=":", lw=1)
    axes[0].set_ylim(0, k + 0.8)
    axes[1].axhline(np.log(k), color="k", linestyle=":", lw=1)
    axes[1].set_ylim(0, np.log(k) + 0.2)
    axes[1].text(-0.4, np.log(k) + 0.03, f"log {k}: all goals equally often", fontsize=9)
    axes[0].legend(loc="upper left", fontsize=8)
    return _finish(fig, out, quick, "goals_reached.png",
                   "MaxEnt should reach more of the 4 equally good goals: distinct goals and goal entropy per seed",
                   "Distinct goals reached by each method's policy (left) and the entropy of the distribution "
                   "of reached goals (right), per seed (dots) with the mean and 95% Student-t interval across "
                   "seeds.")


def _learning(run_dirs: dict[str, Path]) -> dict[str, dict]:
    """Each method's eval curve (steps, mean over seeds) and its lowest point."""
    from softrl.plot import curves

    out = {}
    for label, run_dir in run_dirs.items():
        steps, values = curves(run_dir, "eval")
        mean = np.nanmean(values, axis=0)
        out[label] = {"steps": steps, "mean_eval_return": mean, "lowest_mean_eval_return": float(np.nanmin(mean)),
                      "lowest_at_step": int(steps[int(np.nanargmin(mean))])}
    return out


def _plot_curves(out: Path, run_dirs: dict[str, Path], n_seeds: int, quick: bool) -> Figure:
    """Learning curves: deterministic evaluation and training episodes, with bands over seeds."""
    from softrl.plot import curves

    plt = rep.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4))
    spread = "ci" if n_seeds > 1 else "minmax"
    for label, run_dir in run_dirs.items():
        steps, values = curves(run_dir, "eval")
        rep.band(axes[0], steps, values, label, spread=spread, marker="o", ms=3)
        steps, values = curves(run_dir, "episodes", bins=10 if quick else 25)
        rep.band(axes[1], steps, values, label, spread=spread)
    axes[0].set_ylabel("deterministic evaluation return")
    axes[1].set_ylabel("training episode return (with exploration)")
    for ax in axes:
        ax.set_xlabel("environment steps per seed")
        ax.axhline(0.0, color="k", lw=0.6)
    axes[0].legend(loc="lower right")
    note = f"mean and 95% CI band over {n_seeds} seeds" if n_seeds > 1 else "1 seed"
    return _finish(fig, out, quick, "learning_curves.png",
                   f"Goal counts mean something only once a method reaches goals (return > 0) ({note})",
                   "Learning curves: return of deterministic evaluation episodes (left) and of training "
                   "episodes (right). Standing still for 30 steps returns about -15; reaching a goal at full "
                   "speed about +6.")


def figures(results: dict, out: Path, quick: bool) -> list[Figure]:
    """Sampled trajectories, goals reached per method and seed, and the learning curves."""
    evals = results["methods"]
    run_dirs = {lab: Path(m["run_dir"]) for lab, m in evals.items()}
    with rep.plot_style():
        return [_plot_trajectories(out, evals, quick), _plot_goals(out, evals, quick),
                _plot_curves(out, run_dirs, results["num_seeds"], quick)]


def _reading(report: Report, evals: dict[str, dict], quick: bool, n_seeds: int, learning: dict[str, dict]) -> None:
    report.heading("Reading")
    if quick:
        report.para("Quick mode is a smoke test of the pipeline (1 seed, 1,500 env steps, 32x32 networks): the "
                    "agents are barely trained, so these numbers say nothing about the claim. Run without --quick "
                    "for the evidence.")
        return
    s = {lab: ev["summary"] for lab, ev in evals.items()}
    report.para(_goals_reading(s, n_seeds) + _mechanism_reading(s, learning))


def _compare(s: dict, key: str) -> tuple[str, str, str]:
    """(best MaxEnt label, best return-only label, verdict) on one summary entry."""
    best_m = max((m.label for m in METHODS if m.maxent and m.label in s), key=lambda lab: s[lab][key]["mean"])
    best_p = max((m.label for m in METHODS if not m.maxent and m.label in s), key=lambda lab: s[lab][key]["mean"])
    m_ci, p_ci = s[best_m][key], s[best_p][key]
    if m_ci["mean"] <= p_ci["mean"]:
        return best_m, best_p, "not more"
    separated = m_ci["lo"] is not None and p_ci["hi"] is not None and m_ci["lo"] > p_ci["hi"]
    return best_m, best_p, "more, separated" if separated else "more, overlapping"


def _listing(s: dict, key: str, digits: int = 3) -> str:
    return "; ".join(f"{lab} {fmt_ci(s[lab][key], digits)}" for lab in s)


def _goals_reading(s: dict, n_seeds: int) -> str:
    """Distinct goals: MaxEnt against the best return-only agent, with the mean-action and from-(0, 0) controls."""
    text = (
        f"Distinct goals reached, mean [95% CI] over {n_seeds} seeds. Sampled actions from random starts: "
        + _listing(s, "stochastic_distinct") + ". Success rates (sampled): "
        + "; ".join(f"{lab} {fmt(s[lab]['stochastic_success']['mean'], 3)}" for lab in s) + ". "
    )
    best_m, best_p, verdict = _compare(s, "stochastic_distinct")
    if verdict == "more, separated":
        text += (f"The MaxEnt agent {best_m} reaches more goals than the best return-only agent ({best_p}), with "
                 "separated intervals, as Section 5.1 says. ")
    elif verdict == "more, overlapping":
        text += (f"{best_m} reaches more goals on average than the best return-only agent ({best_p}), but the "
                 f"intervals overlap, so with {n_seeds} seeds this is suggestive rather than shown. ")
    else:
        text += (f"On this measure the claim is NOT supported: no SAC variant reaches more goals than the best "
                 f"return-only agent ({best_p}). ")
    best_m, best_p, verdict = _compare(s, "origin_distinct")
    text += (
        "Two controls separate where the diversity comes from. With the actor's mean action (same random starts, "
        "start noise std 0.1 around the origin, which is equidistant from all goals): "
        + _listing(s, "deterministic_distinct")
        + "; a deterministic policy can still reach several goals by splitting the start region between them. All "
        "rollouts from exactly (0, 0) with sampled actions, so that only the action noise can make a difference: "
        + _listing(s, "origin_distinct") + ". "
        + {"more, separated": f"Here too {best_m} reaches more goals than {best_p}, with separated intervals: the "
                              "MaxEnt policy itself keeps several solutions open from a single state. ",
           "more, overlapping": f"Here {best_m} reaches more goals on average than {best_p}, with overlapping "
                                "intervals. ",
           "not more": f"Here no SAC variant reaches more goals than {best_p}: from a single state the MaxEnt "
                       "policies keep no more solutions open than the return-only ones. "}[verdict]
    )
    return text


def _mechanism_reading(s: dict, learning: dict[str, dict]) -> str:
    """Where the goal counts come from: failing agents, SAC's start-state split, learning dips, the actor's shape."""
    plain = [m.label for m in METHODS if not m.maxent and m.label in s]
    text = ""
    failing = [lab for lab in s if s[lab]["stochastic_success"]["mean"] < 0.5]
    if failing:
        text += (
            "Goal counts of a policy that rarely reaches any goal are not solutions found: "
            + "; ".join(f"{lab} ends only {fmt(s[lab]['stochastic_success']['mean'], 2)} of its sampled rollouts "
                        "in a goal" for lab in failing)
            + ". A plausible reason for SAC with a large fixed alpha: the time limit is bootstrapped, not terminal, "
              "so a policy near the maximum entropy (log 4 nats per step on [-1, 1]^2) that wanders between the "
              "goals collects alpha x 1.39 - 0.3 x 2/3 - 0.1 x distance > 0 per step for ever (about 0.19 at "
              "distance 3 with alpha = 0.5, worth ~19 at gamma = 0.99), more than the one-off goal reward of 10. "
        )
    sac_auto = next((m.label for m in METHODS if m.maxent and m.alpha == "auto"), None)
    if sac_auto in s:
        a_ = s[sac_auto]
        text += (
            f"For {sac_auto}, sampled and mean-action rollouts from random starts reach "
            f"{fmt(a_['stochastic_distinct']['mean'], 2)} and {fmt(a_['deterministic_distinct']['mean'], 2)} goals, "
            f"but from exactly (0, 0) {fmt(a_['origin_distinct']['mean'], 2)}: "
            + ("its diversity comes from where the policy starts, not from its action noise. Its learned policy "
               "keeps the decision boundary between the goals at the origin, where they are equally good (within a "
               "start noise of 0.1, different starts go to different goals), while from any single state it commits "
               "to one goal. The return-only agents' mean actions from the same starts reach "
               + ", ".join(f"{lab} {fmt(s[lab]['deterministic_distinct']['mean'], 2)}" for lab in plain)
               + " goals. "
               if a_["origin_distinct"]["mean"] < a_["stochastic_distinct"]["mean"] - 0.5 else
               "its sampled actions also spread from a single state. ")
        )
    text += (
        "Along training, the lowest mean deterministic evaluation return (over seeds) was "
        + "; ".join(f"{lab} {fmt(c['lowest_mean_eval_return'], 3)} at step {c['lowest_at_step']:,}"
                    for lab, c in learning.items())
        + " (standing still: about -15; a policy pushing into the box wall does worse); the final policies are "
          "what the goal counts describe. "
    )
    text += (
        "A caveat on the mechanism: SAC's actor is a unimodal tanh-Gaussian, so at the start state it cannot put "
        "separate modes on the four directions the way the energy-based sampler of Haarnoja et al. 2017 can; it "
        "can reach several goals only through its dependence on the state (as the mean-action rollouts show) or by "
        "acting so broadly that early noise decides the goal (which, at alpha = 0.5, came with mostly not reaching "
        "any goal). DDPG/TD3's exploration noise (std 0.1) and SVG(0)'s fixed "
        "noise are not learned, so their spread says nothing about what they value. Entropy of the reached-goal "
        "distribution (log 4 = 1.386 nats if all goals are equally frequent), sampled from random starts: "
        + "; ".join(f"{lab} {fmt(s[lab]['stochastic_entropy']['mean'], 3)}" for lab in s) + "."
    )
    return text


def _train_and_evaluate(out: Path, budget: Budget, n_seeds: int, quick: bool) -> dict[str, dict]:
    """Trains (or reuses) every method into out/runs/<method>/ and evaluates its policies."""
    methods = {}
    for method in METHODS:
        run_dir = out / "runs" / method.slug
        cfg = train_config(method, budget, n_seeds, run_dir, progress=not quick)
        if not quick:
            print(f"[{NAME}] {method.label}: {cfg.seeds} seed(s) x {cfg.total_steps} steps -> {run_dir}", flush=True)
        result, status = train_or_resume(cfg, on_mismatch="retrain")
        methods[method.label] = {
            "algo": method.algo, "alpha": method.alpha, "maxent": method.maxent, "run_dir": run_dir,
            **_evaluate_method(result.agent, result.states, result.seeds, budget),
            "_status": status, "_train_s": result.timing["wall_s"],  # training wall time, as summary.json has it
        }
    return methods


def compute(out: Path, quick: bool, seeds: int = DEFAULT_SEEDS) -> dict:
    """Trains and evaluates every method, and checks the rollouts, the env's symmetry and the runs' budgets."""
    budget = QUICK if quick else FULL
    n_seeds = 1 if quick else seeds
    methods = _train_and_evaluate(Path(out), budget, n_seeds, quick)
    # Checks: the rollouts are the gym env's dynamics; every run trained its whole budget.
    first = methods[METHODS[0].label]["per_seed"][0]
    replay_err = replay_in_gym(first["_rollouts"], first["_actions"], count=min(20, budget.rollouts))
    expected = budget.total_steps - budget.learning_starts + 1
    gaps = [abs(r["updates"] - expected) for ev in methods.values() for r in ev["per_seed"]]
    return {
        "env": ENV_ID, "env_params": dataclasses.asdict(PARAMS), "min_fraction": MIN_FRACTION,
        "budget": dataclasses.asdict(budget), "num_seeds": n_seeds,
        "run_status": {lab: m["_status"] for lab, m in methods.items()},
        "training_wall_s": {lab: m["_train_s"] for lab, m in methods.items()},
        "learning_curves": _learning({lab: m["run_dir"] for lab, m in methods.items()}),
        "methods": methods,
        "checks": [
            check("rollouts_match_gym_env", replay_err, 1e-4,
                  "vectorised rollouts (20 episodes) replayed action by action in gym.make('softrl/MultiGoal-v0'): "
                  "max |position| and |reward| difference, +1 per episode whose length, goal or truncation differs"),
            check("reward_rotation_symmetry", rotation_symmetry_error(), 1e-9,
                  "rewards unchanged when state and action are rotated by 90 degrees (goal k -> k+1), 2000 samples"),
            check("runs_complete", max(gaps), 0,
                  f"every seed of every method did its {expected:,} gradient updates (trained or reused runs)"),
        ],
    }


def _setup(report: Report, quick: bool) -> None:
    report.para(
        f"Environment `{ENV_ID}` (`softrl/envs/multigoal.py`): position in [-7, 7]^2, velocity action in [-1, 1]^2, "
        f"start ~ N(0, 0.1^2), goals {list(PARAMS.goals)} of radius {PARAMS.goal_radius}, reward "
        f"-{PARAMS.action_cost}|a|^2 - {PARAMS.distance_cost} x distance to the nearest goal, +{PARAMS.goal_reward} "
        f"on reaching one (terminal), {MAX_EPISODE_STEPS}-step time limit. Methods: "
        + ", ".join(m.label for m in METHODS)
        + f". DDPG/TD3 explore with Gaussian noise of std {softrl.AgentConfig().explore_std}, SVG(0) with its fixed "
        f"pre-tanh std {softrl.AgentConfig().actor_std}; SAC auto-tunes alpha to the target entropy -dim(A) = -2, "
        f"or keeps alpha = {FIXED_ALPHA} fixed. "
        "`stochastic` rollouts act as the agent does while training (its noise or its sampled policy), "
        "`deterministic` ones use the actor's mean; both start from random states near the origin; `from (0, 0)` "
        "samples actions like `stochastic` but starts every rollout at exactly (0, 0). A goal counts "
        f"as reached by a policy if at least {MIN_FRACTION:.0%} of its rollouts end in it."
        + (" **Quick mode: 1 seed, 1,500 steps; a smoke test of the pipeline that says nothing about the claim.**"
           if quick else "")
    )


def _goal_tables(report: Report, results: dict) -> None:
    evals, train_s = results["methods"], results["training_wall_s"]
    report.para(
        "Training runs (OUT/runs/<method>/): "
        + "; ".join(f"{lab}: {status} ({train_s[lab]:.0f} s of training in its last session)"
                    for lab, status in results["run_status"].items())
        + ". `reused` runs were loaded, not retrained, so the wall time in the Run line can be far shorter than "
          "the training."
    )
    report.heading("Goals reached")
    rows = []
    for lab, ev in evals.items():
        s = ev["summary"]
        rows.append([lab, *[fmt_ci(s[k], 3) for k in (
            "stochastic_distinct", "deterministic_distinct", "origin_distinct", "stochastic_entropy",
            "stochastic_success", "deterministic_success", "stochastic_mean_return", "deterministic_mean_return")]])
    report.table(["method", "distinct goals (stochastic)", "distinct goals (deterministic)",
                  "distinct goals (stochastic, all from (0, 0))",
                  "goal entropy, nats (stochastic)", "success rate (stochastic)", "success rate (deterministic)",
                  "mean return (stochastic)", "mean return (deterministic)"], rows)
    report.para(f"Mean [95% Student-t CI] over seeds, from {results['budget']['rollouts']} rollouts per seed and "
                "mode. Per seed, the share of stochastic rollouts ending in each goal:")
    rows = []
    for lab, ev in evals.items():
        for r in ev["per_seed"]:
            st = r["stochastic"]
            rows.append([lab, r["seed"], *[fmt(f, 3) for f in st["fractions"]], fmt(st["none"], 3), st["distinct"],
                         r["deterministic"]["distinct"], r["origin"]["distinct"]])
    report.table(["method", "seed", *[f"goal {gi} {PARAMS.goals[gi]}" for gi in range(len(PARAMS.goals))],
                  "no goal", "distinct (stoch.)", "distinct (det.)", "distinct (stoch., from (0, 0))"], rows)


def reading(results: dict, report: Report, figs: list[Figure], quick: bool) -> None:
    """The setup, the goal tables, the figures and what they say about Section 5.1."""
    _setup(report, quick)
    _goal_tables(report, results)
    for fig in figs:
        report.embed(fig)
    _reading(report, results["methods"], quick, results["num_seeds"], results["learning_curves"])


def run(out: Path, quick: bool = False, seeds: int = DEFAULT_SEEDS) -> Report:
    """Trains (or reuses) every method, runs the rollouts, writes the report."""
    budget = QUICK if quick else FULL
    n_seeds = 1 if quick else seeds
    report = Report(
        NAME, "MaxEnt discovers multiple solutions: goals reached on a 4-goal point mass", out, quick, seeds,
        claim="Section 5.1, Benefits of MaxEnt policies: \"Exploration and Optimization. Smooths out the loss "
              "landscape, helps discover multiple solutions to the problem.\" With several equally good goals the "
              "soft-optimal policy softmax(Q/alpha) (Eq. 20) keeps all of them, so a MaxEnt agent should reach "
              "more distinct goals than agents that maximise return alone (Haarnoja et al. 2017, Sec. 5.1).",
        budget=(
            f"{len(METHODS)} methods x {n_seeds} seed(s) x {budget.total_steps:,} env steps "
            f"({budget.learning_starts:,} random first), {budget.hidden} networks, batch {budget.batch_size}, one "
            f"update per step; then {budget.rollouts} rollouts per seed in each of the 3 modes below (sampled, "
            "mean action, sampled from (0, 0)). "
            + ("Quick smoke test: about a minute on 2 CPU cores, mostly compilation. " if quick else
               f"Training on `{TRAIN_ENV_ID}` (the on-device loop, all seeds in one compiled program). ")
            + "Published: Haarnoja et al. 2017 show this task qualitatively (their Fig. 3: soft Q-learning vs DDPG "
              "trajectories); we do not rely on a step budget from the paper, and our reward scales differ (see "
              "`softrl.envs.multigoal`)."
        ),
    )
    results = compute(report.out, quick, seeds)
    reading(results, report, figures(results, report.out, quick), quick)
    report.record(results)
    return report
