"""Tests for the discrete agents: dqn, soft-dqn, discrete-sac (Lecture 17, Section 4, Eq. 14-26).

Targets are checked against hand-computed values on tiny tabular Q functions (one-hot states),
eagerly and under jit; then the limits that tie the three together (Eq. 21-26), gradient
routing, acting, errors, learning on CartPole-v1, and the MinAtar adapter.
"""

from __future__ import annotations

import csv
import math
from functools import partial

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import softrl
from softrl.agents import actor_critic, discrete_sac, dqn, soft_dqn
from softrl.agents.base import EnvSpec, polyak, temperature_loss
from softrl.backups import hard_value, soft_policy, soft_value, td_target
from softrl.collect import env_spec
from softrl.config import AgentConfig
from softrl.types import Transition

MODES = {"eager": lambda f: f, "jit": jax.jit}
DISCRETE = ("dqn", "soft-dqn", "discrete-sac")

# ----- tiny tabular problems -------------------------------------------------------------------------------
# 3 states (one-hot observations), 3 actions. Q tables are [num_critics, S, A].

Q1 = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5], [10.0, 10.0, 10.0]]
Q2 = [[2.0, 1.0, 4.0], [1.0, -2.0, 0.0], [0.0, 0.0, 0.0]]
GAMMA, REWARD_SCALE = 0.9, 2.0
# Batch: (s, a, r, s', terminated). All (s, a) pairs distinct, so one SGD step of size B lands on y.
S, A, R, S_NEXT, TERM = [0, 1, 2], [0, 2, 1], [1.0, -0.5, 2.0], [1, 0, 2], [False, False, True]


def one_hot(states) -> jax.Array:
    return jax.nn.one_hot(jnp.asarray(states), 3)  # [B, 3]


def tabular_q(params, obs):
    """Q(s, .) for one-hot obs [B, S] from a table [n, S, A] -> [n, B, A]."""
    return jnp.einsum("bs,nsa->nba", obs, params["q"])


BATCH = Transition(
    obs=one_hot(S),
    action=jnp.asarray(A, jnp.int32),
    reward=jnp.asarray(R, jnp.float32),
    next_obs=one_hot(S_NEXT),
    terminated=jnp.asarray(TERM),
    truncated=jnp.zeros(3, bool),
)


def dqn_nets(lr: float = 3.0, alpha_opt=None) -> dqn.Nets:
    # Plain SGD with step B = 3 moves Q(s, a) exactly onto y: the loss is 0.5 * mean over B of (Q - y)^2.
    return dqn.Nets(q=tabular_q, critic_opt=optax.sgd(lr), alpha_opt=alpha_opt or optax.set_to_zero())


def dqn_state(nets, q_online, q_target, *, alpha=0.0, tau=1.0, every=1, target_entropy=0.0) -> dqn.State:
    critic = {"q": jnp.asarray(q_online, jnp.float32)}
    log_alpha = jnp.log(jnp.asarray(alpha, jnp.float32))  # log 0 = -inf: alpha exactly 0
    f32 = partial(jnp.asarray, dtype=jnp.float32)
    hp = dqn.Hypers(
        gamma=f32(GAMMA),
        tau=f32(tau),
        reward_scale=f32(REWARD_SCALE),
        target_entropy=f32(target_entropy),
        epsilon_start=f32(1.0),
        epsilon_end=f32(0.0),
        epsilon_decay_steps=f32(10.0),
        target_update_every=jnp.asarray(every, jnp.int32),
    )
    return dqn.State(
        critic=critic,
        target_critic={"q": jnp.asarray(q_target, jnp.float32)},
        critic_opt=nets.critic_opt.init(critic),
        log_alpha=log_alpha,
        alpha_opt=nets.alpha_opt.init(log_alpha),
        hp=hp,
        step=jnp.zeros((), jnp.int32),
    )


def lse(q, alpha):
    """`alpha * log sum exp(q / alpha)` in plain Python (Eq. 24)."""
    return alpha * math.log(sum(math.exp(x / alpha) for x in q))


def hand_targets(value_of_state) -> list[float]:
    """`reward_scale * r + gamma * (1 - terminated) * V(s')`, in plain Python (Eq. 12)."""
    return [
        REWARD_SCALE * r + (0.0 if done else GAMMA * value_of_state(s2))
        for r, s2, done in zip(R, S_NEXT, TERM)
    ]


