"""Checkpoint save/load time and peak memory for a full replay buffer: HalfCheetah shapes (obs 17, action 6),
1M transitions x 4 seeds (synthetic data), written the way `softrl.train` writes it.

    python benchmarks/checkpoint_io.py [--transitions 1000000] [--seeds 4] [--out DIR]

Peak memory is the process's VmHWM from /proc (reset before each phase through /proc/self/clear_refs), so
"extra" is what saving or loading added on top of what was already in memory: for loading, as in
`softrl train --resume`, the run's freshly initialized (zero) capacity-sized buffer, into which the checkpoint's
rows are restored (`checkpoint.load(..., defer=is_buffer_data)` then `_restore_buffer`, which consumes it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from softrl import checkpoint, replay
from softrl.loop import _buffer_tensors, _restore_buffer, is_buffer_data
from softrl.types import Transition


def _mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def synthetic_buffer(n: int, cap: int, obs_dim: int, act_dim: int) -> replay.Buffer:
    rng = np.random.default_rng(0)

    def field(*shape, dtype=np.float32):  # filled seed by seed, so the build itself has no second full copy
        out = jnp.stack([jnp.asarray(rng.standard_normal((cap, *shape), np.float32).astype(dtype))
                         for _ in range(n)])
        return out

    data = Transition(field(obs_dim), field(act_dim), field(), field(obs_dim), field(dtype=bool), field(dtype=bool))
    full = jnp.full((n,), cap, jnp.int32)
    return replay.Buffer(data, jnp.zeros((n,), jnp.int32), full)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--transitions", type=int, default=1_000_000)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    buffer = synthetic_buffer(a.seeds, a.transitions, 17, 6)
    jax.block_until_ready(buffer)
    nbytes = sum(x.nbytes for x in jax.tree.leaves(buffer.data))
    root = Path(a.out or tempfile.mkdtemp()) / "checkpoints"
    rss0 = _mib("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    path = checkpoint.save(root, 1, {}, _buffer_tensors(buffer))
    t_save = time.perf_counter() - t0
    peak_save = _mib("VmHWM")
    template = jax.tree.map(jnp.zeros_like, buffer)  # what a resumed run has built before it restores
    jax.block_until_ready(template)
    _reset_peak()
    rss1 = _mib("VmRSS")
    t0 = time.perf_counter()
    _, arrays = checkpoint.load(path, defer=is_buffer_data)
    restored = _restore_buffer(template, arrays)
    jax.block_until_ready(restored)
    t_load = time.perf_counter() - t0
    peak_load = _mib("VmHWM")
    same = all(bool(np.array_equal(x, y)) for x, y in zip(jax.tree.leaves(buffer), jax.tree.leaves(restored)))
    print(json.dumps({
        "buffer_mib": nbytes / 2**20, "file_mib": (path / checkpoint.ARRAYS).stat().st_size / 2**20,
        "save_s": t_save, "rss_before_save_mib": rss0, "peak_extra_while_saving_mib": peak_save - rss0,
        "load_and_restore_s": t_load, "peak_extra_while_loading_mib": peak_load - rss1, "exact": same,
    }, indent=1))


if __name__ == "__main__":
    main()
