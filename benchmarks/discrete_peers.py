"""Runners for the discrete-action benchmark (`discrete.py`): one training run per subprocess, one JSON record.

Runners (``RUNNERS``):

- ``softrl-dqn``, ``softrl-soft-dqn``, ``softrl-discrete-sac``: softrl through its public API
  (``softrl.train``), ``seeds`` agents vmapped in one process;
- ``sb3-dqn``: stable-baselines3's DQN (torch, CPU);
- ``cleanrl-discrete-sac``: CleanRL 1.2.0's ``sac_atari.py`` (Christodoulou 2019's discrete SAC),
  copied into ``benchmarks/_work/`` (git-ignored) and patched at run time: gymnasium 1.x (the same
  fixes as ``peers.py`` makes to ``sac_continuous_action.py``), an MLP trunk in place of the Atari CNN,
  no Atari wrappers, and the clock, a final evaluation and the JSON record. CleanRL's code is never
  committed.

sb3-contrib 2.9.2 (the newest release on the index) has no discrete SAC (ARS, CrossQ, MaskablePPO,
QR-DQN, RecurrentPPO, TQC, TRPO), hence CleanRL's.

Every child prints ``PEERS_RESULT {json}`` with ``library``, ``algo``, ``env``, ``seeds``,
``steps_timed``, ``seconds``, ``steps_per_s`` (after the first update, so JAX compilation is left out),
``eval_returns`` (one mean over ``eval_episodes`` deterministic episodes per seed), ``versions`` and
``settings`` (read back from the trained peer where it has them).

Run one directly (the benchmark venv must have torch, stable-baselines3, minatar)::

    python benchmarks/discrete_peers.py --runner sb3-dqn --env CartPole-v1 --steps 30000
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402  (reuses the child plumbing and the gymnasium patches of the SAC benchmark)

RESULT_TAG = peers.RESULT_TAG
RUNNERS = ("softrl-dqn", "softrl-soft-dqn", "softrl-discrete-sac", "sb3-dqn", "cleanrl-discrete-sac")
# The softrl algorithm each peer is compared with.
PAIRED = {"sb3-dqn": "softrl-dqn", "cleanrl-discrete-sac": "softrl-discrete-sac"}

CLEANRL_VERSION = "1.2.0"
CLEANRL_SCRIPT = "sac_atari.py"
# sha256 of cleanrl/sac_atari.py in the cleanrl 1.2.0 wheel, the text the patches below target.
CLEANRL_SHA256 = "f0986884d50f255d58bb3b0b00a4e23f23100d6bd86d86641fe8d58980c86432"


@dataclasses.dataclass(frozen=True)
class Workload:
    """The settings every library gets. Defaults: softrl's CartPole-v1 settings (tests/test_discrete_agents.py)."""

    hidden: tuple[int, int] = (128, 128)  # ReLU MLP for every Q network and actor
    lr: float = 1e-3  # Adam, for Q networks, actor and temperature
    batch_size: int = 256
    buffer_size: int = 100_000
    gamma: float = 0.99
    tau: float = 0.01  # Polyak target update after every gradient step
    learning_starts: int = 1_000  # uniformly random actions before the first update
    train_freq: int = 1
    gradient_steps: int = 1
    epsilon_start: float = 1.0  # dqn: epsilon-greedy, linear over epsilon_decay_steps updates
    epsilon_end: float = 0.1
    epsilon_decay_steps: int = 5_000
    init_alpha: float = 1.0  # soft-dqn, discrete-sac: tuned temperature, log-alpha loss
    target_entropy_scale: float = 0.5  # target entropy = scale * log|A|
    eval_episodes: int = 10

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        d = json.loads(text)
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


def _versions(*dists: str) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for d in dists:
        try:
            out[d] = version(d)
        except PackageNotFoundError:
            out[d] = None
    return out


# ----------------------------------------------------------------------------------------------------------
# Parent side
# ----------------------------------------------------------------------------------------------------------


