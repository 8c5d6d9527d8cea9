"""Figure 1 / Section 4.2: the optimal MaxEnt actor is `softmax(Q / alpha)` (Eq. 14-20).

Part A: for one fixed Q vector over 5 actions, the policy `softmax(Q / alpha)` for alpha from 0
(argmax) to 100 (uniform), its entropy, and a numerical check that it solves the constrained
problem of Eq. 14 with optimal value `alpha logsumexp(Q / alpha)` (Eq. 24).

Part B: "Is the amount of exploration the same in all states? No, it depends on Q" (Section 4.1).
On a gridworld with two goals and a cliff, the soft-optimal policy (Eq. 25 solved exactly by soft
value iteration) has one alpha for every state, yet its per-state entropy differs widely.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from softrl.backups import entropy, soft_policy, soft_value
from softrl.experiments.report import Figure, Report, check, finish_figure, float64, fmt, plot_style, pyplot
from softrl.tabular import gridworld, return_and_entropy, soft_value_iteration

NAME = "figure1"
SUMMARY = "softmax(Q/alpha), entropy per state (Eq. 20)"

Q_VECTOR = np.array([1.0, 0.9, 0.5, -0.2, -1.0])
BAR_ALPHAS = (0.0, 0.1, 0.5, 1.0, 5.0, 100.0)

# Two goals (G: +1, g: +0.6, both terminal), a cliff along the bottom (-1 and back to S), walls (#),
# a small step cost so that wandering forever is not worth more than reaching a goal at small alpha.
LAYOUT = (
    "g........G",
    "...##.....",
    "...##.....",
    "S.........",
    "CCCCCCCCC.",
)
GRID_KW = {"slip": 0.0, "gamma": 0.95, "step_reward": -0.05, "goal_rewards": {"G": 1.0, "g": 0.6}, "cliff_reward": -1.0}
GRID_ALPHAS = (0.01, 0.05)


# ----- compute ------------------------------------------------------------------------------------------------


def _eq14_optimality(q: jnp.ndarray, alpha: float, key) -> tuple[float, float]:
    """(|Eq. 14 objective at the softmax - soft value (Eq. 24)|, best of 2000 random distributions - soft value)."""
    pi = np.asarray(soft_policy(q, alpha))
    objective = float(np.sum(pi * (Q_VECTOR - alpha * np.log(pi))))
    v = float(soft_value(q, alpha))
    others = np.asarray(jax.random.dirichlet(key, jnp.full(q.shape[0], 0.5), (2000,)), dtype=np.float64)
    others = np.clip(others, 1e-300, None)
    obj_others = np.sum(others * (Q_VECTOR - alpha * np.log(others)), axis=1)
    return abs(objective - v), float(obj_others.max() - v)


def compute_part_a() -> dict:
    """softmax(Q / alpha) for Q_VECTOR at BAR_ALPHAS, its entropy curve, and the Eq. 14 checks (call in `float64()`)."""
    q = jnp.asarray(Q_VECTOR)
    n = q.shape[0]
    key = jax.random.PRNGKey(0)
    worst_gap = -np.inf  # max over alpha > 0 of (best random objective - soft value); <= 0 if softmax is optimal
    identity_err = 0.0
    policies, entropies = [], []
    for alpha in BAR_ALPHAS:
        pi = np.asarray(soft_policy(q, alpha))
        policies.append(pi)
        entropies.append(float(entropy(jnp.asarray(pi))) + 0.0)  # + 0.0: no "-0" for the one-hot policy
        if alpha > 0:
            key, sub = jax.random.split(key)
            err, gap = _eq14_optimality(q, alpha, sub)
            identity_err, worst_gap = max(identity_err, err), max(worst_gap, gap)
    uniform_tv = 0.5 * float(np.abs(policies[BAR_ALPHAS.index(100.0)] - 1.0 / n).sum())
    onehot = np.eye(n)[int(np.argmax(Q_VECTOR))]
    argmax_err = float(np.abs(policies[BAR_ALPHAS.index(0.0)] - onehot).max())
    alphas_curve = np.logspace(-3, 3, 121)
    ent_curve = np.asarray(jax.vmap(lambda a: entropy(soft_policy(q, a)))(jnp.asarray(alphas_curve)))
    monotone_violation = float(max(0.0, -np.diff(ent_curve).min()))
    return {
        "q": Q_VECTOR, "alphas": BAR_ALPHAS, "policies": policies, "entropies": entropies,
        "tv_to_uniform_at_alpha_100": uniform_tv, "argmax_error_at_alpha_0": argmax_err,
        "eq14_identity_error": identity_err, "eq14_best_random_minus_softmax": worst_gap,
        "entropy_curve_alphas": alphas_curve, "entropy_curve": ent_curve,
        "entropy_monotone_violation": monotone_violation,
        "checks": [
            check("argmax_at_alpha_0", argmax_err, 0.0, "alpha = 0 gives the one-hot argmax policy"),
            check("uniform_at_alpha_100", uniform_tv, 0.01, "alpha = 100: total variation to uniform"),
            check("eq14_value_identity", identity_err, 1e-9, "sum pi (Q - alpha log pi) = alpha logsumexp(Q/alpha)"),
            check("eq14_softmax_is_optimal", worst_gap, 1e-12, "no random distribution beats softmax on Eq. 14"),
            check("entropy_monotone_in_alpha", monotone_violation, 1e-9,
                  "entropy of softmax(Q/alpha) grows with alpha"),
        ],
    }


def _neighbours(geo, s: int):
    """(action, layout char) of every in-grid cell that a move from state s points at."""
    r, c = geo.cell_of_state[s]
    for a, (dr, dc) in enumerate(geo.action_deltas):
        rr, cc = r + dr, c + dc
        if 0 <= rr < geo.height and 0 <= cc < geo.width:
            yield a, geo.layout[rr][cc]


def _regions(geo, decision: np.ndarray, num_actions: int) -> tuple[dict, np.ndarray]:
    """Decision states next to a goal, next to the cliff, or neither ({name: [S] bool}), and the [S, A] bool
    (s, a) pairs whose move enters a cliff cell."""
    n = len(decision)
    near = {"goal": np.zeros(n, bool), "cliff": np.zeros(n, bool)}
    into_cliff = np.zeros((n, num_actions), bool)
    for s in np.flatnonzero(decision):
        for a, ch in _neighbours(geo, int(s)):
            near["goal"][s] |= ch in "Gg"
            near["cliff"][s] |= ch == "C"
            into_cliff[s, a] = ch == "C"
    near["other"] = decision & ~near["goal"] & ~near["cliff"]
    return near, into_cliff


def _soft_optimal_numbers(mdp, geo, alpha: float, decision: np.ndarray, near: dict, into_cliff: np.ndarray) -> dict:
    """The soft-optimal policy at `alpha` (Eq. 25, exact) and how its per-state entropy spreads."""
    sol = soft_value_iteration(mdp, alpha, tol=1e-12)
    pi, h, q = np.asarray(sol.policy), np.asarray(entropy(sol.policy)), np.asarray(sol.q)
    ret, disc_ent, _ = return_and_entropy(mdp, alpha, tol=1e-12)
    hs = h[decision]
    states = np.flatnonzero(decision)
    s_min, s_max = states[np.argmin(hs)], states[np.argmax(hs)]
    q_sorted = np.sort(q, axis=1)
    gap = q_sorted[:, -1] - q_sorted[:, -2]  # best minus second best action, reward units
    return {
        "policy": pi, "entropy": h, "q": q, "min_entropy": float(hs.min()), "max_entropy": float(hs.max()),
        "mean_entropy": float(hs.mean()), "argmin_cell": geo.cell_of_state[s_min],
        "argmax_cell": geo.cell_of_state[s_max], "q_gap_at_argmin": float(gap[s_min]),
        "q_gap_at_argmax": float(gap[s_max]), "start_return": float(ret), "start_discounted_entropy":
        float(disc_ent), "frac_nearly_deterministic": float(np.mean(hs < 0.1)),
        "frac_above_half_nat": float(np.mean(hs > 0.5)),
        "max_prob_into_cliff": float(pi[into_cliff].max()),
        "mean_entropy_by_region": {k: float(h[m].mean()) for k, m in near.items()},
        "min_max_entropy_by_region": {k: [float(h[m].min()), float(h[m].max())] for k, m in near.items()},
    }


def compute_part_b() -> dict:
    """Per-state entropy of the soft-optimal policy on the two-goal gridworld at GRID_ALPHAS (call in `float64()`)."""
    mdp, geo = gridworld(LAYOUT, **GRID_KW)
    chars = np.array([geo.layout[r][c] for r, c in geo.cell_of_state])
    # Cliff cells are never occupied (falling resets to S) and goals are terminal: no decision there.
    decision = ~np.isin(chars, ["C", "G", "g"])
    near, into_cliff = _regions(geo, decision, mdp.num_actions)
    per_alpha = {str(a): _soft_optimal_numbers(mdp, geo, a, decision, near, into_cliff) for a in GRID_ALPHAS}
    spread = min(d["max_entropy"] - d["min_entropy"] for d in per_alpha.values())
    return {"layout": LAYOUT, "grid": GRID_KW, "alphas": GRID_ALPHAS, "decision_states": decision,
            "per_alpha": per_alpha,
            "checks": [check("entropy_differs_across_states", spread, 0.1,
                             "max minus min per-state entropy, smallest over alphas; passes when above 0.1 nats",
                             passed=spread > 0.1)]}


def compute() -> dict:
    """Both parts and their identity checks (exact; call inside `float64()`)."""
    a, b = compute_part_a(), compute_part_b()
    return {"part_a": a, "part_b": b, "checks": a.pop("checks") + b.pop("checks")}


# ----- figures ------------------------------------------------------------------------------------------------


def _softmax_figure(a: dict, out: Path) -> Figure:
    plt = pyplot()
    n = len(Q_VECTOR)
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.4))
    labels = [f"a{i}\nQ={v:g}" for i, v in enumerate(Q_VECTOR)]
    ax = axes[0, 0]
    ax.bar(range(n), Q_VECTOR, color="0.45")
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set_xticks(range(n), labels)
    ax.set_ylabel("Q(s, a) (reward units)")
    ax.set_title("the fixed Q vector")
    for ax, alpha, pi, h in zip(axes.ravel()[1:7], BAR_ALPHAS, a["policies"], a["entropies"]):
        ax.bar(range(n), pi, color="tab:blue")
        ax.set_ylim(0, 1.05)
        ax.set_xticks(range(n), labels)
        ax.set_ylabel("pi(a|s) (probability)")
        name = "0 (argmax)" if alpha == 0 else f"{alpha:g}" + (" (~uniform)" if alpha == 100 else "")
        ax.set_title(f"alpha = {name}\nH = {h:.3f} nats")
    ax = axes[1, 3]
    ax.semilogx(a["entropy_curve_alphas"], a["entropy_curve"], color="tab:blue", label="entropy")
    ax.axhline(np.log(n), color="k", linestyle="--", linewidth=1, label=f"log|A| = {np.log(n):.2f}")
    shown = [(al, h) for al, h in zip(BAR_ALPHAS, a["entropies"]) if al > 0]
    ax.plot(*zip(*shown), "o", color="tab:red", label="panels")
    ax.set_xlabel("alpha (reward units, log scale)")
    ax.set_ylabel("entropy (nats)")
    ax.set_title("entropy vs alpha")
    ax.legend(loc="lower right")
    return finish_figure(
        fig, out, "figure1_softmax_bars.png",
        "Optimal MaxEnt policy softmax(Q/alpha) (Eq. 20) for one Q vector and several alpha.",
        title="Fig. 1: softmax(Q/alpha) goes from argmax (alpha -> 0) to uniform (alpha -> inf)", fontsize=13)


def _grid_arrays(geo, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    grid = np.full((geo.height, geo.width), np.nan)
    for s, (r, c) in enumerate(geo.cell_of_state):
        if mask[s]:
            grid[r, c] = values[s]
    return grid


def _draw_cells(ax, geo) -> None:
    """Walls, cliff and goals of the layout, drawn over the entropy map."""
    from matplotlib.patches import Rectangle

    for r in range(geo.height):
        for c in range(geo.width):
            ch = geo.layout[r][c]
            if ch == "#":
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.3"))
            elif ch == "C":
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.75", hatch="//", fill=True))
                ax.text(c, r, "cliff", ha="center", va="center", fontsize=7)
            elif ch in "Gg":
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color="gold"))
                ax.text(c, r, f"{ch}\n+{GRID_KW['goal_rewards'][ch]:g}", ha="center", va="center",
                        fontsize=8, fontweight="bold")


def _draw_policy(ax, geo, d: dict, decision: np.ndarray) -> None:
    """Each decision state's entropy (number) and action probabilities (arrows, length ~ probability)."""
    for s in np.flatnonzero(decision):
        r, c = geo.cell_of_state[s]
        hval = d["entropy"][s]
        ax.text(c, r + 0.33, f"{hval:.2f}", ha="center", va="center", fontsize=8,
                color="white" if hval < 0.8 else "black")
        for a, (dr, dc) in enumerate(geo.action_deltas):
            p = d["policy"][s, a]
            if p > 0.05:
                length = 0.4 * p
                ax.arrow(c, r - 0.1, length * dc, length * dr, width=0.025, head_width=0.13,
                         head_length=min(0.11, length), length_includes_head=True, color="crimson", linewidth=0)
        if geo.layout[r][c] == "S":
            ax.text(c - 0.38, r - 0.3, "S", fontsize=8, fontweight="bold", color="white")