# ----- hand-computed TD targets ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
def test_dqn_target_hand_computed(mode):
    nets = dqn_nets()
    state = dqn_state(nets, [Q1], [Q1])
    # V(s') = max_a Q(s', a): s'=1 -> 0.5, s'=0 -> 3, s'=2 terminal.
    assert hand_targets(lambda s: max(Q1[s])) == pytest.approx([2.45, 1.7, 4.0])
    y = MODES[mode](lambda st, b: dqn.td_targets(nets, st, b, hard_value))(state, BATCH)
    np.testing.assert_allclose(y, [2.45, 1.7, 4.0], rtol=1e-6)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_soft_dqn_target_hand_computed(mode, alpha):
    nets = dqn_nets()
    state = dqn_state(nets, [Q1], [Q1], alpha=alpha)
    expected = hand_targets(lambda s: lse(Q1[s], alpha))  # Eq. 24-25
    y = MODES[mode](lambda st, b: dqn.td_targets(nets, st, b, soft_value))(state, BATCH)
    np.testing.assert_allclose(y, expected, rtol=1e-5)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("algo", ["dqn", "soft-dqn"])
def test_update_regresses_q_onto_the_target(mode, algo):
    """One SGD step of size B on the tabular Q lands Q(s, a) exactly on y: the update uses that target."""
    nets = dqn_nets()
    alpha = 0.0 if algo == "dqn" else 1.0
    backup = hard_value if algo == "dqn" else soft_value
    state = dqn_state(nets, [Q2], [Q1], alpha=alpha)
    new, metrics = MODES[mode](partial(dqn.update, nets=nets, backup=backup))(
        state, BATCH, jax.random.PRNGKey(0)
    )
    y = hand_targets(lambda s: max(Q1[s]) if algo == "dqn" else lse(Q1[s], 1.0))
    np.testing.assert_allclose(new.critic["q"][0, jnp.asarray(S), jnp.asarray(A)], y, rtol=1e-5)
    # Entries outside the batch are untouched.
    untouched = np.ones((3, 3), bool)
    untouched[S, A] = False
    np.testing.assert_array_equal(np.asarray(new.critic["q"][0])[untouched], np.asarray(Q2)[untouched])
    assert int(new.step) == 1
    assert float(metrics["target_mean"]) == pytest.approx(np.mean(y), rel=1e-5)


def dsac_nets(lr: float = 3.0) -> actor_critic.Nets:
    return actor_critic.Nets(
        actor=lambda params, obs: obs @ params["logits"],  # [B, S] @ [S, A] -> logits [B, A]
        critic=partial(discrete_sac.gather_critic, tabular_q),
        actor_opt=optax.sgd(0.1),
        critic_opt=optax.sgd(lr),
        alpha_opt=optax.set_to_zero(),
    )


def dsac_state(nets, logits, *, alpha=0.5, tau=0.5) -> actor_critic.State:
    actor = {"logits": jnp.asarray(logits, jnp.float32)}
    critic = {"q": jnp.asarray([Q2, Q1], jnp.float32)}  # online critics differ from the targets
    log_alpha = jnp.log(jnp.asarray(alpha, jnp.float32))
    f32 = partial(jnp.asarray, dtype=jnp.float32)
    hp = actor_critic.Hypers(
        gamma=f32(GAMMA),
        tau=f32(tau),
        reward_scale=f32(REWARD_SCALE),
        target_entropy=f32(0.3),
        explore_std=f32(0.0),
        target_noise=f32(0.0),
        target_noise_clip=f32(0.0),
        actor_std=f32(0.0),
    )
    return actor_critic.State(
        actor=actor,
        critic=critic,
        target_actor=None,
        target_critic={"q": jnp.asarray([Q1, Q2], jnp.float32)},
        actor_opt=nets.actor_opt.init(actor),
        critic_opt=nets.critic_opt.init(critic),
        log_alpha=log_alpha,
        alpha_opt=nets.alpha_opt.init(log_alpha),
        hp=hp,
        step=jnp.zeros((), jnp.int32),
    )


