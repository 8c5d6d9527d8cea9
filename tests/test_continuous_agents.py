"""Hand-computed targets and losses, equivalences and gradient routing for the continuous family."""

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from softrl import AgentConfig, EnvSpec, make_agent
from softrl.agents import actor_critic, ddpg, sac, svg0, td3, wp
from softrl.agents.base import polyak
from softrl.backups import td_target
from softrl.types import Transition

B, OBS_DIM, D = 5, 3, 2
SPEC = EnvSpec(obs_dim=OBS_DIM, action_dim=D)


def fake_nets(actor, critic):
    tx = optax.sgd(0.0)
    return actor_critic.Nets(actor=actor, critic=critic, actor_opt=tx, critic_opt=tx, alpha_opt=tx)


def linear_critic(params, obs, action):
    """Q_i(s, a) = w_i . a + c_i . s: a critic whose values we can write by hand. -> [2, B]"""
    return action @ params["w"].T + obs @ params["c"].T  # [B, 2]


def critic2(params, obs, action):
    return linear_critic(params, obs, action).T  # [2, B]


def make_state(log_alpha=0.0, **hp):
    base = dict(
        gamma=0.9, tau=0.5, reward_scale=1.0, target_entropy=-2.0, explore_std=0.1,
        target_noise=0.2, target_noise_clip=0.5, actor_std=0.3,
    )
    base.update(hp)
    critic = {"w": jnp.array([[1.0, -2.0], [0.5, 0.5]]), "c": jnp.array([[0.1, 0.0, 0.0], [0.0, 0.2, 0.0]])}
    target_critic = {"w": jnp.array([[2.0, 1.0], [1.0, 1.0]]), "c": jnp.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.5]])}
    actor = {"m": jnp.array([[0.5, -0.5], [0.2, 0.1], [-0.3, 0.4]]), "s": jnp.array([-0.5, -1.0])}
    return actor_critic.State(
        actor=actor, critic=critic, target_actor={"m": actor["m"] * 0.5, "s": actor["s"]},
        target_critic=target_critic, actor_opt=(), critic_opt=(), log_alpha=jnp.float32(log_alpha), alpha_opt=(),
        hp=actor_critic.Hypers(**{k: jnp.float32(v) for k, v in base.items()}), step=jnp.int32(0),
    )


def det_actor(params, obs):
    return jnp.tanh(obs @ params["m"])


def gauss_actor(params, obs):
    mean = obs @ params["m"]
    return mean, jnp.broadcast_to(params["s"], mean.shape)


OBS = jnp.arange(B * OBS_DIM, dtype=jnp.float32).reshape(B, OBS_DIM) / 10.0 - 0.5
KEY = jax.random.PRNGKey(42)


def by_hand_sample(obs, actor, key):
    """The tanh-Gaussian sample and log-prob, written with numpy and the textbook formula."""
    mean = np.asarray(obs) @ np.asarray(actor["m"])
    log_std = np.broadcast_to(np.asarray(actor["s"]), mean.shape)
    eps = np.asarray(jax.random.normal(key, mean.shape))
    u = mean + np.exp(log_std) * eps
    a = np.tanh(u)
    logp = np.sum(-0.5 * eps**2 - log_std - 0.5 * np.log(2 * np.pi) - np.log(1 - a**2), axis=-1)
    return a, logp


@pytest.mark.parametrize("transform", ["none", "jit"])
def test_sac_next_value_by_hand(transform):
    nets = fake_nets(gauss_actor, critic2)
    state = make_state(log_alpha=math.log(0.2))
    fn = sac.next_value if transform == "none" else jax.jit(sac.next_value, static_argnums=0)
    got = fn(nets, state, OBS, KEY)
    a, logp = by_hand_sample(OBS, state.actor, KEY)
    w, c = np.asarray(state.target_critic["w"]), np.asarray(state.target_critic["c"])
    q = a @ w.T + np.asarray(OBS) @ c.T  # [B, 2]
    expected = q.min(axis=1) - 0.2 * logp
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_td_target_by_hand_terminated_cuts_truncated_bootstraps():
    reward = jnp.array([1.0, 1.0, 1.0])
    terminated = jnp.array([False, True, False])  # row 2 is a time-limit truncation: stored as not terminated
    v = jnp.array([10.0, 10.0, -4.0])
    np.testing.assert_allclose(td_target(reward, terminated, 0.9, v), [10.0, 1.0, -2.6], rtol=1e-6)


