"""The whole training loop on device: env step, replay insert, sample and update in one `lax.scan`.

For a `jax/` environment (`softrl.jaxenv`) nothing leaves the device between logs: one compiled call
runs a chunk of env steps for every agent (vmapped over seeds), with the same agents
(`softrl.agents.make_agent`) and the same ring buffer (`softrl.replay`) as the gymnasium loop in
`softrl.loop`. The step order and the PRNG key schedule are those of `softrl.loop.train`, so on a
deterministic env the two loops store the same transitions and draw the same random actions:

  for t = 1..T:  step every env with the pending action, store (obs, action, reward, next_obs,
                 terminated, truncated) with the TRUE next_obs; split the agent key into
                 (key, k_act, k_update); if t >= learning_starts and t % train_freq == 0, run
                 `gradient_steps` updates on fresh minibatches; the next action is uniform random
                 while t < learning_starts, else `agent.act(state, obs, k_act)`.

Agents act in [-1, 1]; continuous actions reach the env through `softrl.dists.scale_action`.
Truncation (the time limit) is stored apart from termination, so it bootstraps.
The carry (`Carry`) is a plain pytree: save it between chunks to checkpoint, load it to resume.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from softrl import jaxenv, replay
from softrl.agents import Agent, EnvSpec, make_agent
from softrl.dists import scale_action
from softrl.loop import _update_k  # the gymnasium loop's k updates: one update step for both loops
from softrl.types import Transition

Array = jax.Array


class Carry(NamedTuple):
    """Everything the loop needs to continue, every leaf [N, ...] over agents unless noted."""

    agent: Any
    buffer: replay.Buffer
    env_state: Any
    obs: Array  # [N, *agent.spec.shape]: the observation to act on (a reset one after an episode end)
    action: Array  # [N] int32 or [N, action_dim] in [-1, 1]: the pending action for the next env step
    key: Array  # [N, 2]: the agent's key stream (as `softrl.loop.Carry.key`)
    env_key: Array  # [N, 2]: the environment's own key stream
    episode_return: Array  # [N] float32: return of the running episode
    episode_length: Array  # [N] int32
    metrics: dict  # [N] each: metrics of the last update (zeros before the first)
    step: Array  # int32 []: env steps done (per agent)
    bad_step: Array  # int32 []: first env step with a non-finite metric, -1 if none


class ChunkStats(NamedTuple):
    """Per env step of a chunk: which episodes ended and their returns/lengths, leaves [T, N]."""

    done: Array
    episode_return: Array
    episode_length: Array


class OnDeviceResult(NamedTuple):
    states: Any  # agent states, leaves [N, ...]
    buffer: replay.Buffer  # leaves [N, capacity, ...]
    carry: Carry
    episode_returns: list[list[float]]  # per agent, the training episodes' returns in order
    eval_returns: np.ndarray  # [N, eval_episodes], deterministic
    timing: dict[str, float]
    agent: Agent
    seeds: list[int]


class Loop(NamedTuple):
    """The compiled pieces of one configuration. `run_chunk(carry, num_steps)` donates `carry`."""

    agent: Agent
    env: jaxenv.Env
    seeds: list[int]
    init: Callable[[], Carry]
    run_chunk: Callable[[Carry, int], tuple[Carry, ChunkStats]]
    evaluate: Callable[[Any, int], np.ndarray]


# ----- pieces ------------------------------------------------------------------------------------------


def agent_spec(env: jaxenv.Env) -> EnvSpec:
    """As `softrl.collect.env_spec` gives it for the gymnasium twin: images [H, W, C] keep their shape (the
    agent's encoder then chooses CNN or flat, `softrl.agents.resolve_spec`)."""
    s = env.spec
    obs_shape = tuple(s.obs_shape) if len(s.obs_shape) > 1 else None
    return EnvSpec(obs_dim=s.obs_dim, action_dim=s.action_dim, num_actions=s.num_actions, obs_shape=obs_shape)


def as_agent_obs(agent: Agent, obs: Array) -> Array:
    """One env observation in the shape the agent takes and the buffer stores (`agent.spec.shape`): images
    stay [H, W, C] for a CNN torso and are flattened for an MLP, as `softrl.collect.SeedEnvs.keep_shape`."""
    return obs.reshape(agent.spec.shape)


def to_env_action(env: jaxenv.Env, action: Array) -> Array:
    """Agent action ([-1, 1]^d, or an int) to env units, as `softrl.collect.SeedEnvs.to_env_action`."""
    if env.spec.num_actions is not None:
        return action
    low = jnp.asarray(env.spec.action_low, jnp.float32)
    high = jnp.asarray(env.spec.action_high, jnp.float32)
    return scale_action(action, low, high)


def env_step(env: jaxenv.Env, env_state: Any, obs: Array, action: Array, key: Array,
             obs_shape: tuple[int, ...] | None = None):
    """One env step for one agent. Returns (env_state, obs to act on next, the transition to store), the
    observations reshaped to `obs_shape` (the agent's `spec.shape`) when given."""
    env_state, next_act_obs, reward, terminated, truncated, info = env.step(env_state, to_env_action(env, action), key)
    next_obs = info["next_obs"]
    if obs_shape is not None:
        next_act_obs, next_obs = next_act_obs.reshape(obs_shape), next_obs.reshape(obs_shape)
    return env_state, next_act_obs, Transition(obs, action, reward, next_obs, terminated, truncated)


def random_action(spec: EnvSpec, key: Array) -> Array:
    """Uniform over the action space, drawn as `softrl.loop` draws it."""
    if spec.num_actions is not None:
        return jax.random.randint(key, (), 0, spec.num_actions)
    assert spec.action_dim is not None  # continuous
    return jax.random.uniform(key, (spec.action_dim,), jnp.float32, -1.0, 1.0)


def example_transition(spec: EnvSpec) -> Transition:
    return Transition(
        obs=jnp.zeros(spec.shape, jnp.float32),
        action=jnp.zeros((), jnp.int32) if spec.num_actions else jnp.zeros(spec.action_dim, jnp.float32),
        reward=jnp.zeros((), jnp.float32),
        next_obs=jnp.zeros(spec.shape, jnp.float32),
        terminated=jnp.zeros((), bool),
        truncated=jnp.zeros((), bool),
    )


def buffer_bytes(spec: EnvSpec, buffer_size: int, num_agents: int) -> int:
    """Memory of `num_agents` replay buffers of `buffer_size` transitions."""
    one = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(example_transition(spec)))
    return one * buffer_size * num_agents