PI = [[0.25, 0.25, 0.5], [0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]  # actor's pi(.|s) per state
LOGITS = np.log(PI)


def dsac_hand_value(s: int, alpha: float = 0.5) -> float:
    """`sum_a pi(a|s') [min(Q1, Q2)(s', a) - alpha log pi(a|s')]` in plain Python (Eq. 21)."""
    q_min = [min(a, b) for a, b in zip(Q1[s], Q2[s])]
    return sum(p * (q - alpha * math.log(p)) for p, q in zip(PI[s], q_min))


@pytest.mark.parametrize("mode", list(MODES))
def test_discrete_sac_target_hand_computed(mode):
    nets = dsac_nets()
    state = dsac_state(nets, LOGITS)
    # s'=1: min Q = [0, -2, 0], pi = [.5, .25, .25]: .5*(0 + .5 ln 2) + .25*(-2 + .5 ln 4) + .25*(.5 ln 4).
    assert dsac_hand_value(1) == pytest.approx(0.5 * 0.5 * math.log(2) - 0.5 + 0.25 * math.log(4))
    expected = hand_targets(dsac_hand_value)

    def target(st, b):
        v = discrete_sac.next_value(nets, st, b.next_obs, jax.random.PRNGKey(0))  # [B]
        return td_target(st.hp.reward_scale * b.reward, b.terminated, st.hp.gamma, v)

    np.testing.assert_allclose(MODES[mode](target)(state, BATCH), expected, rtol=1e-5)

    # Through actor_critic.update: both online critics land on y (SGD step B), so the update used this target.
    update = partial(
        actor_critic.update,
        nets=nets,
        next_value=discrete_sac.next_value,
        actor_loss=discrete_sac.actor_loss,
    )
    new, _ = MODES[mode](update)(state, BATCH, jax.random.PRNGKey(1))
    for i in range(2):
        np.testing.assert_allclose(new.critic["q"][i, jnp.asarray(S), jnp.asarray(A)], expected, rtol=1e-5)


# ----- the limits that tie the family together (Eq. 20-26) -------------------------------------------------


def test_soft_dqn_with_alpha_zero_is_dqn_exactly():
    """Same init, same batch: the targets and the whole update are bitwise DQN's (Eq. 26)."""
    spec = EnvSpec(obs_dim=4, num_actions=3)
    cfg = AgentConfig(hidden=(16,), alpha="0")
    agents = {name: softrl.make_agent(name, cfg, spec) for name in ("dqn", "soft-dqn")}
    states = {name: a.init(jax.random.PRNGKey(3)) for name, a in agents.items()}
    assert float(states["soft-dqn"].log_alpha) == -np.inf
    rng = np.random.default_rng(0)
    batch = Transition(
        obs=jnp.asarray(rng.normal(size=(32, 4)), jnp.float32),
        action=jnp.asarray(rng.integers(0, 3, 32), jnp.int32),
        reward=jnp.asarray(rng.normal(size=32), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(32, 4)), jnp.float32),
        terminated=jnp.asarray(rng.random(32) < 0.3),
        truncated=jnp.zeros(32, bool),
    )
    nets = agents["dqn"].update.keywords["nets"]
    y_dqn = dqn.td_targets(nets, states["dqn"], batch, hard_value)
    y_soft = jax.jit(lambda s, b: dqn.td_targets(nets, s, b, soft_value))(states["soft-dqn"], batch)
    np.testing.assert_array_equal(y_dqn, y_soft)
    new = {name: jax.jit(a.update)(states[name], batch, jax.random.PRNGKey(0)) for name, a in agents.items()}
    jax.tree.map(np.testing.assert_array_equal, new["dqn"][0].critic, new["soft-dqn"][0].critic)
    # The metric is a mean over the batch: XLA may sum in a different order in the two programs.
    assert float(new["dqn"][1]["target_mean"]) == pytest.approx(
        float(new["soft-dqn"][1]["target_mean"]), rel=1e-6
    )


