"""rejax's whole-loop agents, timed like benchmarks/ondevice.py times softrl's on-device loop (issue 14).

rejax cannot live in softrl's environment (gymnax pins gymnasium < 1.4, and rejax 0.1.3 fails with gymnax
1.0.1's step signature): run this file with a separate venv
(`python3.11 -m venv rejaxvenv && rejaxvenv/bin/pip install rejax "gymnax<1.0"`).
Workload as ondevice.py's: 64x64 ReLU networks, batch 256, one update per env step (num_envs 1, num_epochs 1),
replay 1e4 per agent; dqn on gymnax CartPole-v1, sac on gymnax Pendulum-v1. N agents = `jax.vmap` of rejax's
`train` over keys, jitted, as rejax's README does. A run also holds rejax's `fill_buffer` steps (set to the batch
size, no updates) and one final evaluation (128 episodes per agent), which benchmarks/ondevice.py leaves out of
softrl's clock. So each N is trained for n and for 2n env steps per agent, each length once to compile and once
timed with other keys, and the rate is N * n / (wall(2n) - wall(n)): only the n extra steps, all with an update.

    rejaxvenv/bin/python benchmarks/rejax_peer.py --algo dqn --agents 1 8 64 256
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import jax
import numpy as np
from rejax import get_algo

ENVS = {"dqn": "CartPole-v1", "sac": "Pendulum-v1"}  # gymnax ids, the envs of benchmarks/ondevice.py


def _timed(algo: str, agents: int, steps: int) -> tuple[float, float]:
    """(first call s, second call s) of N agents trained for `steps` env steps each."""
    env = ENVS[algo]
    extra = {"agent_kwargs": {"activation": "relu"}} if algo == "dqn" else {"hidden_layer_sizes": (64, 64)}
    cfg = get_algo(algo).create(env=env, total_timesteps=steps, eval_freq=steps, skip_initial_evaluation=True,
                                num_envs=1, num_epochs=1, batch_size=256, fill_buffer=256, buffer_size=10_000,
                                learning_rate=1e-3 if algo == "dqn" else 3e-4, **extra)
    train = jax.jit(jax.vmap(get_algo(algo).train, in_axes=(None, 0)))
    t0 = time.perf_counter()
    jax.block_until_ready(train(cfg, jax.random.split(jax.random.PRNGKey(0), agents)))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(train(cfg, jax.random.split(jax.random.PRNGKey(1), agents)))
    return first, time.perf_counter() - t0


def run(algo: str, agents: int, steps: int) -> dict:
    first, short = _timed(algo, agents, steps)
    _, long = _timed(algo, agents, 2 * steps)
    return {"loop": "rejax", "algo": algo, "env": ENVS[algo],
            "agents": agents, "timed_steps_per_agent": steps, "wall_n_s": short, "wall_2n_s": long,
            "first_call_s": first, "agent_steps_per_s": agents * steps / (long - short),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algo", choices=sorted(ENVS), default="dqn")
    p.add_argument("--agents", type=int, nargs="+", default=[1, 8, 64, 256])
    p.add_argument("--agent-steps", type=int, default=40_000, help="timed env steps summed over the agents")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import rejax

    rows = []
    for n in args.agents:
        row = run(args.algo, n, max(512, args.agent_steps // n))
        rows.append(row)
        print(f"rejax {args.algo} x{n:<4d} {row['agent_steps_per_s']:8.0f} agent-steps/s  "
              f"{row['peak_rss_mib']:6.0f} MiB RSS (first call {row['first_call_s']:.1f} s)", flush=True)
    if args.out:
        meta = {"jax": jax.__version__, "rejax": getattr(rejax, "__version__", "0.1.3"), "numpy": np.__version__}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