def available_bytes() -> int:
    """Memory the buffers may use: the accelerator's limit, or the host's available memory on CPU."""
    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_buffer_fits(spec: EnvSpec, buffer_size: int, num_agents: int, budget: int | None = None) -> None:
    """ValueError (one line) when the buffers alone would take more than 80% of the memory available."""
    budget = int(0.8 * (available_bytes() if budget is None else budget))
    need = buffer_bytes(spec, buffer_size, num_agents)
    if need > budget:
        fits = budget // max(buffer_bytes(spec, buffer_size, 1), 1)
        raise ValueError(
            f"{num_agents} replay buffers of {buffer_size} transitions need {need / 2**30:.1f} GiB, more than the "
            f"{budget / 2**30:.1f} GiB available; at most {fits} agents fit (or lower --buffer-size)"
        )


# ----- the loop ------------------------------------------------------------------------------------------


def init_carry(agent: Agent, env: jaxenv.Env, seeds: list[int], buffer_size: int, learning_starts: int,
               setup: Callable[[Any], Any] | None = None) -> Carry:
    """Agent seed s: key PRNGKey(s) split as `softrl.loop` splits it; its env streams from fold_in(PRNGKey(s), 1).

    `setup(states) -> states` edits the fresh agent states before the first action (a packed trial puts each
    agent's hyperparameter values in with `softrl.packed.with_hypers`; seeds may then repeat across settings)."""
    spec = agent.spec
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])  # [N, 2]
    split = jax.vmap(jax.random.split)(keys)  # [N, 2, 2]: init, loop
    states = jax.vmap(agent.init)(split[:, 0])
    if setup is not None:
        states = setup(states)
    buffer = jax.vmap(lambda _: replay.init(buffer_size, example_transition(spec)))(jnp.arange(len(seeds)))
    env_keys = jax.vmap(jax.random.split)(jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys))  # [N, 2, 2]
    env_state, obs = jax.vmap(env.reset)(env_keys[:, 1])
    obs = jax.vmap(partial(as_agent_obs, agent))(obs)
    loop_keys = jax.vmap(jax.random.split)(split[:, 1])  # the first action's key, as softrl.loop
    if learning_starts > 0:
        action = jax.vmap(partial(random_action, spec))(loop_keys[:, 1])
    else:
        action = jax.vmap(agent.act, in_axes=(0, 0, 0, None))(states, obs, loop_keys[:, 1], False)
    n = len(seeds)
    metrics = _zero_metrics(agent, states, buffer)
    carry = Carry(states, buffer, env_state, obs, action, loop_keys[:, 0], env_keys[:, 0], jnp.zeros(n, jnp.float32),
                  jnp.zeros(n, jnp.int32), metrics, jnp.zeros((), jnp.int32), jnp.asarray(-1, jnp.int32))
    # Distinct arrays for every leaf: equal constants may share one buffer, and the chunk donates them all.
    return jax.tree.map(lambda x: jnp.array(x, copy=True), carry)


