"""Section 1.3, the cliff argument: a one-step entropy bonus (Williams & Peng, Eq. 4) vs full MaxEnt (Eq. 5).

"If we want to maximize entropy across an entire trajectory, then it may be worthwhile to take
low-entropy actions now so that we can take higher entropy actions in the future. For example, if
the agent is walking along the top of a cliff, initially taking a few (deterministic) actions away
from the cliff can enable it to act more randomly in the future."

Tabular part (exact, finite horizon H, gamma = 1): a gridworld whose start lies on a one-cell-wide
ledge above a cliff (falling terminates with reward -10); the ledge leads to a wide plateau that
pays +1 per step and whose left side is also cliff. Three policies at every alpha on a log grid:
  - MaxEnt: soft backward induction (Eq. 24-25), `pi_t = softmax(Q_t / alpha)` with entropy counted
    from t+1 on in Q (Eq. 9-11); optimal for the objective of Eq. 5.
  - Williams & Peng (one-step bonus): the actor maximises `E_pi[Q^pi(s, a)] + alpha H(pi(.|s))` at every
    step, with a critic that holds NO entropy (Eq. 4). Its fixed point `pi = softmax(Q^pi_hard / alpha)`
    is found exactly by backward induction (finite horizon: no iteration, no damping).
  - Greedy (alpha = 0, deterministic argmax): the DDPG analogue (Eq. 1).
For each: the expected return, the trajectory entropy `E[sum_t H(pi_t(.|s_t))]` and the probability
of falling within H steps, all exact (policy evaluation, and a forward pass over state occupancies as
a cross-check).

Continuous part: `softrl/CliffLedge-v0` (see `softrl.envs.cliff`), a 2-D point mass on the same
ledge/plateau geometry. wp and sac at the same fixed alpha, sac with auto alpha, svg0 and ddpg are
trained with `softrl.train`; each is evaluated with many stochastic rollouts (return, fall rate, and
the trajectory entropy estimated by the sum of `-log pi(a_t|s_t)` over the sampled actions) and with
deterministic ones.
"""

from __future__ import annotations

import dataclasses
import re
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from softrl.backups import entropy, soft_policy
from softrl.config import Algo
from softrl.experiments.report import (
    Check,
    Figure,
    Report,
    band,
    check,
    float64,
    fmt,
    fmt_ci,
    mean_ci,
    not_run_note,
    plot_style,
    pyplot,
    save_figure,
    train_or_resume,
)
from softrl.tabular import gridworld, policy_evaluation, soft_value_iteration, start_value

NAME = "one-step-vs-maxent"
SUMMARY = "WP one-step bonus vs MaxEnt at a cliff (Sec. 1.3)"

# ----- the tabular cliff ledge -------------------------------------------------------------------------

# Row 0: start S and a 5-cell ledge, then the plateau (columns >= LEDGE_LENGTH). Below the ledge, and so
# along the plateau's left side, is cliff ('C', terminal). Moving up from row 0 or off the right edge stays put.
LEDGE_LAYOUT = (
    "S..........",
    "CCCCC......",
    "CCCCC......",
    "CCCCC......",
)
LEDGE_LENGTH = 5
HORIZON = 30  # decisions per episode
PLATEAU_REWARD = 1.0  # per step that ends on the plateau
CLIFF_REWARD = -10.0  # for the step that falls (the episode then ends)
ALPHAS = np.geomspace(0.01, 100.0, 61)  # 15 per decade: holds 0.01, 0.1, 1, 10, 100
PICTURE_ALPHAS = (1.0, 10.0)  # the alphas drawn as policies / time profiles
IDENTITY_TOL = 1e-9  # float64 identities


def ledge_mdp():
    """(mdp, fall_mdp, geometry, plateau [S] bool, cliff [S] bool) of the tabular cliff ledge.

    `fall_mdp` has the same dynamics and reward 1 on the step that falls, so its value is the exact
    probability of falling within the horizon.
    """
    base, geo = gridworld(LEDGE_LAYOUT, 0.0, gamma=1.0, step_reward=0.0, goal_rewards={},
                          cliff_reward=CLIFF_REWARD, cliff_mode="terminate", horizon=HORIZON)
    P = np.asarray(base.P)  # [S, A, S]
    chars = np.array([geo.layout[r][c] for r, c in geo.cell_of_state])  # [S]
    cliff = chars == "C"
    plateau = (geo.cell_of_state[:, 1] >= LEDGE_LENGTH) & ~cliff
    live = ~np.asarray(base.terminal)
    # The gridworld pays the cliff penalty on entry; add +1 for every move that ends on the plateau.
    R = np.asarray(base.R) + live[:, None] * PLATEAU_REWARD * (P @ plateau.astype(np.float64))  # [S, A]
    fall_R = live[:, None] * (P @ cliff.astype(np.float64))  # [S, A] P(this step falls)
    return base.replace(R=R), base.replace(R=fall_R), geo, plateau, cliff


@jax.jit
def one_step_bonus_policy(mdp, alpha):
    """Williams & Peng's fixed point on a finite-horizon MDP (Eq. 4): `pi_t = softmax(Q^pi_t / alpha)` where
    `Q^pi` is the value of pi for the reward alone (no entropy in the critic).

    Backward induction: with the later policies fixed, step t's actor `argmax_pi E_pi[Q_t] + alpha H(pi)`
    is exactly `softmax(Q_t / alpha)` (Eq. 20), and `V_t = E_{pi_t}[Q_t]` carries no entropy.
    Returns (policy [H, S, A], q_hard [H, S, A]).
    """
    live = 1.0 - mdp.terminal.astype(mdp.R.dtype)

    def step(v_next, _):
        q = mdp.R + mdp.gamma * jnp.einsum("sat,t->sa", mdp.P, live * v_next)  # [S, A], entropy-free
        pi = soft_policy(q, alpha)  # [S, A]
        return live * jnp.sum(pi * q, axis=-1), (pi, q)

    _, (pi, q) = jax.lax.scan(step, jnp.zeros(mdp.num_states, mdp.R.dtype), None, length=mdp.horizon,
                              reverse=True)
    return pi, q


def greedy_policy(mdp) -> np.ndarray:
    """[H, S, A] deterministic argmax of the hard optimal Q (first action on ties): the DDPG analogue."""
    q0 = np.asarray(soft_value_iteration(mdp, 0.0).q)  # [H, S, A]
    return np.eye(mdp.num_actions)[q0.argmax(-1)]


def evaluate_policy(mdp, fall_mdp, pi) -> dict[str, float]:
    """Exact return, trajectory entropy `E[sum_t H(pi_t(.|s_t))]` and fall probability of pi [H, S, A]."""
    _, v_r = policy_evaluation(mdp, pi, 0.0)
    _, v_1 = policy_evaluation(mdp, pi, 1.0)  # linear in alpha: v_1 - v_r is the entropy part
    _, v_f = policy_evaluation(fall_mdp, pi, 0.0)
    ret = float(start_value(mdp, v_r))
    return {"return": ret, "entropy": float(start_value(mdp, v_1)) - ret, "fall": float(start_value(mdp, v_f))}


