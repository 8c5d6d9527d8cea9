"""Section 3, "Choosing alpha": alpha and the reward scale are one knob.

"If you double all your rewards, then you'll also have to double alpha if you want to learn the
same policy. One corollary of this is that you could keep alpha fixed at 1 and just change your
reward scale." With rewards `c r` and temperature `c alpha`, the soft backup (Eq. 24-25) gives
`Q_c = c Q` and `softmax(Q_c / (c alpha)) = softmax(Q / alpha)` (Eq. 20), exactly.

Tabular part (exact): soft value iteration on a slippery cliff walk and on random MDPs, for several
(alpha, c): the policy at (c R, c alpha) equals the policy at (R, alpha) to rounding and Q scales by
c; as a control, scaling R alone (alpha kept) does change the policy.

Deep part (SAC on Pendulum-v1, `softrl.train`): (alpha, reward scale) pairs with the same ratio
alpha / scale = 0.2, plus a control with ratio 1. Same ratio should give statistically
indistinguishable returns, entropies and Q / scale; function approximation and Adam are not exactly
scale-equivariant, so the deep agreement is approximate and is measured, not assumed.
"""

from __future__ import annotations

import dataclasses
import re
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from softrl.experiments import report as rep
from softrl.experiments.report import Figure, Report, check, cis_overlap, float64, fmt, fmt_ci, mean_ci, not_run_note
from softrl.tabular import cliff_walk, random_mdp, soft_value_iteration

NAME = "alpha-vs-reward-scale"
SUMMARY = "c*R, c*alpha: same pi (Sec. 3)"

ALPHAS = (0.05, 0.2, 1.0)
SCALES = (0.5, 2.0, 5.0, 10.0)
POLICY_TOL = 1e-6  # the brief's "to ~1e-6"; the error float64 reaches is in the report (max_tv_matched)
SVI_TOL = 1e-12


@dataclasses.dataclass(frozen=True)
class DeepConfig:
    label: str
    alpha: float
    scale: float

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9.]+", "-", f"alpha{self.alpha:g}-scale{self.scale:g}")


DEEP_MATCHED = (DeepConfig("alpha 0.2, scale 1", 0.2, 1.0), DeepConfig("alpha 0.4, scale 2", 0.4, 2.0),
                DeepConfig("alpha 1, scale 5", 1.0, 5.0))
DEEP_CONTROL = DeepConfig("alpha 1, scale 1 (control)", 1.0, 1.0)