def test_soft_dqn_target_tends_to_dqn_target_as_alpha_goes_to_zero():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(1, 3, 3)) * 5.0
    nets = dqn_nets()
    hard = dqn.td_targets(nets, dqn_state(nets, q, q), BATCH, hard_value)
    gaps = []
    for alpha in [2.0, 0.5, 0.1, 0.01, 1e-3]:
        soft = dqn.td_targets(nets, dqn_state(nets, q, q, alpha=alpha), BATCH, soft_value)
        gap = np.asarray(soft - hard)
        # max Q <= soft value <= max Q + alpha log|A| (Eq. 24-26), discounted by gamma.
        assert np.all(gap >= -1e-5) and np.all(gap <= GAMMA * alpha * math.log(3) + 1e-5)
        gaps.append(float(np.max(gap)))
    assert all(a >= b for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-2 < gaps[0]


@pytest.mark.parametrize("alpha", [0.3, 1.0, 4.0])
def test_discrete_sac_with_optimal_actor_gives_soft_value(alpha):
    """With pi = softmax(min Q' / alpha) the exact expectation of Eq. 21 is alpha logsumexp (Eq. 22-24)."""
    nets = dsac_nets()
    q_min = np.minimum(np.asarray(Q1), np.asarray(Q2))  # [S, A]
    state = dsac_state(nets, q_min / alpha, alpha=alpha)
    v = discrete_sac.next_value(nets, state, one_hot([0, 1, 2]), jax.random.PRNGKey(0))
    np.testing.assert_allclose(v, soft_value(jnp.asarray(q_min), alpha), rtol=1e-5, atol=1e-5)
    # Any other actor gives less (the softmax is the maximiser of Eq. 14).
    worse = discrete_sac.next_value(nets, dsac_state(nets, LOGITS, alpha=alpha), one_hot([0, 1, 2]), None)
    assert np.all(np.asarray(worse) <= np.asarray(v) + 1e-5)


# ----- gradient routing and targets ------------------------------------------------------------------------


def _dsac_agent_and_batch(seed=0):
    spec = EnvSpec(obs_dim=4, num_actions=3)
    agent = softrl.make_agent("discrete-sac", AgentConfig(hidden=(16, 16), tau=0.1), spec)
    state = agent.init(jax.random.PRNGKey(seed))
    rng = np.random.default_rng(seed)
    batch = Transition(
        obs=jnp.asarray(rng.normal(size=(8, 4)), jnp.float32),
        action=jnp.asarray(rng.integers(0, 3, 8), jnp.int32),
        reward=jnp.asarray(rng.normal(size=8), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(8, 4)), jnp.float32),
        terminated=jnp.asarray(rng.random(8) < 0.3),
        truncated=jnp.zeros(8, bool),
    )
    return agent, agent.update.keywords["nets"], state, batch


def _norm(tree) -> float:
    return float(optax.tree.norm(tree))


def test_discrete_sac_actor_loss_gives_critics_no_gradient():
    agent, nets, state, batch = _dsac_agent_and_batch()
    grad = jax.grad(discrete_sac.actor_loss, argnums=(0, 3), has_aux=True)
    (grad_actor, grad_critic), _ = jax.jit(lambda a, c: grad(a, nets, state, c, batch.obs, None))(
        state.actor, state.critic
    )
    assert _norm(grad_actor) > 0
    assert _norm(grad_critic) == 0.0


def test_discrete_sac_target_critic_gets_no_gradient():
    agent, nets, state, batch = _dsac_agent_and_batch()

    def loss(critic, target_critic):
        s = state.replace(target_critic=target_critic)
        y = td_target(
            batch.reward, batch.terminated, s.hp.gamma, discrete_sac.next_value(nets, s, batch.next_obs, None)
        )
        return actor_critic.critic_loss(critic, nets, batch, y)[0]

    g_critic, g_target = jax.jit(jax.grad(loss, argnums=(0, 1)))(state.critic, state.target_critic)
    assert _norm(g_critic) > 0
    assert _norm(g_target) == 0.0


def test_discrete_sac_update_routes_each_loss_to_its_own_parameters():
    """The critic after a full update is exactly the critic-only step: the actor loss did not move it.
    The target critic is only the Polyak average; the actor and alpha moved."""
    agent, nets, state, batch = _dsac_agent_and_batch()
    new, metrics = jax.jit(agent.update)(state, batch, jax.random.PRNGKey(0))

    @jax.jit
    def critic_step_only(state):
        v = discrete_sac.next_value(nets, state, batch.next_obs, None)
        y = td_target(batch.reward, batch.terminated, state.hp.gamma, v)
        grad = jax.grad(lambda c: actor_critic.critic_loss(c, nets, batch, y)[0])(state.critic)
        updates, _ = nets.critic_opt.update(grad, state.critic_opt, state.critic)
        return optax.apply_updates(state.critic, updates)

    expected_critic = critic_step_only(state)
    jax.tree.map(partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6), new.critic, expected_critic)
    expected_target = polyak(state.target_critic, new.critic, state.hp.tau)
    jax.tree.map(
        partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-7), new.target_critic, expected_target
    )
    assert _norm(jax.tree.map(jnp.subtract, new.actor, state.actor)) > 0
    assert float(new.log_alpha) != float(state.log_alpha)
    assert int(new.step) == 1
    assert set(metrics) >= {"critic_loss", "actor_loss", "alpha", "alpha_loss", "entropy"}
    assert all(np.ndim(m) == 0 for m in metrics.values())


