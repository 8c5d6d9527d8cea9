"""SAC sample efficiency on MuJoCo at 100k steps, against published SAC figures.

Trains softrl SAC on HalfCheetah-v5, Hopper-v5 and Walker2d-v5 with N seeds in one process per env
(SAC paper defaults: 2x256, batch 256, lr 3e-4, tau 0.005, auto alpha with target entropy -dim(A);
learning_starts 5000), evaluating every 10k steps with 10 deterministic episodes per seed. One env
at a time, resumable: a finished run is reused and an interrupted one continues from its checkpoint
(`softrl.experiments.report.train_or_resume`), so the ~1.5 h of a 2-core machine can be spread over
sessions (`--envs Hopper-v5` runs one). Prints and writes a table against the SAC reference of
../shared/ANCHORS.md (SimbaV2 authors' baseline, Gym MuJoCo v4, mean of 10 seeds at 100k steps)
and a learning-curve figure per env. Run directories (checkpoints with the replay buffer) go to
`--runs-dir`, outside the committed results.

    python benchmarks/sample_efficiency.py --seeds 3 --steps 100000 --out benchmarks/results/sample_efficiency

`--peer sbx` (or `sb3`) instead trains that library's SAC with the same settings (2x256, batch 256,
lr 3e-4, tau 0.005, auto alpha from 1.0 to -dim(A), 1e6 replay, learning starts 5000, one update per
env step) and the same evaluation protocol (every 10k steps, 10 deterministic episodes on an eval env
seeded 10**6 + seed), one child process per seed, and draws `ENV_vs_PEER.png` against softrl's runs:
a like-for-like check on this machine, where the published reference differs in version and code.

    python benchmarks/sample_efficiency.py --peer sbx --envs HalfCheetah-v5 --seeds 3 --steps 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import softrl
from softrl.experiments.report import band, mean_ci, pyplot, train_or_resume
from softrl.plot import curves, plot_runs

# SAC, mean evaluation return of 10 seeds (SimbaV2 baseline results/baseline/sac.csv, via ../shared/ANCHORS.md).
REFERENCE_100K = {"HalfCheetah-v5": 6156.0, "Hopper-v5": 1103.0, "Walker2d-v5": 690.0}
# Shared by softrl's runs and the peer runs, so that both are trained and evaluated alike.
LEARNING_STARTS, EVAL_EVERY, EVAL_EPISODES = 5000, 10_000, 10


def run_env(env_id: str, seeds: int, steps: int, runs_dir: Path, out: Path) -> dict:
    run_dir = runs_dir / env_id
    cfg = softrl.TrainConfig(algo="sac", env=env_id, seeds=seeds, total_steps=steps, learning_starts=LEARNING_STARTS,
                             eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES, checkpoint_every=EVAL_EVERY,
                             run_dir=str(run_dir))
    result, how = train_or_resume(cfg)
    per_seed = result.eval_returns.mean(axis=1)  # [seeds]
    out.mkdir(parents=True, exist_ok=True)
    plot_runs([run_dir], out / f"{env_id}.png", title=f"softrl SAC on {env_id}: deterministic evaluation return")
    steps_grid, values = curves(run_dir, "eval")  # [T], [seeds, T]
    return {"env": env_id, "how": how, "per_seed": per_seed.tolist(), "mean": float(np.mean(per_seed)),
            "ci95": mean_ci(per_seed), "reference_100k": REFERENCE_100K.get(env_id),
            "curve_steps": steps_grid.tolist(), "curve_mean": np.nanmean(values, axis=0).tolist(),
            "steps_per_s": result.timing.get("steps_per_s_after_learning_starts"),
            "wall_s": result.timing.get("wall_s")}


def _peer_child(lib: str, env_id: str, seed: int, steps: int, learning_starts: int, eval_every: int,
                eval_episodes: int) -> dict:
    """Train one seed of `lib`'s SAC (SB3 or SBX) and return its evaluation curve (runs in a child process)."""
    import gymnasium as gym
    from peers import make_sb3_family_sac
    from stable_baselines3.common.callbacks import BaseCallback

    model, version, _ = make_sb3_family_sac(lib, env_id, learning_starts, seed)
    eval_env = gym.make(env_id)

    def evaluate() -> float:
        returns = []
        for episode in range(eval_episodes):
            # as softrl.loop.evaluate: every evaluation starts from the eval env seeded 10**6 + seed
            obs, _ = eval_env.reset(seed=10**6 + seed if episode == 0 else None)
            total, done = 0.0, False
            while not done:
                action, _ = model.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, _ = eval_env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        return float(np.mean(returns))

    curve: list[tuple[int, float]] = []

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every == 0:
                curve.append((self.num_timesteps, evaluate()))
            return True

    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, callback=Evaluate(), progress_bar=False)
    return {"library": lib, "version": version, "env": env_id, "seed": seed, "curve": curve,
            "n_updates": int(model._n_updates), "wall_s": time.perf_counter() - t0}