def _gridworld_figure(b: dict, out: Path) -> Figure:
    plt = pyplot()
    mdp, geo = gridworld(LAYOUT, **GRID_KW)
    decision = np.asarray(b["decision_states"])
    fig, axes = plt.subplots(len(GRID_ALPHAS), 1, figsize=(9, 4.1 * len(GRID_ALPHAS)))
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    for ax, alpha in zip(np.atleast_1d(axes), GRID_ALPHAS):
        d = b["per_alpha"][str(alpha)]
        im = ax.imshow(_grid_arrays(geo, d["entropy"], decision), cmap=cmap, vmin=0.0, vmax=np.log(mdp.num_actions))
        _draw_cells(ax, geo)
        _draw_policy(ax, geo, d, decision)
        ax.set_xticks(range(geo.width))
        ax.set_yticks(range(geo.height))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        ax.grid(False)
        ax.set_title(f"alpha = {alpha:g}: H ranges {d['min_entropy']:.2f} to {d['max_entropy']:.2f} nats")
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="entropy H(pi(.|s)) (nats)")
    return finish_figure(
        fig, out, "figure1_gridworld_entropy.png",
        "Per-state entropy of the soft-optimal policy (colour, number) and its action probabilities (red arrows, "
        "length ~ probability).",
        title="Same alpha in every state, different exploration per state\n"
              "(soft-optimal policy on a gridworld; entropy depends on Q)", fontsize=13)


