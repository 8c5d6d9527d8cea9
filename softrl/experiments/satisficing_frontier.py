"""Eq. 28, bounded rationality: satisficing is MaxEnt RL at a particular alpha.

`max_pi E[sum_t gamma^t H(pi(.|s_t))]  s.t.  E[sum_t gamma^t r_t] >= (1 - epsilon) R_max`.
Along the soft-optimal family `pi_alpha = softmax(Q*_alpha / alpha)` (Eq. 20, 25) the discounted
return falls and the discounted entropy rises with alpha, so the family traces a return/entropy
frontier and the satisficing policy is its member with the largest feasible alpha
(`softrl.tabular.satisficing`).

Here: a gridworld with a short path along a cliff (slip 0.05: every step there risks a fall) and a
longer safe path behind a wall. The frontier is traced densely with `return_and_entropy`; for
epsilon in (0.01, 0.05, 0.1, 0.2) the alpha that `satisficing` picks is marked, the constraint is
checked, and the MaxEnt policy is compared with a non-MaxEnt feasible policy of the same return
(greedy mixed with uniform) to show that it buys more entropy for the same return loss.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from softrl.experiments.report import Figure, Report, check, float64, plot_style, pyplot, save_figure
from softrl.tabular import gridworld, policy_evaluation, return_and_entropy, satisficing, start_value

NAME = "satisficing"
SUMMARY = "frontier, alpha picked per eps (Eq. 28)"

LAYOUT = (
    "..........",
    ".########.",
    "S........G",
    "CCCCCCCCCC",
)
GRID_KW = {"slip": 0.05, "gamma": 0.95, "goal_rewards": {"G": 1.0}, "cliff_reward": -1.0}
EPSILONS = (0.01, 0.05, 0.1, 0.2)
FRONTIER_ALPHAS = np.logspace(-3.5, 0.5, 81)
SVI_TOL = 1e-12


def _return_entropy_of(mdp, pi) -> tuple[float, float]:
    """(discounted return, discounted entropy) of any policy from p0, by exact policy evaluation (Eq. 9-11)."""
    _, v_r = policy_evaluation(mdp, pi, 0.0)
    _, v_1 = policy_evaluation(mdp, pi, 1.0)
    ret = float(start_value(mdp, v_r))
    return ret, float(start_value(mdp, v_1)) - ret


def _occupancy(mdp, pi) -> np.ndarray:
    """[S] discounted state occupancy sum_t gamma^t P(s_t = s) from p0 (terminal states excluded)."""
    P, p0 = np.asarray(mdp.P), np.asarray(mdp.p0)
    live = ~np.asarray(mdp.terminal)
    p_pi = np.einsum("sa,sat->st", np.asarray(pi), P) * live[:, None]
    return np.linalg.solve(np.eye(len(p0)) - float(mdp.gamma) * p_pi.T, p0) * live


def _mixture_baseline(mdp, greedy: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """The non-MaxEnt policy (1 - w) greedy + w uniform with the largest w meeting the return constraint.
    Returns (w, return, discounted entropy)."""
    uniform = np.full_like(greedy, 1.0 / greedy.shape[-1])
    lo, hi = 0.0, 1.0
    if _return_entropy_of(mdp, uniform)[0] >= threshold:
        lo = 1.0
    else:
        for _ in range(40):  # w to ~1e-12
            mid = 0.5 * (lo + hi)
            ok = _return_entropy_of(mdp, (1 - mid) * greedy + mid * uniform)[0] >= threshold
            lo, hi = (mid, hi) if ok else (lo, mid)
    ret, ent = _return_entropy_of(mdp, (1 - lo) * greedy + lo * uniform)
    return lo, ret, ent


def _pick(mdp, geo, eps: float, greedy: np.ndarray, f_ret: np.ndarray, f_ent: np.ndarray) -> dict:
    """The policy `satisficing(mdp, eps)` picks, its feasible frontier rival and the noisy-greedy baseline."""
    res = satisficing(mdp, eps, tol=SVI_TOL)
    ret, ent, thr = float(res.expected_return), float(res.discounted_entropy), float(res.threshold)
    w, mix_ret, mix_ent = _mixture_baseline(mdp, greedy, thr)
    feasible = f_ret >= thr - 1e-12
    occ = _occupancy(mdp, res.policy)
    rows_occ = np.zeros(geo.height)
    for s, (r, _) in enumerate(geo.cell_of_state):
        rows_occ[r] += occ[s]
    return {
        "alpha": float(res.alpha), "return": ret, "discounted_entropy": ent, "threshold": thr,
        "r_max": float(res.r_max), "slack": ret - thr,
        "best_feasible_frontier_entropy": float(f_ent[feasible].max()) if feasible.any() else None,
        "mixture_weight": w, "mixture_return": mix_ret, "mixture_entropy": mix_ent,
        "occupancy": occ, "row_occupancy_fraction": rows_occ / rows_occ.sum(),
    }


def compute() -> dict:
    """The frontier, the pick for every epsilon, and the identity checks (exact; call inside `float64()`)."""
    mdp, geo = gridworld(LAYOUT, **GRID_KW)
    frontier = jax.vmap(lambda a: return_and_entropy(mdp, a, tol=SVI_TOL)[:2])(jnp.asarray(FRONTIER_ALPHAS))
    f_ret, f_ent = np.asarray(frontier[0]), np.asarray(frontier[1])
    greedy = np.asarray(satisficing(mdp, 0.0, tol=SVI_TOL).policy)  # epsilon = 0: the hard-optimal policy
    picks = {str(eps): _pick(mdp, geo, eps, greedy, f_ret, f_ent) for eps in (0.0, *EPSILONS)}
    chosen = [picks[str(e)] for e in EPSILONS]
    slacks = np.array([p["slack"] for p in chosen])
    r_max = picks["0.0"]["r_max"]
    tight = np.abs(slacks) / abs(r_max)
    beat = np.array([p["best_feasible_frontier_entropy"] - p["discounted_entropy"] for p in chosen])
    margin = np.array([p["discounted_entropy"] - p["mixture_entropy"] for p in chosen])
    ret_up = float(np.max(np.diff(f_ret)))  # returns must not increase with alpha
    ent_down = float(np.max(-np.diff(f_ent)))  # entropies must not decrease with alpha
    alphas = np.array([p["alpha"] for p in chosen])
    return {
        "layout": LAYOUT, "grid": GRID_KW, "epsilons": EPSILONS, "r_max": r_max, "picks": picks,
        "frontier": {"alphas": FRONTIER_ALPHAS, "returns": f_ret, "entropies": f_ent},
        "max_constraint_violation": float(max(0.0, -slacks.min())), "max_relative_slack": float(tight.max()),
        "max_feasible_frontier_entropy_gain": float(beat.max()), "min_entropy_margin_over_mixture": float(margin.min()),
        "max_entropy_margin_over_mixture": float(margin.max()),
        "frontier_return_increase": ret_up, "frontier_entropy_decrease": ent_down,
        "checks": [
            check("constraint_met", max(0.0, -slacks.min()), 1e-9,
                  "return >= (1 - epsilon) R_max for every epsilon (violation, reward units)"),
            check("constraint_active", tight.max(), 1e-6,
                  "|return - threshold| / R_max: the largest feasible alpha sits on the constraint"),
            check("max_entropy_on_frontier", max(0.0, beat.max()), 1e-6,
                  "no feasible point of the dense frontier has more discounted entropy than the pick"),
            check("beats_noisy_greedy", margin.min(), 0.0,
                  "MaxEnt pick has more entropy than the feasible greedy/uniform mixture (passes when > 0)",
                  passed=bool(margin.min() > 0)),
            check("frontier_monotone", max(ret_up, ent_down, 0.0), 1e-9,
                  "return non-increasing and entropy non-decreasing in alpha along the frontier"),
            check("alpha_grows_with_epsilon", float(max(0.0, -np.diff(alphas).min())), 0.0,
                  "a looser constraint (larger epsilon) allows a larger alpha"),
        ],
    }


# ----- figures ------------------------------------------------------------------------------------------------


def _mark_picks(ax, picks: dict, colors, labels) -> None:
    """Each epsilon's threshold (dotted), MaxEnt pick (star) and noisy-greedy baseline (cross)."""
    for eps, color in zip(EPSILONS, colors):
        p = picks[str(eps)]
        star, cross = labels(eps, p)
        ax.axhline(p["threshold"], color=color, linestyle=":", linewidth=1)
        ax.plot(p["discounted_entropy"], p["return"], "*", color=color, markersize=15, markeredgecolor="k",
                zorder=3, label=star)
        ax.plot(p["mixture_entropy"], p["mixture_return"], "X", color=color, markersize=9, markeredgecolor="k",
                zorder=3, label=cross)