def occupancy_profile(mdp, pi, cliff: np.ndarray) -> dict[str, np.ndarray]:
    """Forward pass: per step t, the expected policy entropy, P(still alive), P(fallen by t+1), state occupancy.

    An independent computation of what `evaluate_policy` gets by backward induction (used as a check).
    """
    P, p0 = np.asarray(mdp.P), np.asarray(mdp.p0)
    live = ~np.asarray(mdp.terminal)
    pi = np.asarray(pi)
    H, S = pi.shape[0], P.shape[0]
    d = p0.copy()  # [S] state distribution at step t
    ent_t, alive_t, fallen_t, occ = np.zeros(H), np.zeros(H), np.zeros(H), np.zeros((H, S))
    for t in range(H):
        occ[t] = d * live
        alive_t[t] = occ[t].sum()
        ent_t[t] = float(np.sum(occ[t] * np.asarray(entropy(jnp.asarray(pi[t])))))
        flow = np.einsum("s,sa,sat->t", occ[t], pi[t], P)  # [S] from live states
        d = flow + d * ~live  # terminal states keep their mass
        fallen_t[t] = d[cliff].sum()
    return {"entropy_t": ent_t, "alive_t": alive_t, "fallen_t": fallen_t, "occupancy": occ}


def compute_tabular() -> dict:
    """Every exact number of the tabular part and its identity checks (call inside `float64()`). The policies at
    PICTURE_ALPHAS ride along under "_pictures" for the figures (not written to results.json)."""
    mdp, fall_mdp, _, _, cliff = ledge_mdp()
    live = ~np.asarray(mdp.terminal)
    alphas = jnp.asarray(ALPHAS)
    me_pi = np.asarray(jax.vmap(lambda a: soft_value_iteration(mdp, a).policy)(alphas))  # [K, H, S, A]
    wp_pi, wp_q = (np.asarray(x) for x in jax.vmap(lambda a: one_step_bonus_policy(mdp, a))(alphas))
    greedy = evaluate_policy(mdp, fall_mdp, greedy_policy(mdp))

    rows = {k: {m: np.zeros(len(ALPHAS)) for m in ("return", "entropy", "fall", "objective")}
            for k in ("maxent", "wp")}
    wp_residual = me_residual = fwd_residual = 0.0
    for i, a in enumerate(ALPHAS):
        for key, pi in (("maxent", me_pi[i]), ("wp", wp_pi[i])):
            ev = evaluate_policy(mdp, fall_mdp, pi)
            for m in ("return", "entropy", "fall"):
                rows[key][m][i] = ev[m]
            rows[key]["objective"][i] = ev["return"] + a * ev["entropy"]  # Eq. 5-6 with gamma = 1
            prof = occupancy_profile(mdp, pi, cliff)
            fwd_residual = max(fwd_residual, abs(prof["entropy_t"].sum() - ev["entropy"]),
                               abs(prof["fallen_t"][-1] - ev["fall"]))
        # WP fixed point: pi_wp = softmax(Q^{pi_wp}_hard / alpha), Q evaluated independently (reward only).
        q_hard, _ = policy_evaluation(mdp, wp_pi[i], 0.0)
        wp_residual = max(wp_residual, float(np.abs(np.asarray(soft_policy(q_hard, a)) - wp_pi[i])[:, live].max()))
        # MaxEnt fixed point: pi = softmax(Q^pi_soft / alpha) with the entropy in the critic (Eq. 20).
        q_soft, _ = policy_evaluation(mdp, me_pi[i], a)
        me_residual = max(me_residual, float(np.abs(np.asarray(soft_policy(q_soft, a)) - me_pi[i])[:, live].max()))
    result = _tabular_summary(rows, greedy)
    result["ledge_vs_later_entropy"] = _split_entropy(mdp, cliff, ALPHAS, me_pi, wp_pi)
    result["residuals"] = {"wp_fixed_point": wp_residual, "maxent_fixed_point": me_residual,
                           "forward_backward": fwd_residual, **result["residuals"]}
    result["checks"] = _tabular_checks(result["residuals"])
    pictured = [int(np.argmin(np.abs(ALPHAS - a))) for a in PICTURE_ALPHAS]
    result["_pictures"] = {i: {"maxent": me_pi[i], "wp": wp_pi[i]} for i in pictured}
    return result


def _tabular_summary(rows: dict, greedy: dict) -> dict:
    """What the per-alpha rows say: objective gaps, where MaxEnt is more random or falls less, the alpha -> 0 limit."""
    greedy_objective = greedy["return"] + ALPHAS * greedy["entropy"]
    # MaxEnt maximises the objective of Eq. 5, so no other policy (WP, greedy) may score higher.
    gap_wp = rows["maxent"]["objective"] - rows["wp"]["objective"]
    gap_gr = rows["maxent"]["objective"] - greedy_objective
    opt_violation = max(0.0, -gap_wp.min(), -gap_gr.min())
    small = 0  # index of the smallest alpha: all three must coincide in return and fall probability
    limit_gap = max(abs(rows["maxent"]["return"][small] - greedy["return"]),
                    abs(rows["wp"]["return"][small] - greedy["return"]),
                    rows["maxent"]["fall"][small], rows["wp"]["fall"][small])
    more_ent = rows["maxent"]["entropy"] > rows["wp"]["entropy"] + 1e-9
    less_fall = rows["maxent"]["fall"] < rows["wp"]["fall"] - 1e-9
    visible = np.maximum(rows["maxent"]["fall"], rows["wp"]["fall"]) > 1e-6
    return {
        "layout": LEDGE_LAYOUT, "horizon": HORIZON, "plateau_reward": PLATEAU_REWARD, "cliff_reward": CLIFF_REWARD,
        "alphas": ALPHAS, "maxent": rows["maxent"], "wp": rows["wp"], "greedy": greedy,
        "objective_gap_maxent_minus_wp": gap_wp,
        "alphas_where_maxent_entropy_higher": ALPHAS[more_ent],
        "alphas_where_maxent_falls_less": ALPHAS[less_fall],
        "fraction_alphas_maxent_entropy_higher": float(more_ent.mean()),
        "fraction_alphas_maxent_falls_less": float(less_fall.mean()),
        "num_alphas_fall_visible": int(visible.sum()),
        "maxent_falls_less_wherever_visible": bool(np.all(less_fall[visible])),
        "max_entropy_gain": float((rows["maxent"]["entropy"] - rows["wp"]["entropy"]).max()),
        "alpha_of_max_entropy_gain": float(ALPHAS[np.argmax(rows["maxent"]["entropy"] - rows["wp"]["entropy"])]),
        "residuals": {"objective_violation": opt_violation, "small_alpha_limit": limit_gap},
    }