def _policy_tv(p: np.ndarray | jax.Array, q: np.ndarray | jax.Array) -> float:
    """Largest per-state total-variation distance between two [S, A] policies."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(-1).max())


def _scaling_table(mdp) -> dict:
    """For every (alpha, c): policy TV between (R, alpha) and (cR, c alpha), Q and V relative errors, and the
    control TV between (R, alpha) and (cR, alpha)."""
    out = {"tv_matched": np.zeros((len(ALPHAS), len(SCALES))), "q_rel_err": np.zeros((len(ALPHAS), len(SCALES))),
           "v_rel_err": np.zeros((len(ALPHAS), len(SCALES))), "tv_control": np.zeros((len(ALPHAS), len(SCALES)))}
    for i, alpha in enumerate(ALPHAS):
        base = soft_value_iteration(mdp, alpha, tol=SVI_TOL)
        q_scale = max(1.0, float(jnp.max(jnp.abs(base.q))))
        for j, c in enumerate(SCALES):
            scaled_mdp = mdp.replace(R=c * mdp.R)
            matched = soft_value_iteration(scaled_mdp, c * alpha, tol=SVI_TOL)
            control = soft_value_iteration(scaled_mdp, alpha, tol=SVI_TOL)
            out["tv_matched"][i, j] = _policy_tv(matched.policy, base.policy)
            out["q_rel_err"][i, j] = float(jnp.max(jnp.abs(matched.q - c * base.q))) / (c * q_scale)
            out["v_rel_err"][i, j] = float(jnp.max(jnp.abs(matched.v - c * base.v))) / (c * q_scale)
            out["tv_control"][i, j] = _policy_tv(control.policy, base.policy)
    return out


def compute_tabular(seeds: int) -> dict:
    """The scaling identity on the cliff walk and on `seeds` random MDPs, with its checks (call in `float64()`)."""
    cliff_res = _scaling_table(cliff_walk(slip=0.1, gamma=0.95).mdp)
    rand = [_scaling_table(random_mdp(jax.random.PRNGKey(s), 12, 4, gamma=0.9)) for s in range(seeds)]
    rand_stack = {k: np.stack([r[k] for r in rand]) for k in cliff_res}  # [seeds, alphas, scales]
    worst_tv = max(cliff_res["tv_matched"].max(), rand_stack["tv_matched"].max())
    worst_q = max(cliff_res["q_rel_err"].max(), rand_stack["q_rel_err"].max())
    worst_v = max(cliff_res["v_rel_err"].max(), rand_stack["v_rel_err"].max())
    min_control = min(cliff_res["tv_control"].min(), rand_stack["tv_control"].min())
    return {
        "alphas": ALPHAS, "scales": SCALES, "cliff_walk": cliff_res, "random_mdps": rand_stack,
        "max_tv_matched": worst_tv, "max_q_rel_err": worst_q, "max_v_rel_err": worst_v, "min_tv_control": min_control,
        "checks": [
            check("policy_invariant_under_scaling", worst_tv, POLICY_TOL,
                  "max TV between pi(cR, c alpha) and pi(R, alpha), all MDPs, alphas, c"),
            check("q_scales_by_c", worst_q, POLICY_TOL, "max |Q(cR, c alpha) - c Q(R, alpha)| / (c max|Q|)"),
            check("v_scales_by_c", worst_v, POLICY_TOL, "max |V(cR, c alpha) - c V(R, alpha)| / (c max|Q|)"),
            check("control_changes_policy", min_control, 1e-3,
                  "min TV between pi(cR, alpha) and pi(R, alpha): rescaling R alone must matter (passes when > 1e-3)",
                  passed=min_control > 1e-3),
        ],
    }


def _pendulum_obs(n: int, seed: int = 123) -> np.ndarray:
    """Fixed Pendulum-v1 observations (cos th, sin th, th_dot), th ~ U(-pi, pi), th_dot ~ U(-8, 8)."""
    rng = np.random.default_rng(seed)
    th = rng.uniform(-np.pi, np.pi, n)
    thdot = rng.uniform(-8.0, 8.0, n)
    return np.stack([np.cos(th), np.sin(th), thdot], axis=1).astype(np.float32)


def _deterministic_actions(result, obs: np.ndarray) -> np.ndarray:
    """[num_seeds, n, action_dim] deterministic (mode) actions of every trained seed on fixed observations."""
    out = []
    key = jax.random.PRNGKey(0)
    for i in range(len(result.seeds)):
        state = jax.tree.map(lambda x, i=i: x[i], result.states)
        out.append(np.asarray(result.agent.act(state, jnp.asarray(obs), key, True)))
    return np.stack(out)


def _train_metric(run_dir: Path, seeds: list[int], column: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps [T], values [num_seeds, T]) of one train.csv column, on the steps all seeds logged."""
    from softrl.log import read_csv

    per_seed = [read_csv(run_dir / f"seed_{s}" / "train.csv") for s in seeds]
    steps = sorted(set.intersection(*[{r["step"] for r in rows if column in r} for rows in per_seed]))
    values = np.array([[next(r[column] for r in rows if r["step"] == t) for t in steps] for rows in per_seed])
    return np.asarray(steps), values.reshape(len(seeds), len(steps))


def deep_budget(quick: bool) -> dict:
    """The SAC budget: a smoke test with `quick`, else the Pendulum budget of the claim."""
    if quick:
        return {"total_steps": 600, "learning_starts": 200, "eval_every": 0, "eval_episodes": 1, "log_every": 100,
                "hidden": (32, 32), "batch_size": 64}
    return {"total_steps": 15_000, "learning_starts": 1_000, "eval_every": 1_500, "eval_episodes": 10,
            "log_every": 500, "hidden": (256, 256), "batch_size": 256}


def deep_configs(quick: bool) -> tuple[DeepConfig, ...]:
    """Quick: the two ends of the matched family only (each configuration costs ~10 s of compilation)."""
    return (DEEP_MATCHED[0], DEEP_MATCHED[-1]) if quick else (*DEEP_MATCHED, DEEP_CONTROL)


