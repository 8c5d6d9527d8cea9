"""Tests for softrl.backups: the soft/hard Bellman backups of Lecture 17 (Eq. 12, 20, 24-26)."""

from __future__ import annotations

import itertools
import math

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

from softrl.backups import entropy, hard_value, log_soft_policy, soft_policy, soft_value, td_target

Q = [1.0, 2.0, 3.0]


def lse_value(q, alpha):
    """Reference `alpha * log sum exp(q / alpha)` in plain Python floats."""
    m = max(q)
    return m + alpha * math.log(sum(math.exp((x - m) / alpha) for x in q))


def softmax(q, alpha):
    m = max(q)
    w = [math.exp((x - m) / alpha) for x in q]
    return [x / sum(w) for x in w]


MODES = {
    "eager": lambda f: f,
    "jit": jax.jit,
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_hand_computed_soft_values(mode, alpha):
    wrap = MODES[mode]
    q = jnp.array(Q)
    # Hand-expanded: 3 + alpha log(1 + e^{-1/alpha} + e^{-2/alpha}).
    expected = 3.0 + alpha * math.log(1 + math.exp(-1 / alpha) + math.exp(-2 / alpha))
    assert expected == pytest.approx(lse_value(Q, alpha))
    np.testing.assert_allclose(wrap(soft_value)(q, alpha), expected, rtol=1e-6)
    np.testing.assert_allclose(wrap(soft_policy)(q, alpha), softmax(Q, alpha), rtol=1e-6)
    np.testing.assert_allclose(wrap(log_soft_policy)(q, alpha), np.log(softmax(Q, alpha)), rtol=1e-6)
    np.testing.assert_allclose(wrap(hard_value)(q, alpha), 3.0)
    ent = -sum(p * math.log(p) for p in softmax(Q, alpha))
    np.testing.assert_allclose(wrap(entropy)(wrap(soft_policy)(q, alpha)), ent, rtol=1e-6)


@pytest.mark.parametrize("mode", list(MODES))
def test_alpha_zero_is_exactly_hard(mode):
    wrap = MODES[mode]
    q = jnp.array([0.3, -1.0, 0.7, 0.1])
    # alpha = 0 passed as a (traced under jit) float: exactly max, greedy policy (Eq. 26).
    assert float(wrap(soft_value)(q, 0.0)) == float(jnp.max(q))
    np.testing.assert_array_equal(wrap(soft_policy)(q, 0.0), [0.0, 0.0, 1.0, 0.0])
    # Ties are split evenly, the alpha -> 0+ limit of the softmax.
    np.testing.assert_allclose(wrap(soft_policy)(jnp.array([1.0, 1.0, 0.0]), 0.0), [0.5, 0.5, 0.0])


def test_vmap_over_alpha_matches_hand_values():
    q = jnp.array(Q)
    alphas = jnp.array([0.0, 0.5, 1.0, 2.0])
    values = jax.vmap(soft_value, in_axes=(None, 0))(q, alphas)
    policies = jax.vmap(soft_policy, in_axes=(None, 0))(q, alphas)
    np.testing.assert_allclose(values, [3.0] + [lse_value(Q, a) for a in (0.5, 1.0, 2.0)], rtol=1e-6)
    np.testing.assert_allclose(policies[0], [0.0, 0.0, 1.0])
    for i, a in enumerate([0.5, 1.0, 2.0], start=1):
        np.testing.assert_allclose(policies[i], softmax(Q, a), rtol=1e-6)
    # Also jit(vmap) and a per-row alpha broadcast over a batch of Q rows.
    np.testing.assert_allclose(jax.jit(jax.vmap(soft_value, in_axes=(None, 0)))(q, alphas), values, rtol=1e-6)
    batch_q = jnp.stack([q, q + 1.0])  # [2, 3]
    per_row = soft_value(batch_q, jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(per_row, [lse_value(Q, 1.0), 4.0], rtol=1e-6)


def test_hard_value_ignores_alpha():
    q = jnp.array([[1.0, 5.0], [-2.0, -3.0]])
    np.testing.assert_array_equal(hard_value(q), [5.0, -2.0])
    np.testing.assert_array_equal(hard_value(q, 7.0), [5.0, -2.0])


q_lists = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=5)
jit_soft_value = jax.jit(soft_value)  # one compile per (shape, dtype) keeps hypothesis fast
jit_soft_policy = jax.jit(soft_policy)
alphas = st.floats(1e-3, 1e2)


@settings(max_examples=60, deadline=None)
@given(q=q_lists, alpha=alphas)
def test_soft_value_bounds(q, alpha):
    """max q <= soft_value <= max q + alpha log|A| (the log-sum-exp sandwich)."""
    with jax.enable_x64(True):
        v = float(jit_soft_value(jnp.array(q, dtype=jnp.float64), alpha))
    tol = 1e-12 * (1 + max(abs(x) for x in q))
    assert max(q) - tol <= v <= max(q) + alpha * math.log(len(q)) + tol
    # The same sandwich holds in float32 up to float32 rounding.
    v32 = float(jit_soft_value(jnp.array(q, dtype=jnp.float32), alpha))
    tol32 = 1e-6 * (1 + max(abs(x) for x in q)) + 1e-6 * alpha
    assert max(q) - tol32 <= v32 <= max(q) + alpha * math.log(len(q)) + tol32


@settings(max_examples=60, deadline=None)
@given(q=q_lists, alpha=st.one_of(st.just(0.0), alphas), c=st.floats(-1e3, 1e3))
def test_soft_value_shift_invariance(q, alpha, c):
    """soft_value(q + c) = soft_value(q) + c, and the policy is unchanged."""
    with jax.enable_x64(True):
        qa = jnp.array(q, dtype=jnp.float64)
        np.testing.assert_allclose(jit_soft_value(qa + c, alpha), jit_soft_value(qa, alpha) + c, atol=1e-9)
        if alpha > 0:
            np.testing.assert_allclose(jit_soft_policy(qa + c, alpha), jit_soft_policy(qa, alpha), atol=1e-9)


def test_soft_value_tends_to_max_as_alpha_shrinks():
    q = jnp.array([0.5, 2.0, 1.9, -3.0])
    gaps = [float(soft_value(q, a) - 2.0) for a in (1.0, 0.1, 1e-2, 1e-6)]
    assert all(g2 < g1 for g1, g2 in itertools.pairwise(gaps))  # strictly shrinking gap
    assert 0.0 <= gaps[-1] <= 1e-6 * math.log(4) + 1e-6
    assert float(soft_value(q, 0.0)) == 2.0


def test_tiny_alpha_large_q_is_finite():
    q = jnp.array([1e4, 1e4 + 1.0, -1e4, 1e4 + 0.5])
    for alpha in (1e-6, 1e-3):
        v = soft_value(q, alpha)
        pi = soft_policy(q, alpha)
        logpi = log_soft_policy(q, alpha)
        g = jax.grad(soft_value)(q, alpha)
        for x in (v, pi, g, logpi[1]):
            assert bool(jnp.all(jnp.isfinite(x))), (alpha, x)
        np.testing.assert_allclose(v, 1e4 + 1.0, rtol=1e-6)
        np.testing.assert_allclose(pi, [0.0, 1.0, 0.0, 0.0], atol=1e-6)
    # Batched and under vmap over alpha too.
    vs = jax.vmap(soft_value, in_axes=(None, 0))(q, jnp.array([1e-6, 1.0, 100.0]))
    assert bool(jnp.all(jnp.isfinite(vs)))
    # soft_value and its gradient stay finite under jit (the max is removed before dividing).
    np.testing.assert_allclose(jax.jit(soft_value)(q, 1e-6), 1e4 + 1.0, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(soft_value))(q, 1e-6), [0.0, 1.0, 0.0, 0.0], atol=1e-6)
    # Centred Q (shift invariance) gives the same policy.
    np.testing.assert_allclose(jax.jit(soft_policy)(q - jnp.max(q), 1e-6), [0.0, 1.0, 0.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("fn", [soft_policy, log_soft_policy], ids=["soft_policy", "log_soft_policy"])
def test_tiny_alpha_large_q_under_jit(fn):
    q = jnp.array([1e4, 1e4 + 1.0, -1e4, 1e4 + 0.5], dtype=jnp.float32)
    out = jax.jit(fn)(q, 1e-6)
    assert bool(jnp.isfinite(out[1])) and bool(jnp.all(~jnp.isnan(out)))
    if fn is soft_policy:
        np.testing.assert_allclose(out, [0.0, 1.0, 0.0, 0.0], atol=1e-6)


def test_softmax_entropy_limits():
    q = jnp.array([0.0, 1.0, 3.0, 3.5, -2.0])
    log_a = math.log(5)
    ents = [float(entropy(soft_policy(q, a))) for a in (1e-3, 0.1, 1.0, 10.0, 1e4)]
    assert ents[0] < 1e-6  # near-greedy
    assert abs(ents[-1] - log_a) < 1e-6  # near-uniform
    assert all(e2 > e1 for e1, e2 in itertools.pairwise(ents))  # monotone in alpha
    assert all(0.0 <= e <= log_a + 1e-6 for e in ents)


@pytest.mark.parametrize("alpha", [0.1, 1.0, 5.0])
def test_gradient_of_soft_value_is_soft_policy(alpha):
    """d/dQ alpha logsumexp(Q / alpha) = softmax(Q / alpha) (Eq. 20 from Eq. 24)."""
    q = jnp.array([[0.2, -1.0, 0.4], [3.0, 3.0, -5.0]])  # [B, A]
    grad = jax.grad(lambda x: jnp.sum(soft_value(x, alpha)))(q)
    np.testing.assert_allclose(grad, soft_policy(q, alpha), rtol=1e-5, atol=1e-7)
    grad_jit = jax.jit(jax.grad(lambda x: jnp.sum(soft_value(x, alpha))))(q)
    np.testing.assert_allclose(grad_jit, grad, rtol=1e-6)


def test_gradient_at_alpha_zero_is_greedy():
    q = jnp.array([0.2, -1.0, 0.4])
    np.testing.assert_allclose(jax.grad(soft_value)(q, 0.0), [0.0, 0.0, 1.0])


def test_entropy_handles_zeros():
    np.testing.assert_allclose(entropy(jnp.array([0.5, 0.5, 0.0])), math.log(2), rtol=1e-6)
    assert float(entropy(jnp.array([0.0, 1.0, 0.0]))) == 0.0
    g = jax.grad(lambda p: entropy(p))(jnp.array([0.0, 1.0]))
    assert bool(jnp.all(jnp.isfinite(g)))


def test_td_target_terminated_cuts_bootstrap_truncated_does_not():
    reward = jnp.array([1.0, 1.0, -0.5])
    # Row 0: true termination. Row 1: time-limit truncation, stored as terminated=False.
    terminated = jnp.array([True, False, False])
    next_value = jnp.array([10.0, 10.0, 4.0])
    y = td_target(reward, terminated, 0.9, next_value)
    np.testing.assert_allclose(y, [1.0, 1.0 + 0.9 * 10.0, -0.5 + 0.9 * 4.0], rtol=1e-6)
    # Float flags and gamma = 0 work the same way.
    np.testing.assert_allclose(td_target(reward, terminated.astype(jnp.float32), 0.0, next_value), reward)
    # Jitted, with the soft value of the next state's Q as bootstrap (Eq. 24).
    q_next = jnp.array([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    y_soft = jax.jit(lambda r, d, q: td_target(r, d, 0.5, soft_value(q, 1.0)))(reward, terminated, q_next)
    expected = [1.0, 1.0 + 0.5 * math.log(2.0), -0.5 + 0.5 * lse_value([3.0, -1.0], 1.0)]
    np.testing.assert_allclose(y_soft, expected, rtol=1e-6)


def test_td_target_carries_no_gradient():
    g = jax.grad(lambda v: jnp.sum(td_target(jnp.ones(2), jnp.zeros(2, bool), 0.9, v)))(jnp.ones(2))
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_integer_q_with_fractional_alpha():
    q = jnp.array([1, 2])
    np.testing.assert_allclose(soft_value(q, 0.5), lse_value([1.0, 2.0], 0.5), rtol=1e-6)