def test_dqn_target_network_hard_copy_every_n_and_polyak():
    nets = dqn_nets(lr=0.1)
    state = dqn_state(nets, [Q2], [Q1], tau=1.0, every=3)
    update = jax.jit(partial(dqn.update, nets=nets))
    for step in range(1, 7):
        before = state.target_critic["q"]
        state, _ = update(state, BATCH, None)
        if step % 3 == 0:
            np.testing.assert_array_equal(state.target_critic["q"], state.critic["q"])
        else:
            np.testing.assert_array_equal(state.target_critic["q"], before)
    state = dqn_state(nets, [Q2], [Q1], tau=0.25, every=3)  # tau < 1: Polyak after every update
    new, _ = update(state, BATCH, None)
    np.testing.assert_allclose(
        new.target_critic["q"], 0.75 * np.asarray([Q1]) + 0.25 * new.critic["q"], rtol=1e-6
    )


def test_soft_dqn_temperature_moves_alpha_towards_the_target_entropy():
    nets = dqn_nets(alpha_opt=optax.sgd(0.1))
    update = jax.jit(partial(dqn.update, nets=nets, backup=soft_value, temperature_loss=temperature_loss))
    flat = np.zeros((1, 3, 3))  # softmax is uniform: entropy log 3 > target -> alpha must fall
    peaked = np.asarray([[[0.0, 0.0, 50.0]] * 3])  # entropy ~0 < target -> alpha must rise
    target = 0.5 * math.log(3)
    for q, sign in [(flat, -1), (peaked, +1)]:
        state = dqn_state(nets, q, q, alpha=1.0, target_entropy=target)
        new, metrics = update(state, BATCH, None)
        assert sign * (float(new.log_alpha) - float(state.log_alpha)) > 0
        assert float(metrics["entropy"]) == pytest.approx(math.log(3) if sign < 0 else 0.0, abs=1e-3)


# ----- acting ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", DISCRETE)
def test_act_vmapped_over_seeds_gives_int_scalars(algo):
    spec = EnvSpec(obs_dim=4, num_actions=3)
    agent = softrl.make_agent(algo, AgentConfig(hidden=(8,)), spec)
    states = jax.vmap(agent.init)(jax.random.split(jax.random.PRNGKey(0), 5))
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(1), 5)
    for deterministic in (False, True):
        act = jax.jit(jax.vmap(agent.act, in_axes=(0, 0, 0, None)), static_argnums=3)
        action = act(states, obs, keys, deterministic)
        assert action.shape == (5,) and action.dtype == jnp.int32
        assert np.all((np.asarray(action) >= 0) & (np.asarray(action) < 3))


def test_epsilon_decays_linearly_with_the_update_counter():
    nets = dqn_nets()
    state = dqn_state(nets, [Q1], [Q1])  # epsilon 1 -> 0 over 10 updates
    for step, eps in [(0, 1.0), (5, 0.5), (10, 0.0), (1000, 0.0)]:
        assert float(dqn.epsilon(state.replace(step=jnp.asarray(step, jnp.int32)))) == pytest.approx(eps)
    obs = one_hot([0])[0]
    keys = jax.random.split(jax.random.PRNGKey(0), 3000)
    act = jax.vmap(lambda k, st: dqn.epsilon_greedy(nets, st, obs, k)[0], in_axes=(0, None))
    freq = np.bincount(np.asarray(act(keys, state)), minlength=3) / 3000  # epsilon 1: uniform
    np.testing.assert_allclose(freq, [1 / 3] * 3, atol=0.04)
    greedy = act(keys, state.replace(step=jnp.asarray(10, jnp.int32)))  # epsilon 0: argmax Q(s0) = 2
    assert np.all(np.asarray(greedy) == 2)
    assert int(dqn.greedy(nets, state, obs)) == 2


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_soft_dqn_samples_the_boltzmann_policy(alpha):
    """Behaviour policy softmax(Q / alpha) (Eq. 20); deterministic acting is argmax."""
    nets = dqn_nets()
    state = dqn_state(nets, [Q1], [Q1], alpha=alpha)
    obs = one_hot([0])[0]
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    actions = jax.vmap(lambda k: soft_dqn.boltzmann(nets, state, obs, k)[0])(keys)
    freq = np.bincount(np.asarray(actions), minlength=3) / len(keys)
    np.testing.assert_allclose(freq, soft_policy(jnp.asarray(Q1[0]), alpha), atol=0.015)
    assert int(dqn.greedy(nets, state, obs)) == 2
    # alpha = 0: greedy, no exploration at all.
    zero = jax.vmap(lambda k: soft_dqn.boltzmann(nets, dqn_state(nets, [Q1], [Q1]), obs, k)[0])(keys[:100])
    assert np.all(np.asarray(zero) == 2)


