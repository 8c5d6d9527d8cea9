"""Policy files: load_policy and the exported jax program act like the trained agent; bad dirs are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softrl import loop
from softrl.agents import EnvSpec, make_agent
from softrl.collect import make_env
from softrl.config import ALGOS, CONTINUOUS_ALGOS, AgentConfig
from softrl.dists import scale_action
from softrl.policy import PolicyError, export_policy, load_policy, save_policy

RUNS = {
    "sac": dict(algo="sac", env="Pendulum-v1"),
    "dqn": dict(algo="dqn", env="CartPole-v1"),
}


def _save_from_result(cfg: loop.TrainConfig, result: loop.TrainResult, out) -> None:
    env = make_env(cfg.env)
    save_policy(
        out, algo=cfg.algo, agent_config=cfg.agent, spec=result.agent.spec, states=result.states,
        seeds=result.seeds, env_id=cfg.env, env_kwargs={}, obs_space=env.observation_space,
        action_space=env.action_space, step=cfg.total_steps, eval_return=result.eval_returns.mean(axis=1),
    )
    env.close()


@pytest.fixture(scope="module", params=sorted(RUNS))
def trained(request, tmp_path_factory):
    """A tiny 2-seed run with the current softrl.train, and its policy saved to RUN/policy."""
    run_dir = tmp_path_factory.mktemp(request.param)
    cfg = loop.TrainConfig(
        **RUNS[request.param], seeds=2, total_steps=300, learning_starts=100, eval_every=0, eval_episodes=2,
        log_every=100, checkpoint_every=0, run_dir=str(run_dir), progress=False,
        agent=AgentConfig(hidden=(16, 16), batch_size=32),
    )
    result = loop.train(cfg)
    _save_from_result(cfg, result, run_dir / "policy")
    return cfg, result


def _observations(env_id: str, n: int, seed: int) -> np.ndarray:
    """`n` real observations from a random rollout (Box obs spaces here). [n, *obs_shape]"""
    env = make_env(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(n):
        out.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return np.stack(out)


def _reference_env_actions(cfg, result, obs: np.ndarray) -> np.ndarray:
    """Deterministic actions of every seed for the obs batch: `agent.act` vmapped over seeds as the loop
    does, then mapped to env units as `SeedEnvs.to_env_action` does. [num_seeds, B, ...]"""
    n = len(result.seeds)
    env = make_env(cfg.env)
    rows = []
    for b in range(len(obs)):
        per_seed = jnp.asarray(np.repeat(obs[b : b + 1].reshape(1, -1).astype(np.float32), n, axis=0))
        keys = jax.random.split(jax.random.PRNGKey(b), n)
        rows.append(np.asarray(loop.act_batch(result.agent, result.states, per_seed, keys, True)))
    action = np.stack(rows, axis=1)  # [n, B, d] or [n, B]
    if isinstance(env.action_space, gym.spaces.Discrete):
        return action.astype(np.int64)
    low, high = env.action_space.low.reshape(-1), env.action_space.high.reshape(-1)
    return scale_action(action, low, high)


def test_load_policy_and_export_give_the_agents_actions(trained, tmp_path):
    cfg, result = trained
    obs = _observations(cfg.env, 16, seed=3)
    expected = _reference_env_actions(cfg, result, obs)
    for i in range(len(result.seeds)):
        policy = load_policy(result.run_dir, seed_index=i)  # a run dir: uses RUN/policy
        assert policy.seed == result.seeds[i]
        batched = policy(obs)
        single = np.stack([policy(o) for o in obs])
        exported = jax.export.deserialize(export_policy(result.run_dir, tmp_path / f"p{i}.jaxexport", i).read_bytes())
        from_export = np.asarray(exported.call(obs.astype(np.float32)))
        if policy.action_space["type"] == "Discrete":
            assert isinstance(policy(obs[0]), int)
            np.testing.assert_array_equal(batched, expected[i])
            np.testing.assert_array_equal(single, expected[i])
            np.testing.assert_array_equal(from_export, expected[i])
        else:
            assert batched.shape == (16, 1) and policy(obs[0]).shape == (1,)
            np.testing.assert_allclose(batched, expected[i], rtol=0, atol=1e-6)
            np.testing.assert_allclose(single, expected[i], rtol=0, atol=1e-6)
            np.testing.assert_allclose(from_export, expected[i], rtol=0, atol=1e-6)
            assert np.ptp(expected[i]) > 1e-3  # the observations really change the action


_NO_SOFTRL = textwrap.dedent(
    """
    import sys
    class _Block:  # the editable install's finder would otherwise find softrl
        def find_spec(self, name, path=None, target=None):
            if name == "softrl" or name.startswith("softrl."):
                raise ImportError("softrl is blocked in this test")
    sys.meta_path.insert(0, _Block())
    try:
        import softrl
        raise SystemExit("softrl is importable")
    except ImportError:
        pass
    import jax, numpy as np
    exported = jax.export.deserialize(open(sys.argv[1], "rb").read())
    np.save(sys.argv[3], np.asarray(exported.call(np.load(sys.argv[2]).astype(np.float32))))
    """
)


def test_exported_program_runs_without_softrl(trained, tmp_path):
    cfg, result = trained
    obs = _observations(cfg.env, 7, seed=5)  # a batch size the export never saw: the batch dim is symbolic
    out = export_policy(result.run_dir / "policy", tmp_path / "policy.jaxexport", seed_index=1)
    np.save(tmp_path / "obs.npy", obs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _NO_SOFTRL, str(out), str(tmp_path / "obs.npy"), str(tmp_path / "act.npy")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = _reference_env_actions(cfg, result, obs)[1]
    np.testing.assert_allclose(np.load(tmp_path / "act.npy"), expected, rtol=0, atol=1e-6)


def test_plain_gymnasium_loop_with_load_policy_equals_evaluate(trained):
    cfg, result = trained
    episodes = 2
    expected = loop.evaluate(result.agent, result.states, cfg.env, result.seeds, episodes)  # [n, episodes]
    for i, seed in enumerate(result.seeds):
        policy = load_policy(result.run_dir, seed_index=i)
        env = gym.make(cfg.env)
        obs, _ = env.reset(seed=10**6 + seed)  # evaluate's reset seeds; later resets continue the env's RNG
        returns = []
        for _ in range(episodes):
            ret, done = 0.0, False
            while not done:
                obs, reward, term, trunc, _ = env.step(policy(obs))
                ret += float(reward)
                done = term or trunc
            returns.append(ret)
            obs, _ = env.reset()
        env.close()
        # Measured: equal returns. Per-seed actions may differ from the seed-vmapped ones by float32
        # rounding (up to 2.4e-7 measured), which could move a return at that relative level, no more.
        np.testing.assert_allclose(returns, expected[i], rtol=1e-6, atol=0)


def test_policy_loads_fast_and_without_an_environment(trained, monkeypatch):
    cfg, result = trained
    load_policy(result.run_dir)  # the first call pays the imports of the agent modules
    make_agent.cache_clear()  # rebuild the agent as a fresh process would
    monkeypatch.setattr(gym, "make", lambda *a, **k: pytest.fail("load_policy built an environment"))
    t0 = time.perf_counter()
    policy = load_policy(result.run_dir, seed_index=1)
    elapsed = time.perf_counter() - t0
    print(f"load_policy({cfg.algo}) took {elapsed:.3f} s")
    assert elapsed < 5.0
    # No critic, target or optimiser state was built for the actor-critic policy.
    if cfg.algo == "sac":
        assert policy.state.critic is None and policy.state.actor_opt is None


# ----- every algorithm, untrained: the saved fields are all that act needs ----------------------------------


def _untrained(algo: str, seeds: int = 2):
    env = make_env("Pendulum-v1" if algo in CONTINUOUS_ALGOS else "CartPole-v1")
    spec = EnvSpec(obs_dim=int(np.prod(env.observation_space.shape)),
                   **({"action_dim": 1} if algo in CONTINUOUS_ALGOS else {"num_actions": 2}))
    cfg = AgentConfig(hidden=(8,))
    agent = make_agent(algo, cfg, spec)
    states = jax.vmap(agent.init)(jax.random.split(jax.random.PRNGKey(7), seeds))
    return env, cfg, spec, agent, states


def _save_untrained(out, algo, env, cfg, spec, states, **kwargs):
    return save_policy(out, algo=algo, agent_config=cfg, spec=spec, states=states, seeds=[4, 5],
                       env_id=env.spec.id, env_kwargs={"max_episode_steps": 9}, obs_space=env.observation_space,
                       action_space=env.action_space, step=0, **kwargs)


@pytest.mark.parametrize("algo", ALGOS)
def test_every_algorithm_round_trips_deterministic_and_stochastic(algo, tmp_path):
    env, cfg, spec, agent, states = _untrained(algo)
    _save_untrained(tmp_path / "p", algo, env, cfg, spec, states)
    policy = load_policy(tmp_path / "p", seed_index=1)
    obs = np.random.default_rng(0).normal(size=(5, spec.obs_dim)).astype(np.float32)
    one = jax.tree.map(lambda x: x[1], states)
    key = jax.random.PRNGKey(3)
    for deterministic in (True, False):
        keys = jax.random.split(key, 5)
        raw = np.asarray(jax.vmap(agent.act, in_axes=(None, 0, 0, None))(one, jnp.asarray(obs), keys, deterministic))
        got = policy(obs, deterministic=deterministic, key=key)
        if spec.num_actions:
            np.testing.assert_array_equal(got, raw)
        else:
            np.testing.assert_allclose(got, 2.0 * raw, rtol=0, atol=1e-6)  # Pendulum's bounds are [-2, 2]


def test_observation_normaliser_is_applied(tmp_path):
    env, cfg, spec, agent, states = _untrained("sac")
    mean = np.array([[0.5, -0.2, 1.0], [0.1, 0.2, 0.3]], np.float32)
    var = np.array([[4.0, 0.25, 1.0], [1.0, 2.0, 9.0]], np.float32)
    _save_untrained(tmp_path / "n", "sac", env, cfg, spec, states,
                    obs_norm={"mean": mean, "var": var, "count": np.array([10.0, 20.0], np.float32)})
    _save_untrained(tmp_path / "plain", "sac", env, cfg, spec, states)
    obs = np.array([[1.0, 0.3, -2.0], [0.0, 0.0, 100.0]], np.float32)
    normalised = np.clip((obs - mean[1]) / np.sqrt(var[1].astype(np.float64) + 1e-8), -10, 10).astype(np.float32)
    assert normalised[1, 2] == 10.0  # the clip is exercised
    want = load_policy(tmp_path / "plain", 1)(normalised)
    np.testing.assert_allclose(load_policy(tmp_path / "n", 1)(obs), want, rtol=0, atol=1e-6)
    exported = jax.export.deserialize(export_policy(tmp_path / "n", tmp_path / "n.jx", 1).read_bytes())
    np.testing.assert_allclose(np.asarray(exported.call(obs)), want, rtol=0, atol=1e-6)


def test_policy_json_holds_what_the_issue_lists(tmp_path):
    env, cfg, spec, agent, states = _untrained("sac")
    _save_untrained(tmp_path / "p", "sac", env, cfg, spec, states, eval_return=[-1.0, float("nan")])
    meta = json.loads((tmp_path / "p" / "policy.json").read_text())
    assert meta["algo"] == "sac" and meta["agent_config"]["hidden"] == [8] and meta["env_id"] == "Pendulum-v1"
    assert meta["env_kwargs"] == {"max_episode_steps": 9} and meta["seeds"] == [4, 5]
    assert meta["action_bounds"] == {"low": [-2.0], "high": [2.0]}
    assert meta["observation_space"]["shape"] == [3] and meta["eval_return"] == [-1.0, "nan"]
    assert meta["arrays"]["actor/params/MLP_0/Dense_0/kernel"] == {"shape": [2, 3, 8], "dtype": "float32"}
    assert not any(k.startswith(("critic", "target", "actor_opt")) for k in meta["arrays"])
    assert sorted(os.listdir(tmp_path)) == ["p"]  # the temp dir was renamed, nothing left behind


# ----- refusals -----------------------------------------------------------------------------------------------


def _one_line_error(path, match: str, **kwargs) -> None:
    with pytest.raises(PolicyError, match=match) as info:
        load_policy(path, **kwargs)
    assert "\n" not in str(info.value)


def _rewrite_meta(pdir, **changes) -> None:
    meta = json.loads((pdir / "policy.json").read_text())
    (pdir / "policy.json").write_text(json.dumps({**meta, **changes}))


def test_bad_policy_dirs_are_refused(tmp_path):
    import shutil

    from safetensors.numpy import load_file

    env, cfg, spec, agent, states = _untrained("sac")
    good = _save_untrained(tmp_path / "good", "sac", env, cfg, spec, states)

    def copy(name):
        return shutil.copytree(good, tmp_path / name)

    corrupt = copy("corrupt")
    raw = bytearray((corrupt / "arrays.safetensors").read_bytes())
    raw[-3] ^= 0xFF
    (corrupt / "arrays.safetensors").write_bytes(bytes(raw))
    _one_line_error(corrupt, "corrupt: its sha256 does not match")

    missing = copy("missing")
    (missing / "arrays.safetensors").unlink()
    _one_line_error(missing, "is missing")

    future = copy("future")
    _rewrite_meta(future, format_version=2, softrl_version="9.0.0")
    _one_line_error(future, r"format version 2 \(softrl 9.0.0\); this softrl reads version 1: upgrade softrl")

    unknown_field = copy("unknown_field")
    meta = json.loads((unknown_field / "policy.json").read_text())
    _rewrite_meta(unknown_field, agent_config={**meta["agent_config"], "layer_norm": True})
    _one_line_error(unknown_field, "does not know.*layer_norm.*upgrade softrl")

    # Arrays that do not fit the agent (another network size), with a matching checksum.
    reshaped = copy("reshaped")
    _rewrite_meta(reshaped, agent_config={**meta["agent_config"], "hidden": [4]})
    _one_line_error(reshaped, r"actor/params/MLP_0/Dense_0/bias is \(8,\) float32, this agent needs \(4,\)")

    not_json = copy("not_json")
    (not_json / "policy.json").write_text("{")
    _one_line_error(not_json, "unreadable")

    _one_line_error(good, "seed_index 2 is out of range", seed_index=2)

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    _one_line_error(run, "has no policy yet")
    _one_line_error(tmp_path / "nowhere", "neither a policy directory nor a run directory")
    with pytest.raises(PolicyError, match="has no policy yet"):
        export_policy(run, tmp_path / "x.jx")
    assert not (tmp_path / "x.jx").exists()
    with pytest.raises(PolicyError, match="needs key"):
        load_policy(good)(np.zeros(3, np.float32), deterministic=False)
    with pytest.raises(PolicyError, match="does not fit"):
        load_policy(good)(np.zeros(4, np.float32))
    assert load_file(str(good / "arrays.safetensors"))  # the good one is untouched