_SOFTRL_SNIPPET = """
import json, sys
import softrl

algo, env_id, total_steps, seed, seeds, run_dir, tag, wl = sys.argv[1:9]
wl = json.loads(wl)
agent = softrl.AgentConfig(
    hidden=tuple(wl["hidden"]), lr=wl["lr"], batch_size=wl["batch_size"], gamma=wl["gamma"], tau=wl["tau"],
    alpha="auto", init_alpha=wl["init_alpha"], target_entropy_scale=wl["target_entropy_scale"],
    epsilon_start=wl["epsilon_start"], epsilon_end=wl["epsilon_end"],
    epsilon_decay_steps=wl["epsilon_decay_steps"])
cfg = softrl.TrainConfig(
    algo=algo, env=env_id, seed=int(seed), seeds=int(seeds), total_steps=int(total_steps),
    learning_starts=wl["learning_starts"], train_freq=wl["train_freq"], gradient_steps=wl["gradient_steps"],
    buffer_size=wl["buffer_size"], eval_every=0, eval_episodes=wl["eval_episodes"], checkpoint_every=0,
    progress=False, run_dir=run_dir, agent=agent)
result = softrl.train(cfg)
t = result.timing
from importlib.metadata import version
import jax
record = {
    "library": "softrl", "algo": algo, "env": env_id, "seed": int(seed), "seeds": int(seeds),
    "steps_timed": (int(total_steps) - wl["learning_starts"]) * int(seeds),
    "seconds": t["seconds_after_learning_starts"], "steps_per_s": t["steps_per_s_after_learning_starts"],
    "per_seed_steps_per_s": t["per_seed_steps_per_s"], "wall_s_train": t["wall_s"],
    "eval_returns": [float(x) for x in result.eval_returns.mean(axis=1)],
    "updates": [int(u) for u in result.updates],
    "backend": "jax " + jax.__version__ + " (" + jax.default_backend() + ")",
    "versions": {},
    "settings": {"agent": {k: getattr(agent, k) for k in ("hidden", "lr", "batch_size", "gamma", "tau",
                 "alpha", "init_alpha", "target_entropy_scale", "epsilon_start", "epsilon_end",
                 "epsilon_decay_steps", "num_critics")}, "buffer_size": cfg.buffer_size,
                 "learning_starts": cfg.learning_starts, "train_freq": cfg.train_freq,
                 "gradient_steps": cfg.gradient_steps},
}
for d in ("softrl", "jax", "flax", "optax", "gymnasium", "numpy", "MinAtar"):
    try:
        record["versions"][d] = version(d)
    except Exception:
        record["versions"][d] = None
print(tag + json.dumps(record), flush=True)
"""