def figures(results: dict, out: Path, quick: bool = False) -> list[Figure]:
    """The softmax bars of Part A and the per-state entropy map of Part B."""
    with plot_style():
        return [_softmax_figure(results["part_a"], out), _gridworld_figure(results["part_b"], out)]


# ----- reading ------------------------------------------------------------------------------------------------


def _part_a_section(report: Report, a: dict, fig: Figure) -> None:
    n = len(Q_VECTOR)
    rows = [[alpha, *np.asarray(pi).tolist(), h, h / np.log(n)]
            for alpha, pi, h in zip(BAR_ALPHAS, a["policies"], a["entropies"])]
    report.heading("Part A: softmax(Q / alpha) for one Q vector (Eq. 20)")
    report.para(
        f"Q = {Q_VECTOR.tolist()} over {n} actions. The policy `softmax(Q / alpha)` "
        "(`softrl.backups.soft_policy`; alpha = 0 is the argmax) and its entropy in nats "
        f"(uniform: log {n} = {np.log(n):.4f})."
    )
    report.table(["alpha", *[f"pi(a{i})" for i in range(n)], "entropy (nats)", f"entropy / log {n}"], rows)
    report.para(
        "Eq. 14-20 check: at every alpha > 0 the objective `sum_a pi (Q - alpha log pi)` of the softmax equals "
        f"`alpha logsumexp(Q/alpha)` (Eq. 24) to {a['eq14_identity_error']:.1e}, and none of 2000 random "
        f"distributions per alpha beats it (best random minus softmax: {a['eq14_best_random_minus_softmax']:.3g} "
        "<= 0)."
    )
    report.embed(fig)