def _tabular_checks(res: dict) -> list[Check]:
    return [
        check("wp_fixed_point", res["wp_fixed_point"], IDENTITY_TOL,
              "max |pi_wp - softmax(Q^pi_wp_hard / alpha)| over live states, steps, alphas (Eq. 4's fixed point; "
              "Q from the library's policy_evaluation with alpha = 0)"),
        check("maxent_fixed_point", res["maxent_fixed_point"], IDENTITY_TOL,
              "max |pi_maxent - softmax(Q^pi_soft / alpha)| (Eq. 20 with the soft Q of Eq. 9-11)"),
        check("maxent_is_optimal", res["objective_violation"], IDENTITY_TOL,
              "max over alphas of (J_other - J_maxent)^+ for J = E[sum_t r_t + alpha H_t], other = WP, greedy"),
        check("forward_equals_backward", res["forward_backward"], IDENTITY_TOL,
              "trajectory entropy and fall probability: forward occupancy pass vs backward policy evaluation"),
        check("small_alpha_limit", res["small_alpha_limit"], 1e-6,
              f"at alpha = {ALPHAS[0]:g}: |return - greedy return| for MaxEnt and WP, and their fall "
              "probabilities (all three coincide as alpha -> 0)"),
    ]


def _tabular_section(report: Report, tab: dict, figs: list[Figure]) -> None:
    greedy, gap_wp = tab["greedy"], tab["objective_gap_maxent_minus_wp"]
    report.heading("Tabular part (exact)")
    report.para(
        f"Gridworld (rows top to bottom, `S` start, `C` cliff, terminal): `{' / '.join(LEDGE_LAYOUT)}`. The first "
        f"{LEDGE_LENGTH} cells of row 0 are a ledge one cell wide (up is a wall, down is the cliff); columns >= "
        f"{LEDGE_LENGTH} are the plateau, +{PLATEAU_REWARD:g} per step ending there; falling pays "
        f"{CLIFF_REWARD:g} and ends the episode. Deterministic moves, horizon H = {HORIZON} decisions, no "
        "discount. Policies are time-dependent (finite horizon) and computed exactly in float64: MaxEnt by soft "
        "backward induction (Eq. 24-25); Williams & Peng (WP) as the fixed point `pi_t = softmax(Q^pi_t / alpha)` "
        "with an entropy-free critic (Eq. 4), by backward induction; greedy = deterministic argmax of the hard Q "
        "(the DDPG analogue, entropy 0). Trajectory entropy = E[sum_t H(pi_t(.|s_t))] in nats, summed over the "
        "steps before the episode ends; fall = P(fall within H steps). "
        f"Greedy: return {fmt(greedy['return'])}, entropy {fmt(greedy['entropy'])}, fall {fmt(greedy['fall'])}."
    )
    header = ["alpha", "MaxEnt return", "WP return", "MaxEnt traj. entropy (nats)", "WP traj. entropy (nats)",
              "MaxEnt P(fall)", "WP P(fall)", "J_MaxEnt - J_WP"]
    me, wp = tab["maxent"], tab["wp"]
    report.table(header, [[ALPHAS[i], me["return"][i], wp["return"][i], me["entropy"][i], wp["entropy"][i],
                           me["fall"][i], wp["fall"][i], gap_wp[i]] for i in range(0, len(ALPHAS), 5)], digits=4)
    for fig in figs:
        report.embed(fig)


def _split_entropy(mdp, cliff, alphas, me_pi, wp_pi) -> dict:
    """At the pictured alphas: expected entropy collected in the first LEDGE_LENGTH steps (the crossing) and after."""
    out = {}
    for a in PICTURE_ALPHAS:
        i = int(np.argmin(np.abs(alphas - a)))
        out[f"{alphas[i]:.3g}"] = {
            key: {"first_steps": float(prof["entropy_t"][:LEDGE_LENGTH].sum()),
                  "later_steps": float(prof["entropy_t"][LEDGE_LENGTH:].sum())}
            for key, prof in (("maxent", occupancy_profile(mdp, me_pi[i], cliff)),
                              ("wp", occupancy_profile(mdp, wp_pi[i], cliff)))
        }
    return out


def tabular_figures(tab: dict, out: Path) -> list[Figure]:
    """Return, entropy and fall probability against alpha; the policies and per-step profiles at PICTURE_ALPHAS."""
    mdp, _, geo, _, cliff = ledge_mdp()
    rows, greedy = {k: tab[k] for k in ("maxent", "wp")}, tab["greedy"]
    colors = {"maxent": "tab:blue", "wp": "tab:orange", "greedy": "k"}
    names = {"maxent": "MaxEnt (soft VI, Eq. 5)", "wp": "Williams & Peng one-step bonus (Eq. 4)",
             "greedy": "greedy / hard, alpha = 0 (DDPG analogue)"}
    short = {"maxent": "MaxEnt", "wp": "WP one-step bonus"}
    with plot_style():
        plt = pyplot()
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
        for ax, metric, ylabel in zip(axes, ("return", "entropy", "fall"),
                                      ("expected return (reward units)", "trajectory entropy E[sum_t H_t] (nats)",
                                       f"P(fall within H = {HORIZON} steps)")):
            for key in ("maxent", "wp"):
                ax.plot(ALPHAS, rows[key][metric], color=colors[key], label=names[key])
            ax.axhline(greedy[metric], color=colors["greedy"], linestyle="--", label=names["greedy"])
            ax.set_xscale("log")
            ax.set_xlabel("temperature alpha (reward units per nat, log)")
            ax.set_ylabel(ylabel)
        axes[0].legend(loc="lower left")
        axes[0].set_title("return")
        axes[1].set_title("entropy over the whole trajectory")
        axes[2].set_title("falling off the cliff")
        fig.suptitle("Cliff ledge (exact): once entropy outweighs reward (alpha >~ 5) the one-step bonus acts randomly "
                     "on the ledge, falls and loses its later entropy; MaxEnt stays safe and keeps it", fontsize=12)
        fig.tight_layout()
        vs_alpha = save_figure(
            fig, out, "tabular_vs_alpha.png",
            "Exact return, trajectory entropy and fall probability of the MaxEnt, Williams & Peng and "
            "greedy policies on the tabular cliff ledge, against alpha (exact, so no seed bands).")

        # Policies at t = 0 and occupancy, plus per-step entropy and survival, at two alphas.
        fig, axes = plt.subplots(2, 3, figsize=(16, 7.4), gridspec_kw={"width_ratios": [1.25, 1.25, 1]})
        for row, a in enumerate(PICTURE_ALPHAS):
            i = int(np.argmin(np.abs(ALPHAS - a)))
            for col, (key, pi) in enumerate(tab["_pictures"][i].items()):
                prof = occupancy_profile(mdp, pi, cliff)
                _draw_policy(axes[row, col], geo, cliff, pi, prof["occupancy"],
                             f"{short[key]}, alpha = {ALPHAS[i]:.3g}: P(fall) = "
                             f"{rows[key]['fall'][i]:.2f}, entropy {rows[key]['entropy'][i]:.1f} nats")
                ax = axes[row, 2]
                t = np.arange(HORIZON)
                ax.plot(t, prof["entropy_t"], color=colors[key], label=f"{key}: E[H(pi_t)] (nats)")
                ax.plot(t, prof["alive_t"], color=colors[key], linestyle=":", label=f"{key}: P(not fallen)")
            ax = axes[row, 2]
            ax.set_xlabel("time step t")
            ax.set_ylabel("nats per step / probability")
            ax.set_title(f"per-step entropy and survival, alpha = {ALPHAS[i]:.3g}")
            ax.axvline(LEDGE_LENGTH - 0.5, color="gray", linewidth=0.8)
            ax.text(LEDGE_LENGTH - 0.3, 0.03, "plateau reachable", fontsize=8, color="gray",
                    transform=ax.get_xaxis_transform())
            ax.legend(loc="best", fontsize=8)
        fig.suptitle("Where the randomness goes: MaxEnt is less random on the ledge and more random later; "
                     "at alpha = 10 the one-step bonus is random on the ledge and falls", fontsize=12)
        fig.tight_layout()
        return [vs_alpha, save_figure(
            fig, out, "tabular_policies.png",
            "Left, middle: the MaxEnt and Williams & Peng policies on the cliff ledge (red cells: cliff). "
            "Arrows: the visit-weighted average policy in each cell (length = probability); shade: its "
            "visit-weighted mean policy entropy (nats); number: expected visits per episode. Right: "
            "expected policy entropy per step and probability of not having fallen, per time step.")]


