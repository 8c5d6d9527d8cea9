"""Discrete-action speed and return: softrl's dqn, soft-dqn, discrete-sac against SB3 DQN and CleanRL discrete SAC.

One workload for every library (`discrete_peers.Workload`, printed at the start and stored in the JSON):
ReLU MLP 128x128 for every Q network and actor, Adam lr 1e-3, batch 256, replay 1e5, gamma 0.99,
Polyak tau 0.01 after every update, 1000 uniformly random steps before learning, one update per env
step, one env, CPU, float32; dqn: epsilon 1 -> 0.1 over 5k updates; soft-dqn and discrete-sac: tuned
alpha (from 1) towards 0.5 log|A|, discrete-sac with two critics. A fixed env-step budget per env;
per run: env-steps/s after learning starts (after the first update, so JAX compilation is left out)
and the final deterministic evaluation (10 episodes, mean return). softrl is also run with
`--multi-seeds` seeds vmapped in one process (aggregate env-steps/s).

Runs alternate within each repeat, so drifting machine load hits every library alike; repeat r uses
seeds `seed + r * seeds + i`, i < seeds, so every run has its own seed and the returns spread over seeds.

    python benchmarks/discrete.py --envs CartPole-v1 softrl/MinAtar-Breakout-v1 \\
        --budget CartPole-v1=30000 softrl/MinAtar-Breakout-v1=100000 --repeats 3 --multi-seeds 3 \\
        --out benchmarks/results/discrete.json

Run it alone on the machine: two benchmarks at once measure nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import discrete_peers as dp  # noqa: E402
from throughput import machine  # noqa: E402

DEFAULT_BUDGET = {"CartPole-v1": 30_000, "softrl/MinAtar-Breakout-v1": 100_000}
# Epsilon decay (dqn) per env, in updates: CartPole as in tests/test_discrete_agents.py; MinAtar 10% of 100k.
DEFAULT_EPSILON_DECAY = {"CartPole-v1": 5_000, "softrl/MinAtar-Breakout-v1": 10_000}
LABEL = {
    "softrl-dqn": "softrl dqn",
    "softrl-soft-dqn": "softrl soft-dqn",
    "softrl-discrete-sac": "softrl discrete-sac",
    "sb3-dqn": "SB3 DQN",
    "cleanrl-discrete-sac": "CleanRL discrete SAC",
}


def _parse_budget(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        env_id, _, steps = item.rpartition("=")
        if not env_id or not steps.isdigit():
            raise argparse.ArgumentTypeError(f"--budget wants ENV=STEPS, got {item!r}")
        out[env_id] = int(steps)
    return out


def _spread(xs: list[float]) -> str:
    if not xs:
        return "-"
    med = statistics.median(xs)
    return f"{med:.1f}" if len(xs) == 1 else f"{med:.1f} ({min(xs):.1f}-{max(xs):.1f})"


def summarise(records: list[dict], envs: list[str], runners: list[str], multi_seeds: int) -> list[dict]:
    """Per env and runner: median env-steps/s, ratio to softrl's same algorithm, eval returns."""
    rows = []
    for env_id in envs:
        def pick(runner, seeds, _env=env_id):
            return [r for r in records if r["env"] == _env and r["runner"] == runner and r["seeds"] == seeds]

        def med_rate(runner, seeds=1):
            rates = [r["steps_per_s"] for r in pick(runner, seeds)]
            return statistics.median(rates) if rates else None

        for runner in runners:
            recs = pick(runner, 1)
            rate = med_rate(runner)
            base = med_rate(dp.PAIRED[runner]) if runner in dp.PAIRED else None
            rows.append({
                "env": env_id, "runner": runner, "seeds_per_process": 1, "runs": len(recs),
                "median_steps_per_s": rate, "steps_per_s": [r["steps_per_s"] for r in recs],
                "compared_with": dp.PAIRED.get(runner),
                "softrl_speedup": base / rate if (base and rate) else None,
                "eval_returns": [x for r in recs for x in r["eval_returns"]],
            })
        if multi_seeds > 1:
            for runner in [r for r in runners if r.startswith("softrl-")]:
                recs = pick(runner, multi_seeds)
                rate, single = med_rate(runner, multi_seeds), med_rate(runner)
                rows.append({
                    "env": env_id, "runner": runner, "seeds_per_process": multi_seeds, "runs": len(recs),
                    "median_steps_per_s": rate, "steps_per_s": [r["steps_per_s"] for r in recs],
                    "compared_with": f"{runner} x1",
                    "aggregate_over_single": rate / single if (rate and single) else None,
                    "per_seed_steps_per_s": [r["per_seed_steps_per_s"] for r in recs],
                    "eval_returns": [x for r in recs for x in r["eval_returns"]],
                })
    return rows