def _part_b_section(report: Report, b: dict, fig: Figure) -> None:
    rows = []
    for alpha in GRID_ALPHAS:
        d = b["per_alpha"][str(alpha)]
        rows.append([alpha, d["min_entropy"], f"{tuple(d['argmin_cell'].tolist())}", d["q_gap_at_argmin"],
                     d["max_entropy"], f"{tuple(d['argmax_cell'].tolist())}", d["q_gap_at_argmax"],
                     d["mean_entropy"], d["start_return"]])
    report.heading("Part B: is the amount of exploration the same in all states? (Section 4.1)")
    report.para(
        "Gridworld (rows top to bottom, (row, col) from 0): `" + " / ".join(LAYOUT) + "`; S start, G goal +1, "
        f"g goal +0.6 (both terminal), C cliff (-1, back to S), # wall; step reward {GRID_KW['step_reward']}, "
        f"gamma {GRID_KW['gamma']}, deterministic moves. The soft-optimal policy is computed exactly by soft value "
        "iteration (Eq. 25, float64, tol 1e-12); the same alpha is used in every state. Entropies in nats over "
        f"the {int(np.sum(b['decision_states']))} decision states (log 4 = {np.log(4):.3f} is uniform)."
    )
    report.table(["alpha", "min H", "at cell", "Q gap there", "max H", "at cell", "Q gap there", "mean H",
                  "discounted return from S"], rows)
    report.embed(fig)


