"""Policy files: what a trained agent needs to act, and nothing that can run code when loaded.

A policy directory holds two files:
- `arrays.safetensors`: the agent-state subtrees that `agent.act` reads, every leaf with a leading
  seed axis [num_seeds, ...], named by its tree path (`actor/params/MLP_0/Dense_0/kernel`, `hp/gamma`, ...),
  plus the optional observation normaliser `obs_norm/{mean,var}` [num_seeds, obs_dim] and
  `obs_norm/count` [num_seeds];
- `policy.json`: format and softrl version, algorithm, every `AgentConfig` field, env id and kwargs,
  observation and action spaces, action bounds, seeds, env step, the sha256 of the arrays file and the
  path, shape and dtype of every array.
safetensors is a header plus raw bytes, and JSON is data: loading either executes nothing (unlike pickle).

`load_policy` rebuilds the agent from (algo, AgentConfig, EnvSpec) with `softrl.agents.make_agent`, takes
the state's layout from `jax.eval_shape(agent.init, key)` (shapes only, no initialisation is computed), checks
every saved leaf against it and returns a `Policy`: `policy(obs, deterministic=True, key=None) -> action`
in environment units, batched or not. No replay buffer, optimiser state or environment is built.

`export_policy` writes the deterministic policy as a serialized `jax.export` program (StableHLO) that runs
with jax alone::

    import jax, numpy as np
    exported = jax.export.deserialize(open("policy.jaxexport", "rb").read())
    action = np.asarray(exported.call(np.asarray(obs, np.float32)[None]))[0]  # obs batch [B, *obs_shape]

ONNX: not provided; `ONNX_NOTE` says why.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from softrl.agents.base import Agent, EnvSpec
from softrl.config import ALGOS, CONTINUOUS_ALGOS, AgentConfig
from softrl.dists import scale_action

FORMAT = "softrl-policy"
FORMAT_VERSION = 1
ARRAYS_FILE = "arrays.safetensors"
META_FILE = "policy.json"
POLICY_DIRNAME = "policy"
BEST_POLICY_DIRNAME = "best_policy"  # RUN/best_policy: the best evaluation so far (median over seeds)

# The state fields `agent.act` reads (plus `step`, the clock of DQN's epsilon schedule); the rest of the
# state (critics of actor-critic agents, targets, optimiser states) is never needed to act.
ACT_FIELDS = {
    **{algo: ("actor", "log_alpha", "hp", "step") for algo in (*CONTINUOUS_ALGOS, "discrete-sac")},
    "dqn": ("critic", "log_alpha", "hp", "step"),
    "soft-dqn": ("critic", "log_alpha", "hp", "step"),
}
assert set(ACT_FIELDS) == set(ALGOS)

OBS_NORM_EPS = 1e-8
"""The observation normaliser's `(obs - mean) / sqrt(var + eps)`, clipped to [-clip, clip]."""
OBS_NORM_CLIP = 10.0


ONNX_NOTE = """\
No ONNX export. tf2onnx needs TensorFlow, which softrl does not depend on. jax2onnx (0.17.1, maintained,
converts jaxprs) installs, but it pulls in about 20 packages (orbax-checkpoint, orbax-export, equinox,
huggingface_hub, netron, onnxruntime, ...) and does not convert softrl's policies as they are: its flax
plugin replaces `linen.Dense` by a primitive without a batching rule, so the vmapped `agent.act` fails
("Batching rule for 'linen.dense' not implemented"). Re-evaluating the traced jaxpr first avoids the plugin
and then SAC converts with a symbolic batch (actions within 1.2e-7 of load_policy in onnxruntime), but the
discrete agents convert only with a fixed batch size (a symbolic batch fails in broadcast_in_dim). That
is too fragile to ship; the jax.export program above covers running a policy without softrl."""


class PolicyError(ValueError):
    """A policy directory that is missing, corrupt, incompatible, or does not fit the request."""


# ----- helpers: tree paths, spaces, strict JSON -------------------------------------------------------


