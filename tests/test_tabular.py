"""Tests for softrl.tabular: FiniteMDP, exact soft solvers, soft Q-learning, distribution
matching (Eq. 29-34), satisficing (Eq. 28), MDP builders and the gymnasium wrapper."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from softrl.tabular import (
    FiniteMDP,
    TabularEnv,
    chain,
    cliff_walk,
    distribution_matching_check,
    gridworld,
    make_gridworld_env,
    policy_evaluation,
    random_mdp,
    register_envs,
    satisficing,
    soft_q_learning,
    soft_value_iteration,
    start_value,
    trajectory_distribution,
)


@pytest.fixture
def x64():
    """Float64 for tests that check identities to ~1e-6 or tighter."""
    with jax.enable_x64(True):
        yield


def np_soft_value(q, alpha):
    """Independent numpy reference for alpha logsumexp(q / alpha) (Eq. 24), max at alpha = 0."""
    q = np.asarray(q, np.float64)
    m = q.max(-1)
    if alpha == 0:
        return m
    return m + alpha * np.log(np.exp((q - m[..., None]) / alpha).sum(-1))


def np_hard_value_iteration(P, R, gamma, iters=2000):
    P, R = np.asarray(P, np.float64), np.asarray(R, np.float64)
    q = np.zeros_like(R)
    for _ in range(iters):
        q = R + gamma * P @ q.max(1)
    return q


def two_state_mdp(**overrides):
    kwargs = {
        "P": np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.3, 0.7]]]),
        "R": np.array([[1.0, 0.0], [0.5, 2.0]]),
        "gamma": 0.9,
        "p0": np.array([1.0, 0.0]),
    }
    kwargs.update(overrides)
    return FiniteMDP(**kwargs)


GRID = ["S.g", "#.G"]  # 5 states; two goals with different rewards
GOALS = {"G": 1.0, "g": 0.5}


# --------------------------------------------------------------------------- FiniteMDP


def test_finite_mdp_valid_and_frozen():
    mdp = two_state_mdp()
    assert (mdp.num_states, mdp.num_actions, mdp.horizon) == (2, 2, None)
    assert not bool(jnp.any(mdp.terminal))
    with pytest.raises(AttributeError, match="frozen"):
        mdp.gamma = 0.5
    leaves, treedef = jax.tree_util.tree_flatten(mdp)
    assert len(leaves) == 5  # P, R, gamma, p0, terminal; horizon is static
    assert jax.tree_util.tree_unflatten(treedef, leaves).horizon is None
    # gamma = 1 is allowed with a horizon.
    assert two_state_mdp(gamma=1.0, horizon=3).horizon == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"P": np.array([[[0.5, 0.5], [1, 0]], [[0.6, 0.6], [0.3, 0.7]]])}, r"P\[s=1, a=0, :\] sums to 1\.2"),
        ({"P": np.array([[[1.5, -0.5], [1, 0]], [[0, 1], [0.3, 0.7]]])}, r"negative probability P\[s=0, a=0"),
        ({"P": np.ones((2, 2, 3)) / 3}, r"P must have shape \[S, A, S\]"),
        ({"R": np.zeros((2, 3))}, r"R must have shape \[S, A\]"),
        ({"p0": np.array([1.0, 0.0, 0.0])}, r"p0 must have shape \[S\]"),
        ({"p0": np.array([0.7, 0.7])}, r"p0 must sum to 1"),
        ({"gamma": 1.0}, r"gamma must lie in \[0, 1\) for an infinite-horizon MDP"),
        ({"gamma": -0.1}, r"gamma must lie in \[0, 1\)"),
        ({"gamma": 1.5, "horizon": 4}, r"gamma must lie in \[0, 1\] for a finite-horizon MDP"),
        ({"horizon": 0}, r"horizon must be a positive int"),
        ({"terminal": np.array([False, True])}, r"terminal state 1 must be absorbing"),
    ],
)
def test_finite_mdp_validation_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        two_state_mdp(**overrides)


def test_finite_mdp_replace_revalidates_and_accepts_tracers():
    mdp = two_state_mdp()
    with pytest.raises(ValueError, match="gamma must lie"):
        mdp.replace(gamma=1.0)
    gammas = jax.vmap(lambda g: mdp.replace(gamma=g).gamma)(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(gammas, [0.1, 0.2])


# --------------------------------------------------------------------------- soft value iteration


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0, 4.0])
def test_single_state_closed_form(x64, alpha):
    """One state: V = alpha logsumexp(r / alpha) / (1 - gamma), pi = softmax(r / alpha)."""
    r = np.array([1.0, 0.5, -1.0])
    gamma = 0.9
    mdp = FiniteMDP(np.ones((1, 3, 1)), r[None], gamma, np.ones(1))
    sol = soft_value_iteration(mdp, alpha, tol=1e-13)
    np.testing.assert_allclose(sol.v, [np_soft_value(r, alpha) / (1 - gamma)], rtol=1e-10)
    expected_pi = np.eye(3)[0] if alpha == 0 else np.exp(r / alpha) / np.exp(r / alpha).sum()
    np.testing.assert_allclose(sol.policy[0], expected_pi, rtol=1e-10, atol=1e-14)


def test_alpha_zero_is_hard_value_iteration(x64):
    mdp = random_mdp(jax.random.PRNGKey(3), 6, 3, gamma=0.9)
    q_ref = np_hard_value_iteration(mdp.P, mdp.R, 0.9)
    sol = soft_value_iteration(mdp, 0.0, tol=1e-13)
    np.testing.assert_allclose(sol.q, q_ref, atol=1e-10)
    np.testing.assert_allclose(sol.policy, np.eye(3)[q_ref.argmax(1)])  # greedy
    # alpha -> 0+ approaches it: Q_alpha - Q_0 in [0, alpha log|A| / (1 - gamma)].
    tiny = soft_value_iteration(mdp, 1e-6, tol=1e-13)
    gap = np.asarray(tiny.q - sol.q)
    assert gap.min() > -1e-9 and gap.max() <= 1e-6 * np.log(3) / 0.1 + 1e-9


def test_soft_bellman_equation_and_policy_evaluation(x64):
    """Q* solves Q = R + gamma P alpha logsumexp(Q/alpha) (Eq. 24-25); its softmax policy
    evaluates back to V* (Eq. 9-11), J = E_p0[Q - alpha log pi] (Eq. 10), and it beats other policies."""
    alpha, gamma = 0.7, 0.85
    mdp = random_mdp(jax.random.PRNGKey(0), 5, 3, gamma=gamma)
    sol = soft_value_iteration(mdp, alpha, tol=1e-13)
    P, R, q = np.asarray(mdp.P), np.asarray(mdp.R), np.asarray(sol.q)
    np.testing.assert_allclose(q, R + gamma * P @ np_soft_value(q, alpha), atol=1e-6, rtol=0)
    np.testing.assert_allclose(sol.v, np_soft_value(q, alpha), atol=1e-9)
    pi = np.exp((q - q.max(1, keepdims=True)) / alpha)
    np.testing.assert_allclose(sol.policy, pi / pi.sum(1, keepdims=True), atol=1e-12)
    assert int(sol.iterations) < 100_000 and float(sol.residual) < 1e-10

    q_pe, v_pe = policy_evaluation(mdp, sol.policy, alpha)
    np.testing.assert_allclose(v_pe, sol.v, atol=1e-9)
    np.testing.assert_allclose(q_pe, sol.q, atol=1e-9)
    pol = np.asarray(sol.policy)
    j_eq10 = np.sum(np.asarray(mdp.p0)[:, None] * pol * (np.asarray(q_pe) - alpha * np.log(pol)))
    np.testing.assert_allclose(start_value(mdp, v_pe), j_eq10, rtol=1e-10)
    # Soft optimality (Eq. 14): any other policy has a lower soft value in every state.
    for k in range(3):
        other = np.random.default_rng(k).dirichlet(np.ones(3), size=5)  # [S, A]
        _, v_other = policy_evaluation(mdp, other, alpha)
        assert bool(jnp.all(v_other < sol.v - 1e-6))


def test_terminal_states_have_zero_value(x64):
    mdp, _ = gridworld(GRID, slip=0.2, goal_rewards=GOALS, step_reward=-0.05, gamma=0.9)
    sol = soft_value_iteration(mdp, 0.5, tol=1e-13)
    term = np.asarray(mdp.terminal)
    assert term.sum() == 2
    np.testing.assert_array_equal(np.asarray(sol.v)[term], 0.0)
    _, v_pe = policy_evaluation(mdp, sol.policy, 0.5)
    np.testing.assert_allclose(v_pe, sol.v, atol=1e-9)


def test_vmap_over_alpha_and_gamma_equals_loops():
    mdp = random_mdp(jax.random.PRNGKey(1), 4, 3, gamma=0.9)
    alphas = jnp.array([0.0, 0.1, 2.0])
    batched = jax.vmap(lambda a: soft_value_iteration(mdp, a))(alphas)
    for i, a in enumerate(alphas):
        single = soft_value_iteration(mdp, a)
        np.testing.assert_allclose(batched.q[i], single.q, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(batched.policy[i], single.policy, atol=1e-5)
    gammas = jnp.array([0.5, 0.8, 0.95])
    batched = jax.vmap(lambda g: soft_value_iteration(mdp.replace(gamma=g), 0.5))(gammas)
    for i, g in enumerate(gammas):
        single = soft_value_iteration(mdp.replace(gamma=float(g)), 0.5)
        np.testing.assert_allclose(batched.v[i], single.v, rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(batched.v[0] - batched.v[2]))) > 1.0  # gamma really varied


def test_float32_tiny_alpha_and_large_rewards_are_stable():
    """dtype=float32: alpha = 1e-6 with |Q| ~ 1e4 stays finite and matches hard VI; tol is relative."""
    base = chain(4, slip=0.1, gamma=0.9)
    mdp = base.replace(R=base.R * 1e3 + 1.0)
    hard = np_hard_value_iteration(mdp.P, mdp.R, 0.9)
    for alpha in (1e-6, 1.0):
        sol = soft_value_iteration(mdp, alpha, dtype=jnp.float32)  # default tol=1e-8 is below float32 resolution
        assert sol.q.dtype == jnp.float32
        assert int(sol.iterations) < 5000  # stopped by the relative / noise criterion
        assert bool(jnp.all(jnp.isfinite(sol.q))) and bool(jnp.all(jnp.isfinite(sol.policy)))
        np.testing.assert_allclose(sol.q, hard, rtol=1e-4 if alpha < 1e-3 else 5e-3)


def test_finite_horizon_backward_induction(x64):
    H, alpha = 3, 0.5
    mdp = random_mdp(jax.random.PRNGKey(2), 3, 2, gamma=1.0, horizon=H)
    sol = soft_value_iteration(mdp, alpha)
    assert sol.q.shape == (H, 3, 2) and sol.v.shape == (H, 3) and sol.policy.shape == (H, 3, 2)
    P, R = np.asarray(mdp.P), np.asarray(mdp.R)
    v_next = np.zeros(3)
    for t in reversed(range(H)):  # independent recursion, V_H = 0
        q_t = R + P @ v_next
        np.testing.assert_allclose(sol.q[t], q_t, atol=1e-12)
        v_next = np_soft_value(q_t, alpha)
        np.testing.assert_allclose(sol.v[t], v_next, atol=1e-12)
    np.testing.assert_allclose(sol.q[H - 1], R)
    _, v_pe = policy_evaluation(mdp, sol.policy, alpha)
    np.testing.assert_allclose(v_pe, sol.v, atol=1e-12)


# --------------------------------------------------------------------------- soft Q-learning


def test_soft_q_learning_converges_to_soft_value_iteration(x64):
    """Eq. 25 sampled (stochastic P): within 0.05 (|Q| ~ 5) after 4000 synchronous steps."""
    alpha = 0.5
    mdp = random_mdp(jax.random.PRNGKey(0), 4, 2, gamma=0.8)
    q_star = soft_value_iteration(mdp, alpha, tol=1e-12).q
    res = soft_q_learning(mdp, alpha, 4000, 1.0, jax.random.PRNGKey(1), q_ref=q_star)
    assert float(jnp.max(jnp.abs(res.q - q_star))) < 0.05
    np.testing.assert_allclose(res.error[-1], jnp.max(jnp.abs(res.q - q_star)))
    assert float(res.error[-1]) < 0.2 * float(res.error[99])
    # It learned the *soft* Q: the hard Q (alpha = 0) is much farther away.
    q_hard = soft_value_iteration(mdp, 0.0, tol=1e-12).q
    assert float(jnp.max(jnp.abs(res.q - q_hard))) > 0.3
    # Minibatch sampling of uniformly random pairs converges too.
    res_b = soft_q_learning(mdp, alpha, 4000, 1.0, jax.random.PRNGKey(2), batch_size=4)
    assert float(jnp.max(jnp.abs(res_b.q - q_star))) < 0.15


# --------------------------------------------------------------------------- distribution matching


def test_distribution_matching_deterministic_gridworld(x64):
    """Eq. 29-34 on a deterministic finite-horizon gridworld: the soft-optimal policy (alpha=1)
    reproduces p*(tau) exactly, and every policy has KL = -J + log Z."""
    mdp, _ = gridworld(GRID, goal_rewards=GOALS, step_reward=-0.1, gamma=1.0, horizon=3)
    sol = soft_value_iteration(mdp, 1.0)
    opt = distribution_matching_check(mdp, sol.policy)
    assert abs(float(opt.kl)) < 1e-12
    np.testing.assert_allclose(opt.policy_probs, opt.target_probs, atol=1e-12)
    np.testing.assert_allclose(opt.log_z, start_value(mdp, sol.v), rtol=1e-12)  # log Z = V*(s0)
    np.testing.assert_allclose(opt.policy_probs.sum(), 1.0, rtol=1e-12)

    uniform = jnp.full((5, 4), 0.25)
    time_indexed = np.random.default_rng(0).dirichlet(np.ones(4), size=(3, 5))  # [H, S, A]
    greedy = soft_value_iteration(mdp, 0.0).policy
    for policy in (uniform, time_indexed, greedy, jnp.roll(sol.policy, 1, axis=-1)):
        dm = distribution_matching_check(mdp, policy)
        _, v = policy_evaluation(mdp, policy, 1.0)  # independent: exact backward recursion
        j = start_value(mdp, v)
        np.testing.assert_allclose(dm.objective, j, rtol=1e-10)
        np.testing.assert_allclose(dm.kl, -j + dm.log_z, atol=1e-10)
        assert float(dm.kl) > 1e-3


def test_distribution_matching_with_slip_and_enumeration_guard(x64):
    """With stochastic dynamics p* is unreachable: the soft-optimal policy still minimises the KL
    (it maximises J) but the minimum is positive."""
    mdp, _ = gridworld(GRID, slip=0.3, goal_rewards=GOALS, gamma=1.0, horizon=3)
    sol = soft_value_iteration(mdp, 1.0)
    opt = distribution_matching_check(mdp, sol.policy)
    assert float(opt.kl) > 1e-4
    np.testing.assert_allclose(opt.kl, -start_value(mdp, sol.v) + opt.log_z, atol=1e-10)
    other = distribution_matching_check(mdp, jnp.full((5, 4), 0.25))
    assert float(other.kl) > float(opt.kl)
    traj = trajectory_distribution(mdp, sol.policy)
    assert traj.states.shape == traj.actions.shape == ((5 * 4) ** 3, 3)
    with pytest.raises(ValueError, match="exceeds max_trajectories=1000"):
        trajectory_distribution(mdp, sol.policy, max_trajectories=1000)
    with pytest.raises(ValueError, match="finite-horizon"):
        trajectory_distribution(mdp.replace(horizon=None, gamma=0.9), sol.policy[0])


# --------------------------------------------------------------------------- satisficing


def test_satisficing(x64):
    """Eq. 28: the chosen policy meets the return threshold with maximal entropy on the frontier."""
    mdp, _ = gridworld(GRID, slip=0.1, goal_rewards=GOALS, gamma=0.9)
    res = satisficing(mdp, 0.2)
    assert float(res.alpha) > 0
    assert float(res.expected_return) >= float(res.threshold) - 1e-9
    np.testing.assert_allclose(res.threshold, 0.8 * res.r_max)
    f_ret, f_ent = np.asarray(res.frontier_returns), np.asarray(res.frontier_entropies)
    assert np.all(np.diff(f_ret) <= 1e-9) and np.all(np.diff(f_ent) >= -1e-9)  # monotone in alpha
    assert f_ent[-1] > f_ent[0] + 1.0
    feasible = f_ret >= float(res.threshold)
    assert float(res.discounted_entropy) >= f_ent[feasible].max() - 1e-9
    assert float(res.discounted_entropy) > f_ent[0]

    exact = satisficing(mdp, 0.0)
    assert float(exact.alpha) == 0.0
    np.testing.assert_allclose(exact.expected_return, exact.r_max, rtol=1e-12)
    # Looser constraints admit hotter, more entropic policies.
    tight = satisficing(mdp, 1e-4)
    assert 0.0 < float(tight.alpha) < float(res.alpha)
    assert float(exact.discounted_entropy) <= float(tight.discounted_entropy) < float(res.discounted_entropy)

    # R_max < 0: threshold = R_max - epsilon |R_max| is still below R_max.
    costly, _ = gridworld(GRID, slip=0.1, goal_rewards={"G": 0.0, "g": 0.0}, step_reward=-1.0, gamma=0.9)
    neg = satisficing(costly, 0.2)
    assert float(neg.r_max) < 0 and float(neg.threshold) < float(neg.r_max)
    np.testing.assert_allclose(neg.threshold, 1.2 * neg.r_max)
    assert float(neg.expected_return) >= float(neg.threshold) - 1e-9


# --------------------------------------------------------------------------- builders


def test_gridworld_geometry_and_dynamics():
    mdp, geo = gridworld(["S.#", ".CG"], slip=0.2, step_reward=-1.0, cliff_reward=-10.0)
    assert (geo.height, geo.width, mdp.num_states, mdp.num_actions) == (2, 3, 5, 4)
    assert geo.state_of_cell[0, 2] == -1  # wall
    for s, (r, c) in enumerate(geo.cell_of_state):
        assert geo.state_of_cell[r, c] == s
    np.testing.assert_allclose(np.asarray(mdp.P).sum(-1), 1.0, atol=1e-6)
    start, cliff, goal = 0, int(geo.state_of_cell[1, 1]), int(geo.state_of_cell[1, 2])
    assert bool(mdp.terminal[goal]) and not bool(mdp.terminal[cliff])
    # From (1, 0) moving right hits the cliff w.p. 0.8 + 0.05: sent back to the start, -10 paid.
    s = int(geo.state_of_cell[1, 0])
    assert float(mdp.P[s, 1, cliff]) == 0.0
    np.testing.assert_allclose(mdp.P[s, 1, start], 0.85 + 0.05, rtol=1e-6)  # +0.05: slipped up
    np.testing.assert_allclose(mdp.R[s, 1], -1.0 * 0.15 - 10.0 * 0.85, rtol=1e-6)  # cliff replaces step
    assert "A" in geo.render(start)
    with pytest.raises(ValueError, match="unknown layout character"):
        gridworld(["S.x"])
    with pytest.raises(ValueError, match="start cell"):
        gridworld(["..G"])


def test_cliff_walk_optimal_return_and_builders():
    mdp, _ = cliff_walk()
    sol = soft_value_iteration(mdp, 0.0)
    # 13 steps of -1 along the cliff edge, discounted by 0.99.
    np.testing.assert_allclose(start_value(mdp, sol.v), -(1 - 0.99**13) / 0.01, rtol=1e-5)
    c = chain(6)
    assert c.num_states == 6 and c.num_actions == 2
    m1, m2 = random_mdp(jax.random.PRNGKey(5), 3, 2), random_mdp(jax.random.PRNGKey(5), 3, 2)
    np.testing.assert_array_equal(m1.P, m2.P)


# --------------------------------------------------------------------------- gymnasium


@pytest.mark.parametrize("observation", ["onehot", "index", "coords"])
def test_gym_env_passes_checker(observation):
    env = make_gridworld_env(observation=observation, max_episode_steps=20, render_mode="ansi")
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert "A" in env.render()


def test_gym_env_truncation_vs_termination():
    mdp, geo = gridworld(["S.G"])
    env = TabularEnv(mdp, max_episode_steps=3, geometry=geo)
    env.reset(seed=0)
    # Bump into the left wall: never terminal, truncated exactly at the time limit.
    flags = [env.step(3)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    env.reset(seed=0)
    _, r1, term1, trunc1, _ = env.step(1)
    _, r2, term2, trunc2, info = env.step(1)  # enter the goal
    assert (term1, trunc1, r1) == (False, False, 0.0)
    assert (term2, trunc2, r2) == (True, False, 1.0) and info["state"] == 2
    # Terminating on the last allowed step is a termination, not a truncation.
    env2 = TabularEnv(mdp, max_episode_steps=2)
    env2.reset(seed=0)
    env2.step(1)
    assert env2.step(1)[2:4] == (True, False)


def test_registered_envs():
    register_envs()
    register_envs()  # idempotent
    env = gym.make("softrl/CliffWalk-v0", max_episode_steps=2)
    assert gym.spec("softrl/GridWorld-v0").max_episode_steps == 100
    obs, info = env.reset(seed=1)
    assert obs.shape == (48,) and info["state"] == 36
    _, reward, terminated, truncated, info = env.step(1)  # into the cliff: -100, back to start
    assert (reward, terminated, truncated, info["state"]) == (-100.0, False, False, 36)
    _, _, terminated, truncated, _ = env.step(0)
    assert (terminated, truncated) == (False, True)
    env.close()