def _region(d: dict, key: str) -> str:
    lo, hi = d["min_max_entropy_by_region"][key]
    return f"{d['mean_entropy_by_region'][key]:.2f} [{lo:.2f}, {hi:.2f}]"


def reading(results: dict, report: Report, figs: list[Figure], quick: bool = False) -> None:
    """Both parts' tables and figures, then what they say about Eq. 20 and Section 4.1."""
    a, b = results["part_a"], results["part_b"]
    _part_a_section(report, a, figs[0])
    _part_b_section(report, b, figs[1])
    lo, hi = GRID_ALPHAS[0], GRID_ALPHAS[-1]
    dl, dh = b["per_alpha"][str(lo)], b["per_alpha"][str(hi)]
    report.heading("Reading")
    report.para(
        "Part A reproduces Fig. 1: at alpha = 0 the policy is the argmax, at alpha = 0.1 the second-best action "
        f"(Q gap 0.1) already gets {fmt(a['policies'][BAR_ALPHAS.index(0.1)][1], 3)} of the mass, and at alpha = "
        f"100 the policy is within total variation {fmt(a['tv_to_uniform_at_alpha_100'], 2)} of "
        "uniform; entropy grows monotonically with alpha, and the softmax is the maximiser of Eq. 14 as derived. "
        "Part B answers the lecture's question with numbers: with one alpha for all states, the soft-optimal "
        f"policy's entropy at alpha = {lo:g} ranges from {dl['min_entropy']:.3f} nats at cell "
        f"{tuple(dl['argmin_cell'].tolist())} (best action ahead of the next by {dl['q_gap_at_argmin']:.3f} "
        f"in Q) to {dl['max_entropy']:.3f} nats at cell {tuple(dl['argmax_cell'].tolist())} (gap "
        f"{dl['q_gap_at_argmax']:.2g}: two actions nearly tie); {100 * dl['frac_nearly_deterministic']:.0f}% "
        f"of the decision states are nearly deterministic (H < 0.1 nats) and {100 * dl['frac_above_half_nat']:.0f}% "
        f"have H > 0.5 nats. At alpha = {hi:g} the range is {dh['min_entropy']:.3f} to {dh['max_entropy']:.3f} "
        f"nats. By region at alpha = {lo:g} (mean [min, max] nats): next to a goal {_region(dl, 'goal')}, next to "
        f"the cliff {_region(dl, 'cliff')}, elsewhere {_region(dl, 'other')}. Exploration is therefore not the "
        "same in all states: it is near zero wherever one action is clearly better (stepping into a goal, the "
        "one-lane passage between the wall and the cliff, the top corridor) and near log 2 where two moves lead "
        "equally fast to a goal. The cliff edge does not by itself make a state low-entropy: the move into the "
        f"cliff gets at most {dl['max_prob_into_cliff']:.1e} probability at alpha = {lo:g} "
        f"({dh['max_prob_into_cliff']:.1e} at alpha = {hi:g}), and the entropy left depends on whether the "
        "remaining safe moves tie."
    )


def run(out: Path, quick: bool = False, seeds: int = 3) -> Report:
    """Runs Figure 1 (both parts are exact and cheap, so `quick` and `seeds` change nothing)."""
    report = Report(
        NAME, "Figure 1: the soft-optimal policy softmax(Q/alpha) and per-state exploration", out, quick, seeds,
        claim="The optimal MaxEnt actor is softmax(Q/alpha) (Eq. 20): argmax as alpha -> 0, uniform as "
              "alpha -> inf (Section 4.2); with one alpha the amount of exploration still differs across states, "
              "because it depends on Q (Section 4.1).",
        budget="Exact computations only (no sampling, no seeds): 6 softmaxes, 2 soft value iterations on a "
               "46-state gridworld; under a minute on a laptop CPU. `--quick` and `--seeds` change nothing.",
    )
    with float64():
        results = compute()
    reading(results, report, figures(results, report.out))
    report.record(results)
    return report
