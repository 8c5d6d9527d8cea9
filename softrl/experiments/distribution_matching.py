"""Eq. 29-34: MaxEnt RL is distribution matching.

A policy induces `pi(tau) = p0(s0) prod_t p(s_{t+1}|s_t, a_t) pi(a_t|s_t)` (Eq. 29); the target is
`p*(tau) = p(tau) exp(R(tau)) / Z` (Eq. 30) with `R(tau) = sum_t r(s_t, a_t)`. Then
`KL(pi || p*) = -J(pi) + log Z` (Eq. 31-34) with `J(pi) = E_pi[sum_t (r_t - log pi(a_t|s_t))]` the
undiscounted MaxEnt objective at alpha = 1, so maximising J is minimising the reverse KL, and with
deterministic dynamics the soft-optimal policy matches p* exactly (KL = 0, J* = log Z).

Here: a 2x3 deterministic gridworld with two terminal goals and horizon 4, small enough to
enumerate all (S A)^H = 331,776 action/state sequences (`trajectory_distribution`; 226 are
feasible). Three independent computations meet: the KL by enumeration, J by dynamic programming
(`policy_evaluation`), log Z by enumeration and by soft value iteration (`V*(s0) = log Z`).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from softrl.backups import soft_policy
from softrl.experiments.report import Figure, Report, check, float64, fmt_ci, mean_ci, plot_style, pyplot, save_figure
from softrl.tabular import (
    distribution_matching_check,
    gridworld,
    policy_evaluation,
    soft_value_iteration,
    start_value,
    trajectory_distribution,
)

NAME = "distribution-matching"
SUMMARY = "KL(pi||p*)=-J+log Z (Eq. 29-34)"

LAYOUT = ("S.g", "..G")
GRID_KW = {"slip": 0.0, "gamma": 1.0, "step_reward": -0.5, "goal_rewards": {"G": 3.0, "g": 1.5}, "horizon": 4}
TOP_K = 15
PERTURB_SIGMA = 0.5  # std of the Gaussian noise added to log pi* for the perturbed policies
ARROWS = ("\u2191", "\u2192", "\u2193", "\u2190")  # up, right, down, left: the gridworld's action order


def _label(states: np.ndarray, actions: np.ndarray, terminal: np.ndarray, ret: float) -> str:
    steps = "".join("\u00b7" if terminal[s] else ARROWS[a] for s, a in zip(states, actions))
    return f"{steps}\nR={ret:g}"


OPTIMAL = "soft-optimal pi* (alpha = 1)"
GREEDYISH = "greedy-ish softmax(Q*/0.3)"
ALPHA = 1.0  # the lecture's derivation (Eq. 30-34) is at alpha = 1


def _policy_numbers(mdp, pi) -> dict:
    """KL by enumeration, J by dynamic programming (Eq. 9-11, not by enumeration), log Z, and their identity."""
    dm = distribution_matching_check(mdp, pi, ALPHA)
    _, v = policy_evaluation(mdp, pi, ALPHA)
    j_dp = float(start_value(mdp, v))
    kl, lz = float(dm.kl), float(dm.log_z)
    return {"kl": kl, "objective": float(dm.objective), "log_z": lz, "j_dynamic_programming": j_dp,
            "identity_error": abs(kl - (-j_dp + lz)), "j_enumeration_vs_dp": abs(float(dm.objective) - j_dp),
            "policy_probs": np.asarray(dm.policy_probs), "target_probs": np.asarray(dm.target_probs)}


def _perturbed(mdp, pi_star, seeds: int) -> list[dict]:
    """Perturbed soft-optimal policies: log pi* + N(0, sigma^2) noise, renormalised; one per seed."""
    log_pi = jnp.log(pi_star)
    out = []
    for seed in range(seeds):
        noise = PERTURB_SIGMA * jax.random.normal(jax.random.PRNGKey(seed), log_pi.shape, log_pi.dtype)
        p = _policy_numbers(mdp, jax.nn.softmax(log_pi + noise, axis=-1))
        out.append({"kl": p["kl"], "j": p["j_dynamic_programming"], "identity_error": p["identity_error"]})
    return out


def _top_k(mdp, pi_star, per_policy: dict) -> dict:
    """The TOP_K most likely trajectories under p*, and every feasible one's probabilities (for the figures)."""
    traj = trajectory_distribution(mdp, pi_star)
    p_star, pi_opt = per_policy[OPTIMAL]["target_probs"], per_policy[OPTIMAL]["policy_probs"]
    pi_unif = per_policy["uniform"]["policy_probs"]
    top = np.argsort(-p_star)[:TOP_K]
    terminal = np.asarray(mdp.terminal)
    states, actions, returns = np.asarray(traj.states), np.asarray(traj.actions), np.asarray(traj.returns)
    feasible = p_star > 0
    return {
        "top_k": {"labels": [_label(states[i], actions[i], terminal, float(returns[i])) for i in top],
                  "p_star": p_star[top], "pi_star": pi_opt[top], "pi_uniform": pi_unif[top],
                  "mass": float(p_star[top].sum())},
        "feasible": {"p_star": p_star[feasible], "pi_star": pi_opt[feasible], "pi_uniform": pi_unif[feasible],
                     "pi_greedyish": per_policy[GREEDYISH]["policy_probs"][feasible]},
    }


