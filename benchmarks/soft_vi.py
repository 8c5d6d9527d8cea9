"""Soft value iteration on a 1000 x 1000 gridworld (1e6 states): backups/s and memory bandwidth used.

The MDP is `softrl.tabular.sparse_gridworld` (4 actions, successor lists: K = 1 without slip, K = 4 with
slip), and the backup is `softrl.tabular.sparse_soft_bellman_backup`, i.e. `softrl.backups.soft_value`
(Eq. 24-25 of Lecture 17, the deep agents' backup) and a gather of V at the successors. We time
`sparse_soft_backups` (k backups in one jitted `lax.fori_loop`, `block_until_ready`, compile excluded)
and report the median of `--runs` runs for float32 and float64:

- iterations/s, and S * A backups/s;
- effective bytes per iteration (below) -> GB/s, against the machine's bandwidth measured in this
  script (STREAM-like, median of `--runs`: numpy copy, jitted jnp triad `a = b + 3 c`, jitted jnp sum).

Bytes per iteration, every array touched once per backup (f = 4 or 8 bytes, S states, A actions,
K successors): read Q (S A f) for V = soft_value(Q); write V (S f); read terminal (S bytes); read
next_state (S A K 4) and prob (S A K f); gather V at the successors (S A K f, counted once per access
although neighbouring states mostly hit cache); read R (S A f); write the new Q (S A f). Streams are
counted as in STREAM (no write-allocate traffic). This is the traffic of the successor-list form; an
index-free gridworld kernel would skip next_state and prob.

    python benchmarks/soft_vi.py --size 1000 --iters 20 --runs 5 --out benchmarks/results/soft_vi.json

Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import machine  # noqa: E402

GB = 1e9


def bytes_per_iteration(S: int, A: int, K: int, itemsize: int) -> dict[str, int]:
    """Effective bytes moved by one backup, by stream (see the module docstring)."""
    f = itemsize
    return {
        "read Q": S * A * f,
        "write V": S * f,
        "read terminal": S,
        "read next_state": S * A * K * 4,
        "read prob": S * A * K * f,
        "gather V[next_state]": S * A * K * f,
        "read R": S * A * f,
        "write Q": S * A * f,
    }


def _median_time(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def measure_bandwidth(mbytes: int, runs: int) -> dict:
    """STREAM-like bandwidth in GB/s (median of `runs`): numpy copy, jnp triad, jnp sum (a read-only stream)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    n = mbytes * 2**20 // 8  # float64 elements per array
    src = np.random.default_rng(0).random(n)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch the pages
    t_copy, ts_copy = _median_time(lambda: np.copyto(dst, src), runs)

    b = jnp.asarray(src)
    c = jnp.asarray(src[::-1].copy())
    # The output buffer is donated back each call, so no run pays for fresh pages (as STREAM's static arrays).
    triad = jax.jit(lambda a, b, c: b + 3.0 * c, donate_argnums=0)
    total = jax.jit(jnp.sum)
    out = [triad(jnp.zeros_like(b), b, c).block_until_ready()]
    total(b).block_until_ready()

    def run_triad():
        out[0] = triad(out[0], b, c).block_until_ready()

    run_triad()
    t_triad, ts_triad = _median_time(run_triad, runs)
    t_sum, ts_sum = _median_time(lambda: total(b).block_until_ready(), runs)
    nbytes = src.nbytes
    out = {
        "array_mbytes": nbytes / 2**20,
        "numpy_copy_gbs": 2 * nbytes / t_copy / GB,  # read + write
        "jnp_triad_gbs": 3 * nbytes / t_triad / GB,  # 2 reads + write
        "jnp_sum_gbs": nbytes / t_sum / GB,  # read
        "times_s": {"numpy_copy": ts_copy, "jnp_triad": ts_triad, "jnp_sum": ts_sum},
    }
    out["best_gbs"] = max(out["numpy_copy_gbs"], out["jnp_triad_gbs"], out["jnp_sum_gbs"])
    return out


