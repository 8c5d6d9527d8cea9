"""Seed groups on several CPU devices (`cpu_devices`, softrl.devices): the seeds really are
split over the devices, each seed's run matches training it alone (to float rounding), resume of a split
run is bitwise exact, and asking too late or for an uneven split is refused with a message."""

import json
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import pytest

import softrl
from tests.test_loop import small_cfg

# Runs in a fresh interpreter: the devices must be chosen before JAX starts, which pytest's process has done.
SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import jax, numpy as np
    import softrl
    from softrl import AgentConfig, TrainConfig

    out = Path(sys.argv[1])
    small = AgentConfig(hidden=(32, 32), batch_size=32)
    def cfg(name, **kw):
        base = dict(algo="sac", env="Pendulum-v1", total_steps=300, learning_starts=100, eval_every=0,
                    eval_episodes=1, log_every=50, checkpoint_every=100, progress=False, run_dir=str(out / name),
                    agent=small)
        return TrainConfig(**{**base, **kw})
    both = softrl.train(cfg("both", seeds=2, cpu_devices=2))
    report = {"devices": len(jax.devices()),
              "devices_per_leaf": sorted({len(x.devices()) for x in jax.tree.leaves(both.states)}),
              "updates": np.asarray(both.updates).tolist()}
    leaves = [np.asarray(x) for x in jax.tree.leaves(both.states)]
    for i in range(2):  # each seed alone, on the first device
        alone = softrl.train(cfg(f"alone{i}", seed=i))
        report[f"seed{i}_max_abs_diff"] = max(float(np.max(np.abs(a[i] - np.asarray(b)[0])))
                                             for a, b in zip(leaves, jax.tree.leaves(alone.states)))
    # Interrupted at step 200 and resumed, sharded: the same final states.
    softrl.train(cfg("resumed", seeds=2, cpu_devices=2, total_steps=200))
    resumed = softrl.train(cfg("resumed", seeds=2, cpu_devices=2), resume=out / "resumed")
    report["resume_max_abs_diff"] = max(float(np.max(np.abs(a - np.asarray(b))))
                                        for a, b in zip(leaves, jax.tree.leaves(resumed.states)))
    print("RESULT" + json.dumps(report))
""")


def test_seed_groups_on_two_cpu_devices(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert report["devices"] == 2
    assert report["devices_per_leaf"] == [2]  # every state leaf is split over both devices
    assert report["updates"] == [201, 201]
    # Each seed as if trained alone. Not bitwise: XLA fuses the split program differently, which moves the
    # float rounding (measured 3e-6 after 201 updates); a seed mixed up with another would be off by ~0.1.
    assert report["seed0_max_abs_diff"] < 1e-4 and report["seed1_max_abs_diff"] < 1e-4
    assert report["resume_max_abs_diff"] == 0.0
    saved = json.loads((tmp_path / "both" / "config.json").read_text())
    assert saved["cpu_devices"] == 2


def test_too_late_in_this_process_warns_and_trains_on_one_device(tmp_path):
    jnp.zeros(1).block_until_ready()  # JAX has started in this process
    with pytest.warns(UserWarning, match="cpu_devices=2 ignored"):
        r = softrl.train(small_cfg(tmp_path, seeds=2, cpu_devices=2, total_steps=150))
    assert r.updates.tolist() == [51, 51]


def test_uneven_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="multiple of cpu_devices"):
        softrl.train(small_cfg(tmp_path, seeds=3, cpu_devices=2))
    with pytest.raises(ValueError, match="cpu_devices must be >= 1"):
        softrl.train(small_cfg(tmp_path, cpu_devices=0))