def compute(seeds: int) -> dict:
    """Every number of the report and its identity checks (exact; call inside `float64()`)."""
    mdp, _ = gridworld(LAYOUT, **GRID_KW)
    soft = soft_value_iteration(mdp, ALPHA)
    hard = soft_value_iteration(mdp, 0.0)
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    assert H is not None  # LAYOUT's gridworld has a finite horizon
    policies = {
        OPTIMAL: soft.policy,
        "uniform": jnp.full((H, S, A), 1.0 / A),
        "greedy (hard-optimal, ties split)": hard.policy,
        GREEDYISH: soft_policy(soft.q, 0.3),
        "too random softmax(Q*/3)": soft_policy(soft.q, 3.0),
    }
    per_policy = {name: _policy_numbers(mdp, pi) for name, pi in policies.items()}
    pert = _perturbed(mdp, soft.policy, seeds)
    opt = per_policy[OPTIMAL]
    log_z, log_z_dp = opt["log_z"], float(start_value(mdp, soft.v))  # deterministic dynamics: V*(s0) = log Z
    p_star = opt["target_probs"]
    tv_opt = 0.5 * float(np.abs(opt["policy_probs"] - p_star).sum())
    identity = max([p["identity_error"] for p in per_policy.values()] + [p["identity_error"] for p in pert])
    j_agree = max(p["j_enumeration_vs_dp"] for p in per_policy.values())
    others = [p["kl"] for n, p in per_policy.items() if n != OPTIMAL] + [p["kl"] for p in pert]
    return {
        "layout": LAYOUT, "grid": GRID_KW, "alpha": ALPHA, "log_z": log_z, "log_z_soft_value": log_z_dp,
        "horizon": H, "num_sequences": (S * A) ** H, "num_feasible": int((p_star > 0).sum()),
        "policies": {n: {k: v for k, v in p.items() if not k.endswith("_probs")} for n, p in per_policy.items()},
        "perturbed": {"sigma": PERTURB_SIGMA, "per_seed": pert, "kl": mean_ci([p["kl"] for p in pert]),
                      "j": mean_ci([p["j"] for p in pert]),
                      "neg_j_plus_log_z": mean_ci([-p["j"] + per_policy["uniform"]["log_z"] for p in pert])},
        "kl_optimal": opt["kl"], "tv_optimal": tv_opt, "max_identity_error": identity,
        "min_kl_non_optimal": min(others), "max_j_enumeration_vs_dp": j_agree,
        **_top_k(mdp, soft.policy, per_policy),
        "checks": [
            check("kl_identity", identity, 1e-9, "|KL(pi||p*) - (-J(pi) + log Z)| over every policy (Eq. 31-34)"),
            check("kl_optimal_is_zero", abs(opt["kl"]), 1e-9, "KL(pi*||p*) for the soft-optimal policy"),
            check("trajectory_distributions_match", tv_opt, 1e-9, "TV(pi*(tau), p*(tau)) over all trajectories"),
            check("log_z_is_soft_value", abs(log_z - log_z_dp), 1e-9, "log Z (enumeration) = V*(s0) (soft VI)"),
            check("j_enumeration_equals_dp", j_agree, 1e-9, "J by enumeration = J by policy evaluation"),
            check("others_have_positive_kl", min(others), 1e-3,
                  "smallest KL among non-optimal policies (passes when > 1e-3)", passed=min(others) > 1e-3),
        ],
    }


# ----- figures ------------------------------------------------------------------------------------------------


def _top_k_bars(ax, results: dict) -> None:
    top, n_feasible = results["top_k"], results["num_feasible"]
    x = np.arange(TOP_K)
    w = 0.28
    ax.bar(x - w, top["pi_star"], w, label="pi*(tau), soft-optimal policy (Eq. 29)", color="tab:blue")
    ax.bar(x, top["p_star"], w, label="p*(tau) = exp(R(tau)) / Z (Eq. 30)", color="tab:orange")
    ax.bar(x + w, top["pi_uniform"], w, label="uniform policy's pi(tau)", color="0.7")
    ax.set_xticks(x, top["labels"], fontsize=9)
    ax.set_xlabel(f"trajectory (actions; dot = episode over), top {TOP_K} by p*")
    ax.set_ylabel("probability of the trajectory")
    ax.set_title(f"top {TOP_K} of {n_feasible} trajectories ({top['mass']:.0%} of p*)")
    ax.set_ylim(0, 1.35 * max(top["pi_star"].max(), top["p_star"].max(), top["pi_uniform"].max()))
    ax.legend(loc="upper right")