def run(
    runner: str,
    env_id: str,
    steps: int,
    workload: Workload,
    *,
    seed: int = 0,
    seeds: int = 1,
    softrl_python: str | None = None,
    peer_python: str | None = None,
    threads: int | None = None,
    timeout: float | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """One training run of ``steps`` env steps per seed in its own subprocess; returns its record.

    ``seeds > 1`` only for softrl runners (vmapped seeds in one process: aggregate steps/s).
    """
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; choose from {RUNNERS}")
    if runner.startswith("softrl-"):
        algo = runner.removeprefix("softrl-")
        with tempfile.TemporaryDirectory(prefix="softrl-discrete-bench-") as run_dir:
            cmd = [softrl_python or sys.executable, "-c", _SOFTRL_SNIPPET, algo, env_id, str(steps), str(seed),
                   str(seeds), run_dir, RESULT_TAG, workload.to_json()]
            env = peers._child_env(pythonpath=peers.REPO_ROOT, threads=threads)
            record = peers._run_child(cmd, cwd=peers._work_dir(), env=env, timeout=timeout, verbose=verbose)
    else:
        if seeds != 1:
            raise ValueError(f"{runner} runs one seed per process")
        py = peer_python or sys.executable
        if runner == "sb3-dqn":
            cmd = [py, str(Path(__file__).resolve()), "--child", "sb3-dqn", "--env", env_id, "--steps", str(steps),
                   "--seed", str(seed), "--workload", workload.to_json()]
        else:
            cmd = [py, str(prepare_cleanrl_script(py)), *cleanrl_args(env_id, steps, workload, seed)]
        env = peers._child_env(pythonpath=peers.REPO_ROOT, threads=threads)
        record = peers._run_child(cmd, cwd=peers._work_dir(), env=env, timeout=timeout, verbose=verbose)
    record.update(runner=runner, threads_cap=threads, budget=steps)
    return record


# ----------------------------------------------------------------------------------------------------------
# Child side: stable-baselines3 DQN
# ----------------------------------------------------------------------------------------------------------


def _evaluate_greedy(env_id: str, policy, episodes: int, seed: int) -> float:
    """Mean undiscounted return of ``episodes`` episodes; the env is seeded ``10**6 + seed`` as softrl's evaluation."""
    import gymnasium as gym

    env = gym.make(env_id)
    obs, _ = env.reset(seed=10**6 + seed)
    returns, ret = [], 0.0
    while len(returns) < episodes:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        ret += float(reward)
        if terminated or truncated:
            returns.append(ret)
            ret = 0.0
            obs, _ = env.reset()
    env.close()
    return sum(returns) / len(returns)


def _train_sb3_dqn(env_id: str, steps: int, seed: int, wl: Workload) -> dict[str, Any]:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    from softrl.envs import register_envs

    register_envs()  # softrl/MinAtar-* ids

    class Clock(BaseCallback):
        """Times env steps L+1 .. budget. SB3 trains after env step n once n > learning_starts."""

        def __init__(self, start_at: int) -> None:
            super().__init__()
            self.start_at = start_at
            self.t0 = self.t_after_first = self.t1 = None
            self.steps_at_start = 0

        def _on_step(self) -> bool:
            if self.t0 is None and self.num_timesteps >= self.start_at:
                self.t0, self.steps_at_start = time.perf_counter(), self.num_timesteps
            elif self.t0 is not None and self.t_after_first is None and self.num_timesteps >= self.steps_at_start + 2:
                self.t_after_first = time.perf_counter()
            return True

        def _on_training_end(self) -> None:
            self.t1 = time.perf_counter()

    env = gym.make(env_id)
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=wl.lr,
        buffer_size=wl.buffer_size,
        learning_starts=wl.learning_starts,
        batch_size=wl.batch_size,
        tau=wl.tau,
        gamma=wl.gamma,
        train_freq=wl.train_freq,
        gradient_steps=wl.gradient_steps,
        target_update_interval=1,  # with tau < 1: Polyak after every env step
        exploration_initial_eps=wl.epsilon_start,
        exploration_final_eps=wl.epsilon_end,
        policy_kwargs={"net_arch": list(wl.hidden)},
        seed=seed,
        device="cpu",
        verbose=0,
    )

    # softrl's schedule: epsilon decays over `epsilon_decay_steps` updates counted from learning_starts;
    # SB3's built-in one counts from env step 0. SB3 passes the fraction of training left.
    def epsilon(progress_remaining: float) -> float:
        env_step = (1.0 - progress_remaining) * steps
        frac = min(max(env_step - wl.learning_starts, 0.0) / max(wl.epsilon_decay_steps, 1), 1.0)
        return wl.epsilon_start + frac * (wl.epsilon_end - wl.epsilon_start)

    model.exploration_schedule = epsilon
    clock = Clock(wl.learning_starts)
    model.learn(total_timesteps=steps, callback=clock, progress_bar=False)
    assert clock.t0 is not None and clock.t1 is not None
    steps_timed = model.num_timesteps - clock.steps_at_start
    rate_after_first = peers._rate_after_first(steps_timed, clock.t_after_first, clock.t1)
    env.close()
    ret = _evaluate_greedy(env_id, lambda o: int(model.predict(o, deterministic=True)[0]), wl.eval_episodes, seed)
    return {
        "library": "stable-baselines3",
        "algo": "dqn",
        "env": env_id,
        "seed": seed,
        "seeds": 1,
        "steps_timed": int(steps_timed),
        "seconds": clock.t1 - clock.t0,
        "steps_per_s": rate_after_first or steps_timed / (clock.t1 - clock.t0),
        "steps_per_s_incl_first_update": steps_timed / (clock.t1 - clock.t0),
        "eval_returns": [ret],
        "updates": [int(model._n_updates)],
        "backend": f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        "versions": _versions("stable-baselines3", "torch", "gymnasium", "numpy", "MinAtar"),
        "settings": {
            "net_arch": list(wl.hidden),
            "learning_rate": float(model.learning_rate),
            "batch_size": model.batch_size,
            "buffer_size": model.buffer_size,
            "tau": model.tau,
            "gamma": model.gamma,
            "train_freq": model.train_freq.frequency,
            "gradient_steps": model.gradient_steps,
            "target_update_interval": model.target_update_interval,
            "learning_starts": model.learning_starts,
            "max_grad_norm": model.max_grad_norm,
            "loss": "smooth_l1 (SB3's)",
            "epsilon": [wl.epsilon_start, wl.epsilon_end, wl.epsilon_decay_steps],
        },
    }


