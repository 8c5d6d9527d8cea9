"""Tanh-Gaussian: log-prob against a numerical change of variables, entropy, bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl import dists


def _naive_logp(u, mean, log_std):
    """log N(u) - log|det d tanh(u)/du|, with the Jacobian from jax.jacfwd (no identities used)."""
    jac = jax.jacfwd(jnp.tanh)(u)  # [d, d], diagonal
    _, logdet = jnp.linalg.slogdet(jac)
    std = jnp.exp(log_std)
    base = jnp.sum(-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi))
    return base - logdet


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_prob_matches_change_of_variables(seed):
    key_m, key_s, key_e = jax.random.split(jax.random.PRNGKey(seed), 3)
    mean = jax.random.normal(key_m, (4,))
    log_std = jax.random.uniform(key_s, (4,), minval=-1.5, maxval=0.5)
    action, logp = dists.tanh_gaussian_sample(key_e, mean, log_std)
    eps = jax.random.normal(key_e, (4,))
    u = mean + jnp.exp(log_std) * eps
    np.testing.assert_allclose(action, np.tanh(u), rtol=1e-6)
    np.testing.assert_allclose(logp, _naive_logp(u, mean, log_std), rtol=1e-5, atol=1e-5)
    # and the log-prob of the given action agrees
    np.testing.assert_allclose(dists.tanh_gaussian_log_prob(action, mean, log_std), logp, rtol=1e-4, atol=1e-4)


def test_stable_log_det_is_finite_where_naive_form_fails():
    u = jnp.array([0.0, 3.0, 10.0, 25.0, -25.0])
    stable = jax.vmap(lambda x: dists.tanh_log_det(x[None]))(u)
    assert np.all(np.isfinite(stable))
    np.testing.assert_allclose(stable[:2], np.log(1 - np.tanh(np.array([0.0, 3.0])) ** 2), rtol=1e-5)
    naive = jnp.log(1 - jnp.tanh(u) ** 2)
    assert not np.all(np.isfinite(naive))  # the form we avoid: log(0) for |u| >~ 9 in float32


def test_density_integrates_to_one_and_mc_entropy_matches_quadrature():
    mean, log_std = jnp.array([0.4]), jnp.array([-0.3])
    a = np.linspace(-1 + 1e-6, 1 - 1e-6, 200_001)
    logp = jax.vmap(lambda x: dists.tanh_gaussian_log_prob(x[None], mean, log_std))(jnp.asarray(a, jnp.float32))
    p = np.exp(np.asarray(logp, np.float64))
    da = a[1] - a[0]
    assert abs(np.sum(p) * da - 1.0) < 1e-3
    entropy_quad = -np.sum(p * np.asarray(logp, np.float64)) * da
    keys = jax.random.split(jax.random.PRNGKey(0), 200_000)
    _, logps = jax.vmap(lambda k: dists.tanh_gaussian_sample(k, mean, log_std))(keys)
    entropy_mc = -float(jnp.mean(logps))
    assert abs(entropy_mc - entropy_quad) < 0.01, (entropy_mc, entropy_quad)


def test_gradients_flow_through_reparametrisation():
    def f(mean, log_std):
        a, logp = dists.tanh_gaussian_sample(jax.random.PRNGKey(3), mean, log_std)
        return jnp.sum(a) + logp

    g_mean, g_std = jax.grad(f, argnums=(0, 1))(jnp.zeros(3), jnp.zeros(3))
    assert np.all(np.abs(g_mean) > 0) and np.all(np.abs(g_std) > 0)


def test_log_std_is_squashed_into_range():
    raw = jnp.array([-1e4, -3.0, 0.0, 3.0, 1e4])
    out = dists.squash_log_std(raw)
    assert np.all(out >= dists.LOG_STD_MIN) and np.all(out <= dists.LOG_STD_MAX)
    assert float(jax.grad(lambda x: dists.squash_log_std(x))(0.0)) > 0


@pytest.mark.parametrize("low,high", [(-1.0, 1.0), (-2.0, 5.0), (0.0, 0.1), (3.0, 4.0)])
def test_scaled_actions_stay_in_non_symmetric_bounds(low, high):
    keys = jax.random.split(jax.random.PRNGKey(0), 10_000)
    mean = jnp.array([4.0, -4.0, 0.0])  # near-saturated components too
    a, _ = jax.vmap(lambda k: dists.tanh_gaussian_sample(k, mean, jnp.full(3, 1.0)))(keys)
    low, high = np.float32(low), np.float32(high)  # gymnasium Box bounds are float32
    scaled = dists.scale_action(a, low, high)
    assert scaled.min() >= low and scaled.max() <= high
    np.testing.assert_allclose(dists.unscale_action(scaled, low, high), a, atol=1e-5)
    np.testing.assert_allclose(dists.scale_action(jnp.array([-1.0, 1.0]), low, high), [low, high], rtol=1e-6)
