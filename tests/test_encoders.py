"""Tests for softrl.encoders: the MinAtar paper's CNN torso (Young & Tian 2019) and the encoder choice."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl.encoders import MAX_AUTO_SIDE, MinAtarCNN, choose_encoder


def _reference(params, obs: np.ndarray) -> np.ndarray:
    """The torso in numpy float64, written out loop by loop: VALID 3x3 conv, ReLU, flatten (HWC), dense, ReLU."""
    kernel = np.asarray(params["conv"]["kernel"], np.float64)  # [3, 3, C, F]
    bias = np.asarray(params["conv"]["bias"], np.float64)  # [F]
    x = obs.astype(np.float64)  # [B, H, W, C]
    b, h, w, _ = x.shape
    k = kernel.shape[0]
    conv = np.zeros((b, h - k + 1, w - k + 1, kernel.shape[-1]))
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            patch = x[:, i:i + k, j:j + k, :]  # [B, k, k, C]
            conv[:, i, j, :] = np.einsum("bijc,ijcf->bf", patch, kernel) + bias
    flat = np.maximum(conv, 0.0).reshape(b, -1)
    dense = flat @ np.asarray(params["dense"]["kernel"], np.float64) + np.asarray(params["dense"]["bias"], np.float64)
    return np.maximum(dense, 0.0)


@pytest.fixture(scope="module")
def minatar_like():
    """A MinAtar-shaped batch (10x10 frames, 4 binary channels, as Breakout) and initialised torso params."""
    obs = jax.random.bernoulli(jax.random.PRNGKey(1), 0.3, (5, 10, 10, 4))  # bool, like MinAtar
    net = MinAtarCNN()
    params = net.init(jax.random.PRNGKey(0), obs)
    return net, params, obs


def test_shapes_and_parameter_count_are_the_papers(minatar_like):
    net, params, obs = minatar_like
    p = params["params"]
    assert p["conv"]["kernel"].shape == (3, 3, 4, 16)
    # 10x10 -> 8x8x16 = 1024 inputs to the 128-unit layer, as in the paper's network.
    assert p["dense"]["kernel"].shape == (1024, 128)
    assert net.apply(params, obs).shape == (5, 128)
    assert net.apply(params, obs[0]).shape == (128,)  # no batch dim
    assert net.apply(params, obs.reshape(5, 1, 10, 10, 4)).shape == (5, 1, 128)  # two batch dims


def test_matches_a_float64_reference(minatar_like):
    net, params, obs = minatar_like
    got = np.asarray(net.apply(params, obs))
    want = _reference(params["params"], np.asarray(obs))
    assert np.all(want >= 0) and np.any(want > 0)  # ReLU output, not all dead
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_jit_and_vmap_agree_with_the_plain_call(minatar_like):
    net, params, obs = minatar_like
    plain = net.apply(params, obs)
    np.testing.assert_allclose(jax.jit(net.apply)(params, obs), plain, rtol=1e-6, atol=1e-6)
    # vmap over single observations, and over a stack of per-seed parameters (how softrl runs seeds).
    np.testing.assert_allclose(jax.vmap(net.apply, in_axes=(None, 0))(params, obs), plain, rtol=1e-6, atol=1e-6)
    seeds = jax.vmap(net.init, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(2), 3), obs)
    per_seed = jax.jit(jax.vmap(net.apply, in_axes=(0, None)))(seeds, obs)  # [3, 5, 128]
    assert per_seed.shape == (3, 5, 128)
    for s in range(3):
        one = jax.tree.map(lambda x, s=s: x[s], seeds)
        np.testing.assert_allclose(per_seed[s], net.apply(one, obs), rtol=1e-6, atol=1e-6)


def test_gradients_reach_both_layers(minatar_like):
    net, params, obs = minatar_like
    grads = jax.grad(lambda p: jnp.sum(net.apply(p, obs) ** 2))(params)
    assert all(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(grads))


def test_vector_observations_are_refused_by_the_module():
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W, C\].*\(5, 4\)"):
        MinAtarCNN().init(jax.random.PRNGKey(0), jnp.zeros((5, 4)))


@pytest.mark.parametrize(
    ("shape", "requested", "want"),
    [
        ((10, 10, 4), "auto", "cnn"),  # MinAtar Breakout
        ((10, 10, 10), "auto", "cnn"),  # MinAtar Seaquest
        ((4,), "auto", "mlp"),  # CartPole
        ((17,), "auto", "mlp"),  # HalfCheetah
        ((84, 84, 4), "auto", "mlp"),  # too large for a torso without striding
        ((MAX_AUTO_SIDE, MAX_AUTO_SIDE, 3), "auto", "cnn"),
        ((MAX_AUTO_SIDE + 1, 8, 3), "auto", "mlp"),
        ((2, 2, 3), "auto", "mlp"),  # smaller than the 3x3 kernel
        ((10, 10), "auto", "mlp"),  # 2-D: no channel axis
        ((10, 10, 4), "mlp", "mlp"),
        ((4,), "mlp", "mlp"),
        ((10, 10, 4), "cnn", "cnn"),
        ((84, 84, 4), "cnn", "cnn"),  # allowed when asked for
    ],
)
def test_choose_encoder(shape, requested, want):
    assert choose_encoder(shape, requested) == want


@pytest.mark.parametrize("shape", [(4,), (10, 10), (2, 2, 3), (1, 10, 10, 4)])
def test_cnn_on_non_images_is_a_one_line_error_naming_the_shape(shape):
    with pytest.raises(ValueError, match="--encoder cnn") as err:
        choose_encoder(shape, "cnn")
    assert str(shape) in str(err.value) and "\n" not in str(err.value)


def test_unknown_encoder_is_refused():
    with pytest.raises(ValueError, match="unknown encoder 'resnet'.*auto, mlp, cnn"):
        choose_encoder((4,), "resnet")


# ----- the torso in the agents (--encoder) ---------------------------------------------------------------------


def _minatar_spec(algo="dqn", encoder="auto"):
    import gymnasium as gym

    from softrl.agents import make_agent
    from softrl.collect import env_spec
    from softrl.config import AgentConfig
    from softrl.envs import register_envs

    register_envs()
    env = gym.make("softrl/MinAtar-Breakout-v1")
    spec = env_spec(env)
    env.close()
    return make_agent(algo, AgentConfig(hidden=(16, 16), encoder=encoder), spec)


@pytest.mark.parametrize("algo", ["dqn", "soft-dqn", "discrete-sac"])
def test_image_agents_use_the_cnn_and_accept_flat_frames(algo):
    """auto picks the CNN for MinAtar's [10, 10, 4] frames; act gives the same action for a frame and its flat
    copy (policy files and evaluation pass flat ones); the params hold the paper's conv and dense layers."""
    agent = _minatar_spec(algo)
    assert agent.spec.obs_shape == (10, 10, 4)
    state = agent.init(jax.random.PRNGKey(0))
    net = state.critic
    assert "MinAtarCNN_0" in str(jax.tree_util.tree_structure(net))
    frames = jax.random.bernoulli(jax.random.PRNGKey(1), 0.3, (6, 10, 10, 4)).astype(jnp.float32)
    for det in (True, False):
        a_img = agent.act(state, frames, jax.random.PRNGKey(2), det)
        a_flat = agent.act(state, frames.reshape(6, -1), jax.random.PRNGKey(2), det)
        assert a_img.shape == (6,)
        np.testing.assert_array_equal(np.asarray(a_img), np.asarray(a_flat))
    # one frame acts as a batch of one
    greedy = agent.act(state, frames, jax.random.PRNGKey(2), True)
    assert int(agent.act(state, frames[0], jax.random.PRNGKey(2), True)) == int(greedy[0])