def _frontier_figure(results: dict, out: Path, colors) -> Figure:
    plt = pyplot()
    f = results["frontier"]
    fig, ax = plt.subplots(figsize=(9, 5.4))
    sc = ax.scatter(f["entropies"], f["returns"], c=np.log10(f["alphas"]), cmap="viridis", s=16, zorder=2)
    ax.plot(f["entropies"], f["returns"], color="0.6", linewidth=1, zorder=1)
    fig.colorbar(sc, ax=ax, label="log10 alpha")
    _mark_picks(ax, results["picks"], colors, lambda eps, p: (f"eps={eps:g}: alpha={p['alpha']:.4f}", None))
    ax.plot([], [], "X", color="0.5", markeredgecolor="k", label="greedy/uniform mixture, same threshold")
    ax.plot([], [], ":", color="0.3", label="thresholds (1-eps) R_max")
    ax.set_xlabel("discounted entropy E[sum_t gamma^t H(pi(.|s_t))] (nats)")
    ax.set_ylabel("discounted return E[sum_t gamma^t r_t] (reward units)")
    ax.set_title("Eq. 28: satisficing = MaxEnt at the largest alpha meeting (1-eps) R_max")
    ax.legend(loc="lower left", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out, "satisficing_frontier.png",
                       "Return/entropy frontier of the soft-optimal policies (colour: alpha). Stars: the policy "
                       "satisficing(mdp, epsilon) picks; dotted: its return threshold; crosses: noisy-greedy "
                       "policies with the same return.")