def _key_name(entry: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    raise TypeError(f"unsupported tree path entry {entry!r}")


def flatten_named(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a/b/c": leaf}` for every leaf of `tree`, in tree order (None subtrees have no leaves)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join([prefix, *map(_key_name, path)]).strip("/"): leaf for path, leaf in leaves}


def _json_floats(values: np.ndarray) -> list:
    """Finite floats as numbers, +-inf and nan as strings: policy.json stays strict JSON."""
    return [v if math.isfinite(v) else str(v) for v in np.asarray(values, np.float64).reshape(-1).tolist()]


def _floats(values: list) -> np.ndarray:
    return np.array([float(v) for v in values], np.float64)


def space_to_dict(space: Any) -> dict:
    """A gymnasium Box or Discrete space as plain JSON data."""
    import gymnasium as gym

    if isinstance(space, gym.spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _json_floats(space.low), "high": _json_floats(space.high)}
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise PolicyError(f"space {space} is not supported in a policy file (Box or Discrete only)")


def _space_shape(space: dict) -> tuple[int, ...]:
    return tuple(space["shape"]) if space["type"] == "Box" else ()


# ----- saving -----------------------------------------------------------------------------------------


def _softrl_version() -> str:
    from softrl import __version__

    return __version__


def _policy_arrays(algo: str, states: Any, obs_norm: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    arrays = {}
    for field in ACT_FIELDS[algo]:
        arrays.update(flatten_named(getattr(states, field), field))
    if obs_norm is not None:
        missing = {"mean", "var", "count"} - set(obs_norm)
        if missing:
            raise PolicyError(f"obs_norm needs mean, var and count; missing {sorted(missing)}")
        arrays.update({f"obs_norm/{k}": obs_norm[k] for k in ("mean", "var", "count")})
    return {k: np.ascontiguousarray(jax.device_get(v)) for k, v in arrays.items()}


def _write_atomic(out: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write both files into a fresh sibling temp dir, then rename it into place. A crash never leaves a
    half-written `out`: it holds the old policy, the new one, or (between the two renames) nothing while
    the old one is at `.NAME.old`."""
    from safetensors.numpy import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_file(arrays, str(tmp / ARRAYS_FILE))
        meta["arrays_sha256"] = hashlib.sha256((tmp / ARRAYS_FILE).read_bytes()).hexdigest()
        try:
            text = json.dumps(meta, indent=1, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise PolicyError(f"policy metadata is not plain JSON data (env_kwargs?): {err}") from None
        (tmp / META_FILE).write_text(text)
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_policy(
    out_dir: str | Path,
    *,
    algo: str,
    agent_config: AgentConfig,
    spec: EnvSpec,
    states: Any,
    seeds: list[int],
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    obs_space: Any,
    action_space: Any,
    step: int,
    eval_return: float | list[float] | np.ndarray | None = None,
    obs_norm: Mapping[str, Any] | None = None,
) -> Path:
    """Write the policy of every seed of `states` (leaves [num_seeds, ...]) to `out_dir`, atomically.

    `obs_norm`, when the run normalises observations: `{"mean": [N, obs_dim], "var": [N, obs_dim],
    "count": [N]}`, applied as `clip((obs - mean) / sqrt(var + 1e-8), -10, 10)` before the agent acts.
    Returns `out_dir`.
    """
    if algo not in ACT_FIELDS:
        raise PolicyError(f"unknown algorithm {algo!r}; choose one of {', '.join(ALGOS)}")
    if obs_norm is None and getattr(states, "obs_norm", None) is not None:  # --normalize-obs: in the agent state
        norm = states.obs_norm  # mean, var [N, *obs_shape], count [N]; saved flat, as the env's obs are flattened
        obs_norm = {"mean": np.asarray(norm.mean).reshape(len(seeds), -1),
                    "var": np.asarray(norm.var).reshape(len(seeds), -1), "count": np.asarray(norm.count)}
    arrays = _policy_arrays(algo, states, obs_norm)
    n = len(seeds)
    bad = [k for k, v in arrays.items() if v.ndim == 0 or v.shape[0] != n]
    if bad:
        raise PolicyError(f"states must have a leading seed axis of size {n} (len(seeds)); {bad[0]} does not")
    act = space_to_dict(action_space)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "softrl_version": _softrl_version(),
        "algo": algo,
        "agent_config": dataclasses.asdict(agent_config),
        "env_spec": spec._asdict(),
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "observation_space": space_to_dict(obs_space),
        "action_space": act,
        "action_bounds": {"low": act["low"], "high": act["high"]} if act["type"] == "Box" else None,
        "obs_norm": {"eps": OBS_NORM_EPS, "clip": OBS_NORM_CLIP} if obs_norm is not None else None,
        "seeds": [int(s) for s in seeds],
        "step": int(step),
        "eval_return": None if eval_return is None else _json_floats(np.atleast_1d(eval_return)),
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    out = Path(out_dir)
    _write_atomic(out, arrays, meta)
    return out


# ----- loading ----------------------------------------------------------------------------------------


def _policy_dir(path: str | Path) -> Path:
    path = Path(path)
    if (path / META_FILE).exists():
        return path
    if (path / POLICY_DIRNAME / META_FILE).exists():
        return path / POLICY_DIRNAME
    if (path / "config.json").exists() or (path / "checkpoint.pkl").exists():
        raise PolicyError(f"run {path} has no policy yet ({path / POLICY_DIRNAME / META_FILE} is missing)")
    raise PolicyError(f"{path} is neither a policy directory nor a run directory (no {META_FILE} found)")


def read_meta(policy_dir: Path) -> dict:
    """policy.json, checked for format and version. Raises PolicyError with a one-line reason."""
    try:
        meta = json.loads((policy_dir / META_FILE).read_text())
    except (OSError, ValueError) as err:
        raise PolicyError(f"{policy_dir / META_FILE} is unreadable: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PolicyError(f"{policy_dir / META_FILE} is not a softrl policy file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        hint = "upgrade softrl" if isinstance(version, int) and version > FORMAT_VERSION else "re-export it"
        raise PolicyError(
            f"{policy_dir} has policy format version {version!r} (softrl {meta.get('softrl_version', '?')}); "
            f"this softrl reads version {FORMAT_VERSION}: {hint}"
        )
    if meta.get("algo") not in ACT_FIELDS:
        raise PolicyError(f"{policy_dir} is for algorithm {meta.get('algo')!r}, unknown to this softrl")
    return meta


def read_arrays(policy_dir: Path, meta: dict) -> dict[str, np.ndarray]:
    """The arrays file, after checking its sha256 against policy.json."""
    from safetensors.numpy import load

    path = policy_dir / ARRAYS_FILE
    try:
        raw = path.read_bytes()
    except OSError:
        raise PolicyError(f"{path} is missing: the policy directory is incomplete") from None
    if hashlib.sha256(raw).hexdigest() != meta.get("arrays_sha256"):
        raise PolicyError(f"{path} is corrupt: its sha256 does not match {META_FILE} (truncated or modified)")
    return load(raw)


def agent_config_from_dict(d: dict) -> AgentConfig:
    known = {f.name for f in dataclasses.fields(AgentConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise PolicyError(f"policy agent_config has fields this softrl does not know ({unknown}): upgrade softrl")
    return AgentConfig(**{**d, "hidden": tuple(d.get("hidden", AgentConfig.hidden))})


def _fill(template: Any, arrays: dict[str, np.ndarray], prefix: str, seed_index: int) -> Any:
    """The template subtree with every leaf replaced by the saved one for `seed_index`, checked."""
    leaves, treedef = jax.tree.flatten(template)
    names = list(flatten_named(template, prefix))
    out = []
    for name, t in zip(names, leaves):
        if name not in arrays:
            raise PolicyError(f"policy arrays lack {name!r}: written by another network size or algorithm?")
        x = arrays[name]
        if x.shape[1:] != tuple(t.shape) or x.dtype != np.dtype(t.dtype):
            raise PolicyError(f"policy array {name} is {x.shape[1:]} {x.dtype}, this agent needs {t.shape} {t.dtype}")
        out.append(jnp.asarray(x[seed_index]))
    return jax.tree.unflatten(treedef, out)


def _state_for_seed(agent: Agent, algo: str, arrays: dict[str, np.ndarray], seed_index: int) -> Any:
    template = jax.eval_shape(agent.init, jax.random.PRNGKey(0))  # layout only: nothing is initialised
    fields = ACT_FIELDS[algo]
    expected = set(flatten_named({f: getattr(template, f) for f in fields}))
    extra = sorted(k for k in set(arrays) - expected if not k.startswith("obs_norm/"))
    if extra:
        raise PolicyError(f"policy arrays hold {extra[0]!r}, which this agent does not have")
    filled = {f: _fill(getattr(template, f), arrays, f, seed_index) for f in fields}
    # Fields act never reads stay None: no critic or optimiser memory for actor-critic policies.
    others = {f.name: None for f in dataclasses.fields(template) if f.name not in fields}
    return template.replace(**others, **filled)


@dataclasses.dataclass(frozen=True)
class Policy:
    """A loaded policy. `policy(obs, deterministic=True, key=None) -> action`, numpy in, numpy out.

    obs: one observation as the env returns it (`obs_space.shape`, or an int for Discrete) or a
    batch [B, ...]. action: in the env's units (Box bounds, or ints), batched like obs.
    Stochastic acting (`deterministic=False`) needs an explicit `key`.
    """

    agent: Agent
    state: Any  # the agent-state subtrees act reads, one seed (no seed axis)
    meta: dict
    seed_index: int
    obs_norm: tuple[np.ndarray, np.ndarray] | None  # (mean, var) [obs_dim] each

    @property
    def seed(self) -> int:
        return int(self.meta["seeds"][self.seed_index])

    @property
    def obs_space(self) -> dict:
        return self.meta["observation_space"]

    @property
    def action_space(self) -> dict:
        return self.meta["action_space"]

    def flat_obs(self, obs: Any) -> tuple[np.ndarray, bool]:
        """Env observations -> the agent's float32 [B, obs_dim] (one-hot for Discrete), and whether batched."""
        space = self.obs_space
        obs = np.asarray(obs)
        shape = _space_shape(space)
        if obs.shape == shape:
            batched, obs = False, obs[None]
        elif obs.shape[1:] == shape and obs.ndim == len(shape) + 1:
            batched = True
        else:
            raise PolicyError(f"observation of shape {obs.shape} does not fit the policy's {list(shape)} or [B, ...]")
        if space["type"] == "Discrete":
            flat = np.eye(space["n"], dtype=np.float32)[obs.astype(np.int64) - space["start"]]
        else:
            flat = obs.reshape(len(obs), -1).astype(np.float32)
        if self.obs_norm is not None:
            flat = normalize_obs(flat, *self.obs_norm, self.meta["obs_norm"])
        return flat, batched

    def to_env_action(self, action: np.ndarray, batched: bool) -> Any:
        """Agent actions [B, d] in [-1, 1] (or [B] ints) -> env actions, as `SeedEnvs.to_env_action` does."""
        space = self.action_space
        if space["type"] == "Discrete":
            out = action.astype(np.int64) + space["start"]
            return out if batched else int(out[0])
        low, high = (_floats(space[k]).astype(np.float32) for k in ("low", "high"))
        out = scale_action(action.astype(np.float32), low, high).astype(space["dtype"])
        out = out.reshape(len(out), *space["shape"])
        return out if batched else out[0]

    def __call__(self, obs: Any, deterministic: bool = True, key: jax.Array | None = None) -> Any:
        flat, batched = self.flat_obs(obs)
        if key is None:
            if not deterministic:
                raise PolicyError("stochastic acting (deterministic=False) needs key=jax.random.PRNGKey(...)")
            key = jax.random.PRNGKey(0)  # unused by every agent's deterministic branch
        keys = jax.random.split(key, len(flat))
        action = np.asarray(_act(self.agent, self.state, jnp.asarray(flat), keys, deterministic))
        return self.to_env_action(action, batched)


@partial(jax.jit, static_argnames=("agent", "deterministic"))
def _act(agent: Agent, state: Any, obs: jax.Array, keys: jax.Array, deterministic: bool) -> jax.Array:
    """`agent.act` on a batch of observations [B, obs_dim] with one seed's state."""
    return jax.vmap(agent.act, in_axes=(None, 0, 0, None))(state, obs, keys, deterministic)


def normalize_obs(obs: Any, mean: Any, var: Any, cfg: Mapping[str, float]) -> Any:
    """`clip((obs - mean) / sqrt(var + eps), -clip, clip)`: numpy or jax arrays, [..., obs_dim]."""
    xp = np if isinstance(obs, np.ndarray) else jnp
    return xp.clip((obs - mean) / xp.sqrt(var + cfg["eps"]), -cfg["clip"], cfg["clip"])


def load_policy(path: str | Path, seed_index: int = 0) -> Policy:
    """Load seed `seed_index` of the policy in `path` (a run dir, which uses RUN/policy/, or a policy dir).

    Builds no environment, no replay buffer and no optimiser state. Raises PolicyError (a ValueError)
    with a one-line reason for a missing, corrupt or incompatible policy.
    """
    pdir = _policy_dir(path)
    meta = read_meta(pdir)
    arrays = read_arrays(pdir, meta)
    n = len(meta["seeds"])
    if not 0 <= seed_index < n:
        raise PolicyError(f"seed_index {seed_index} is out of range: {pdir} holds {n} seed(s) {meta['seeds']}")
    from softrl.agents import make_agent

    spec = EnvSpec(**meta["env_spec"])
    if spec.obs_shape is not None:  # JSON gave a list; the spec must stay hashable
        spec = spec._replace(obs_shape=tuple(int(d) for d in spec.obs_shape))
    try:
        agent = make_agent(meta["algo"], agent_config_from_dict(meta["agent_config"]), spec)
    except (TypeError, ValueError) as err:
        raise PolicyError(f"{pdir}: cannot rebuild the agent: {str(err).splitlines()[0]}") from None
    state = _state_for_seed(agent, meta["algo"], arrays, seed_index)
    obs_norm = None
    if meta.get("obs_norm") is not None:
        obs_norm = (arrays["obs_norm/mean"][seed_index], arrays["obs_norm/var"][seed_index])
    return Policy(agent, state, meta, seed_index, obs_norm)


# ----- export -----------------------------------------------------------------------------------------


def deterministic_env_action_fn(policy: Policy):
    """`f(obs [B, *obs_shape] float32 (int32 for Discrete obs)) -> env actions [B, *act_shape]`, pure jax.

    The policy's parameters are closed over (they become constants of the exported program).
    """
    obs_space, act_space, meta = policy.obs_space, policy.action_space, policy.meta
    state, agent, obs_norm = policy.state, policy.agent, policy.obs_norm
    key = jax.random.PRNGKey(0)  # the deterministic branch ignores it

    def f(obs: jax.Array) -> jax.Array:
        if obs_space["type"] == "Discrete":
            flat = jax.nn.one_hot(obs - obs_space["start"], obs_space["n"], dtype=jnp.float32)
        else:
            flat = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        if obs_norm is not None:
            flat = normalize_obs(flat, jnp.asarray(obs_norm[0]), jnp.asarray(obs_norm[1]), meta["obs_norm"])
        action = jax.vmap(agent.act, in_axes=(None, 0, None, None))(state, flat, key, True)
        if act_space["type"] == "Discrete":
            return action.astype(jnp.int32) + act_space["start"]
        low, high = (jnp.asarray(_floats(act_space[k]), jnp.float32) for k in ("low", "high"))
        return scale_action(action, low, high).reshape(action.shape[0], *act_space["shape"])

    return f


def export_policy(path: str | Path, out_file: str | Path, seed_index: int = 0, batch: int | None = None) -> Path:
    """Write seed `seed_index`'s deterministic policy as a serialized `jax.export` program (StableHLO).

    Input: observations [B, *obs_shape] as float32 (int32 for a Discrete observation space); output:
    env actions [B, *act_shape] (float32 in the Box bounds, or int32). B is symbolic (any batch size)
    unless `batch` fixes it. Run it with jax alone, no softrl needed::

        import jax, numpy as np
        exported = jax.export.deserialize(open(FILE, "rb").read())
        actions = np.asarray(exported.call(np.asarray(obs_batch, np.float32)))

    The file is written atomically. Returns `out_file`.
    """
    policy = load_policy(path, seed_index)
    space = policy.obs_space
    b = jax.export.symbolic_shape("b")[0] if batch is None else int(batch)
    dtype = jnp.int32 if space["type"] == "Discrete" else jnp.float32
    arg = jax.ShapeDtypeStruct((b, *_space_shape(space)), dtype)
    exported = jax.export.export(jax.jit(deterministic_env_action_fn(policy)))(arg)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(exported.serialize())
    os.replace(tmp, out)
    return out


__all__ = [
    "FORMAT_VERSION",
    "Policy",
    "PolicyError",
    "export_policy",
    "load_policy",
    "save_policy",
]
