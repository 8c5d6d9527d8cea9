"""SAC env-steps/s, softrl against SB3, SBX and CleanRL, side by side in one invocation.

Same workload for everyone: batch 256, 2x256 actor and critics, 1 update per env step,
1e6 replay, one env per agent, CPU, float32, timed from `learning_starts` on (after the
first update, so compilation is left out for the JAX libraries). Peers alternate within
each repeat, so drifting machine load hits them alike; we report medians and ratios.
softrl is also run with `--seeds 8` (8 agents in one process): aggregate and per-seed rates, both on one
XLA device and with the seeds split over `--multi-seeds-cpu-devices` CPU devices.

    python benchmarks/throughput.py --envs Pendulum-v1 HalfCheetah-v5 --steps 3000 --repeats 3 \
        --peer-python /work/benchvenv/bin/python --out benchmarks/results/throughput.json

Run it alone on the machine: two benchmarks at once measure nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402

LIBRARY = {"softrl": "softrl", "sb3": "stable-baselines3", "sbx": "sbx", "cleanrl": "cleanrl"}


def _rate(record: dict) -> float:
    """Steps/s after the first update when the peer reports it (leaves out compilation), else the plain rate."""
    return record.get("steps_per_s_after_first_update") or record["steps_per_s"]


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": None}
    try:
        info["cpus"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
        model = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        info["cpu_model"] = model[0].split(":", 1)[1].strip() if model else None
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=["Pendulum-v1", "HalfCheetah-v5"])
    p.add_argument("--steps", type=int, default=3000, help="timed env steps per run (per seed)")
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--peers", nargs="+", default=["softrl", "sb3", "sbx", "cleanrl"])
    p.add_argument("--multi-seeds", type=int, default=8, help="also run softrl with this many seeds (0: skip)")
    p.add_argument("--multi-seeds-cpu-devices", type=int, default=2,
                   help="also run the multi-seed softrl with its seeds split over this many CPU devices (<= 1: skip)")
    p.add_argument("--peer-python", default=sys.executable, help="interpreter with torch/SB3/SBX (peers' venv)")
    p.add_argument("--softrl-python", default=None, help="interpreter with softrl (default: $SOFTRL_PYTHON or this)")
    p.add_argument("--threads", type=int, default=None,
                   help="pin each child to this many cores, OpenMP/MKL threads alike (default: library defaults)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    records = []
    for env_id in args.envs:
        for rep in range(args.repeats):
            runs = [(peer, 1, 1) for peer in args.peers]
            if args.multi_seeds:
                runs.append(("softrl", args.multi_seeds, 1))
                if args.multi_seeds_cpu_devices > 1:
                    runs.append(("softrl", args.multi_seeds, args.multi_seeds_cpu_devices))
            for peer, seeds, devices in runs:
                t0 = time.time()
                if peer == "softrl":
                    rec = peers.run_peer("softrl", env_id, args.steps, args.learning_starts, softrl_seeds=seeds,
                                         softrl_py=args.softrl_python, threads=args.threads,
                                         softrl_cpu_devices=devices)
                else:
                    cmd = [args.peer_python, str(HERE / "peers.py"), "--peer", peer, "--env", env_id,
                           "--steps", str(args.steps), "--learning-starts", str(args.learning_starts)]
                    if args.threads:
                        cmd += ["--threads", str(args.threads)]
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                    rec = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
                rec.update(seeds=seeds, repeat=rep, wall_s=time.time() - t0, cpu_devices=rec.get("cpu_devices", 1))
                records.append(rec)
                print(f"{env_id:16s} rep {rep} {peer:8s} x{seeds} on {devices} device(s): "
                      f"{_rate(rec):8.1f} env-steps/s", file=sys.stderr)

    rows = []
    for env_id in args.envs:
        def med(lib, seeds=1, devices=1, _env=env_id):
            rates = [_rate(r) for r in records if r["env"] == _env and r["library"] == LIBRARY[lib]
                     and r["seeds"] == seeds and r.get("cpu_devices", 1) == devices]
            return statistics.median(rates) if rates else None

        base = med("softrl")
        for lib in args.peers:
            m = med(lib)
            rows.append((env_id, lib, 1, 1, m, base / m if (m and base) else None))
        if args.multi_seeds:
            for devices in sorted({1, max(args.multi_seeds_cpu_devices, 1)}):
                m = med("softrl", args.multi_seeds, devices)
                rows.append((env_id, "softrl", args.multi_seeds, devices, m, m / base if (m and base) else None))

    print(f"\n{'env':16s} {'library':8s} {'seeds':>5s} {'devices':>7s} {'env-steps/s (median)':>21s} "
          f"{'softrl / this':>14s}")
    for env_id, lib, seeds, devices, m, ratio in rows:
        ratio_txt = "" if ratio is None else (f"{ratio:.2f}x" if seeds == 1 else f"agg {ratio:.2f}x of 1 seed")
        print(f"{env_id:16s} {lib:8s} {seeds:5d} {devices:7d} {m or float('nan'):21.1f} {ratio_txt:>14s}")
    versions = {r["library"]: r.get("version") for r in records}
    print("versions:", json.dumps(versions))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "args": vars(args) | {"out": str(args.out)},
                                        "versions": versions, "records": records,
                                        "summary": [dict(zip(("env", "library", "seeds", "cpu_devices",
                                                              "median_steps_per_s", "ratio"), row)) for row in rows]},
                                       indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