def _zoom_figure(results: dict, out: Path, colors) -> Figure:
    """Zoom on the part of the frontier where the picks live."""
    f = results["frontier"]
    fig, ax = pyplot().subplots(figsize=(8, 4.6))
    zoom = f["returns"] >= results["r_max"] * (1 - 2.5 * max(EPSILONS))
    ax.plot(f["entropies"][zoom], f["returns"][zoom], "o-", color="0.5", markersize=3, label="MaxEnt frontier")
    _mark_picks(ax, results["picks"], colors, lambda eps, p: (
        f"eps={eps:g} (MaxEnt, H={p['discounted_entropy']:.2f})",
        f"eps={eps:g} (noisy greedy, H={p['mixture_entropy']:.2f})"))
    ax.set_xlabel("discounted entropy (nats)")
    ax.set_ylabel("discounted return (reward units)")
    ax.set_title("Zoom: same return, more entropy than noisy greedy")
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    fig.tight_layout()
    return save_figure(fig, out, "satisficing_frontier_zoom.png",
                       "Zoom on the satisficing picks: for each threshold the MaxEnt policy (star) has more entropy "
                       "than the greedy/uniform mixture with the same return (cross).")


def _occupancy_figure(results: dict, out: Path) -> Figure:
    plt = pyplot()
    _, geo = gridworld(LAYOUT, **GRID_KW)
    shown = [results["picks"][str(e)] for e in (0.0, EPSILONS[1], EPSILONS[-1])]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 2.6 * len(shown)))
    vmax = max(p["occupancy"].max() for p in shown)
    for ax, eps, p in zip(axes, (0.0, EPSILONS[1], EPSILONS[-1]), shown):
        grid = np.full((geo.height, geo.width), np.nan)
        for s, (r, c) in enumerate(geo.cell_of_state):
            grid[r, c] = p["occupancy"][s]
        cmap = plt.get_cmap("magma").with_extremes(bad="0.3")
        im = ax.imshow(np.where(np.array([list(row) for row in LAYOUT]) == "#", np.nan, grid), cmap=cmap,
                       vmin=0, vmax=vmax)
        for r, row in enumerate(LAYOUT):
            for c, ch in enumerate(row):
                if ch in "SGC":
                    ax.text(c, r, ch, ha="center", va="center", color="cyan", fontsize=10, fontweight="bold")
        a_txt = "0, greedy" if p["alpha"] == 0 else f"{p['alpha']:.4f}"
        ax.set_title(f"epsilon = {eps:g} (alpha = {a_txt}): {100 * p['row_occupancy_fraction'][2]:.0f}% "
                     f"of time in the cliff row, {100 * p['row_occupancy_fraction'][0]:.0f}% in the safe row")
        ax.set_xticks(range(geo.width))
        ax.set_yticks(range(geo.height))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        ax.grid(False)
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="discounted occupancy")
    fig.suptitle("Looser satisficing -> more entropy -> the agent leaves the cliff edge", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, out, "satisficing_occupancy.png",
                       "Discounted state occupancy of the satisficing policy for three epsilons (S start, G goal, "
                       "C cliff, grey: wall).")