def _zero_metrics(agent: Agent, states: Any, buffer: replay.Buffer) -> dict:
    shapes = jax.eval_shape(jax.vmap(partial(_update_k, agent, 1, 1)), states, buffer,
                            jax.ShapeDtypeStruct((len(buffer.ptr), 2), jnp.uint32))[1]
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def make_step(agent: Agent, env: jaxenv.Env, batch_size: int, learning_starts: int, train_freq: int,
              gradient_steps: int, learning: bool) -> Callable[[Carry], tuple[Carry, ChunkStats]]:
    """One env step of every agent, then maybe updates, then the next actions (the module docstring's order).

    `learning` (static) selects the phase: False for steps t < learning_starts (random actions, no updates),
    True for the rest. Static phases keep `lax.cond` away from the buffer: a conditional update that reads
    the buffer makes XLA copy the whole buffer every step.
    """
    update_k = jax.vmap(partial(_update_k, agent, batch_size, gradient_steps))
    act = jax.vmap(agent.act, in_axes=(0, 0, 0, None))
    rand = jax.vmap(partial(random_action, agent.spec))
    one_step = jax.vmap(partial(env_step, env, obs_shape=agent.spec.shape))

    def maybe_update(c: Carry, buffer: replay.Buffer, t: Array, k_update: Array):
        if not learning:
            return c.agent, c.metrics
        if train_freq == 1:
            return update_k(c.agent, buffer, k_update)
        return jax.lax.cond(t % train_freq == 0, lambda: update_k(c.agent, buffer, k_update),
                            lambda: (c.agent, c.metrics))

    def step(c: Carry) -> tuple[Carry, ChunkStats]:
        t = c.step + 1
        env_keys = jax.vmap(jax.random.split)(c.env_key)
        env_state, obs, transition = one_step(c.env_state, c.obs, c.action, env_keys[:, 1])
        buffer = replay.add_lockstep(c.buffer, transition)
        done = transition.terminated | transition.truncated
        ret, length = c.episode_return + transition.reward, c.episode_length + 1
        stats = ChunkStats(done, ret, length)

        keys = jax.vmap(partial(jax.random.split, num=3))(c.key)
        key, k_act, k_update = keys[:, 0], keys[:, 1], keys[:, 2]
        state, metrics = maybe_update(c, buffer, t, k_update)
        finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(m)) for m in jax.tree.leaves(metrics)]))
        bad_step = jnp.where((c.bad_step < 0) & ~finite, t, c.bad_step)
        if learning:
            action = act(state, obs, k_act, False)
        else:  # the last warm-up step (t = learning_starts - 1) still acts randomly, as softrl.loop
            action = rand(k_act)
        carry = Carry(state, buffer, env_state, obs, action, key, env_keys[:, 0], jnp.where(done, 0.0, ret),
                      jnp.where(done, 0, length), metrics, t, bad_step)
        return carry, stats

    return step