def test_encoder_mlp_flattens_and_cnn_on_vectors_is_refused():
    agent = _minatar_spec("dqn", "mlp")
    assert agent.spec.obs_shape is None and agent.spec.obs_dim == 400
    assert "MinAtarCNN" not in str(jax.tree_util.tree_structure(agent.init(jax.random.PRNGKey(0))))
    from softrl.agents import make_agent
    from softrl.agents.base import EnvSpec
    from softrl.config import AgentConfig

    with pytest.raises(ValueError, match="--encoder cnn needs image observations"):
        make_agent("dqn", AgentConfig(encoder="cnn"), EnvSpec(obs_dim=4, num_actions=2))
    with pytest.raises(ValueError, match="--encoder cnn is implemented for dqn"):
        make_agent("sac", AgentConfig(encoder="cnn"), EnvSpec(obs_dim=400, action_dim=2, obs_shape=(10, 10, 4)))
    # continuous agents on images with auto: the MLP on flat frames
    sac = make_agent("sac", AgentConfig(hidden=(8,)), EnvSpec(obs_dim=400, action_dim=2, obs_shape=(10, 10, 4)))
    assert sac.spec.obs_shape is None


def test_cli_encoder_cnn_on_vector_obs_is_one_line_and_writes_nothing(tmp_path, capsys):
    from softrl.cli import main

    run_dir = tmp_path / "run"
    rc = main(["train", "dqn", "--env", "CartPole-v1", "--encoder", "cnn", "--run-dir", str(run_dir),
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--encoder cnn" in err and "(4,)" in err
    assert not run_dir.exists()


def test_cnn_policy_file_round_trip(tmp_path):
    """A CNN agent's policy file rebuilds the CNN (obs_shape through JSON) and acts on env-shaped frames."""
    import gymnasium as gym

    from softrl.config import AgentConfig
    from softrl.policy import load_policy, save_policy

    agent = _minatar_spec("dqn")
    states = jax.vmap(agent.init)(jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)]))
    env = gym.make("softrl/MinAtar-Breakout-v1")
    out = save_policy(tmp_path / "pol", algo="dqn", agent_config=AgentConfig(hidden=(16, 16)), spec=agent.spec,
                      states=states, seeds=[0, 1], env_id="softrl/MinAtar-Breakout-v1", env_kwargs=None,
                      obs_space=env.observation_space, action_space=env.action_space, step=0)
    policy = load_policy(out, seed_index=1)
    assert policy.agent.spec.obs_shape == (10, 10, 4)
    frames = np.stack([env.reset(seed=s)[0] for s in range(5)])  # [5, 10, 10, 4]
    state1 = jax.tree.map(lambda x: x[1], states)
    expect = np.asarray(agent.act(state1, jnp.asarray(frames), jax.random.PRNGKey(0), True))
    np.testing.assert_array_equal(policy(frames), expect)
    env.close()
