"""The tabular solvers compute in float64 by default without switching the process to x64 (issue 11.5).

References are plain numpy float64, independent of softrl. At gamma = 0.99 on random MDPs float32 soft
value iteration is ~3e-5 off (relative to max |Q|); float64 meets `tol` = 1e-12.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl.tabular import (
    float64,
    from_dense,
    policy_evaluation,
    random_mdp,
    return_and_entropy,
    soft_value_iteration,
    sparse_soft_value_iteration,
    start_value,
)

GAMMA = 0.99


def np_soft_value_iteration(P, R, gamma, alpha, iters=4000):
    """Soft VI (Eq. 24-25) in numpy float64 from Q = 0; gamma^4000 < 1e-17 at gamma = 0.99."""
    q = np.zeros_like(R)
    for _ in range(iters):
        m = q.max(1)
        v = m if alpha == 0 else m + alpha * np.log(np.exp((q - m[:, None]) / alpha).sum(1))
        q = R + gamma * P @ v
    return q


def np_policy_evaluation(P, R, gamma, pi, alpha):
    """V = (I - gamma P_pi)^-1 (r_pi + alpha H(pi)), Q = R + gamma P V (Eq. 9-11), no terminal states."""
    p_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = (pi * R).sum(1) - alpha * (pi * np.log(pi)).sum(1)
    v = np.linalg.solve(np.eye(len(R)) - gamma * p_pi, r_pi)
    return R + gamma * P @ v, v


@pytest.fixture(scope="module")
def problems():
    """(mdp, alpha, reference Q) on three random 30-state MDPs at gamma 0.99, hard and soft."""
    out = []
    for seed in range(3):
        mdp = random_mdp(jax.random.PRNGKey(seed), 30, 4, gamma=GAMMA)
        for alpha in (0.0, 0.5):
            out.append((mdp, alpha, np_soft_value_iteration(np.asarray(mdp.P), np.asarray(mdp.R), GAMMA, alpha)))
    return out


def rel_err(q, ref):
    return float(np.abs(np.asarray(q, np.float64) - ref).max() / max(1.0, np.abs(ref).max()))


def test_mdp_keeps_the_users_float64_numbers():
    mdp = random_mdp(jax.random.PRNGKey(0), 5, 2, gamma=GAMMA)
    assert mdp.P.dtype == np.float64 and mdp.R.dtype == np.float64 and float(mdp.gamma) == GAMMA
    assert not jax.config.jax_enable_x64


@pytest.mark.parametrize("tol", [1e-6, 1e-9, 1e-12])
def test_soft_value_iteration_honours_tol_in_float64(problems, tol):
    """`tol` bounds the distance to the fixed point relative to max(1, max|Q|); measured 0.95-0.98 tol."""
    for mdp, alpha, ref in problems:
        sol = soft_value_iteration(mdp, alpha, tol=tol)
        assert isinstance(sol.q, np.ndarray) and sol.q.dtype == np.float64  # numpy: the process is not x64
        assert rel_err(sol.q, ref) <= 1.01 * tol, (alpha, rel_err(sol.q, ref))
    assert not jax.config.jax_enable_x64 and jnp.asarray(1.0).dtype == jnp.float32  # the process is unchanged


def test_float32_option_is_what_float32_can_do(problems):
    """dtype=float32 stops at rounding noise, a few eps max|Q| / (1 - gamma): measured 3e-5 to 4e-5 here."""
    eps32 = float(np.finfo(np.float32).eps)
    for mdp, alpha, ref in problems:
        sol = soft_value_iteration(mdp, alpha, tol=1e-12, dtype=jnp.float32)
        assert isinstance(sol.q, jax.Array) and sol.q.dtype == jnp.float32
        err = rel_err(sol.q, ref)
        assert 1e-6 < err < 10 * eps32 / (1 - GAMMA), err  # far from 1e-12, within the documented bound


def test_policy_evaluation_and_start_value_match_numpy(problems):
    for mdp, alpha, _ in problems:
        pi = np.asarray(soft_value_iteration(mdp, max(alpha, 0.2), tol=1e-12).policy)
        q, v = policy_evaluation(mdp, pi, alpha)
        q_ref, v_ref = np_policy_evaluation(np.asarray(mdp.P), np.asarray(mdp.R), GAMMA, pi, alpha)
        assert v.dtype == np.float64 and rel_err(q, q_ref) < 1e-12 and rel_err(v, v_ref) < 1e-12
        j, j_ref = float(start_value(mdp, v)), float(np.asarray(mdp.p0) @ v_ref)
        assert abs(j - j_ref) <= 1e-12 * max(1.0, abs(j_ref))


def test_sparse_solver_float64_by_default(problems):
    mdp, alpha, ref = problems[1]
    sol = sparse_soft_value_iteration(from_dense(mdp), alpha, tol=1e-12)
    assert sol.q.dtype == np.float64 and rel_err(sol.q, ref) <= 1.01e-12


def test_jit_caches_do_not_mix_dtypes(problems):
    """float64, float32, float64 again on one MDP: each call gets its own compilation and dtype."""
    mdp, alpha, ref = problems[1]
    a = soft_value_iteration(mdp, alpha, tol=1e-12)
    b = soft_value_iteration(mdp, alpha, tol=1e-12, dtype=jnp.float32)
    c = soft_value_iteration(mdp, alpha, tol=1e-12)
    assert (a.q.dtype, b.q.dtype, c.q.dtype) == (np.float64, jnp.float32, np.float64)
    np.testing.assert_array_equal(a.q, c.q)
    assert rel_err(b.q, ref) > 1e3 * rel_err(a.q, ref)  # b really ran in float32
    assert jax.jit(lambda x: x * 2.0)(1.0).dtype == jnp.float32  # the deep agents' default is untouched


def test_inside_float64_results_are_jax_float64_and_vmappable(problems):
    mdp, alpha, ref = problems[1]
    with float64():
        sol = soft_value_iteration(mdp, alpha, tol=1e-12)
        assert isinstance(sol.q, jax.Array) and sol.q.dtype == jnp.float64
        batched = jax.vmap(lambda a: soft_value_iteration(mdp, a, tol=1e-12).q)(jnp.asarray([alpha, 1.0]))
        assert batched.dtype == jnp.float64 and rel_err(batched[0], ref) <= 1.01e-12
        ret, ent, _ = return_and_entropy(mdp, alpha, tol=1e-12, dtype=jnp.float32)
        assert ret.dtype == jnp.float32
    # Outside float64() a transformation computes in the trace's float32 (documented).
    assert jax.vmap(lambda a: soft_value_iteration(mdp, a).q)(jnp.asarray([alpha])).dtype == jnp.float32


def test_dtype_must_be_a_float():
    mdp = random_mdp(jax.random.PRNGKey(0), 3, 2)
    with pytest.raises(ValueError, match="float dtype"):
        soft_value_iteration(mdp, 0.1, dtype=jnp.int32)