def _draw_policy(ax, geo, cliff, pi, occupancy, title) -> None:
    """One policy on the grid. pi: [H, S, A]; occupancy: [H, S] P(at s, alive, at step t).

    Arrows: the visit-weighted average policy per cell; shade: the visit-weighted mean entropy of pi_t(.|s)
    (nats); number: expected visits per episode. Cliff cells red.
    """
    visits = occupancy.sum(0)  # [S]
    weight = occupancy / np.maximum(visits, 1e-300)  # [H, S]
    pi_bar = np.einsum("ts,tsa->sa", weight, pi)  # [S, A]
    ent_bar = np.einsum("ts,ts->s", weight, np.asarray(entropy(jnp.asarray(pi))))  # [S]
    img = np.full((geo.height, geo.width), np.nan)
    for s, (r, c) in enumerate(geo.cell_of_state):
        img[r, c] = ent_bar[s] if not cliff[s] else np.nan
    from matplotlib.patches import Rectangle

    im = ax.imshow(img, cmap="viridis", vmin=0, vmax=np.log(geo.action_deltas.shape[0]))
    for s, (r, c) in enumerate(geo.cell_of_state):
        if cliff[s]:
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color="tab:red", alpha=0.6))
            continue
        ink = "k" if ent_bar[s] > 0.7 else "w"  # readable on both ends of viridis
        for a, (dr, dc) in enumerate(geo.action_deltas):
            p = pi_bar[s, a]
            if p > 0.03:
                ax.arrow(c, r, 0.45 * p * dc, 0.45 * p * dr, head_width=0.15, head_length=0.08, color=ink,
                         length_includes_head=True, linewidth=1.2)
        ax.text(c + 0.28, r + 0.36, f"{visits[s]:.1f}", fontsize=6, ha="center", color=ink)
    ax.set_xticks(range(geo.width))
    ax.set_yticks(range(geo.height))
    ax.set_xlabel("column (cell)")
    ax.set_ylabel("row (cell)")
    ax.set_title(title, fontsize=9)
    pyplot().colorbar(im, ax=ax, fraction=0.025, label="mean policy entropy (nats)")


# ----- the continuous cliff ledge ----------------------------------------------------------------------

ENV_ID = "softrl/CliffLedge-v0"
# wp and sac share each fixed temperature (the controlled comparison). The values are the two drawn in the
# tabular pictures, fixed before any deep run: 1 (tabular: both safe) and 10 (tabular: WP falls 72% of the time).
FIXED_ALPHAS = (1.0, 10.0)


@dataclasses.dataclass(frozen=True)
class DeepConfig:
    label: str
    algo: Algo
    alpha: str = "auto"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9.]+", "-", f"{self.algo}-alpha{self.alpha}")


PAIRS = tuple((DeepConfig(f"wp, alpha {a:g}", "wp", f"{a:g}"), DeepConfig(f"sac, alpha {a:g}", "sac", f"{a:g}"))
              for a in FIXED_ALPHAS)
DEEP_CONFIGS = (
    *[c for pair in PAIRS for c in pair],
    DeepConfig("sac, auto alpha", "sac", "auto"),
    DeepConfig("svg0 (fixed std 0.3)", "svg0"),
    DeepConfig("ddpg (noise std 0.1)", "ddpg"),
)
QUICK_CONFIGS = (*PAIRS[0], DEEP_CONFIGS[-2], DEEP_CONFIGS[-1])


def deep_budget(quick: bool) -> dict:
    if quick:
        return {"total_steps": 1_200, "learning_starts": 400, "eval_every": 0, "eval_episodes": 2, "log_every": 400,
                "checkpoint_every": 0, "hidden": (32, 32), "batch_size": 64, "rollouts": 16}
    return {"total_steps": 20_000, "learning_starts": 1_000, "eval_every": 2_500, "eval_episodes": 5,
            "log_every": 1_000, "checkpoint_every": 5_000, "hidden": (64, 64), "batch_size": 128, "rollouts": 100}


def _train_config(cfg: DeepConfig, budget: dict, n_seeds: int, run_dir: Path, progress: bool):
    from softrl import AgentConfig, TrainConfig

    return TrainConfig(
        algo=cfg.algo, env=ENV_ID, seed=0, seeds=n_seeds, total_steps=budget["total_steps"],
        learning_starts=budget["learning_starts"], eval_every=budget["eval_every"],
        eval_episodes=budget["eval_episodes"], log_every=budget["log_every"],
        checkpoint_every=budget["checkpoint_every"], buffer_size=budget["total_steps"], run_dir=str(run_dir),
        progress=progress, agent=AgentConfig(alpha=cfg.alpha, hidden=budget["hidden"],
                                             batch_size=budget["batch_size"]),
    )