def run_peer_env(lib: str, env_id: str, seeds: int, steps: int, runs_dir: Path, out: Path) -> dict:
    """`lib`'s SAC on `env_id`, one child per seed (sequential: they share the CPU), and the figure vs softrl."""
    from peers import _child_env, _run_child

    records = []
    for seed in range(seeds):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--peer-child", lib, "--envs", env_id,
               "--seed", str(seed), "--steps", str(steps)]
        print(f"[{lib}] {env_id} seed {seed}: training {steps} steps ...", flush=True)
        records.append(_run_child(cmd, cwd=Path.cwd(), env=_child_env(), timeout=None, verbose=False))
    steps_grid = np.array([s for s, _ in records[0]["curve"]], dtype=float)
    values = np.array([[r for _, r in rec["curve"]] for rec in records])  # [seeds, T]
    per_seed = values[:, -1]
    row = {"env": env_id, "library": lib, "version": records[0]["version"], "per_seed": per_seed.tolist(),
           "mean": float(per_seed.mean()), "ci95": mean_ci(per_seed), "reference_100k": REFERENCE_100K.get(env_id),
           "curve_steps": steps_grid.tolist(), "curve_mean": values.mean(axis=0).tolist(),
           "curve_per_seed": values.tolist(), "updates_per_seed": [rec["n_updates"] for rec in records],
           "wall_s": sum(rec["wall_s"] for rec in records)}
    _plot_vs_peer(env_id, lib, steps_grid, values, runs_dir / env_id, out / f"{env_id}_vs_{lib}.png")
    return row


def _plot_vs_peer(env_id: str, lib: str, peer_steps: np.ndarray, peer_values: np.ndarray, softrl_run: Path,
                  path: Path) -> None:
    """Mean and min-max band over seeds of the peer and (if its runs are there) softrl, with the reference."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if (softrl_run / "config.json").exists():
        steps_grid, values = curves(softrl_run, "eval")
        band(ax, steps_grid, values, f"softrl SAC (mean of {values.shape[0]} seeds)", color="tab:blue")
    band(ax, peer_steps, peer_values, f"{lib} SAC (mean of {peer_values.shape[0]} seeds)", color="tab:gray")
    ref = REFERENCE_100K.get(env_id)
    if ref is not None:
        ax.axhline(ref, color="k", ls=":", lw=1, label="published SAC at 100k (v4, 10 seeds)")
    ax.set_xlabel("env steps")
    ax.set_ylabel("deterministic evaluation return")
    ax.set_title(f"SAC on {env_id}, same settings and evaluation (band: min-max over seeds)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", nargs="+", default=list(REFERENCE_100K))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sample_efficiency"))
    p.add_argument("--runs-dir", type=Path, default=Path("benchmarks/_work/sample_efficiency"))
    p.add_argument("--peer", choices=("sb3", "sbx"), default=None,
                   help="train this library's SAC instead of softrl's (same settings and evaluation)")
    p.add_argument("--peer-child", choices=("sb3", "sbx"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peer_child:
        from peers import RESULT_TAG

        record = _peer_child(args.peer_child, args.envs[0], args.seed, args.steps, LEARNING_STARTS, EVAL_EVERY,
                             EVAL_EPISODES)
        print(RESULT_TAG + json.dumps(record), flush=True)
        return 0
    if args.peer:
        rows = [run_peer_env(args.peer, e, args.seeds, args.steps, args.runs_dir, args.out) for e in args.envs]
    else:
        rows = [run_env(e, args.seeds, args.steps, args.runs_dir, args.out) for e in args.envs]
    name = f"{args.peer or 'softrl'} SAC"
    print(f"\n{'env':16s} {name + ': mean [95% CI] over seeds':>40s} {'reference SAC @100k':>20s}")
    for r in rows:
        ref = "-" if r["reference_100k"] is None else f"{r['reference_100k']:.0f}"
        ci = r["ci95"]
        lo_hi = "" if ci["lo"] is None else f" [{ci['lo']:.0f}, {ci['hi']:.0f}]"
        print(f"{r['env']:16s} {r['mean']:28.0f}{lo_hi:>12s} {ref:>20s}")
    path = args.out / "results.json"
    old = json.loads(path.read_text()) if path.exists() else []
    done = {(row["env"], row.get("library", "softrl")) for row in rows}
    keep = [r for r in old if (r["env"], r.get("library", "softrl")) not in done]  # one env per session adds up
    path.write_text(json.dumps(keep + rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