def _train_and_measure(cfg: DeepConfig, budget: dict, n_seeds: int, run_dir: Path, quick: bool,
                       obs: np.ndarray) -> dict:
    """Trains (or reuses) one configuration and reads its final numbers and curves; "_actions" are its
    deterministic actions on `obs`, [num_seeds, n, 1], kept out of results.json."""
    from softrl import AgentConfig, TrainConfig
    from softrl.experiments.report import train_or_resume
    from softrl.plot import curves

    tc = TrainConfig(
        algo="sac", env="Pendulum-v1", seed=0, seeds=n_seeds, total_steps=budget["total_steps"],
        learning_starts=budget["learning_starts"], eval_every=budget["eval_every"],
        eval_episodes=budget["eval_episodes"], log_every=budget["log_every"], checkpoint_every=0,
        buffer_size=budget["total_steps"], run_dir=str(run_dir), progress=False,
        agent=AgentConfig(alpha=str(cfg.alpha), reward_scale=cfg.scale, hidden=budget["hidden"],
                          batch_size=budget["batch_size"]),
    )
    result, _ = train_or_resume(tc, on_mismatch="retrain", log=lambda _msg: None)
    final = result.eval_returns.mean(axis=1)  # [seeds]
    steps_ent, ent = _train_metric(run_dir, result.seeds, "entropy")
    steps_q, q = _train_metric(run_dir, result.seeds, "q_mean")
    return {
        "alpha": cfg.alpha, "scale": cfg.scale, "run_dir": run_dir, "final_eval_per_seed": final,
        "final_eval": mean_ci(final), "final_entropy": mean_ci(ent[:, -1]),
        "final_q_over_scale": mean_ci(q[:, -1] / cfg.scale), "entropy_curve": (steps_ent, ent),
        "q_over_scale_curve": (steps_q, q / cfg.scale),
        "episode_curve": curves(run_dir, "episodes", bins=20 if not quick else 3),
        "_actions": _deterministic_actions(result, obs), "wall_s": result.timing.get("wall_s"),
    }


def compute_deep(out: Path, quick: bool, seeds: int) -> dict:
    """Trains every SAC configuration into out/runs/ (reusing finished runs) and compares their policies with
    the first one's, same seed, and with the seed-to-seed noise floor of that first one."""
    budget, configs = deep_budget(quick), deep_configs(quick)
    n_seeds = 1 if quick else seeds
    obs = _pendulum_obs(512)
    runs = {cfg.label: _train_and_measure(cfg, budget, n_seeds, Path(out) / "runs" / cfg.slug, quick, obs)
            for cfg in configs}
    ref = runs[configs[0].label]["_actions"]
    for cfg in configs:
        dist = np.abs(runs[cfg.label]["_actions"] - ref).mean(axis=(1, 2))  # [seeds], same seed vs reference
        runs[cfg.label]["action_distance_to_ref"] = mean_ci(dist) if cfg != configs[0] else None
    floor = [np.abs(ref[i] - ref[j]).mean() for i in range(len(ref)) for j in range(i + 1, len(ref))]
    return {"budget": budget, "num_seeds": n_seeds, "configs": [dataclasses.asdict(c) for c in configs],
            "runs": runs, "seed_noise_floor_action_distance": mean_ci(floor) if floor else None}


def compute(out: Path, quick: bool, seeds: int) -> dict:
    """The exact tabular part, then SAC on Pendulum (its failure is recorded and does not hide the first)."""
    with float64():
        tab = compute_tabular(seeds)
    try:
        deep = compute_deep(Path(out), quick, seeds)
    except Exception as err:  # a failed deep run must not hide the exact tabular result
        deep = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    return {"tabular": tab, "deep": deep, "deep_ran": "error" not in deep, "checks": tab.pop("checks")}


# ----- figures ------------------------------------------------------------------------------------------------