def _episodes(agent, states, sample, n_seeds: int, episodes: int, deterministic: bool, key, env_seed: int):
    """`episodes` episodes per seed, all in lockstep through `softrl.rollout.rollout` (env (i, j) reset with
    `env_seed + 1000 i + j`). Each step hands seed i the i-th of `split(sub, n_seeds)`, one key for all its
    episodes. Returns per-episode arrays [n_seeds, episodes]: return, fell, neg_logp_sum (trajectory entropy
    estimate; NaN when deterministic), length, and paths [n_seeds, episodes, T + 1, 2] (NaN after the end)."""
    from softrl.rollout import rollout

    act = jax.vmap(agent.act, in_axes=(0, 0, 0, None))
    draw = jax.vmap(sample)

    def policy(obs, k):
        obs = jnp.asarray(obs).reshape(n_seeds, episodes, -1)  # [N, B, 2]
        keys = jax.random.split(k, n_seeds)  # one key per seed, as `jax.vmap(agent.act)` callers do
        if deterministic:
            return act(states, obs, keys, True).reshape(n_seeds * episodes, -1)
        action, logp = draw(states, obs, keys)
        return action.reshape(n_seeds * episodes, -1), logp.reshape(-1)

    seeds = [env_seed + 1000 * i + j for i in range(n_seeds) for j in range(episodes)]
    out = rollout(jax.jit(policy), ENV_ID, seeds, 1, key, record=True)
    shape = (n_seeds, episodes)
    assert out.obs is not None  # record=True
    neg_logp = np.full(shape, np.nan) if out.logp is None else -np.nansum(out.logp[:, 0], axis=1).reshape(shape)
    return {"return": out.returns.reshape(shape), "fell": out.terminated.reshape(shape),  # terminated = fell
            "neg_logp_sum": neg_logp, "length": out.lengths.reshape(shape),
            "paths": out.obs[:, 0].reshape(*shape, -1, 2)}


def _sampler_residual(agent, states, sample, n_seeds: int, key) -> float:
    """max |sampled action - agent.act(..., deterministic=False)| with the same keys on 64 probe states: the
    log-probs used for the entropy estimate belong to the agent's own policy."""
    probe = jnp.asarray(np.random.default_rng(0).uniform([0, -1], [2, 0.2], (n_seeds, 64, 2)), jnp.float32)
    keys = jax.random.split(key, n_seeds)
    mine, _ = jax.vmap(sample)(states, probe, keys)
    theirs = jax.vmap(agent.act, in_axes=(0, 0, 0, None))(states, probe, keys, False)
    return float(jnp.max(jnp.abs(mine - theirs)))


def _per_seed(stoch: dict, det: dict, algo: str) -> dict:
    """Per-seed means [N] of the stochastic and deterministic episodes."""
    from softrl.envs.cliff import TOP

    paths = stoch["paths"]
    alive = ~np.isnan(paths[..., 1])
    return {
        "stochastic_return": stoch["return"].mean(1), "stochastic_fall_rate": stoch["fell"].mean(1),
        "trajectory_entropy": stoch["neg_logp_sum"].mean(1) if algo != "ddpg" else None,
        "stochastic_length": stoch["length"].mean(1),
        # Fraction of stochastic episodes that ever get onto the plateau (x >= 1).
        "reach_plateau": (np.nanmax(paths[..., 0], axis=2) >= 1.0).mean(1),
        # Fraction of visited positions on the plateau below the ledge's level (x >= 1, y < 0): spreading out.
        "below_ledge_level": np.nanmean(np.where(alive, (paths[..., 1] < 0.0) & (paths[..., 0] >= 1.0), np.nan),
                                        axis=(1, 2)),
        # Fraction of visited positions within 0.05 of the wall above the ledge (where clipped moves are harmless).
        "time_at_wall": np.nanmean(np.where(alive, paths[..., 1] >= TOP - 0.05, np.nan), axis=(1, 2)),
        "deterministic_return": det["return"].mean(1), "deterministic_fall_rate": det["fell"].mean(1),
    }


def _train_and_measure(cfg: DeepConfig, budget: dict, n_seeds: int, run_dir: Path, quick: bool, keys) -> dict:
    """Trains (or reuses) one agent and measures it on stochastic and deterministic episodes."""
    from softrl.plot import curves

    t0 = time.perf_counter()
    res, how = train_or_resume(_train_config(cfg, budget, n_seeds, run_dir, progress=not quick))
    t_train = time.perf_counter() - t0
    sample = res.agent.sample  # (state, obs, key) -> (action, log pi(a|s))
    k_probe, k_st, k_det = keys
    stoch = _episodes(res.agent, res.states, sample, n_seeds, budget["rollouts"], False, k_st, env_seed=777)
    det = _episodes(res.agent, res.states, sample, n_seeds, 20, True, k_det, env_seed=999)
    per_seed = _per_seed(stoch, det, cfg.algo)
    return {
        "algo": cfg.algo, "alpha": cfg.alpha, "run_dir": run_dir, "how": how, "this_call_wall_s": t_train,
        # What the training itself cost when it ran (a reused run's summary keeps it), for the budget line.
        "training_wall_s": res.timing["wall_s"],
        "per_seed": per_seed,
        "ci": {k: (mean_ci(v) if v is not None else None) for k, v in per_seed.items()},
        "eval_curve": curves(run_dir, "eval"),
        "sampler_residual": _sampler_residual(res.agent, res.states, sample, n_seeds, k_probe),
        "_paths": stoch["paths"][0, :25],
    }


def compute_deep(out: Path, quick: bool, seeds: int) -> dict:
    """Trains every agent of the continuous part into out/runs/ (reusing finished runs) and measures it."""
    budget = deep_budget(quick)
    configs = QUICK_CONFIGS if quick else DEEP_CONFIGS
    n_seeds = 1 if quick else seeds
    tag = f"{budget['total_steps']}steps-{n_seeds}seeds-h{'x'.join(map(str, budget['hidden']))}"
    key = jax.random.PRNGKey(2024)
    runs: dict[str, dict] = {}
    for k, cfg in enumerate(configs):
        run_dir = out / "runs" / f"{cfg.slug}-{tag}"
        print(f"[{NAME}] {k + 1}/{len(configs)}: {cfg.label}, {n_seeds} seed(s) x {budget['total_steps']} steps "
              f"-> {run_dir}", flush=True)
        k_probe = key  # the probe reuses the loop key before it is split, as the measured numbers always did
        key, k_st, k_det = jax.random.split(key, 3)
        runs[cfg.label] = _train_and_measure(cfg, budget, n_seeds, run_dir, quick, (k_probe, k_st, k_det))
    residual = max(r["sampler_residual"] for r in runs.values())
    return {"budget": budget, "num_seeds": n_seeds, "fixed_alphas": FIXED_ALPHAS,
            "configs": [dataclasses.asdict(c) for c in configs], "runs": runs, "sampler_residual": residual,
            "checks": [check("sampler_matches_agent", residual, 1e-5,
                             "max |a_sampled - agent.act| on 64 probe states (stochastic, with the same key): "
                             "the log-probs used for the entropy estimate belong to the agent's own policy")]}