# ----------------------------------------------------------------------------------------------------------
# CleanRL 1.2.0 sac_atari.py: fetch, patch for gymnasium 1.x and vector observations, instrument
# ----------------------------------------------------------------------------------------------------------

_MLP_TRUNK = """self.conv = nn.Sequential(  # [bench] MLP trunk for flat vector observations, no CNN
            nn.Flatten(),
            layer_init(nn.Linear(int(np.prod(obs_shape)), args.hidden[0])),
            nn.ReLU(),
        )"""

_EXTRA_ARGS = """    # [bench] extra arguments
    parser.add_argument("--hidden", type=int, nargs=2, default=[128, 128], help="MLP widths")
    parser.add_argument("--eval-episodes", type=int, default=10, help="deterministic episodes at the end")
    args = parser.parse_args()"""

_GYMNASIUM = """import gymnasium as gym

from softrl.envs import register_envs  # [bench] softrl/MinAtar-* ids

register_envs()"""

_CLOCK_END = """    # [bench] stop the clock, evaluate the greedy actor (argmax of its logits), print one JSON record
    _bench_t1 = time.perf_counter()
    _bench_steps = args.total_timesteps - (args.learning_starts + 1)
    _eval_env = gym.make(args.env_id)
    _o, _ = _eval_env.reset(seed=10**6 + args.seed)
    _rets, _ret = [], 0.0
    while len(_rets) < args.eval_episodes:
        with torch.no_grad():
            _a = int(actor(torch.Tensor(_o[None]).to(device)).argmax(1).item())
        _o, _r, _te, _tr, _ = _eval_env.step(_a)
        _ret += float(_r)
        if _te or _tr:
            _rets.append(_ret)
            _ret = 0.0
            _o, _ = _eval_env.reset()
    _eval_env.close()
    from importlib.metadata import version as _version
    print("{tag}" + json.dumps({{
        "library": "cleanrl", "algo": "discrete-sac", "env": args.env_id, "seed": args.seed, "seeds": 1,
        "steps_timed": _bench_steps, "seconds": _bench_t1 - _bench_t0,
        "steps_per_s": (_bench_steps - 1) / (_bench_t1 - _bench_t_after_first),
        "steps_per_s_incl_first_update": _bench_steps / (_bench_t1 - _bench_t0),
        "eval_returns": [sum(_rets) / len(_rets)],
        "backend": f"torch {{torch.__version__}} ({{torch.get_num_threads()}} threads)",
        "versions": {{"cleanrl": "{version}", "torch": torch.__version__, "gymnasium": _version("gymnasium"),
                     "numpy": np.__version__}},
        "settings": {{
            "hidden": args.hidden, "policy_lr": args.policy_lr, "q_lr": args.q_lr, "alpha_lr": args.q_lr,
            "adam_eps": 1e-4, "batch_size": args.batch_size, "buffer_size": args.buffer_size, "tau": args.tau,
            "gamma": args.gamma, "update_frequency": args.update_frequency,
            "target_network_frequency": args.target_network_frequency, "autotune": args.autotune,
            "target_entropy_scale": args.target_entropy_scale,
            "target_entropy": float(target_entropy) if args.autotune else None,
            "learning_starts": args.learning_starts, "num_critics": 2,
        }},
    }}), flush=True)
    envs.close()"""