def figures(results: dict, out: Path, quick: bool = False) -> list[Figure]:
    """The frontier, a zoom on the picks, and where the picked policies spend their time."""
    with plot_style():
        colors = pyplot().get_cmap("autumn")(np.linspace(0, 0.8, len(EPSILONS)))
        return [_frontier_figure(results, out, colors), _zoom_figure(results, out, colors),
                _occupancy_figure(results, out)]


# ----- reading ------------------------------------------------------------------------------------------------

RISKY_ROW = 2


def _results_section(report: Report, results: dict) -> None:
    rows = []
    for eps in (0.0, *EPSILONS):
        p = results["picks"][str(eps)]
        rows.append([eps, p["threshold"], p["alpha"], p["return"], p["discounted_entropy"], p["mixture_weight"],
                     p["mixture_entropy"], p["row_occupancy_fraction"][RISKY_ROW], p["row_occupancy_fraction"][0]])
    report.heading("Setup")
    report.para(
        "Gridworld `" + " / ".join(LAYOUT) + f"` (S start, G goal +1 terminal, C cliff -1 and back to S, # wall), slip "
        f"{GRID_KW['slip']} (a random move with that probability, so each step along the cliff row risks a fall), "
        f"gamma {GRID_KW['gamma']}. Short risky path: along row {RISKY_ROW} next to the cliff (9 moves). Long safe "
        "path: up to row 0, behind the wall, and down (13 moves); there the 'up'/'down' bumps are harmless, so a "
        "policy can afford randomness. Everything is exact (float64): the frontier is `return_and_entropy` at "
        f"{len(FRONTIER_ALPHAS)} alphas from {FRONTIER_ALPHAS[0]:.1e} to {FRONTIER_ALPHAS[-1]:.2g}; each epsilon is "
        "solved by `satisficing(mdp, epsilon)` (bisection on log alpha along the soft-optimal family). The "
        "return constraint is `(1 - epsilon) R_max` (R_max > 0 here)."
    )
    report.heading("Results")
    report.table(["epsilon", "threshold (1-eps) R_max", "alpha picked", "discounted return", "discounted entropy "
                  "(nats)", "mixture weight w", "mixture entropy (nats)", f"time fraction in risky row {RISKY_ROW}",
                  "time fraction in safe row 0"], rows)
    report.para(
        f"R_max = {results['r_max']:.6f} (the hard-optimal return, epsilon = 0 row: alpha = 0). `mixture` is the "
        "best non-MaxEnt baseline of the form (1 - w) greedy + w uniform that still meets the same threshold; its "
        "discounted entropy is what 'just add noise to the greedy policy' buys for the same return loss. The "
        "occupancy columns are fractions of discounted time spent in the cliff row and in the safe top row."
    )