# ----- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", DISCRETE)
def test_box_action_space_is_refused_with_a_fix(algo):
    with pytest.raises(ValueError, match=r"needs a discrete action space.*sac, td3, ddpg"):
        softrl.make_agent(algo, AgentConfig(), EnvSpec(obs_dim=3, action_dim=1))


def test_sac_on_cartpole_is_refused_with_a_fix():
    env = gym.make("CartPole-v1")
    spec = env_spec(env)
    env.close()
    with pytest.raises(ValueError, match="discrete"):
        softrl.make_agent("sac", AgentConfig(), spec)


def test_default_target_entropy_is_a_fraction_of_log_actions():
    spec = EnvSpec(obs_dim=4, num_actions=2)
    for algo in ("soft-dqn", "discrete-sac"):
        state = softrl.make_agent(algo, AgentConfig(hidden=(8,)), spec).init(jax.random.PRNGKey(0))
        assert float(state.hp.target_entropy) == pytest.approx(0.5 * math.log(2))
    assert dqn.default_target_entropy(AgentConfig(target_entropy_scale=0.3), 6) == pytest.approx(
        0.3 * math.log(6)
    )
    assert dqn.default_target_entropy(AgentConfig(target_entropy=0.1), 6) == 0.1


# ----- training loop ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", DISCRETE)
def test_resume_is_bitwise_identical(tmp_path, algo):
    """The states (log_alpha = -inf for dqn included) survive checkpoints; a resumed run is the same run."""

    def cfg(name, total_steps):
        return softrl.TrainConfig(
            algo=algo,
            env="CartPole-v1",
            seeds=2,
            total_steps=total_steps,
            learning_starts=50,
            eval_every=0,
            eval_episodes=1,
            log_every=50,
            checkpoint_every=100,
            progress=False,
            run_dir=str(tmp_path / name),
            agent=AgentConfig(hidden=(16,), batch_size=16, epsilon_decay_steps=100),
        )

    full = softrl.train(cfg("full", 250))
    softrl.train(cfg("part", 150))
    resumed = softrl.train(cfg("part", 250), resume=tmp_path / "part")
    assert np.all(full.updates == 201) and np.all(resumed.updates == 201)
    for x, y in zip(jax.tree.leaves(full.states), jax.tree.leaves(resumed.states)):
        np.testing.assert_array_equal(x, y)


# ----- learning on CartPole-v1 (the issue asks for these in CI) --------------------------------------------
# Each: 3 seeds in one process, final deterministic evaluation of 10 episodes per seed, median over
# seeds of the mean return >= 450. Budgets and settings were chosen from evaluations every 2.5k steps
# on 6 seeds each: dqn and soft-dqn were at >= 450 in 16 of 18 evaluations at 25k-30k steps (they
# still oscillate; Polyak 0.01 with batch 256 oscillated least), discrete-sac in 18 of 18 at 15k-25k.


def _train_cartpole(tmp_path, algo: str, total_steps: int, **agent) -> softrl.TrainResult:
    cfg = softrl.TrainConfig(
        algo=algo,
        env="CartPole-v1",
        seeds=3,
        total_steps=total_steps,
        learning_starts=1_000,
        eval_every=0,
        eval_episodes=10,
        progress=False,
        run_dir=str(tmp_path),
        agent=softrl.AgentConfig(hidden=(128, 128), lr=1e-3, **agent),
    )
    result = softrl.train(cfg)
    assert result.eval_returns.shape == (3, 10)
    return result


def _median_return(result: softrl.TrainResult) -> float:
    return float(np.median(result.eval_returns.mean(axis=1)))


def test_dqn_learns_cartpole(tmp_path):
    result = _train_cartpole(
        tmp_path, "dqn", 30_000, batch_size=256, tau=0.01, epsilon_end=0.1, epsilon_decay_steps=5_000
    )
    assert np.all(result.updates == 29_001)
    assert _median_return(result) >= 450, result.eval_returns.mean(axis=1)


def test_soft_dqn_learns_cartpole(tmp_path):
    result = _train_cartpole(tmp_path, "soft-dqn", 30_000, batch_size=256, tau=0.01, alpha="auto")
    assert np.all(np.isfinite(np.asarray(result.states.log_alpha)))
    assert _median_return(result) >= 450, result.eval_returns.mean(axis=1)


