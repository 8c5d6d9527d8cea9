"""`TrainConfig.vmap_updates=False` (`--no-vmap-updates`): the seeds' updates run one after another in a
`lax.map` instead of one vmapped program. Same keys and minibatches, so the same updates up to the float
rounding of batched vs single matrix products; resume stays bitwise; the options it cannot serve are refused."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softrl
from softrl import replay
from softrl.agents import EnvSpec, make_agent
from softrl.config import AgentConfig
from softrl.loop import TrainConfig, _update_k, _update_k_one_by_one
from softrl.types import Transition
from tests.test_loop import small_cfg


def _filled_buffers(n: int, capacity: int, obs_dim: int, action: np.ndarray) -> replay.Buffer:
    rng = np.random.default_rng(0)
    data = Transition(obs=jnp.asarray(rng.normal(size=(n, capacity, obs_dim)), jnp.float32),
                      action=jnp.asarray(action),
                      reward=jnp.asarray(rng.normal(size=(n, capacity)), jnp.float32),
                      next_obs=jnp.asarray(rng.normal(size=(n, capacity, obs_dim)), jnp.float32),
                      terminated=jnp.asarray(rng.random((n, capacity)) < 0.1),
                      truncated=jnp.zeros((n, capacity), bool))
    return replay.Buffer(data=data, ptr=jnp.zeros(n, jnp.int32), size=jnp.full(n, capacity, jnp.int32))


def _max_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("algo, k", [("sac", 1), ("sac", 3), ("dqn", 2)])
def test_one_by_one_equals_vmapped_updates(algo, k):
    n, capacity = 3, 500
    cfg = AgentConfig(hidden=(32, 32), batch_size=64)
    rng = np.random.default_rng(1)
    if algo == "sac":
        spec, action = EnvSpec(obs_dim=3, action_dim=1), rng.uniform(-1, 1, (n, capacity, 1)).astype(np.float32)
    else:
        spec, action = EnvSpec(obs_dim=4, num_actions=2), rng.integers(0, 2, (n, capacity)).astype(np.int32)
    agent = make_agent(algo, cfg, spec)
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    states = jax.vmap(agent.init)(keys)
    buffers = _filled_buffers(n, capacity, spec.obs_dim, action)
    update_keys = jax.random.split(jax.random.PRNGKey(7), n)
    vmapped = jax.jit(jax.vmap(functools.partial(_update_k, agent, 64, k)))(states, buffers, update_keys)
    one_by_one = functools.partial(_update_k_one_by_one, agent, 64, k)
    jitted = jax.jit(one_by_one)(states, buffers, update_keys)
    plain = one_by_one(states, buffers, update_keys)
    assert jax.tree.structure(vmapped) == jax.tree.structure(jitted)
    # Measured: at most 1.2e-7 (k 1-3, 32x32 nets): float rounding of batched vs single products. A wrong key or
    # minibatch moves the parameters by 0.03-0.2 (checked below).
    assert _max_diff(vmapped, jitted) < 5e-7
    assert _max_diff(jitted, plain) == 0.0  # the same program with and without jit
    # Each seed's result is exactly that seed's update alone (seed 1 against the unbatched update).
    alone = jax.jit(functools.partial(_update_k, agent, 64, k))(
        jax.tree.map(lambda x: x[1], states), jax.tree.map(lambda x: x[1], buffers), update_keys[1])
    assert _max_diff(jax.tree.map(lambda x: x[1], jitted), alone) == 0.0
    other_keys = jax.random.split(jax.random.PRNGKey(8), n)
    moved = jax.jit(one_by_one)(states, buffers, other_keys)
    assert _max_diff(moved[0], jitted[0]) > 1e-2  # the comparisons above can fail


def test_train_one_by_one_matches_vmapped_and_resumes_bitwise(tmp_path):
    vmapped = softrl.train(small_cfg(tmp_path, "vmap", seeds=2))
    looped = softrl.train(small_cfg(tmp_path, "loop", seeds=2, vmap_updates=False))
    assert np.asarray(looped.updates).tolist() == np.asarray(vmapped.updates).tolist() == [201, 201]
    # Measured after 201 updates of 32x32 nets: 4.8e-6 (the rounding above, compounded over the updates).
    assert _max_diff(vmapped.states, looped.states) < 2e-5
    softrl.train(small_cfg(tmp_path, "resumed", seeds=2, vmap_updates=False, total_steps=200))
    resumed = softrl.train(small_cfg(tmp_path, "resumed", seeds=2, vmap_updates=False), resume=tmp_path / "resumed")
    for a, b in zip(jax.tree.leaves(looped.states), jax.tree.leaves(resumed.states)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_refused_where_it_cannot_apply(tmp_path):
    with pytest.raises(ValueError, match="needs --cpu-devices 1"):
        small_cfg(tmp_path, seeds=2, cpu_devices=2, vmap_updates=False).validate()
    with pytest.raises(ValueError, match="--no-vmap-updates applies to gymnasium envs"):
        softrl.train(TrainConfig(algo="dqn", env="jax/CartPole-v1", total_steps=100, vmap_updates=False,
                                 progress=False, run_dir=str(tmp_path / "jax")))
    assert not (tmp_path / "jax").exists()