# Patches of the SAC benchmark that fit this script unchanged (matched by their description).
_REUSED = (
    "json for the record",
    "distutils is deprecated",
    "no tensorboard",
    "Env.seed() is gone; seed via reset(seed=...)",
    "same-step autoreset gives final_obs like old gym's terminal_observation",
    "reset returns (obs, info)",
    "step returns terminations and truncations",
    "infos is a dict of arrays",
    "final_obs key",
    "bootstrap through truncation: store terminations only",
    "timeouts handled by storing terminations",
    "clock start",
)

# (what, regex, replacement text, expected matches); replacements are inserted literally.
_OWN_PATCHES: list[tuple[str, str, str, int]] = [
    ("gym -> gymnasium, register softrl's envs", r"^import gym$", _GYMNASIUM, 1),
    (
        "no Atari wrappers",
        r"^from stable_baselines3\.common\.atari_wrappers import \((?:\n.*)*?\n\)\n",
        "",
        1,
    ),
    (
        "plain env: drop the Atari preprocessing",
        r"^[ \t]+env = NoopResetEnv\(.*\n(?:.*\n)*?[ \t]+env = gym\.wrappers\.FrameStack\(env, 4\)\n",
        "",
        1,
    ),
    (
        "MLP instead of the CNN (actor and both critics)",
        r"self\.conv = nn\.Sequential\((?:\n.*)*?\n[ \t]+nn\.Flatten\(\),\n[ \t]+\)",
        _MLP_TRUNK,
        2,
    ),
    ("second hidden layer width", r"nn\.Linear\(output_dim, 512\)", "nn.Linear(output_dim, args.hidden[1])", 2),
    (
        "output layers read the second hidden layer",
        r"nn\.Linear\(512, envs\.single_action_space\.n\)",
        "nn.Linear(args.hidden[1], envs.single_action_space.n)",
        2,
    ),
    ("observations are 0/1 or raw floats, not 0-255 pixels", r"\(x / 255\.0\)", "(x)", 2),
    ("--hidden and --eval-episodes", r"^[ \t]+args = parser\.parse_args\(\)$", _EXTRA_ARGS, 1),
]


def patch_cleanrl_source(src: str) -> str:
    """Apply the patches to the text of CleanRL 1.2.0's ``sac_atari.py``; each must match as often as expected."""
    reused = {what: (pat, repl, n) for what, pat, repl, n in peers._CLEANRL_PATCHES}
    missing = [w for w in _REUSED if w not in reused]
    if missing:
        raise RuntimeError(f"peers.py no longer has the patches {missing}")
    for what, pattern, text, expected in _OWN_PATCHES:
        src, n = re.subn(pattern, lambda _m, t=text: t, src, flags=re.MULTILINE)
        if n != expected:
            raise RuntimeError(f"CleanRL patch {what!r} matched {n} times, expected {expected}")
    for what in _REUSED:
        pattern, repl, expected = reused[what]
        src, n = re.subn(pattern, repl, src, flags=re.MULTILINE)
        if n != expected:
            raise RuntimeError(f"CleanRL patch {what!r} matched {n} times, expected {expected}")
    end = _CLOCK_END.format(tag=RESULT_TAG, version=CLEANRL_VERSION)
    src, n = re.subn(r"^    envs\.close\(\)$", lambda _m: end, src, count=1, flags=re.MULTILINE)
    if n != 1:
        raise RuntimeError("CleanRL patch 'clock end' did not match")
    return src