def test_discrete_sac_learns_cartpole_with_finite_alpha(tmp_path):
    result = _train_cartpole(tmp_path, "discrete-sac", 20_000, batch_size=128, tau=0.02, alpha="auto")
    log_alpha = np.asarray(result.states.log_alpha)
    assert np.all(np.isfinite(log_alpha)), log_alpha
    logged = []
    for seed in result.seeds:
        with open(tmp_path / f"seed_{seed}" / "train.csv") as f:
            logged += [float(row["alpha"]) for row in csv.DictReader(f)]
    assert len(logged) >= 3 * 19 and np.all(np.isfinite(logged))
    # Finite is not enough: a diverging alpha (the 0.98 log|A| trap) is finite but huge. We saw <= 1.
    assert max(logged) < 10.0 and np.all(np.exp(log_alpha) < 10.0)
    assert _median_return(result) >= 450, result.eval_returns.mean(axis=1)


# ----- soft-dqn against the exact soft Q (Eq. 24-25) ------------------------------------------------------


def test_soft_dqn_reaches_the_exact_soft_q_on_a_chain(tmp_path):
    """soft-dqn with one-hot observations on a deterministic 4-state chain, fixed alpha, learns the Q that
    `soft_value_iteration` computes exactly, within 0.05 (the exact Q spans ~1.7 to ~3.0).

    Time-limit truncation bootstraps, so the continuing chain's discounted soft Q is the right answer.
    The Boltzmann behaviour policy at alpha 0.5 visits every (s, a) often.
    """
    from softrl.tabular import chain, soft_value_iteration

    alpha, gamma, n = 0.5, 0.9, 4
    env_id = "softrl-test/SoftChain-v0"
    if env_id not in gym.registry:
        gym.register(
            env_id,
            entry_point="softrl.tabular.gym_env:make_chain_env",
            kwargs={"n": n, "slip": 0.0},
            max_episode_steps=20,
        )
    exact = soft_value_iteration(chain(n, slip=0.0, gamma=gamma), alpha, tol=1e-10)
    cfg = softrl.TrainConfig(
        algo="soft-dqn",
        env=env_id,
        seeds=2,
        total_steps=6_000,
        learning_starts=500,
        eval_every=0,
        eval_episodes=1,
        progress=False,
        run_dir=str(tmp_path),
        agent=softrl.AgentConfig(hidden=(64,), lr=1e-3, batch_size=64, gamma=gamma, tau=0.01, alpha=str(alpha)),
    )
    result = softrl.train(cfg)
    nets = result.agent.update.keywords["nets"]
    obs = jnp.eye(n, dtype=jnp.float32)  # every state, one-hot
    q = jax.vmap(lambda st: dqn.q_values(nets, st.critic, obs))(result.states)  # [seeds, S, A]
    err = np.abs(np.asarray(q) - np.asarray(exact.q)[None])
    assert err.max() < 0.05, (err.max(axis=(1, 2)), np.asarray(q), np.asarray(exact.q))


# ----- MinAtar adapter -------------------------------------------------------------------------------------


@pytest.fixture
def minatar_ids():
    import minatar  # noqa: F401  (in the [dev] extra: a missing package must fail here, not skip)

    from softrl.envs import register_envs

    register_envs()
    return ["softrl/MinAtar-Breakout-v1", "softrl/MinAtar-SpaceInvaders-v1"]


def test_minatar_passes_env_checker(minatar_ids):
    from gymnasium.utils.env_checker import check_env

    for env_id in minatar_ids:
        env = gym.make(env_id)
        check_env(env.unwrapped, skip_render_check=True)
        assert env.spec.max_episode_steps is not None
        env.close()


def test_minatar_random_rollout(minatar_ids):
    for env_id in minatar_ids:
        env = gym.make(env_id)
        assert isinstance(env.action_space, gym.spaces.Discrete)
        obs, _ = env.reset(seed=0)
        env.action_space.seed(0)
        episodes, total_reward = 0, 0.0
        for _ in range(500):
            assert obs.dtype == np.float32 and obs.shape[:2] == (10, 10) and obs.ndim == 3
            assert env.observation_space.contains(obs)
            assert set(np.unique(obs)) <= {0.0, 1.0}
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total_reward += reward
            if terminated or truncated:
                episodes += 1
                obs, _ = env.reset()
        assert episodes >= 1 and math.isfinite(total_reward)
        env.close()


def test_minatar_reset_seed_fixes_the_episode(minatar_ids):
    def rollout(seed):
        env = gym.make(minatar_ids[0])
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(i % env.action_space.n)[0] for i in range(50)]
        env.close()
        return np.stack(frames)

    np.testing.assert_array_equal(rollout(1), rollout(1))