def make_evaluate(agent: Agent, env: jaxenv.Env, seeds: list[int],
                  deterministic: bool = True) -> Callable[[Any, int], np.ndarray]:
    """Returns [N, episodes] (deterministic: the policy's mode): agent i's eval envs reset from
    PRNGKey(10**6 + seeds[i]) (the gymnasium loop seeds its eval envs 10**6 + seed); every episode runs to
    its end or the time limit."""
    horizon = env.spec.max_episode_steps

    @partial(jax.jit, static_argnums=1)
    def run(states: Any, episodes: int) -> Array:
        def one_agent(state, seed_key):
            keys = jax.random.split(seed_key, episodes + 1)
            env_state, obs = jax.vmap(env.reset)(keys[1:])
            obs = jax.vmap(partial(as_agent_obs, agent))(obs)

            def body(c, key):
                env_state, obs, ret, alive = c
                k_act, k_env = jax.random.split(key)
                action = jax.vmap(agent.act, in_axes=(None, 0, 0, None))(state, obs, jax.random.split(k_act, episodes),
                                                                          deterministic)
                env_state, obs, reward, term, trunc, _ = jax.vmap(env.step)(
                    env_state, to_env_action(env, action), jax.random.split(k_env, episodes))
                obs = jax.vmap(partial(as_agent_obs, agent))(obs)
                return (env_state, obs, ret + jnp.where(alive, reward, 0.0), alive & ~(term | trunc)), None

            init = (env_state, obs, jnp.zeros(episodes, jnp.float32), jnp.ones(episodes, bool))
            (_, _, ret, _), _ = jax.lax.scan(body, init, jax.random.split(keys[0], horizon))
            return ret

        seed_keys = jnp.stack([jax.random.PRNGKey(10**6 + s) for s in seeds])
        return jax.vmap(one_agent)(states, seed_keys)

    return lambda states, episodes: np.asarray(run(states, episodes))


def build(cfg: Any, seeds: list[int] | None = None, setup: Callable[[Any], Any] | None = None) -> Loop:
    """The loop for a TrainConfig-like `cfg` (algo, env, seed, seeds, learning_starts, train_freq,
    gradient_steps, buffer_size, agent). Raises ValueError for an unknown `jax/` id, a mismatched algorithm,
    or buffers that do not fit in memory.

    `seeds` (default `cfg.seed + i` for i < `cfg.seeds`) and `setup` (see `init_carry`) are for packed trials
    (`softrl.packed`): H settings x S seeds as `cfg.seeds` = H*S agents, seed s of every setting seeded s."""
    env = jaxenv.make(cfg.env)
    agent = _agent(cfg.algo, cfg.agent, cfg.env)
    check_buffer_fits(agent.spec, cfg.buffer_size, cfg.seeds)
    seeds = [cfg.seed + i for i in range(cfg.seeds)] if seeds is None else list(seeds)
    run_chunk = _compiled_chunk(agent, env, cfg.agent.batch_size, cfg.learning_starts, cfg.train_freq,
                                cfg.gradient_steps)
    return Loop(agent, env, seeds, lambda: init_carry(agent, env, seeds, cfg.buffer_size, cfg.learning_starts, setup),
                run_chunk, _evaluate_fn(agent, env, tuple(seeds), True))


@functools.lru_cache(maxsize=32)
def _agent(algo: str, agent_cfg: Any, env_id: str) -> Agent:
    """One Agent object per configuration, so that the compiled chunks and evaluations below are reused
    (a resumed run, or many runs of one configuration in a process, compile once)."""
    return make_agent(algo, agent_cfg, agent_spec(jaxenv.make(env_id)))


