"""Collection on a counter env: termination vs truncation, no transition across episodes, ring buffer."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl import replay
from softrl.collect import EnvError, SeedEnvs, make_env, vector_transitions
from softrl.envs import register_envs
from softrl.types import Transition


def _collect(env_id, steps, n=2):
    envs = SeedEnvs(env_id, list(range(n)))
    envs.reset()
    rows, episodes = [], []
    for _ in range(steps):
        action = np.full((n, 1), 0.3, np.float32) if not envs.discrete else np.zeros(n, np.int64)
        tr, finished = envs.step(action)
        rows.append(tr)
        episodes += finished
    return envs, rows, episodes


def test_truncation_is_stored_as_not_terminated():
    # Counter-v0: never terminates, TimeLimit truncates after 5 steps.
    _, rows, episodes = _collect("softrl/Counter-v0", 12)
    trunc = np.array([r["truncated"][0] for r in rows])
    term = np.array([r["terminated"][0] for r in rows])
    assert not term.any()
    assert list(np.flatnonzero(trunc)) == [4, 9]
    # returns counted by softrl: 1 + 2 + 3 + 4 + 5
    assert [e[1] for e in episodes if e[0] == 0] == [15.0, 15.0]
    assert [e[2] for e in episodes if e[0] == 0] == [5, 5]


def test_termination_flag_and_no_transition_crosses_an_episode():
    # CounterTerminating-v0: terminates at t = 3, time limit 5 is never reached.
    _, rows, _ = _collect("softrl/CounterTerminating-v0", 10)
    for r in rows:
        for i in range(2):
            ep, t = r["obs"][i]
            next_ep, next_t = r["next_obs"][i]
            assert next_ep == ep and next_t == t + 1, (r["obs"][i], r["next_obs"][i])
            assert r["terminated"][i] == (next_t == 3)
            assert not r["truncated"][i]


def test_discrete_counter_and_reset_obs_used_to_act():
    envs, rows, _ = _collect("softrl/CounterDiscrete-v0", 9)
    assert envs.discrete
    # after the terminating step 4, the next stored obs is the first of a new episode
    assert rows[3]["terminated"][0] and rows[4]["obs"][0][1] == 0 and rows[4]["obs"][0][0] == 1


def test_actions_are_rescaled_into_non_symmetric_bounds():
    # Counter's Box is [-2, 5]; the env asserts every action is inside it.
    envs = SeedEnvs("softrl/Counter-v0", [0])
    envs.reset()
    for a in (-1.0, 1.0, 0.0):
        envs.step(np.array([[a]], np.float32))
    assert envs.to_env_action(np.array([[-1.0]]), 0)[0] == -2.0
    assert envs.to_env_action(np.array([[1.0]]), 0)[0] == 5.0


def test_ring_buffer_wraps_around_in_order():
    example = Transition(jnp.zeros(2), jnp.zeros(1), jnp.zeros(()), jnp.zeros(2), jnp.zeros((), bool),
                         jnp.zeros((), bool))
    buf = replay.init(7, example)
    add = jax.jit(replay.add)
    for i in range(20):
        buf = add(buf, Transition(jnp.full(2, i), jnp.full(1, i), jnp.float32(i), jnp.full(2, i + 1),
                                  jnp.bool_(False), jnp.bool_(False)))
    assert int(buf.size) == 7 and int(buf.ptr) == 20 % 7
    # slots hold the last 7 rewards, the oldest overwritten first
    assert sorted(np.asarray(buf.data.reward).tolist()) == list(range(13, 20))
    assert float(buf.data.reward[(20 - 1) % 7]) == 19
    batch = replay.sample(buf, jax.random.PRNGKey(0), 1000)
    assert set(np.asarray(batch.reward).tolist()) == set(range(13, 20))
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.obs[:, 0] + 1)


def test_sample_never_reads_unfilled_slots():
    example = Transition(jnp.zeros(1), jnp.zeros(1), jnp.zeros(()), jnp.zeros(1), jnp.zeros((), bool),
                         jnp.zeros((), bool))
    buf = replay.init(100, example)
    for i in range(3):
        buf = replay.add(buf, example._replace(reward=jnp.float32(i + 1)))
    batch = replay.sample(buf, jax.random.PRNGKey(1), 500)
    assert set(np.asarray(batch.reward).tolist()) == {1.0, 2.0, 3.0}


@pytest.mark.parametrize("mode", list(gym.vector.AutoresetMode))
def test_vector_env_transitions_for_every_autoreset_mode(mode):
    register_envs()
    env = gym.make_vec("softrl/Counter-v0", num_envs=2, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": mode})
    obs, _ = env.reset(seed=0)
    prev_done = np.zeros(2, bool)
    kept = 0
    for _ in range(13):
        next_obs, r, term, trunc, info = env.step(np.zeros((2, 1), np.float32))
        true_next, valid = vector_transitions(mode, obs, next_obs, term, trunc, info, prev_done)
        for i in np.flatnonzero(valid):
            assert true_next[i][0] == obs[i][0] and true_next[i][1] == obs[i][1] + 1
            kept += 1
        done = term | trunc
        if mode == gym.vector.AutoresetMode.DISABLED and done.any():
            next_obs, _ = env.reset(options={"reset_mask": done})
            done = np.zeros(2, bool)
        obs, prev_done = next_obs, done
    assert kept >= 20


def test_unknown_env_suggests_close_matches():
    with pytest.raises(EnvError, match="Pendulum-v1"):
        make_env("Pendulum-v2")
    with pytest.raises(EnvError, match="unknown environment"):
        make_env("NoSuchEnvironmentAnywhere-v0")


def test_env_state_roundtrip_is_exact_for_mujoco():
    envs = SeedEnvs("HalfCheetah-v5", [3])
    envs.reset()
    rng = np.random.default_rng(0)
    for _ in range(5):
        envs.step(rng.uniform(-1, 1, (1, 6)).astype(np.float32))
    snap = envs.get_state()
    actions = rng.uniform(-1, 1, (20, 1, 6)).astype(np.float32)
    first = [envs.step(a)[0]["next_obs"] for a in actions]
    other = SeedEnvs("HalfCheetah-v5", [3])
    other.reset()
    other.set_state(snap)
    second = [other.step(a)[0]["next_obs"] for a in actions]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_add_lockstep_equals_vmap_add_past_wrap_around():
    n, cap = 3, 5
    example = Transition(jnp.zeros(2), jnp.zeros(1), jnp.zeros(()), jnp.zeros(2), jnp.zeros((), bool),
                         jnp.zeros((), bool))
    lock = jax.vmap(lambda _: replay.init(cap, example))(jnp.arange(n))
    vm = lock
    add_lock, add_vmap = jax.jit(replay.add_lockstep), jax.jit(jax.vmap(replay.add))
    rng = np.random.default_rng(0)
    for _ in range(2 * cap + 2):  # wraps around twice
        t = Transition(*(jnp.asarray(rng.normal(size=(n, *np.shape(x))).astype(np.asarray(x).dtype))
                         for x in example))
        lock, vm = add_lock(lock, t), add_vmap(vm, t)
        for x, y in zip(jax.tree.leaves(lock), jax.tree.leaves(vm)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert np.asarray(lock.ptr).tolist() == [2] * n and np.asarray(lock.size).tolist() == [cap] * n