def time_soft_vi(size: int, slip: float, dtype_name: str, alpha: float, iters: int, runs: int) -> dict:
    import jax.numpy as jnp
    import numpy as np

    from softrl.tabular import sparse_gridworld, sparse_soft_backups

    dtype = {"float32": jnp.float32, "float64": jnp.float64}[dtype_name]
    t = time.perf_counter()
    mdp = sparse_gridworld(size, size, slip, gamma=0.99, step_reward=-1.0, goal_reward=0.0, dtype=dtype)
    build_s = time.perf_counter() - t
    S, A, K = mdp.num_states, mdp.num_actions, mdp.num_successors
    q0 = jnp.zeros((S, A), dtype)

    t = time.perf_counter()
    q = sparse_soft_backups(mdp, q0, alpha, iters).block_until_ready()  # compiles, then runs
    first_s = time.perf_counter() - t
    med, times = _median_time(lambda: sparse_soft_backups(mdp, q0, alpha, iters).block_until_ready(), runs)
    assert q.dtype == dtype and bool(jnp.all(jnp.isfinite(q))), "non-finite Q"
    # Sanity: after k backups from 0 with reward -1 per step, Q(start) lies in [-(k), 0] (soft bonus >= 0).
    q_start = float(np.asarray(q)[0].max())

    streams = bytes_per_iteration(S, A, K, jnp.dtype(dtype).itemsize)
    per_iter = sum(streams.values())
    it_per_s = iters / med
    return {
        "size": size, "states": S, "actions": A, "successors": K, "slip": slip, "dtype": dtype_name,
        "alpha": alpha, "iters_per_run": iters, "runs": runs, "times_s": times,
        "build_s": build_s, "compile_and_first_run_s": first_s,
        "iterations_per_s": it_per_s, "backups_per_s": it_per_s * S * A,
        "bytes_per_iteration": per_iter, "streams": streams, "effective_gbs": per_iter * it_per_s / GB,
        "q_start_max": q_start,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1000, help="grid side: size^2 states")
    p.add_argument("--slips", type=float, nargs="+", default=[0.0, 0.1], help="0: K = 1 successor; > 0: K = 4")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    p.add_argument("--alpha", type=float, default=1.0, help="temperature of the soft backup")
    p.add_argument("--iters", type=int, default=20, help="backups per timed run (one jitted fori_loop)")
    p.add_argument("--runs", type=int, default=5, help="timed runs; medians are reported")
    p.add_argument("--bandwidth-mbytes", type=int, default=256, help="size of each array in the bandwidth test")
    p.add_argument("--single-thread", action="store_true", help="pin the process to one core before jax starts")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    if args.single_thread:
        # Pinning, not XLA flags: XLA sizes its pool from the usable cores; the flags no longer cap it.
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 runs; float32 arrays stay float32

    command = shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(["soft_vi.py", *argv])
    bw = measure_bandwidth(args.bandwidth_mbytes, args.runs)
    print(f"bandwidth ({bw['array_mbytes']:.0f} MiB arrays, median of {args.runs}): numpy copy "
          f"{bw['numpy_copy_gbs']:.1f} GB/s, jnp triad {bw['jnp_triad_gbs']:.1f} GB/s, "
          f"jnp sum {bw['jnp_sum_gbs']:.1f} GB/s", flush=True)

    results = []
    for slip in args.slips:
        for dtype_name in args.dtypes:
            r = time_soft_vi(args.size, slip, dtype_name, args.alpha, args.iters, args.runs)
            r["fraction_of_best_bandwidth"] = r["effective_gbs"] / bw["best_gbs"]
            results.append(r)
            print(f"S={r['states']:,} A={r['actions']} K={r['successors']} slip={slip} {dtype_name}: "
                  f"{r['iterations_per_s']:.1f} it/s, {r['backups_per_s'] / 1e6:.1f} M backups/s, "
                  f"{r['bytes_per_iteration'] / 2**20:.0f} MiB/it -> {r['effective_gbs']:.1f} GB/s "
                  f"({100 * r['fraction_of_best_bandwidth']:.0f}% of {bw['best_gbs']:.1f}); "
                  f"compile+first {r['compile_and_first_run_s']:.1f} s", flush=True)

    print("\nMarkdown (for RESULTS.md):\n")
    print("| states | K | dtype | iterations/s | S*A backups/s | MiB / iteration | effective GB/s "
          "| % of measured bandwidth |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['states']:,} | {r['successors']} | {r['dtype']} | {r['iterations_per_s']:.1f} "
              f"| {r['backups_per_s'] / 1e6:.0f} M | {r['bytes_per_iteration'] / 2**20:.0f} "
              f"| {r['effective_gbs']:.1f} | {100 * r['fraction_of_best_bandwidth']:.0f}% |")
    print(f"\nbandwidth: numpy copy {bw['numpy_copy_gbs']:.1f}, jnp triad {bw['jnp_triad_gbs']:.1f}, "
          f"jnp sum {bw['jnp_sum_gbs']:.1f} GB/s (best {bw['best_gbs']:.1f})")
    if args.out:
        from importlib.metadata import version

        args.out.parent.mkdir(parents=True, exist_ok=True)
        versions = {d: version(d) for d in ("softrl", "jax", "jaxlib", "numpy")}
        args.out.write_text(json.dumps({
            "machine": machine() | {"xla_flags": os.environ.get("XLA_FLAGS", "")}, "command": command,
            "versions": versions, "bandwidth": bw, "results": results,
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