@functools.lru_cache(maxsize=32)
def _evaluate_fn(agent: Agent, env: jaxenv.Env, seeds: tuple[int, ...], deterministic: bool):
    return make_evaluate(agent, env, list(seeds), deterministic)


@functools.lru_cache(maxsize=32)
def _compiled_chunk(agent: Agent, env: jaxenv.Env, batch_size: int, learning_starts: int, train_freq: int,
                    gradient_steps: int) -> Callable[[Carry, int], tuple[Carry, ChunkStats]]:
    steps = {learning: make_step(agent, env, batch_size, learning_starts, train_freq, gradient_steps, learning)
             for learning in (False, True)}

    @partial(jax.jit, static_argnums=(1, 2), donate_argnums=0)
    def scan(carry: Carry, num_steps: int, learning: bool) -> tuple[Carry, ChunkStats]:
        return jax.lax.scan(lambda c, _: steps[learning](c), carry, None, length=num_steps)

    def run_chunk(carry: Carry, num_steps: int) -> tuple[Carry, ChunkStats]:
        """`num_steps` env steps, split (on the host) where learning starts."""
        start = int(carry.step)
        warm = min(num_steps, max(learning_starts - 1 - start, 0))  # steps t = start+1 .. learning_starts-1
        parts = []
        if warm:
            carry, stats = scan(carry, warm, False)
            parts.append(stats)
        if num_steps - warm:
            carry, stats = scan(carry, num_steps - warm, True)
            parts.append(stats)
        return carry, jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)

    return run_chunk


def episode_returns(stats: ChunkStats) -> list[list[float]]:
    """Per agent, the returns of the episodes that ended in a chunk, in order."""
    done, ret = np.asarray(stats.done), np.asarray(stats.episode_return)
    return [ret[done[:, i], i].tolist() for i in range(done.shape[1])]


def train_ondevice(
    cfg: Any,
    *,
    chunk_steps: int | None = None,
    carry: Carry | None = None,
    on_chunk: Callable[[Carry, ChunkStats], None] | None = None,
) -> OnDeviceResult:
    """Train `cfg.seeds` agents on the `jax/` env `cfg.env` up to `cfg.total_steps` env steps each.

    Runs chunks of `chunk_steps` steps (default `cfg.log_every`, or everything at once when 0), calling
    `on_chunk(carry, stats)` after each, where logs, evaluations and checkpoints go (the carry is the whole
    loop state: save it; pass it back as `carry=` to resume). Chunk sizes do not change the result.
    """
    loop = build(cfg)
    carry = loop.init() if carry is None else carry
    chunk = chunk_steps or getattr(cfg, "log_every", 0) or cfg.total_steps
    returns: list[list[float]] = [[] for _ in loop.seeds]
    t0 = time.perf_counter()
    while (done_steps := int(carry.step)) < cfg.total_steps:
        carry, stats = loop.run_chunk(carry, min(chunk, cfg.total_steps - done_steps))
        for mine, new in zip(returns, episode_returns(stats)):
            mine.extend(new)
        if int(carry.bad_step) >= 0:
            raise FloatingPointError(f"non-finite loss (NaN/inf) at env step {int(carry.bad_step)}; stopped. "
                                     "Try a lower --lr, or check the rewards and observations.")
        if on_chunk is not None:
            on_chunk(carry, stats)
    jax.block_until_ready(carry)
    wall = time.perf_counter() - t0
    eval_returns = loop.evaluate(carry.agent, cfg.eval_episodes)
    timing = {"wall_s": wall, "agent_steps_per_s": cfg.total_steps * len(loop.seeds) / max(wall, 1e-9)}
    return OnDeviceResult(carry.agent, carry.buffer, carry, returns, eval_returns, timing, loop.agent, loop.seeds)


__all__ = ["Carry", "ChunkStats", "Loop", "OnDeviceResult", "build", "buffer_bytes", "check_buffer_fits",
           "env_step", "episode_returns", "train_ondevice"]