def print_tables(rows: list[dict], budgets: dict[str, int]) -> None:
    print(f"\n{'env':28s} {'library':22s} {'seeds':>5s} {'runs':>4s} {'env-steps/s: median (range)':>30s} "
          f"{'ratio':>22s} {'eval return: median (range)':>28s}")
    for r in rows:
        if r["seeds_per_process"] == 1:
            ratio = "" if r.get("softrl_speedup") is None else f"softrl {r['softrl_speedup']:.2f}x"
        else:
            agg = r.get("aggregate_over_single")
            ratio = "" if agg is None else f"agg {agg:.2f}x of 1 seed"
        print(f"{r['env']:28s} {LABEL[r['runner']]:22s} {r['seeds_per_process']:5d} {r['runs']:4d} "
              f"{_spread(r['steps_per_s']):>30s} {ratio:>22s} {_spread(r['eval_returns']):>28s}")
    print("\nMarkdown (for RESULTS.md):\n")
    print("| env | budget | library | seeds / process | env-steps/s, median (range) | softrl / this "
          "| final eval return, median (range) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r["seeds_per_process"] == 1:
            ratio = "-" if r.get("softrl_speedup") is None else f"**{r['softrl_speedup']:.2f}x**"
        else:
            agg = r.get("aggregate_over_single")
            ratio = "-" if agg is None else f"aggregate {agg:.2f}x of 1 seed"
        print(f"| {r['env']} | {budgets[r['env']]} | {LABEL[r['runner']]} | {r['seeds_per_process']} "
              f"| {_spread(r['steps_per_s'])} | {ratio} | {_spread(r['eval_returns'])} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=list(DEFAULT_BUDGET))
    p.add_argument("--budget", nargs="+", default=[], metavar="ENV=STEPS",
                   help=f"env steps per seed, learning_starts included (default {DEFAULT_BUDGET})")
    p.add_argument("--runners", nargs="+", default=list(dp.RUNNERS), choices=dp.RUNNERS)
    p.add_argument("--repeats", type=int, default=3, help="rounds; all runs alternate within each round")
    p.add_argument("--seeds", type=int, default=1, help="one-seed runs per runner and round, each its own seed")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--multi-seeds", type=int, default=3, help="also run softrl with this many vmapped seeds (<2: skip)")
    p.add_argument("--learning-starts", type=int, default=None, help="override the workload's 1000")
    p.add_argument("--eval-episodes", type=int, default=None, help="override the workload's 10")
    p.add_argument("--buffer-size", type=int, default=None, help="override the workload's 1e5")
    p.add_argument("--peer-python", default=sys.executable, help="interpreter with torch, SB3 (and cleanrl)")
    p.add_argument("--softrl-python", default=None, help="interpreter with softrl (default: this one)")
    p.add_argument("--threads", type=int, default=None,
                   help="pin each child to this many cores, OpenMP/MKL threads alike (default: libraries' own)")
    p.add_argument("--timeout", type=float, default=None, help="seconds before a run is killed")
    p.add_argument("--out", type=Path, default=None, help="JSON with machine, versions, command, records, summary")
    p.add_argument("--verbose", action="store_true", help="echo the children's output to stderr")
    args = p.parse_args(argv)

    budgets = {**DEFAULT_BUDGET, **_parse_budget(args.budget)}
    missing = [e for e in args.envs if e not in budgets]
    if missing:
        p.error(f"no budget for {missing}: pass --budget ENV=STEPS")
    overrides = {k: v for k, v in (("learning_starts", args.learning_starts), ("eval_episodes", args.eval_episodes),
                                   ("buffer_size", args.buffer_size)) if v is not None}
    workloads = {
        e: dataclasses.replace(dp.Workload(), epsilon_decay_steps=DEFAULT_EPSILON_DECAY.get(e, budgets[e] // 10),
                               **overrides)
        for e in args.envs
    }
    for e, wl in workloads.items():
        if budgets[e] <= wl.learning_starts + 2:
            p.error(f"budget for {e} must exceed learning_starts + 2 = {wl.learning_starts + 2}")
        print(f"[discrete] {e}: budget {budgets[e]} env steps per seed; workload {wl.to_json()}", file=sys.stderr)
    command = shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(["discrete.py", *argv])

    records, failures = [], []
    t_start = time.time()
    for env_id in args.envs:
        for rep in range(args.repeats):
            runs = [(runner, args.seed + rep * args.seeds + i, 1) for i in range(args.seeds) for runner in args.runners]
            if args.multi_seeds > 1:
                runs += [(r, args.seed + rep * args.multi_seeds, args.multi_seeds)
                         for r in args.runners if r.startswith("softrl-")]
            for runner, seed, seeds in runs:
                t0 = time.time()
                try:
                    rec = dp.run(runner, env_id, budgets[env_id], workloads[env_id], seed=seed, seeds=seeds,
                                 softrl_python=args.softrl_python, peer_python=args.peer_python,
                                 threads=args.threads, timeout=args.timeout, verbose=args.verbose)
                except (RuntimeError, OSError, ValueError, StopIteration) as exc:
                    failures.append({"env": env_id, "runner": runner, "seed": seed, "seeds": seeds, "error": str(exc)})
                    print(f"[discrete] {runner} x{seeds} on {env_id} failed: {exc}", file=sys.stderr, flush=True)
                    continue
                rec.update(repeat=rep, wall_s=time.time() - t0)
                records.append(rec)
                rets = ", ".join(f"{x:.1f}" for x in rec["eval_returns"])
                print(f"[discrete] {env_id} rep {rep} {runner:22s} x{seeds} seed {seed}: "
                      f"{rec['steps_per_s']:8.1f} env-steps/s, eval return {rets} (wall {rec['wall_s']:.0f} s)",
                      file=sys.stderr, flush=True)

    rows = summarise(records, args.envs, args.runners, args.multi_seeds)
    print_tables(rows, budgets)
    versions = {}
    for r in records:
        versions.update({k: v for k, v in r.get("versions", {}).items() if v is not None})
    print("versions:", json.dumps(versions))
    print(f"total wall time {time.time() - t_start:.0f} s; failures: {len(failures)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "machine": machine(), "command": command, "budgets": {e: budgets[e] for e in args.envs},
            "workloads": {e: dataclasses.asdict(w) for e, w in workloads.items()}, "versions": versions,
            "records": records, "failures": failures, "summary": rows,
        }, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
