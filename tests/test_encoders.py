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