def test_ddpg_and_td3_next_values_by_hand():
    nets = fake_nets(det_actor, critic2)
    state = make_state()
    a = np.tanh(np.asarray(OBS) @ np.asarray(state.target_actor["m"]))
    w, c = np.asarray(state.target_critic["w"]), np.asarray(state.target_critic["c"])
    q = a @ w.T + np.asarray(OBS) @ c.T
    np.testing.assert_allclose(ddpg.next_value(nets, state, OBS, KEY), q.min(axis=1), rtol=1e-5)
    # TD3 with zero smoothing noise is DDPG's twin-min target; with noise it is clipped smoothing.
    quiet = state.replace(hp=state.hp.replace(target_noise=jnp.float32(0.0)))
    np.testing.assert_allclose(td3.next_value(nets, quiet, OBS, KEY), q.min(axis=1), rtol=1e-5)
    noise = np.clip(0.2 * np.asarray(jax.random.normal(KEY, a.shape)), -0.5, 0.5)
    a_s = np.clip(a + noise, -1, 1)
    q_s = a_s @ w.T + np.asarray(OBS) @ c.T
    np.testing.assert_allclose(td3.next_value(nets, state, OBS, KEY), q_s.min(axis=1), rtol=1e-5)


def test_sac_with_alpha_zero_and_deterministic_actor_gives_ddpg_target():
    """Eq. 12 with alpha = 0 and a point-mass policy is DDPG's target (Eq. 1's critic)."""
    agent_sac = make_agent("sac", AgentConfig(alpha="0", hidden=(16, 16)), SPEC)
    state = agent_sac.init(jax.random.PRNGKey(0))
    assert float(jnp.exp(state.log_alpha)) == 0.0
    m = {"m": jnp.array([[0.5, -0.5], [0.2, 0.1], [-0.3, 0.4]])}
    from softrl.nets import QEnsemble

    qnet = QEnsemble((16, 16), 2)
    target_critic = qnet.init(jax.random.PRNGKey(1), OBS, jnp.zeros((B, D)))
    # a Gaussian with std e^-30: its samples equal tanh(mean) to float32 precision
    sac_nets = fake_nets(lambda p, o: (o @ p["m"], jnp.full((o.shape[0], D), -30.0)), qnet.apply)
    ddpg_nets = fake_nets(lambda p, o: jnp.tanh(o @ p["m"]), qnet.apply)
    s = state.replace(actor=m, target_actor=m, target_critic=target_critic)
    v_sac = sac.next_value(sac_nets, s, OBS, KEY)
    v_ddpg = ddpg.next_value(ddpg_nets, s, OBS, KEY)
    np.testing.assert_allclose(v_sac, v_ddpg, rtol=1e-6, atol=1e-6)


def test_wp_and_sac_targets_differ_exactly_by_the_entropy_term():
    nets = fake_nets(gauss_actor, critic2)
    state = make_state(log_alpha=math.log(0.7))
    _, logp = sac.sample(nets, state.actor, OBS, KEY)
    diff = wp.next_value(nets, state, OBS, KEY) - sac.next_value(nets, state, OBS, KEY)
    np.testing.assert_allclose(diff, 0.7 * logp, rtol=1e-5, atol=1e-5)