def _scatter_all(ax, results: dict) -> None:
    f, pol = results["feasible"], results["policies"]
    lim = (f["p_star"].min() / 3, 1)
    ax.loglog(f["p_star"], f["pi_star"], "o", color="tab:blue", markersize=5,
              label=f"soft-optimal: KL = {abs(results['kl_optimal']):.0e}")
    ax.loglog(f["p_star"], f["pi_uniform"], "s", color="0.6", markersize=4, alpha=0.7,
              label=f"uniform: KL = {pol['uniform']['kl']:.2f}")
    ax.loglog(f["p_star"], f["pi_greedyish"], "^", color="tab:red", markersize=4,
              alpha=0.6, label=f"softmax(Q*/0.3): KL = {pol[GREEDYISH]['kl']:.2f}")
    ax.plot(lim, lim, "k--", linewidth=1, label="pi(tau) = p*(tau)")
    ax.set_xlim(*lim)
    shown = np.concatenate([f["pi_star"], f["pi_uniform"], f["pi_greedyish"]])
    ax.set_ylim(shown[shown > 0].min() / 3, 1)
    ax.set_xlabel("p*(tau) (log)")
    ax.set_ylabel("pi(tau) (log)")
    ax.set_title("all feasible trajectories")
    ax.legend(loc="lower right", fontsize=8)


def _kl_bars(results: dict, out: Path) -> Figure:
    pol, kl_ci, j_ci, log_z = results["policies"], results["perturbed"]["kl"], results["perturbed"]["j"], \
        results["log_z"]
    fig, ax = pyplot().subplots(figsize=(9, 4.6))
    names = list(pol) + ["perturbed pi*"]
    kls = [pol[n]["kl"] for n in pol] + [kl_ci["mean"]]
    js = [pol[n]["j_dynamic_programming"] for n in pol] + [j_ci["mean"]]
    y = np.arange(len(names))
    ax.barh(y - 0.2, kls, 0.4, color="tab:purple", label="KL(pi || p*) (enumeration)")
    ax.barh(y + 0.2, [-j + log_z for j in js], 0.4, color="tab:green", label="-J(pi) + log Z (dynamic programming)")
    if kl_ci["lo"] is not None:
        ax.errorbar(kls[-1], y[-1] - 0.2, xerr=[[kls[-1] - kl_ci["lo"]], [kl_ci["hi"] - kls[-1]]], fmt="none",
                    color="k", capsize=4, label=f"95% CI over {kl_ci['n']} seeds")
    for yi, (k, j) in enumerate(zip(kls, js)):
        ax.text(max(k, -j + log_z) + 0.02, yi, f"{k:.3g}" if abs(k) > 1e-6 else f"{k:.1e}", va="center", fontsize=9)
    ax.set_xlim(0, 1.15 * max(kls))
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("nats")
    ax.set_title("KL(pi || p*) = -J(pi) + log Z: maximising J minimises the KL (Eq. 31-34)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out, "distribution_matching_kl.png",
                       "Reverse KL to p* (enumerated) and -J + log Z (dynamic programming) for several policies.")


def figures(results: dict, out: Path, quick: bool = False) -> list[Figure]:
    """Trajectory probabilities (top K, and all feasible ones) and the KL identity per policy."""
    with plot_style():
        fig, axes = pyplot().subplots(1, 2, figsize=(17, 5.4), gridspec_kw={"width_ratios": [2.2, 1]})
        _top_k_bars(axes[0], results)
        _scatter_all(axes[1], results)
        fig.suptitle("Eq. 29-34: the soft-optimal policy's trajectory distribution equals p*(tau) ~ p(tau) exp(R(tau))",
                     fontsize=13)
        fig.tight_layout()
        trajectories = save_figure(
            fig, out, "distribution_matching_trajectories.png",
            "Left: trajectory probabilities under the soft-optimal policy and the target p*, with the "
            "uniform policy for contrast. Right: pi(tau) against p*(tau) for every feasible trajectory.")
        return [trajectories, _kl_bars(results, out)]


# ----- reading ------------------------------------------------------------------------------------------------


