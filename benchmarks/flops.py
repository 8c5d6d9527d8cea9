"""How close is one SAC update to this machine's limit?

Counts the FLOPs of one compiled SAC update (XLA's cost analysis), measures the machine's
float32 GEMM peak (numpy, 2048^3, best of several) and the jitted update rate alone (no
environment), and prints the fraction of peak reached.

    python benchmarks/flops.py --env HalfCheetah-v5 --seeds 1 --updates 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from softrl.agents import make_agent
from softrl.collect import SeedEnvs
from softrl.loop import TrainConfig, _init, _update_k


def gemm_peak(n: int = 2048, reps: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--updates", type=int, default=300)
    p.add_argument("--algo", default="sac")
    p.add_argument("--buffer-size", type=int, default=1_000_000, help="replay capacity (filled with zeros)")
    p.add_argument("--gradient-steps", type=int, default=1,
                   help="updates per jitted call (one lax.scan)")
    args = p.parse_args(argv)
    cfg = TrainConfig(algo=args.algo, env=args.env, seeds=args.seeds, buffer_size=args.buffer_size)
    envs = SeedEnvs(args.env, list(range(args.seeds)))
    agent = make_agent(args.algo, cfg.agent, envs.spec)
    carry = _init(agent, cfg, envs, list(range(args.seeds)))
    buffer = carry.buffer._replace(size=jnp.full_like(carry.buffer.size, args.buffer_size))
    single = jax.jit(partial(_update_k, agent, 256, 1))
    one_state = jax.tree.map(lambda x: x[0], carry.agent)
    one_buffer = jax.tree.map(lambda x: x[0], buffer)
    cost = single.lower(one_state, one_buffer, jax.random.PRNGKey(0)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost["flops"])
    k = args.gradient_steps
    if args.updates % k:
        p.error("--updates must be a multiple of --gradient-steps")
    update = jax.jit(jax.vmap(partial(_update_k, agent, 256, k)), donate_argnums=0)
    keys = jax.random.split(jax.random.PRNGKey(1), args.seeds)
    state, _ = update(carry.agent, buffer, keys)
    jax.block_until_ready(state)
    rates = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(args.updates // k):
            state, _ = update(state, buffer, keys)
        jax.block_until_ready(state)
        rates.append(args.updates * args.seeds / (time.perf_counter() - t))
    rate = float(np.median(rates))
    peak = gemm_peak()
    out = {
        "algo": args.algo, "env": args.env, "seeds": args.seeds, "gradient_steps": k, "mflop_per_update": flops / 1e6,
        "updates_per_s": rate, "achieved_gflops": rate * flops / 1e9, "gemm_peak_gflops": peak,
        "fraction_of_peak": rate * flops / 1e9 / peak, "bound_updates_per_s": peak * 1e9 / flops,
        "jax": jax.__version__,
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