def test_losses_by_hand():
    nets = fake_nets(gauss_actor, critic2)
    state = make_state(log_alpha=math.log(0.5))
    # critic loss: sum over critics of 0.5 * MSE
    action = jnp.linspace(-0.9, 0.9, B * D).reshape(B, D)
    batch = Transition(OBS, action, jnp.ones(B), OBS, jnp.zeros(B, bool), jnp.zeros(B, bool))
    y = jnp.linspace(-1.0, 1.0, B)
    q = np.asarray(action) @ np.asarray(state.critic["w"]).T + np.asarray(OBS) @ np.asarray(state.critic["c"]).T
    expected = 0.5 * np.sum(np.mean((q - np.asarray(y)[:, None]) ** 2, axis=0))
    loss, _ = actor_critic.critic_loss(state.critic, nets, batch, y)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # SAC actor loss (Eq. 13): mean(alpha * logp - min_i Q_i)
    a, logp = by_hand_sample(OBS, state.actor, KEY)
    q_pi = a @ np.asarray(state.critic["w"]).T + np.asarray(OBS) @ np.asarray(state.critic["c"]).T
    got, aux = sac.actor_loss(state.actor, nets, state, state.critic, OBS, KEY)
    np.testing.assert_allclose(got, np.mean(0.5 * logp - q_pi.min(axis=1)), rtol=1e-4)
    np.testing.assert_allclose(aux.entropy, -np.mean(logp), rtol=1e-4)
    np.testing.assert_allclose(aux.logp, logp, rtol=1e-4, atol=1e-4)
    # DDPG actor loss (Eq. 1): -mean Q_1(s, mu(s))
    d_nets = fake_nets(det_actor, critic2)
    mu = np.tanh(np.asarray(OBS) @ np.asarray(state.actor["m"]))
    q1 = mu @ np.asarray(state.critic["w"])[0] + np.asarray(OBS) @ np.asarray(state.critic["c"])[0]
    np.testing.assert_allclose(ddpg.actor_loss(state.actor, d_nets, state, state.critic, OBS, KEY)[0], -q1.mean(),
                               rtol=1e-5)
    # SVG(0) actor loss (Eq. 3): fixed noise scale, no entropy
    eps = np.asarray(jax.random.normal(KEY, (B, D)))
    a0 = np.tanh(np.asarray(OBS) @ np.asarray(state.actor["m"]) + 0.3 * eps)
    qs = a0 @ np.asarray(state.critic["w"]).T + np.asarray(OBS) @ np.asarray(state.critic["c"]).T
    np.testing.assert_allclose(svg0.actor_loss(state.actor, nets, state, state.critic, OBS, KEY)[0],
                               -qs.min(axis=1).mean(), rtol=1e-5)


def test_next_value_under_vmap_over_alpha_equals_loop():
    nets = fake_nets(gauss_actor, critic2)
    alphas = jnp.array([0.0, 0.1, 1.0])
    states = jax.vmap(lambda la: make_state(log_alpha=la))(jnp.log(alphas))
    batched = jax.vmap(sac.next_value, in_axes=(None, 0, None, None))(nets, states, OBS, KEY)
    for i, a in enumerate(alphas):
        single = sac.next_value(nets, make_state(log_alpha=float(jnp.log(a))), OBS, KEY)
        np.testing.assert_allclose(batched[i], single, rtol=1e-6)


# ----- real networks: gradient routing ------------------------------------------------------------


def _batch(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return Transition(
        obs=jax.random.normal(k1, (32, OBS_DIM)),
        action=jax.random.uniform(k2, (32, D), minval=-1, maxval=1),
        reward=jax.random.normal(k3, (32,)),
        next_obs=jax.random.normal(k3, (32, OBS_DIM)),
        terminated=jnp.zeros(32, bool),
        truncated=jnp.zeros(32, bool),
    )


@pytest.mark.parametrize("algo", ["ddpg", "td3", "svg0", "wp", "sac"])
def test_gradient_routing(algo):
    cfg = AgentConfig(hidden=(32, 32), policy_delay=1)
    agent = make_agent(algo, cfg, SPEC)
    state = agent.init(jax.random.PRNGKey(0))
    batch = _batch(jax.random.PRNGKey(1))
    module = {"ddpg": ddpg, "td3": td3, "svg0": svg0, "wp": wp, "sac": sac}[algo]
    nets = agent.update.keywords["nets"]
    next_value = getattr(module, "next_value", ddpg.next_value)

    # 1. The critic loss sends no gradient into target networks or the actor (the target is a constant).
    def critic_objective(s):
        y = td_target(batch.reward, batch.terminated, s.hp.gamma, next_value(nets, s, batch.next_obs, KEY))
        return actor_critic.critic_loss(s.critic, nets, batch, y)[0]

    g = jax.grad(critic_objective, allow_int=True)(state)
    for name in ("actor", "target_critic", "target_actor"):
        leaves = jax.tree.leaves(getattr(g, name))
        assert all(float(jnp.max(jnp.abs(x))) == 0.0 for x in leaves), name
    assert any(float(jnp.max(jnp.abs(x))) > 0 for x in jax.tree.leaves(g.critic))

    # 2. A full update changes the critic exactly as a critic-only step would: the actor loss moves no critic weight.
    new_state, metrics = agent.update(state, batch, KEY)
    k_next, _ = jax.random.split(KEY)
    y = td_target(batch.reward, batch.terminated, state.hp.gamma, next_value(nets, state, batch.next_obs, k_next))
    grads = jax.grad(lambda c: actor_critic.critic_loss(c, nets, batch, y)[0])(state.critic)
    upd, _ = nets.critic_opt.update(grads, state.critic_opt, state.critic)
    expected_critic = optax.apply_updates(state.critic, upd)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new_state.critic, expected_critic)
    # 3. Targets move only by Polyak averaging towards the new online weights.
    expected_target = jax.tree.map(lambda t, o: t + state.hp.tau * (o - t), state.target_critic, new_state.critic)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 new_state.target_critic, expected_target)
    # 4. The actor did move, and all metrics are finite.
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), new_state.actor, state.actor)
    assert max(jax.tree.leaves(moved)) > 0
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert int(new_state.step) == 1