def reading(results: dict, report: Report, figs: list[Figure], quick: bool = False) -> None:
    """Setup, the table of picks, the figures, and what they say about Eq. 28."""
    _results_section(report, results)
    for fig in figs:
        report.embed(fig)
    picks, f = results["picks"], results["frontier"]
    lo, hi = picks[str(EPSILONS[0])], picks[str(EPSILONS[-1])]
    report.heading("Reading")
    report.para(
        "The satisficing problem of Eq. 28 is solved by a MaxEnt policy, as the lecture states: for every epsilon the "
        f"picked soft-optimal policy meets the return constraint (worst violation "
        f"{results['max_constraint_violation']:.1e}), sits on it (relative slack at most "
        f"{results['max_relative_slack']:.1e}: the largest feasible alpha), and no point of the dense frontier that "
        f"is feasible has more discounted entropy (largest gain "
        f"{max(0.0, results['max_feasible_frontier_entropy_gain']):.1e}). The "
        f"chosen alpha grows with epsilon, from {lo['alpha']:.4f} (eps = {EPSILONS[0]:g}) to {hi['alpha']:.4f} "
        f"(eps = {EPSILONS[-1]:g}), i.e. only by a factor {hi['alpha'] / lo['alpha']:.1f} for a 20x looser "
        "constraint, because the return loss of a soft policy grows like exp(-gap/alpha). For the same return, the "
        f"MaxEnt policy has {results['min_entropy_margin_over_mixture']:.2f} to "
        f"{results['max_entropy_margin_over_mixture']:.2f} nats more discounted entropy than adding "
        "uniform noise to the greedy policy, so 'choosing randomly among good-enough policies' is not the same as "
        "'acting greedily with noise'. Behaviourally, looser satisficing moves the agent off the cliff edge: "
        "the fraction of discounted time in the cliff row falls from "
        f"{100 * picks['0.0']['row_occupancy_fraction'][2]:.0f}% "
        f"(greedy) to {100 * hi['row_occupancy_fraction'][2]:.0f}% at eps = {EPSILONS[-1]:g}, with the safe top row "
        f"rising to {100 * hi['row_occupancy_fraction'][0]:.0f}%: the lecture's walking-along-the-cliff intuition "
        "(Section 1.3). Caveat: the frontier's far end (large alpha) is an agent that prefers wandering to the goal "
        f"(return {f['returns'][-1]:.2f}, entropy {f['entropies'][-1]:.1f} nats): reaching a terminal goal forfeits "
        "all future entropy bonus, a known side effect of MaxEnt RL in tasks that end at a goal."
    )


def run(out: Path, quick: bool = False, seeds: int = 3) -> Report:
    """Satisficing frontier (exact; `quick` and `seeds` change nothing)."""
    report = Report(
        NAME, "Eq. 28: satisficing (good-enough return, maximal entropy) is MaxEnt RL at a particular alpha", out,
        quick, seeds,
        claim="Bounded rationality as satisficing: maximise discounted entropy subject to a discounted return of at "
              "least (1 - epsilon) R_max (Eq. 28). \"This optimization problem is equivalent to the standard MaxEnt "
              "RL problem, for a particular choice of alpha (which depends on epsilon).\"",
        budget=f"Exact computations only (no sampling, no seeds): {len(FRONTIER_ALPHAS)} + {1 + len(EPSILONS)} x ~66 "
               "soft value iterations and policy evaluations on a 32-state gridworld, plus a 40-step bisection per "
               "epsilon for the baseline; under a minute on a laptop CPU. `--quick` and `--seeds` change nothing.",
    )
    with float64():
        results = compute()
    reading(results, report, figures(results, report.out))
    report.record(results)
    return report
