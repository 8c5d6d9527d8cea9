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
from softrl.experiments.report import Report, float64, fmt, plot_style, pyplot
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


def _part_a(report: Report, quick: bool) -> None:
    q = jnp.asarray(Q_VECTOR)
    n = q.shape[0]
    rows, policies = [], {}
    key = jax.random.PRNGKey(0)
    worst_gap = -np.inf  # max over alpha > 0 of (best random objective - soft value); <= 0 if softmax is optimal
    identity_err = 0.0
    for alpha in BAR_ALPHAS:
        pi = np.asarray(soft_policy(q, alpha))
        h = float(entropy(jnp.asarray(pi))) + 0.0  # + 0.0: no "-0" for the one-hot policy
        policies[alpha] = pi
        if alpha > 0:
            # Eq. 14 objective at the softmax equals the soft value (Eq. 24) ...
            objective = float(np.sum(pi * (Q_VECTOR - alpha * np.log(pi))))
            v = float(soft_value(q, alpha))
            identity_err = max(identity_err, abs(objective - v))
            # ... and no other distribution on the simplex does better (random Dirichlet draws).
            key, sub = jax.random.split(key)
            others = np.asarray(jax.random.dirichlet(sub, jnp.full(n, 0.5), (2000,)), dtype=np.float64)
            others = np.clip(others, 1e-300, None)
            obj_others = np.sum(others * (Q_VECTOR - alpha * np.log(others)), axis=1)
            worst_gap = max(worst_gap, float(obj_others.max() - v))
        rows.append([alpha, *pi.tolist(), h, h / np.log(n)])
    uniform_tv = 0.5 * float(np.abs(policies[100.0] - 1.0 / n).sum())
    onehot = np.eye(n)[int(np.argmax(Q_VECTOR))]
    argmax_err = float(np.abs(policies[0.0] - onehot).max())
    alphas_curve = np.logspace(-3, 3, 121)
    ent_curve = np.asarray(jax.vmap(lambda a: entropy(soft_policy(q, a)))(jnp.asarray(alphas_curve)))
    monotone_violation = float(max(0.0, -np.diff(ent_curve).min()))

    report.heading("Part A: softmax(Q / alpha) for one Q vector (Eq. 20)")
    report.para(
        f"Q = {Q_VECTOR.tolist()} over {n} actions. The policy `softmax(Q / alpha)` "
        "(`softrl.backups.soft_policy`; alpha = 0 is the argmax) and its entropy in nats "
        f"(uniform: log {n} = {np.log(n):.4f})."
    )
    report.table(["alpha", *[f"pi(a{i})" for i in range(n)], "entropy (nats)", f"entropy / log {n}"], rows)
    report.para(
        "Eq. 14-20 check: at every alpha > 0 the objective `sum_a pi (Q - alpha log pi)` of the softmax equals "
        f"`alpha logsumexp(Q/alpha)` (Eq. 24) to {identity_err:.1e}, and none of 2000 random distributions "
        f"per alpha beats it (best random minus softmax: {worst_gap:.3g} <= 0)."
    )
    report.results["part_a"] = {
        "q": Q_VECTOR, "alphas": BAR_ALPHAS, "policies": [policies[a] for a in BAR_ALPHAS],
        "entropies": [r[-2] for r in rows], "tv_to_uniform_at_alpha_100": uniform_tv,
        "argmax_error_at_alpha_0": argmax_err, "eq14_identity_error": identity_err,
        "eq14_best_random_minus_softmax": worst_gap, "entropy_curve_alphas": alphas_curve,
        "entropy_curve": ent_curve, "entropy_monotone_violation": monotone_violation,
    }
    report.check("argmax_at_alpha_0", argmax_err, 0.0, "alpha = 0 gives the one-hot argmax policy")
    report.check("uniform_at_alpha_100", uniform_tv, 0.01, "alpha = 100: total variation to uniform")
    report.check("eq14_value_identity", identity_err, 1e-9, "sum pi (Q - alpha log pi) = alpha logsumexp(Q/alpha)")
    report.check("eq14_softmax_is_optimal", worst_gap, 1e-12, "no random distribution beats softmax on Eq. 14")
    report.check("entropy_monotone_in_alpha", monotone_violation, 1e-9, "entropy of softmax(Q/alpha) grows with alpha")

    with plot_style():
        plt = pyplot()
        fig, axes = plt.subplots(2, 4, figsize=(14, 6.4))
        labels = [f"a{i}\nQ={v:g}" for i, v in enumerate(Q_VECTOR)]
        ax = axes[0, 0]
        ax.bar(range(n), Q_VECTOR, color="0.45")
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set_xticks(range(n), labels)
        ax.set_ylabel("Q(s, a) (reward units)")
        ax.set_title("the fixed Q vector")
        for ax, alpha in zip(axes.ravel()[1:7], BAR_ALPHAS):
            pi = policies[alpha]
            ax.bar(range(n), pi, color="tab:blue")
            ax.set_ylim(0, 1.05)
            ax.set_xticks(range(n), labels)
            ax.set_ylabel("pi(a|s) (probability)")
            name = "0 (argmax)" if alpha == 0 else f"{alpha:g}" + (" (~uniform)" if alpha == 100 else "")
            ax.set_title(f"alpha = {name}\nH = {float(entropy(jnp.asarray(pi))) + 0.0:.3f} nats")
        ax = axes[1, 3]
        ax.semilogx(alphas_curve, ent_curve, color="tab:blue", label="entropy")
        ax.axhline(np.log(n), color="k", linestyle="--", linewidth=1, label=f"log|A| = {np.log(n):.2f}")
        ax.plot([a for a in BAR_ALPHAS if a > 0], [r[-2] for r in rows if r[0] > 0], "o", color="tab:red",
                label="panels")
        ax.set_xlabel("alpha (reward units, log scale)")
        ax.set_ylabel("entropy (nats)")
        ax.set_title("entropy vs alpha")
        ax.legend(loc="lower right")
        fig.suptitle("Fig. 1: softmax(Q/alpha) goes from argmax (alpha -> 0) to uniform (alpha -> inf)", fontsize=13)
        fig.tight_layout()
        report.figure(fig, "figure1_softmax_bars.png",
                      "Optimal MaxEnt policy softmax(Q/alpha) (Eq. 20) for one Q vector and several alpha.")