def _tabular_figure(tab: dict, out: Path) -> Figure:
    plt = rep.pyplot()
    cliff_res, rand_stack = tab["cliff_walk"], tab["random_mdps"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True)
    floor = 1e-17  # exact zeros drawn at the floor of the log axis
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(ALPHAS)))
    axes[0].set_title("cliff walk (slip 0.1)")
    axes[1].set_title(f"random MDPs ({len(rand_stack['tv_matched'])} seeds: geometric mean, min-max band)")
    for i, alpha in enumerate(ALPHAS):
        axes[0].plot(SCALES, np.maximum(cliff_res["tv_matched"][i], floor), "o-", color=colors[i],
                     label=f"(cR, c*alpha), alpha={alpha:g}")
        axes[0].plot(SCALES, np.maximum(cliff_res["tv_control"][i], floor), "s--", color=colors[i],
                     label=f"(cR, alpha) control, alpha={alpha:g}")
        rep.band(axes[1], SCALES, np.maximum(rand_stack["tv_matched"][:, i], floor), f"(cR, c*alpha), alpha={alpha:g}",
                 color=colors[i], log=True, marker="o")
        rep.band(axes[1], SCALES, np.maximum(rand_stack["tv_control"][:, i], floor), f"(cR, alpha) control, "
                 f"alpha={alpha:g}", color=colors[i], log=True, marker="s", linestyle="--")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(POLICY_TOL, color="k", linestyle=":", linewidth=1)
        ax.set_xlabel("reward scale c (log)")
        ax.set_xticks(SCALES, [f"{c:g}" for c in SCALES])
        ax.text(SCALES[0], floor * 4, "exactly 0 (c a power of 2)", fontsize=9)
    axes[0].set_ylabel("max over states of TV(pi, pi_ref)")
    axes[0].text(SCALES[0], POLICY_TOL * 3, "1e-6 tolerance", fontsize=9)
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    return rep.finish_figure(
        fig, out, "reward_scale_tabular.png",
        "Largest per-state total-variation distance to the policy at (R, alpha). Solid: rewards and alpha both "
        "scaled by c (Section 3: identical policy). Dashed: only the rewards scaled.",
        title="Rewards x c with alpha x c: same policy (solid, at rounding level); rewards x c alone: different "
              "policy (dashed)")


def _deep_figure(deep: dict, out: Path, quick: bool) -> Figure:
    fig, axes = rep.pyplot().subplots(1, 3, figsize=(16, 4.4))
    n_seeds = deep["num_seeds"]
    spread = "ci" if n_seeds > 1 else "minmax"
    for cfg in deep["configs"]:
        r = deep["runs"][cfg["label"]]
        style = "--" if cfg["label"] == DEEP_CONTROL.label else "-"
        for ax, curve in zip(axes, ("episode_curve", "entropy_curve", "q_over_scale_curve")):
            steps, values = r[curve]
            rep.band(ax, steps, values, cfg["label"], spread=spread, linestyle=style)
    axes[0].set_title("return (Pendulum units)")
    axes[1].set_title("policy entropy")
    axes[2].set_title("Q / reward scale: equal if Q scales by c")
    axes[0].set_ylabel("training episode return (unscaled)")
    axes[1].set_ylabel("policy entropy -E[log pi] (nats)")
    axes[2].set_ylabel("mean Q / reward scale (unscaled units)")
    for ax in axes:
        ax.set_xlabel("environment steps per seed")
    axes[0].legend(loc="lower right")
    band_note = "mean, 95% CI band over seeds" if n_seeds > 1 else "1 seed"
    return rep.finish_figure(
        fig, out, "reward_scale_sac_pendulum.png",
        "SAC with (alpha, reward scale) pairs: training returns, policy entropy and Q divided by the reward scale. "
        "Same ratio alpha/scale should give the same curves (Section 3).",
        title=f"SAC on Pendulum-v1: same alpha/reward-scale ratio, same behaviour? ({band_note}"
              + (", quick smoke test" if quick else "") + ")")


def figures(results: dict, out: Path, quick: bool = False) -> list[Figure]:
    """The tabular identity and its control; the SAC curves when the deep part ran."""
    with rep.plot_style():
        figs = [_tabular_figure(results["tabular"], out)]
        if results["deep_ran"]:
            figs.append(_deep_figure(results["deep"], out, quick))
        return figs


# ----- reading ------------------------------------------------------------------------------------------------