def test_fixed_alpha_never_moves_and_auto_alpha_does():
    batch = _batch(jax.random.PRNGKey(1))
    fixed = make_agent("sac", AgentConfig(hidden=(32, 32), alpha="0.3"), SPEC)
    auto = make_agent("sac", AgentConfig(hidden=(32, 32)), SPEC)
    s_fixed, s_auto = fixed.init(KEY), auto.init(KEY)
    for i in range(3):
        s_fixed, _ = fixed.update(s_fixed, batch, jax.random.PRNGKey(i))
        s_auto, _ = auto.update(s_auto, batch, jax.random.PRNGKey(i))
    assert float(jnp.exp(s_fixed.log_alpha)) == pytest.approx(0.3, rel=1e-6)
    assert float(s_auto.log_alpha) != 0.0
    assert float(s_auto.hp.target_entropy) == -D  # SAC paper default: -dim(A)


def test_td3_delays_actor_and_targets():
    agent = make_agent("td3", AgentConfig(hidden=(32, 32)), SPEC)
    state = agent.init(KEY)
    batch = _batch(jax.random.PRNGKey(1))
    s1, _ = agent.update(state, batch, KEY)  # step 1: actor update
    s2, _ = agent.update(s1, batch, KEY)  # step 2: critic only
    same = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), s2.actor, s1.actor)
    assert all(jax.tree.leaves(same))
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), s1.actor, state.actor)
    assert any(jax.tree.leaves(changed))


def test_update_under_vmap_equals_loop():
    agent = make_agent("sac", AgentConfig(hidden=(32, 32)), SPEC)
    keys = jax.random.split(KEY, 3)
    states = jax.vmap(agent.init)(keys)
    batches = jax.vmap(_batch)(keys)
    new, _ = jax.jit(jax.vmap(agent.update))(states, batches, keys)
    for i in range(3):
        single, _ = jax.jit(agent.update)(agent.init(keys[i]), _batch(keys[i]), keys[i])
        for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(single)):
            np.testing.assert_allclose(a[i], b, rtol=2e-5, atol=1e-6)


def test_bad_config_errors():
    with pytest.raises(ValueError, match="gamma"):
        make_agent("sac", AgentConfig(gamma=1.0), SPEC)
    with pytest.raises(ValueError, match="alpha"):
        make_agent("sac", AgentConfig(alpha="-0.1"), SPEC)
    with pytest.raises(ValueError, match="alpha"):
        make_agent("sac", AgentConfig(alpha="hot"), SPEC)
    with pytest.raises(ValueError, match="discrete"):
        make_agent("sac", AgentConfig(), EnvSpec(obs_dim=4, num_actions=2))
    with pytest.raises(ValueError, match="unknown algorithm"):
        make_agent("sax", AgentConfig(), SPEC)
    assert dataclasses.is_dataclass(AgentConfig())


# ----- issue 11: truncation, TD3's delayed targets, the temperature's direction ---------------------------