def _grid_arrays(geo, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    grid = np.full((geo.height, geo.width), np.nan)
    for s, (r, c) in enumerate(geo.cell_of_state):
        if mask[s]:
            grid[r, c] = values[s]
    return grid


def _part_b(report: Report) -> None:
    mdp, geo = gridworld(LAYOUT, **GRID_KW)
    chars = np.array([geo.layout[r][c] for r, c in geo.cell_of_state])
    # Cliff cells are never occupied (falling resets to S) and goals are terminal: no decision there.
    decision = ~np.isin(chars, ["C", "G", "g"])
    n_actions = mdp.num_actions
    near = {"goal": np.zeros(mdp.num_states, bool), "cliff": np.zeros(mdp.num_states, bool)}
    for s, (r, c) in enumerate(geo.cell_of_state):
        for dr, dc in geo.action_deltas:
            rr, cc = r + dr, c + dc
            if decision[s] and 0 <= rr < geo.height and 0 <= cc < geo.width:
                near["goal"][s] |= geo.layout[rr][cc] in "Gg"
                near["cliff"][s] |= geo.layout[rr][cc] == "C"
    near["other"] = decision & ~near["goal"] & ~near["cliff"]
    into_cliff = np.zeros((mdp.num_states, n_actions), bool)  # (s, a) pairs whose move enters a cliff cell
    for s, (r, c) in enumerate(geo.cell_of_state):
        for a, (dr, dc) in enumerate(geo.action_deltas):
            rr, cc = r + dr, c + dc
            into_cliff[s, a] = decision[s] and 0 <= rr < geo.height and 0 <= cc < geo.width and \
                geo.layout[rr][cc] == "C"
    per_alpha = {}
    rows = []
    for alpha in GRID_ALPHAS:
        sol = soft_value_iteration(mdp, alpha, tol=1e-12)
        pi = np.asarray(sol.policy)
        h = np.asarray(entropy(sol.policy))
        q = np.asarray(sol.q)
        ret, disc_ent, _ = return_and_entropy(mdp, alpha, tol=1e-12)
        hs = h[decision]
        states = np.flatnonzero(decision)
        s_min, s_max = states[np.argmin(hs)], states[np.argmax(hs)]
        q_sorted = np.sort(q, axis=1)
        gap = q_sorted[:, -1] - q_sorted[:, -2]  # best minus second best action, reward units
        per_alpha[alpha] = {
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
        d = per_alpha[alpha]
        rows.append([alpha, d["min_entropy"], f"{tuple(d['argmin_cell'].tolist())}", d["q_gap_at_argmin"],
                     d["max_entropy"], f"{tuple(d['argmax_cell'].tolist())}", d["q_gap_at_argmax"],
                     d["mean_entropy"], d["start_return"]])

    report.heading("Part B: is the amount of exploration the same in all states? (Section 4.1)")
    report.para(
        "Gridworld (rows top to bottom, (row, col) from 0): `" + " / ".join(LAYOUT) + "`; S start, G goal +1, "
        f"g goal +0.6 (both terminal), C cliff (-1, back to S), # wall; step reward {GRID_KW['step_reward']}, "
        f"gamma {GRID_KW['gamma']}, deterministic moves. The soft-optimal policy is computed exactly by soft value "
        "iteration (Eq. 25, float64, tol 1e-12); the same alpha is used in every state. Entropies in nats over "
        f"the {int(decision.sum())} decision states (log 4 = {np.log(4):.3f} is uniform)."
    )
    report.table(["alpha", "min H", "at cell", "Q gap there", "max H", "at cell", "Q gap there", "mean H",
                  "discounted return from S"], rows)
    report.results["part_b"] = {"layout": LAYOUT, "grid": GRID_KW, "alphas": GRID_ALPHAS, "decision_states":
                                decision, "per_alpha": {str(a): v for a, v in per_alpha.items()}}
    spreads = [per_alpha[a]["max_entropy"] - per_alpha[a]["min_entropy"] for a in GRID_ALPHAS]
    report.check("entropy_differs_across_states", min(spreads), 0.1,
                 "max minus min per-state entropy, smallest over alphas; passes when above 0.1 nats",
                 passed=min(spreads) > 0.1)

    with plot_style():
        plt = pyplot()
        fig, axes = plt.subplots(len(GRID_ALPHAS), 1, figsize=(9, 4.1 * len(GRID_ALPHAS)))
        cmap = plt.get_cmap("viridis").with_extremes(bad="white")
        for ax, alpha in zip(np.atleast_1d(axes), GRID_ALPHAS):
            d = per_alpha[alpha]
            grid = _grid_arrays(geo, d["entropy"], decision)
            im = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=np.log(n_actions))
            for r in range(geo.height):
                for c in range(geo.width):
                    ch = geo.layout[r][c]
                    if ch == "#":
                        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.3"))
                    elif ch == "C":
                        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.75", hatch="//", fill=True))
                        ax.text(c, r, "cliff", ha="center", va="center", fontsize=7)
                    elif ch in "Gg":
                        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color="gold"))
                        ax.text(c, r, f"{ch}\n+{GRID_KW['goal_rewards'][ch]:g}", ha="center", va="center",
                                fontsize=8, fontweight="bold")
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
                                 head_length=min(0.11, length), length_includes_head=True, color="crimson",
                                 linewidth=0)
                if geo.layout[r][c] == "S":
                    ax.text(c - 0.38, r - 0.3, "S", fontsize=8, fontweight="bold", color="white")
            ax.set_xticks(range(geo.width))
            ax.set_yticks(range(geo.height))
            ax.set_xlabel("column")
            ax.set_ylabel("row")
            ax.grid(False)
            ax.set_title(f"alpha = {alpha:g}: H ranges {d['min_entropy']:.2f} to {d['max_entropy']:.2f} nats")
            fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="entropy H(pi(.|s)) (nats)")
        fig.suptitle("Same alpha in every state, different exploration per state\n"
                     "(soft-optimal policy on a gridworld; entropy depends on Q)", fontsize=13)
        fig.tight_layout()
        report.figure(fig, "figure1_gridworld_entropy.png",
                      "Per-state entropy of the soft-optimal policy (colour, number) and its action "
                      "probabilities (red arrows, length ~ probability).")

    lo, hi = GRID_ALPHAS[0], GRID_ALPHAS[-1]
    dl, dh = per_alpha[lo], per_alpha[hi]
    report.heading("Reading")
    report.para(
        "Part A reproduces Fig. 1: at alpha = 0 the policy is the argmax, at alpha = 0.1 the second-best action "
        f"(Q gap 0.1) already gets {fmt(_policy_at(report, 0.1)[1], 3)} of the mass, and at alpha = 100 the "
        f"policy is within total variation {fmt(report.results['part_a']['tv_to_uniform_at_alpha_100'], 2)} of "
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


def _region(d: dict, key: str) -> str:
    lo, hi = d["min_max_entropy_by_region"][key]
    return f"{d['mean_entropy_by_region'][key]:.2f} [{lo:.2f}, {hi:.2f}]"


def _policy_at(report: Report, alpha: float) -> list[float]:
    part = report.results["part_a"]
    return list(np.asarray(part["policies"][list(part["alphas"]).index(alpha)]))


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
        _part_a(report, quick)
        _part_b(report)
    return report