def _tabular_section(report: Report, tab: dict, fig: Figure) -> None:
    cliff_res, rand_stack = tab["cliff_walk"], tab["random_mdps"]
    seeds = len(rand_stack["tv_matched"])
    report.heading("Tabular part (exact)")
    report.para(
        "Soft value iteration (Eq. 24-25, float64, tol 1e-12) on (a) the 4x12 cliff walk with slip 0.1, "
        f"gamma 0.95 (-1 per step, -100 for the cliff) and (b) {seeds} random MDPs (12 states, 4 actions, "
        "gamma 0.9, R ~ N(0, 1), seeds 0.."
        f"{seeds - 1}). For each alpha in {list(ALPHAS)} and c in {list(SCALES)}: `TV matched` is the largest "
        "per-state total-variation distance between the soft-optimal policies at (c R, c alpha) and (R, alpha); "
        "`Q rel. err.` is max|Q_c - c Q| / (c max(1, max|Q|)); `TV control` compares (c R, alpha) with (R, alpha), "
        "i.e. rescaling the rewards without rescaling alpha. Random-MDP entries: the worst case over seeds."
    )
    rows = []
    for i, alpha in enumerate(ALPHAS):
        for j, c in enumerate(SCALES):
            rows.append([alpha, c, cliff_res["tv_matched"][i, j], cliff_res["q_rel_err"][i, j],
                         cliff_res["tv_control"][i, j], rand_stack["tv_matched"][:, i, j].max(),
                         rand_stack["q_rel_err"][:, i, j].max(), rand_stack["tv_control"][:, i, j].min()])
    report.table(["alpha", "c", "cliff: TV matched", "cliff: Q rel. err.", "cliff: TV control",
                  "random: max TV matched", "random: max Q rel. err.", "random: min TV control"], rows, digits=3)
    report.embed(fig)


def _deep_intro(report: Report, quick: bool) -> None:
    budget, configs = deep_budget(quick), deep_configs(quick)
    report.heading("Deep part: SAC on Pendulum-v1")
    report.para(
        f"`softrl.train(TrainConfig(algo='sac', env='Pendulum-v1', seeds={1 if quick else report.seeds}, "
        f"total_steps={budget['total_steps']}, ...))` with fixed alpha (`AgentConfig(alpha=..., reward_scale=...)`), "
        f"hidden {budget['hidden']}, batch {budget['batch_size']}, learning starts {budget['learning_starts']}, one "
        f"update per step, final evaluation over {budget['eval_episodes']} deterministic episodes per seed. "
        "Configurations: " + "; ".join(f"{c.label} (alpha/scale = {c.alpha / c.scale:g})" for c in configs) + ". "
        "Returns are in Pendulum's own (unscaled) reward units. "
        + ("**Quick mode: a smoke test of the pipeline only (1 seed, 600 steps); these numbers say nothing about "
           "the claim.**" if quick else "")
    )


def _deep_section(report: Report, deep: dict, fig: Figure) -> None:
    ref_label = deep["configs"][0]["label"]
    rows = []
    for cfg in deep["configs"]:
        r = deep["runs"][cfg["label"]]
        dist_txt = "-" if r["action_distance_to_ref"] is None else fmt_ci(r["action_distance_to_ref"], 3)
        rows.append([cfg["label"], cfg["alpha"] / cfg["scale"], fmt_ci(r["final_eval"], 4),
                     fmt_ci(r["final_entropy"], 3), fmt_ci(r["final_q_over_scale"], 4), dist_txt])
    floor_ci = deep["seed_noise_floor_action_distance"]
    report.table(["configuration", "alpha/scale", "final eval return [95% CI]", "policy entropy (nats, last log)",
                  "Q / scale (last log)", f"mean |a - a_ref| on 512 states (ref: {ref_label})"], rows)
    report.para(
        "Entropy and Q / scale are the last logged training-batch values (`entropy` = -mean log pi, `q_mean`); "
        "`|a - a_ref|` is the mean absolute difference of the deterministic actions (tanh units, range [-1, 1]) "
        "between a configuration and the reference trained with the same seed, on 512 fixed states. Noise floor "
        "(two seeds of the reference configuration): "
        + (fmt_ci(floor_ci, 3) if floor_ci else "not available with one seed") + "."
    )
    report.embed(fig)


def _tabular_reading(tab: dict) -> str:
    return (
        "The tabular identity holds exactly, as the algebra says it must: over every MDP, alpha and c tried, the "
        f"policies at (c R, c alpha) and (R, alpha) differ by at most {fmt(tab['max_tv_matched'], 2)} in total "
        f"variation, and Q scales by c to a relative {fmt(tab['max_q_rel_err'], 2)} (float64 rounding). The "
        "control shows that the identity is not vacuous: rescaling the rewards alone changes the policy by at "
        f"least {fmt(tab['min_tv_control'], 3)} in total variation. "
    )