def test_truncation_bootstraps_through_the_shared_update_by_hand():
    """DDPG's pieces through `actor_critic.update`: a time-limit row (truncated, not terminated) bootstraps,
    exactly as a row that is neither; a terminated row is cut to the reward. Tabular critic over one-hot states
    plus a fixed action term: SGD with step B lands `Q(s, a)` on y, so the new table reads y back."""
    n = 3
    w = np.array([[1.0, -2.0], [0.5, 0.5]])  # Q_i(s, a) = q[i, s] + w_i . a; only q is learned

    def critic(params, obs, action):
        return params["q"] @ obs.T + jnp.asarray(w, jnp.float32) @ action.T  # [2, B]

    sgd = optax.sgd(float(n))
    nets = actor_critic.Nets(det_actor, critic, optax.sgd(0.0), sgd, optax.set_to_zero())
    q, q_target = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]]), np.array([[1.0, 2.0, -1.0], [0.0, 4.0, 1.0]])
    m = np.array([[0.5, -0.5], [0.2, 0.1], [-0.3, 0.4]])
    state = actor_critic.State(
        actor={"m": jnp.asarray(m, jnp.float32)}, critic={"q": jnp.asarray(q, jnp.float32)},
        target_actor={"m": jnp.asarray(2 * m, jnp.float32)}, target_critic={"q": jnp.asarray(q_target, jnp.float32)},
        actor_opt=optax.sgd(0.0).init({}), critic_opt=sgd.init({"q": jnp.zeros((2, n))}),
        log_alpha=jnp.float32(0.0), alpha_opt=optax.set_to_zero().init(jnp.float32(0.0)),
        hp=make_state(gamma=0.9, reward_scale=2.0).hp, step=jnp.int32(0),
    )
    s, s_next, action = [0, 1, 2], [1, 2, 0], np.array([[0.5, -0.5], [0.1, 0.9], [-1.0, 0.0]])
    reward = np.array([1.0, -0.5, 2.0])
    eye = np.eye(n)
    batch = Transition(
        obs=jnp.asarray(eye[s], jnp.float32), action=jnp.asarray(action, jnp.float32),
        reward=jnp.asarray(reward, jnp.float32), next_obs=jnp.asarray(eye[s_next], jnp.float32),
        terminated=jnp.array([False, False, True]), truncated=jnp.array([True, False, True]),
    )
    update = jax.jit(partial(actor_critic.update, nets=nets, next_value=ddpg.next_value, actor_loss=ddpg.actor_loss))
    new, _ = update(state, batch, KEY)
    # by hand: V(s') = min_i q'_i(s') + w_i . tanh(s' @ 2m); y = 2 r + 0.9 (1 - terminated) V(s')
    v_next = np.min(q_target[:, s_next] + w @ np.tanh(eye[s_next] @ (2 * m)).T, axis=0)
    y = 2.0 * reward + 0.9 * np.array([1.0, 1.0, 0.0]) * v_next
    assert y[2] == 4.0 and y[0] != 2.0 * reward[0]
    np.testing.assert_allclose(np.asarray(new.critic["q"])[:, s] + w @ action.T, np.stack([y, y]), rtol=1e-5)
    untruncated, _ = update(state, batch._replace(truncated=jnp.zeros(3, bool)), KEY)
    jax.tree.map(np.testing.assert_array_equal, untruncated, new)


def test_td3_target_networks_move_only_on_actor_steps():
    agent = make_agent("td3", AgentConfig(hidden=(8,)), SPEC)
    state = agent.init(KEY)
    batch = _batch(jax.random.PRNGKey(1))
    update = jax.jit(agent.update)
    for step in range(1, 5):
        new, _ = update(state, batch, jax.random.PRNGKey(step))
        assert any(bool(jnp.any(a != b)) for a, b in zip(jax.tree.leaves(new.critic), jax.tree.leaves(state.critic)))
        if step % 2 == 1:  # steps 1, 3: actor step, then Polyak towards the new online weights
            for target, online in (("target_actor", "actor"), ("target_critic", "critic")):
                expected = polyak(getattr(state, target), getattr(new, online), new.hp.tau)
                jax.tree.map(partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-7), getattr(new, target), expected)
            assert any(bool(jnp.any(a != b)) for a, b in zip(jax.tree.leaves(new.actor), jax.tree.leaves(state.actor)))
        else:  # steps 2, 4: critic only; actor and both targets bitwise unchanged
            for name in ("actor", "target_actor", "target_critic"):
                jax.tree.map(np.testing.assert_array_equal, getattr(new, name), getattr(state, name))
        state = new


def test_sac_auto_alpha_moves_against_the_entropy_gap():
    """Entropy above the target: alpha goes down; below: up (Haarnoja et al. 2018, Eq. 18)."""
    agent = make_agent("sac", AgentConfig(hidden=(8,)), SPEC)
    state = agent.init(KEY)
    batch = _batch(jax.random.PRNGKey(1))
    update = jax.jit(agent.update)
    entropy = float(update(state, batch, KEY)[1]["entropy"])  # the batch estimate the temperature step uses
    for target, sign in ((entropy - 1.0, -1), (entropy + 1.0, +1)):
        s = state.replace(hp=state.hp.replace(target_entropy=jnp.float32(target)))
        new, metrics = update(s, batch, KEY)
        assert float(metrics["entropy"]) == entropy
        assert sign * (float(new.log_alpha) - float(s.log_alpha)) > 0