def _deep_intro(report: Report, quick: bool, seeds: int) -> None:
    budget = deep_budget(quick)
    configs = QUICK_CONFIGS if quick else DEEP_CONFIGS
    n_seeds = 1 if quick else seeds
    report.heading("Continuous part: `softrl/CliffLedge-v0`")
    report.para(
        "A 2-D point mass (`softrl.envs.cliff`): it starts at (0.05, 0.1) on a ledge x in [0, 1], y in [0, 0.2] "
        "(wall above, cliff below: y < 0 with x < 1 terminates with reward -10), moves by 0.1 x action per step "
        "(Box actions in [-1, 1]^2) and earns min(x, 1) per step: 1 anywhere on the plateau x in [1, 2], y in "
        "[-1, 0.2], whose left side is the cliff, and a share of it on the ledge (so the plateau can be found by "
        "random exploration); 50 steps per episode (truncated). The ledge takes 10 full steps to cross, so the "
        "best return is about 45. "
        f"`softrl.train(TrainConfig(env='{ENV_ID}', seeds={n_seeds}, total_steps={budget['total_steps']}, "
        f"learning_starts={budget['learning_starts']}, agent=AgentConfig(hidden={budget['hidden']}, "
        f"batch_size={budget['batch_size']}, alpha=...)))` for: " + "; ".join(c.label for c in configs) + ". "
        f"wp and sac are run in pairs sharing a fixed alpha in {list(FIXED_ALPHAS)} (the two alphas of the tabular "
        "pictures, fixed before any deep run), so within a pair they differ only in whether the critic holds the "
        "entropy (Eq. 4 vs Eq. 11-13). Other hyperparameters are the library defaults (gamma 0.99, Adam 3e-4, "
        "twin critics). Each "
        f"trained seed is evaluated on {budget['rollouts']} stochastic episodes (actions sampled from the policy; "
        "ddpg: its Gaussian exploration noise) and 20 deterministic ones (the mean action). The trajectory entropy "
        "is estimated by the sum over the episode of -log pi(a_t|s_t) of the sampled actions, an unbiased estimate "
        "of E[sum_t H(pi(.|s_t))] (differential entropy of the tanh-Gaussian, nats; it can be negative); for ddpg "
        "it is n/a. "
        + ("**Quick mode: 1 seed, 1,200 steps, 32x32 networks, 4 of the 7 agents: a smoke test of the pipeline; "
           "these numbers say nothing about the claim.**" if quick else "")
    )


def _deep_section(report: Report, deep: dict, figs: list[Figure]) -> None:
    configs = [DeepConfig(**c) for c in deep["configs"]]
    runs, budget = deep["runs"], deep["budget"]
    header = ["agent", "stochastic return", "P(fall), stochastic", "trajectory entropy (nats)", "episode length",
              "P(reach plateau), stochastic", "deterministic return", "P(fall), deterministic", "run",
              "training wall (s)"]
    rows = []
    for cfg in configs:
        r = runs[cfg.label]
        c = r["ci"]
        rows.append([cfg.label, fmt_ci(c["stochastic_return"], 3), fmt_ci(c["stochastic_fall_rate"], 3),
                     fmt_ci(c["trajectory_entropy"], 3) if c["trajectory_entropy"] else "n/a (deterministic actor)",
                     fmt_ci(c["stochastic_length"], 3), fmt_ci(c["reach_plateau"], 3),
                     fmt_ci(c["deterministic_return"], 3),
                     fmt_ci(c["deterministic_fall_rate"], 3), r["how"], f"{r['training_wall_s']:.0f}"])
    report.table(header, rows)
    report.para("Mean over seeds [95% Student-t interval across seeds] (n = seeds); each seed's value is itself "
                f"the mean over its {budget['rollouts']} stochastic (or 20 deterministic) episodes. `run`: trained "
                "now, resumed from a checkpoint, or reused from an earlier finished run in the output directory; "
                "`training wall`: seconds the training (all seeds together) took when it last ran, on this "
                "machine's 2 shared CPU cores. "
                "The entropy estimate is a differential entropy: a policy whose pre-tanh mean sits far beyond the "
                "action bound (svg0's fixed-width Gaussian pushed into saturation, and a low-alpha sac) gets a density "
                "spike at the bound and a very negative value; it measures saturation, not randomness that can "
                "drop the agent off the cliff.")
    for fig in figs:
        report.embed(fig)


def _short(cfg: DeepConfig) -> str:
    """A short tick label: 'wp a=1', 'sac auto', 'svg0', 'ddpg'."""
    if cfg.algo in ("wp", "sac"):
        return f"{cfg.algo} " + ("auto" if cfg.alpha == "auto" else f"a={cfg.alpha}")
    return cfg.algo


def deep_figures(deep: dict, out: Path, quick: bool) -> list[Figure]:
    """Per-agent bars (return, fall rate, entropy) with learning curves, and sampled trajectories of seed 0."""
    configs = [DeepConfig(**c) for c in deep["configs"]]
    with plot_style():
        return [_summary_figure(deep, configs, out, quick), _trajectory_figure(deep, configs, out)]


def _colors(configs: list[DeepConfig]) -> dict:
    return dict(zip([c.label for c in configs], pyplot().get_cmap("tab10")(np.arange(len(configs)))))


def _summary_figure(deep: dict, configs: list[DeepConfig], out: Path, quick: bool) -> Figure:
    runs, n_seeds = deep["runs"], deep["num_seeds"]
    note = ("quick smoke test, 1 seed" if quick else f"mean and 95% CI over {n_seeds} seeds")
    plt = pyplot()
    colors = _colors(configs)
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.4))
    x = np.arange(len(configs))
    for ax, metric, ylabel in zip(axes[:3], ("stochastic_return", "stochastic_fall_rate", "trajectory_entropy"),
                                  ("return per episode (reward units)", "fraction of episodes that fall",
                                   "sum_t -log pi(a_t|s_t) (nats)")):
        for xi, cfg in zip(x, configs):
            ci = runs[cfg.label]["ci"][metric]
            if ci is None:
                ax.text(xi, 0, "n/a", ha="center", va="bottom", fontsize=9)
                continue
            vals = runs[cfg.label]["per_seed"][metric]
            err = None if ci["lo"] is None else [[ci["mean"] - ci["lo"]], [ci["hi"] - ci["mean"]]]
            ax.bar(xi, ci["mean"], color=colors[cfg.label], yerr=err, capsize=4, label=cfg.label, alpha=0.85)
            ax.scatter(np.full(len(vals), xi), vals, color="k", s=10, zorder=3)
        ax.set_xticks(x, [_short(c) for c in configs], fontsize=8, rotation=35, ha="right")
        ax.set_ylabel(ylabel)
    axes[0].set_title("return, stochastic policy")
    axes[1].set_title("how often it falls off")
    axes[2].set_title("trajectory entropy estimate (symlog axis)")
    axes[2].set_yscale("symlog", linthresh=100.0)
    axes[1].legend(loc="upper right", fontsize=7)
    ax = axes[3]
    for cfg in configs:
        steps, vals = runs[cfg.label]["eval_curve"]
        if len(steps):
            band(ax, steps, vals, cfg.label, color=colors[cfg.label], spread="ci" if n_seeds > 1 else "minmax",
                 marker="o", markersize=3)
    ax.set_xlabel("environment steps per seed")
    ax.set_ylabel("deterministic eval return (reward units)")
    ax.set_title("learning curves")
    fig.suptitle(f"Continuous cliff ledge: does full MaxEnt (sac) fall less and act more randomly overall than "
                 f"the one-step bonus (wp)? ({note}; bars: mean, whiskers: CI, dots: seeds)", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, out, "continuous_summary.png",
                       "Stochastic-policy return, fall rate and trajectory-entropy estimate per agent (bars: mean "
                       "over seeds, whiskers: 95% CI, dots: seeds), and deterministic evaluation return during "
                       "training (band: 95% CI over seeds).")