def _matched_reading(runs: dict, matched: list[str]) -> str:
    means = [runs[k]["final_eval"]["mean"] for k in matched]
    overlap = cis_overlap([runs[k]["final_eval"] for k in matched])
    return (
        "With SAC, the matched configurations (alpha/scale = 0.2) end at final returns "
        + ", ".join(f"{k}: {fmt_ci(runs[k]['final_eval'], 4)}" for k in matched)
        + f" (spread of means {max(means) - min(means):.1f}); their 95% intervals "
        + ("overlap, consistent with the claim (though overlapping intervals from a few seeds are weak evidence)"
           if overlap else "do not all overlap, so at this budget the "
           "deep agents do NOT behave identically, although the tabular identity is exact")
        + ". Deep SAC is only approximately invariant: Adam normalises gradient magnitudes, so with rewards x c "
          "the critic moves the same step size in a Q that is c times larger (slower relative learning); "
          "network initialisation is not rescaled either."
    )


def _control_reading(ctrl: dict, ref: dict) -> str:
    separated = not cis_overlap([ref["final_eval"], ctrl["final_eval"]])
    return (f" The control with ratio 1 ends at {fmt_ci(ctrl['final_eval'], 4)} with entropy "
            f"{fmt_ci(ctrl['final_entropy'], 3)} (reference entropy {fmt_ci(ref['final_entropy'], 3)}): "
            + ("its return interval is separated from the reference's, so the ratio, not alpha alone, sets "
               "the behaviour." if separated else
               "its return interval overlaps the reference's as well, so at this budget the returns alone "
               "lack the power to show that the ratio matters; the entropy and action columns are the "
               "sharper test."))


def _deep_reading(deep: dict) -> str:
    runs = deep["runs"]
    matched = [c["label"] for c in deep["configs"] if abs(c["alpha"] / c["scale"] - 0.2) < 1e-9]
    dists = [(c["label"], runs[c["label"]]["action_distance_to_ref"]) for c in deep["configs"][1:]]
    floor = deep["seed_noise_floor_action_distance"]
    text = _matched_reading(runs, matched) + (
        " Deterministic actions on 512 fixed states differ from the reference (same seed) by "
        + ", ".join(f"{k}: {fmt(d['mean'], 3)}" for k, d in dists if d is not None)
        + " (mean |a - a_ref|), against a seed-to-seed noise floor of "
        + (fmt(floor["mean"], 3) if floor else "n/a") + ".")
    if DEEP_CONTROL.label in runs:
        text += _control_reading(runs[DEEP_CONTROL.label], runs[matched[0]])
    return text


def reading(results: dict, report: Report, figs: list[Figure], quick: bool = False) -> None:
    """The tabular table, the SAC table (or why it is missing), the figures, and what they say about Section 3."""
    tab, deep = results["tabular"], results["deep"]
    _tabular_section(report, tab, figs[0])
    _deep_intro(report, quick)
    error = None if results["deep_ran"] else deep["error"]
    if error is None:
        _deep_section(report, deep, figs[1])
    else:
        report.para(f"**The deep part failed and was not run to completion:** `{error}`")
    report.heading("Reading")
    note = not_run_note("deep part", error, False, quick, "1 seed, 600 steps, 32x32 networks")
    report.para(_tabular_reading(tab) + (note if note is not None else _deep_reading(deep)))


def run(out: Path, quick: bool = False, seeds: int = 3) -> Report:
    """Tabular identity (always, exact) and SAC on Pendulum (tiny with `quick`)."""
    budget = (
        "Tabular: exact, seconds. Deep: " + (
            "quick smoke test, 2 configurations x 1 seed x 600 env steps with 32x32 networks (~30 s on 2 CPU cores, "
            "mostly compilation)."
            if quick else
            f"4 configurations x {seeds} seeds x 15,000 env steps (2x256 networks, 1 update per step); SAC trains "
            "3 seeds of Pendulum in roughly 10 minutes on 2 CPU cores, so expect ~40 minutes."
        )
    )
    report = Report(
        NAME, "Alpha and reward scale are one knob: (c R, c alpha) gives the same policy as (R, alpha)", out, quick,
        seeds,
        claim="Section 3, Choosing alpha: \"If you double all your rewards, then you'll also have to double alpha "
              "if you want to learn the same policy. One corollary of this is that you could keep alpha fixed at 1 "
              "and just change your reward scale.\" Via Eq. 20 and 24-25: Q(cR, c alpha) = c Q(R, alpha), so "
              "softmax(Q/alpha) is unchanged.",
        budget=budget,
    )
    results = compute(report.out, quick, seeds)
    reading(results, report, figures(results, report.out, quick), quick)
    report.record(results)
    return report