def _find_cleanrl_original(python: str) -> Path:
    """The unpatched script: from an installed cleanrl 1.2.0, else a wheel downloaded into _work/."""
    cached = peers.WORK_DIR / f"cleanrl-{CLEANRL_VERSION}" / CLEANRL_SCRIPT
    spec = importlib.util.find_spec("cleanrl")
    candidates = [Path(loc) / CLEANRL_SCRIPT for loc in (spec.submodule_search_locations or [])] if spec else []
    for cand in [*candidates, cached]:
        if cand.is_file() and hashlib.sha256(cand.read_bytes()).hexdigest() == CLEANRL_SHA256:
            return cand
    dl = peers.WORK_DIR / "download"
    dl.mkdir(parents=True, exist_ok=True)
    # cleanrl 1.2.0 declares python <3.11 and stale pins: fetch the wheel alone; the script runs fine.
    subprocess.run([python, "-m", "pip", "download", "--no-deps", "--ignore-requires-python", "-d", str(dl),
                    f"cleanrl=={CLEANRL_VERSION}"], stdout=sys.stderr, check=True)
    wheel = next(dl.glob(f"cleanrl-{CLEANRL_VERSION}-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(f"cleanrl/{CLEANRL_SCRIPT}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return cached


def prepare_cleanrl_script(python: str | None = None) -> Path:
    """Write the patched script into benchmarks/_work/ (git-ignored) and return its path."""
    original = _find_cleanrl_original(python or sys.executable)
    raw = original.read_bytes()
    if hashlib.sha256(raw).hexdigest() != CLEANRL_SHA256:
        raise RuntimeError(f"{original} is not CleanRL {CLEANRL_VERSION}'s {CLEANRL_SCRIPT}")
    out = peers._work_dir() / f"cleanrl_{CLEANRL_VERSION.replace('.', '_')}_discrete_{CLEANRL_SCRIPT}"
    out.write_text(patch_cleanrl_source(raw.decode()))
    return out


def cleanrl_args(env_id: str, steps: int, wl: Workload, seed: int) -> list[str]:
    """Command-line arguments for the patched script. Defaults we override are named; the rest are CleanRL's.

    CleanRL updates when the 0-based ``global_step > learning_starts``, so it runs ``steps + 1`` env
    steps to time ``steps - learning_starts``, each followed by one update.
    """
    return [
        "--env-id", env_id,
        "--seed", str(seed),
        "--total-timesteps", str(steps + 1),
        "--learning-starts", str(wl.learning_starts),
        "--buffer-size", str(wl.buffer_size),
        "--batch-size", str(wl.batch_size),
        "--gamma", str(wl.gamma),
        "--tau", str(wl.tau),
        "--policy-lr", str(wl.lr),
        "--q-lr", str(wl.lr),
        "--update-frequency", str(wl.train_freq),
        "--target-network-frequency", "1",
        "--autotune", "True",
        "--target-entropy-scale", str(wl.target_entropy_scale),
        "--hidden", str(wl.hidden[0]), str(wl.hidden[1]),
        "--eval-episodes", str(wl.eval_episodes),
        "--cuda", "False",
        "--track", "False",
        "--capture-video", "False",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runner", choices=RUNNERS, default="sb3-dqn")
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=30_000, help="env steps per seed, learning_starts included")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1, help="softrl runners: seeds vmapped in one process")
    p.add_argument("--workload", default=None, help="JSON of Workload fields (default: Workload())")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--softrl-python", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    wl = Workload.from_json(args.workload) if args.workload else Workload()
    if args.child == "sb3-dqn":
        print(RESULT_TAG + json.dumps(_train_sb3_dqn(args.env, args.steps, args.seed, wl)), flush=True)
        return 0
    record = run(args.runner, args.env, args.steps, wl, seed=args.seed, seeds=args.seeds,
                 softrl_python=args.softrl_python, threads=args.threads, verbose=True)
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