def _trajectory_figure(deep: dict, configs: list[DeepConfig], out: Path) -> Figure:
    from softrl.envs.cliff import BOTTOM, LEDGE_END, RIGHT, TOP

    runs = deep["runs"]
    plt = pyplot()
    from matplotlib.patches import Rectangle

    colors = _colors(configs)
    lowest = min(np.nanmin(runs[c.label]["_paths"][..., 1]) for c in configs)
    y_low = max(BOTTOM, np.floor((lowest - 0.1) * 10) / 10)  # zoom in on where the agents went
    ncols = min(4, len(configs))
    nrows = -(-len(configs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax in axes.ravel()[len(configs):]:
        ax.axis("off")
    for ax, cfg in zip(axes.ravel(), configs):
        ax.add_patch(Rectangle((0, BOTTOM), LEDGE_END, -BOTTOM, color="tab:red", alpha=0.25, label="cliff"))
        ax.add_patch(Rectangle((LEDGE_END, BOTTOM), RIGHT - LEDGE_END, TOP - BOTTOM, color="tab:green",
                                   alpha=0.12, label="plateau (reward 1/step)"))
        for path in runs[cfg.label]["_paths"]:
            ax.plot(path[:, 0], path[:, 1], color=colors[cfg.label], linewidth=0.7, alpha=0.7)
        ci = runs[cfg.label]["ci"]
        ax.set_title(f"{cfg.label}: fall rate {ci['stochastic_fall_rate']['mean']:.2f}, "
                     f"reach plateau {ci['reach_plateau']['mean']:.2f}", fontsize=9)
        ax.set_xlim(0, RIGHT)
        ax.set_ylim(y_low, TOP + 0.05)
        ax.set_xlabel("x (position units)")
        ax.set_ylabel("y (position units)")
    axes[0, 0].legend(loc="lower right", fontsize=7)
    n_paths = len(runs[configs[0].label]["_paths"])
    fig.suptitle(f"{n_paths} stochastic episodes of seed 0 per agent. Claim: MaxEnt (sac) stays random without "
                 "falling; the one-step bonus (wp) is random on the ledge and falls", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, out, "continuous_trajectories.png",
                       "Sampled trajectories (seed 0, up to 25 stochastic episodes) on the continuous cliff ledge; "
                       "red: cliff region (falling ends the episode), green: plateau (it extends down to y = -1; "
                       "the plot shows the range the agents visited).")


# ----- report --------------------------------------------------------------------------------------------


def figures(results: dict, out: Path, quick: bool) -> list[Figure]:
    """The tabular figures, then the continuous ones (none when that part failed)."""
    with float64():
        figs = tabular_figures(results["tabular"], out)
    return figs + (deep_figures(results["deep"], out, quick) if results["deep_ran"] else [])


def reading(results: dict, report: Report, figs: list[Figure], quick: bool) -> None:
    """Both parts' setup, tables and figures, then what the numbers say about the claim."""
    _tabular_section(report, results["tabular"], figs[:2])
    _deep_intro(report, quick, report.seeds)
    if results["deep_ran"]:
        _deep_section(report, results["deep"], figs[2:])
    else:
        report.para(f"**The continuous part failed and was not run to completion:** `{results['deep']['error']}`")
    report.heading("Reading")
    text = _tabular_reading(results["tabular"])
    deep = results["deep"] if results["deep_ran"] else None
    deep_error = None if deep is not None else results.get("deep", {}).get("error")
    note = not_run_note("continuous part", deep_error, deep is None, quick, "1 seed, 1,200 steps, 32x32 networks")
    if note is not None:
        text += note
    else:
        assert deep is not None  # not_run_note gives a note whenever the deep part did not run
        text += _deep_reading(deep)
    report.para(text)


def _tabular_reading(tab: dict) -> str:
    me, wp, gr = tab["maxent"], tab["wp"], tab["greedy"]
    i_hi = len(ALPHAS) - 1
    i_mid = int(np.argmin(np.abs(ALPHAS - 1.0)))
    frac_e, frac_f = tab["fraction_alphas_maxent_entropy_higher"], tab["fraction_alphas_maxent_falls_less"]
    text = (
        "Tabular (exact): at every alpha the MaxEnt policy scores at least as high as WP and greedy on the "
        "MaxEnt objective (by construction, and checked). The lecture's claim is about more than that: "
        f"MaxEnt has the larger trajectory entropy at {frac_e * 100:.0f}% of the {len(ALPHAS)} alphas "
        f"(largest gain {fmt(tab['max_entropy_gain'], 3)} nats at alpha {fmt(tab['alpha_of_max_entropy_gain'], 3)}) "
        f"and the smaller fall probability at {frac_f * 100:.0f}% of them (restricted to the "
        f"{tab['num_alphas_fall_visible']} alphas where either policy falls with probability above 1e-6, MaxEnt "
        f"falls less at every one: {'yes' if tab['maxent_falls_less_wherever_visible'] else 'NO'}). "
        "As alpha -> 0 both soft policies still "
        "randomise among exactly tied moves on the plateau (every plateau move pays 1), so their trajectory entropy "
        f"stays near {fmt(me['entropy'][0], 3)} (MaxEnt) and {fmt(wp['entropy'][0], 3)} (WP) nats while the "
        "deterministic greedy policy has 0; MaxEnt's surplus there comes from weighting tied moves by the entropy "
        "they leave for later (e.g. away from column 5, where moving left falls). "
        f"At alpha = {ALPHAS[i_mid]:.3g}: "
        f"MaxEnt return {fmt(me['return'][i_mid])}, entropy {fmt(me['entropy'][i_mid])} nats, P(fall) "
        f"{fmt(me['fall'][i_mid], 3)}; WP return {fmt(wp['return'][i_mid])}, entropy {fmt(wp['entropy'][i_mid])} "
        f"nats, P(fall) {fmt(wp['fall'][i_mid], 3)}. At alpha = {ALPHAS[i_hi]:.3g}: MaxEnt P(fall) "
        f"{fmt(me['fall'][i_hi], 3)} with entropy {fmt(me['entropy'][i_hi])} nats, WP P(fall) "
        f"{fmt(wp['fall'][i_hi], 3)} with entropy {fmt(wp['entropy'][i_hi])} nats. The greedy policy returns "
        f"{fmt(gr['return'])} with zero entropy. "
    )
    split = tab["ledge_vs_later_entropy"]
    text += "The mechanism of the lecture, entropy over the first " + str(LEDGE_LENGTH) + " steps (the crossing) / " \
        "over the rest: " + "; ".join(
            f"alpha {k}: MaxEnt {fmt(v['maxent']['first_steps'], 3)} / {fmt(v['maxent']['later_steps'], 3)}, "
            f"WP {fmt(v['wp']['first_steps'], 3)} / {fmt(v['wp']['later_steps'], 3)} nats (MaxEnt less random on the "
            "ledge and more random later: "
            + ("yes" if v["maxent"]["first_steps"] < v["wp"]["first_steps"]
               and v["maxent"]["later_steps"] > v["wp"]["later_steps"] else "NO") + ")"
            for k, v in split.items()
        ) + ". "
    if frac_e < 1.0:
        lo_alphas = [a for a in ALPHAS if a not in set(tab["alphas_where_maxent_entropy_higher"])]
        text += (f"But the later gain does not always pay for the crossing: for alpha in {fmt(min(lo_alphas), 3)}.."
                 f"{fmt(max(lo_alphas), 3)} WP's total trajectory entropy is the higher one, so the lecture's claim "
                 "read literally (MaxEnt ends up with more trajectory entropy) fails there; since MaxEnt's objective "
                 "is still the higher, its return must be, i.e. MaxEnt trades some entropy for reward there. ")
    return text


def _deep_reading(deep: dict) -> str:
    runs = deep["runs"]
    text = f"Continuous ({deep['num_seeds']} seeds, {deep['budget']['total_steps']:,} steps each): "
    paired = set()
    for wp_cfg, sac_cfg in PAIRS:
        paired |= {wp_cfg.label, sac_cfg.label}
        w, s = runs[wp_cfg.label]["ci"], runs[sac_cfg.label]["ci"]
        sep_fall = _separated(w["stochastic_fall_rate"], s["stochastic_fall_rate"])
        sep_ent = _separated(w["trajectory_entropy"], s["trajectory_entropy"])
        text += (
            f"At alpha {sac_cfg.alpha}, sac falls in {fmt_ci(s['stochastic_fall_rate'], 3)} of stochastic "
            f"episodes and wp in {fmt_ci(w['stochastic_fall_rate'], 3)} ("
            + ("intervals separated" if sep_fall else "intervals overlap: no difference shown")
            + f"), trajectory entropy sac {fmt_ci(s['trajectory_entropy'], 3)} vs wp "
            f"{fmt_ci(w['trajectory_entropy'], 3)} nats ("
            + ("separated" if sep_ent else "overlapping")
            + f"), return sac {fmt_ci(s['stochastic_return'], 3)} vs wp {fmt_ci(w['stochastic_return'], 3)}, "
            f"episodes reaching the plateau sac {fmt(s['reach_plateau']['mean'], 2)} vs wp "
            f"{fmt(w['reach_plateau']['mean'], 2)}, share of time within 0.05 of the wall above the ledge sac "
            f"{fmt(s['time_at_wall']['mean'], 2)} vs wp {fmt(w['time_at_wall']['mean'], 2)}. "
        )
    text += (
        "Other agents (stochastic policy): " + "; ".join(
            f"{k}: fall {fmt(v['ci']['stochastic_fall_rate']['mean'], 2)}, return "
            f"{fmt(v['ci']['stochastic_return']['mean'], 3)}" for k, v in runs.items() if k not in paired)
        + ". "
    )
    below = max(v["ci"]["below_ledge_level"]["mean"] for v in runs.values())
    if below < 0.05:
        text += (
            "Unlike the tabular MaxEnt policy, no deep agent spreads out over the plateau (at most "
            f"{below * 100:.1f}% of any agent's visited positions lie below the ledge's level): they stay near "
            "the wall above the ledge (y = 0.2), where the upward part of a random action is clipped away and "
            "harmless, so a continuous agent can stay random next to the cliff without crossing, and one whose "
            "reward barely matters need not cross at all (compare the plateau shares at alpha 10 above). "
            "The continuous counterpart thus "
            "reproduces the safety half of the argument (the one-step bonus falls where MaxEnt does not) more "
            "than its 'cross first, randomise later' shape. "
        )
    text += (
        "With few seeds and a short budget the deep numbers are weaker evidence than the exact tabular "
          "ones; function approximation and learning dynamics, not only the objective, shape them."
    )
    return text


def _separated(a: dict | None, b: dict | None) -> bool:
    if not a or not b or a["lo"] is None or b["lo"] is None:
        return False
    return bool(a["hi"] < b["lo"] or b["hi"] < a["lo"])


def run(out: Path, quick: bool = False, seeds: int = 3) -> Report:
    """Exact tabular comparison (always) and the continuous ledge with deep agents (tiny with `quick`)."""
    b = deep_budget(quick)
    n_cfg = len(QUICK_CONFIGS if quick else DEEP_CONFIGS)
    budget = (
        "No published budget: the lecture makes this argument without an experiment, and Williams & Peng (1991) "
        "predate deep actor-critics. Tabular: exact, seconds. Continuous: " + (
            f"quick smoke test, {n_cfg} agents x 1 seed x {b['total_steps']} env steps, 32x32 networks (~1 minute "
            "on 2 CPU cores, mostly compilation)."
            if quick else
            f"{n_cfg} agents x {seeds} seeds x {b['total_steps']:,} env steps (2x64 networks, batch 128, one update "
            "per step; all seeds of an agent in one process); measured with 3 seeds: about 1.5-2 minutes of training "
            "per agent (see the table's last column), ~15 minutes in all, on 2 shared CPU cores. Runs are "
            "checkpointed under runs/ and resumed or reused when the command is run again (then the wall time in "
            "the Run line above covers only loading and evaluation)."
        )
    )
    report = Report(
        NAME, "One-step entropy bonus vs MaxEnt on a cliff ledge", out, quick, seeds,
        claim="Section 1.3: Williams & Peng's bonus (Eq. 4) maximises entropy now; \"if we want to maximize "
              "entropy across an entire trajectory, then it may be worthwhile to take low-entropy actions now so "
              "that we can take higher entropy actions in the future. For example, if the agent is walking along "
              "the top of a cliff, initially taking a few (deterministic) actions away from the cliff can enable it "
              "to act more randomly in the future.\" MaxEnt RL (Eq. 5) plans for this; the one-step bonus does not.",
        budget=budget,
    )
    results = compute(out, quick, seeds)
    reading(results, report, figures(results, report.out, quick), quick)
    report.record(results)
    return report


def compute(out: Path, quick: bool, seeds: int) -> dict:
    """The exact tabular part, then the continuous part (its failure is recorded and does not hide the first)."""
    with float64():
        tab = compute_tabular()
    try:
        deep = compute_deep(Path(out), quick, seeds)
    except Exception as err:  # a failed deep run must not hide the exact tabular result
        deep = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    checks = tab.pop("checks") + deep.pop("checks", [])
    return {"tabular": tab, "deep": deep, "deep_ran": "error" not in deep, "checks": checks}