@pytest.mark.parametrize("algo", ["dqn", "discrete-sac"])  # soft-dqn shares dqn's network
def test_minatar_smoke_trains_the_cnn(minatar_ids, tmp_path, algo):
    """MinAtar frames reach the agents as images: the replay holds [10, 10, C] and the networks are the CNN."""
    cfg = softrl.TrainConfig(
        algo=algo,
        env=minatar_ids[0],
        seeds=1,
        total_steps=300,
        learning_starts=100,
        eval_every=0,
        eval_episodes=1,
        progress=False,
        run_dir=str(tmp_path),
        agent=softrl.AgentConfig(hidden=(32,), batch_size=32),
    )
    result = softrl.train(cfg)
    assert np.all(result.updates > 0)
    assert np.all(np.isfinite(result.eval_returns))
    assert result.agent.spec.obs_shape is not None and result.agent.spec.obs_shape[:2] == (10, 10)
    params = result.states.critic
    assert "MinAtarCNN_0" in str(jax.tree_util.tree_structure(params))


# ----- issue 11: truncation, the temperature's direction, the actor loss by hand ---------------------------


@pytest.mark.parametrize("algo", ["dqn", "soft-dqn"])
def test_truncation_bootstraps_through_dqn_update(algo):
    """A time-limit row (truncated, not terminated) bootstraps like a row that is neither; the terminated row
    (truncated too here) is cut to the reward. SGD with step B lands Q(s, a) on the hand-computed y."""
    nets = dqn_nets()
    alpha, backup = (0.0, hard_value) if algo == "dqn" else (1.0, soft_value)
    state = dqn_state(nets, [Q2], [Q1], alpha=alpha)
    truncated = BATCH._replace(truncated=jnp.asarray([True, False, True]))
    update = jax.jit(partial(dqn.update, nets=nets, backup=backup))
    new, _ = update(state, truncated, None)
    y = hand_targets(lambda s: max(Q1[s]) if algo == "dqn" else lse(Q1[s], 1.0))  # TERM = [F, F, T]
    assert y[2] == REWARD_SCALE * R[2]
    np.testing.assert_allclose(new.critic["q"][0, jnp.asarray(S), jnp.asarray(A)], y, rtol=1e-5)
    jax.tree.map(np.testing.assert_array_equal, update(state, BATCH, None)[0], new)


def test_discrete_sac_auto_alpha_moves_against_the_entropy_gap():
    """Entropy above the target: alpha goes down; below: up. The entropy is exact, `-sum_a pi log pi`."""
    agent, nets, state, batch = _dsac_agent_and_batch()
    update = jax.jit(agent.update)
    entropy = float(update(state, batch, jax.random.PRNGKey(0))[1]["entropy"])
    assert 0.0 < entropy <= math.log(3) + 1e-6
    for target, sign in ((entropy - 0.2, -1), (entropy + 0.2, +1)):
        s = state.replace(hp=state.hp.replace(target_entropy=jnp.float32(target)))
        new, _ = update(s, batch, jax.random.PRNGKey(0))
        assert sign * (float(new.log_alpha) - float(s.log_alpha)) > 0


def test_discrete_sac_actor_loss_and_gradient_by_hand():
    """`mean_s sum_a pi (alpha log pi - min_i Q_i)` (Eq. 13-14) and its gradient in the logits,
    `pi_j (g_j - sum_a pi_a g_a) / B` with `g = alpha log pi - min Q`, in numpy float64."""
    alpha = 0.5
    nets = dsac_nets()
    state = dsac_state(nets, LOGITS, alpha=alpha)
    obs = one_hot([0, 1, 2, 1])  # state 1 twice
    (loss, aux), grad = jax.value_and_grad(discrete_sac.actor_loss, has_aux=True)(
        state.actor, nets, state, state.critic, obs, None
    )
    pi = np.asarray(PI, np.float64)[[0, 1, 2, 1]]
    q_min = np.minimum(np.asarray(Q1), np.asarray(Q2))[[0, 1, 2, 1]]  # online critics are [Q2, Q1]
    g = alpha * np.log(pi) - q_min
    np.testing.assert_allclose(loss, np.mean(np.sum(pi * g, axis=1)), rtol=1e-6)
    np.testing.assert_allclose(aux.logp, np.sum(pi * np.log(pi), axis=1), rtol=1e-6)
    np.testing.assert_allclose(aux.entropy, -np.mean(np.sum(pi * np.log(pi), axis=1)), rtol=1e-6)
    per_row = pi * (g - np.sum(pi * g, axis=1, keepdims=True)) / len(pi)  # d loss / d logits of each row
    expected = np.zeros((3, 3))
    np.add.at(expected, [0, 1, 2, 1], per_row)
    np.testing.assert_allclose(grad["logits"], expected, rtol=1e-5, atol=1e-7)