def _setup_and_table(report: Report, results: dict) -> None:
    pol, pert = results["policies"], results["perturbed"]
    rows = [[name, p["kl"], p["j_dynamic_programming"], -p["j_dynamic_programming"] + p["log_z"],
             p["identity_error"]] for name, p in pol.items()]
    rows.append([f"perturbed pi* (log pi* + N(0, {PERTURB_SIGMA:g}^2)), {pert['kl']['n']} seeds", fmt_ci(pert["kl"]),
                 fmt_ci(pert["j"]), fmt_ci(pert["neg_j_plus_log_z"]),
                 max(p["identity_error"] for p in pert["per_seed"])])
    report.heading("Setup")
    report.para(
        "Deterministic gridworld `" + " / ".join(LAYOUT) + f"` (S start, G goal +{GRID_KW['goal_rewards']['G']:g}, g "
        f"goal +{GRID_KW['goal_rewards']['g']:g}, both terminal; step reward {GRID_KW['step_reward']:g} added to every "
        f"move), horizon H = {results['horizon']}, no discount (gamma = 1), alpha = 1 as in Eq. 30-34. All (S A)^H = "
        f"{results['num_sequences']:,} sequences are enumerated; {results['num_feasible']} are feasible trajectories. "
        "After a goal the episode is over (padding, drawn as a dot). Policies are time-indexed ([H, S, A]). KL is "
        "computed directly from the enumeration (Eq. 31); J by exact dynamic programming (Eq. 9-11 with gamma = 1); "
        "log Z by enumeration."
    )
    report.heading("Results")
    report.table(["policy", "KL(pi || p*) (nats)", "J(pi) = E[R - log pi] (nats)", "-J(pi) + log Z",
                  "|KL - (-J + log Z)|"], rows, digits=5)
    log_z, log_z_dp = results["log_z"], results["log_z_soft_value"]
    report.para(
        f"log Z = {log_z:.10f} by enumeration, {log_z_dp:.10f} as the soft value V*(s0) from soft value iteration "
        f"(difference {abs(log_z - log_z_dp):.1e}). Total variation between pi*(tau) and p*(tau) over all "
        f"trajectories: {results['tv_optimal']:.1e}. The top {TOP_K} trajectories carry "
        f"{results['top_k']['mass']:.1%} of p*."
    )


def reading(results: dict, report: Report, figs: list[Figure], quick: bool = False) -> None:
    """Setup, the KL table, the figures, and what they say about Eq. 29-34."""
    _setup_and_table(report, results)
    for fig in figs:
        report.embed(fig)
    pol = results["policies"]
    report.heading("Reading")
    report.para(
        "The lecture's derivation checks out exactly on this MDP. For every policy tried, the reverse KL between "
        "its trajectory distribution and p* equals -J(pi) + log Z, with J computed independently by dynamic "
        f"programming (largest discrepancy {results['max_identity_error']:.1e}). The soft-optimal policy attains "
        f"KL = {abs(results['kl_optimal']):.1e}: its trajectory distribution is p* itself (total variation "
        f"{results['tv_optimal']:.1e}), and its objective equals log Z = {results['log_z']:.4f}, which is also the "
        "soft value of the start state. Every other policy pays a positive KL, "
        f"the smallest being {results['min_kl_non_optimal']:.3f} nats: the uniform policy "
        f"{pol['uniform']['kl']:.3f}, the hard-optimal greedy policy "
        f"{pol['greedy (hard-optimal, ties split)']['kl']:.3f} (it puts all mass on the best returns and "
        f"pays the entropy it gives up), softmax(Q*/0.3) {pol[GREEDYISH]['kl']:.3f}, "
        f"the too-random softmax(Q*/3) {pol['too random softmax(Q*/3)']['kl']:.3f}, and perturbing log pi* "
        f"by N(0, {PERTURB_SIGMA:g}^2) noise costs "
        f"{fmt_ci(results['perturbed']['kl'], 3)}. Caveat: this exact match needs deterministic dynamics and start; "
        "with stochastic dynamics p* is not reachable by any policy and the minimum KL is positive, and the "
        f"lecture's version is undiscounted at alpha = 1 (here: horizon {results['horizon']}, gamma = 1)."
    )


def run(out: Path, quick: bool = False, seeds: int = 3) -> Report:
    """Distribution matching by enumeration (exact; `seeds` perturbed policies give a CI; `quick` changes nothing)."""
    report = Report(
        NAME, "Eq. 29-34: MaxEnt RL matches the trajectory distribution p*(tau) ~ p(tau) exp(R(tau))", out, quick,
        seeds,
        claim="With pi(tau) the policy's trajectory distribution (Eq. 29) and p*(tau) = p(tau) exp(sum_t r_t) / Z "
              "(Eq. 30), KL(pi || p*) = -E_pi[sum_t (r_t - log pi(a_t|s_t))] + log Z (Eq. 31-34): minimising the "
              "reverse KL is the MaxEnt RL objective, so the soft-optimal policy matches p*.",
        budget=f"Exact enumeration of 331,776 sequences for each of {5 + seeds} policies ({seeds} of them random "
               "perturbations, one per seed); seconds on a laptop CPU. `--quick` changes nothing.",
    )
    with float64():
        results = compute(seeds)
    reading(results, report, figures(results, report.out))
    report.record(results)
    return report
