"""Seed groups in parallel on a multi-core CPU: K JAX CPU devices, the seed axis split across them.

XLA's CPU backend parallelises each matrix product over all cores (intra-op). For SAC's 256-wide networks
that scales poorly: on our 2-core machine two cores give 1.6x one core (benchmarks/RESULTS.md). With
`cpu_devices=K`, JAX exposes K CPU devices and `softrl.train` shards the seed axis over them, so K groups
of seeds update at the same time (inter-op parallelism) instead of taking turns at one vmapped program.
The K devices share XLA's one thread pool; they are not pinned to cores, and XLA's flags that once made
the CPU backend single-threaded (`--xla_cpu_multi_thread_eigen=false`) no longer cap that pool (jaxlib
0.10.2, measured: a jitted GEMM chain used 1.74 cores with them, 1.79 without), so softrl does not set them.
Each seed's computation is the same, so a split run matches its seeds trained one by one up to float
rounding (XLA fuses the split program differently; tests/test_devices.py), and its resume is bitwise
exact. It must be chosen before JAX runs anything in the process (`softrl train --cpu-devices K` does so);
later it is refused with a warning and the run stays on one device.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def use_cpu_devices(n: int) -> int:
    """Ask for `n` CPU devices; returns how many this process has (1 if it was too late)."""
    if n <= 1:
        return len(jax.devices())
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        have = len(jax.devices())
        if have != n:
            warnings.warn(f"cpu_devices={n} ignored: JAX already started in this process with {have} device(s); "
                          "set it before any JAX computation (e.g. `softrl train --cpu-devices`)", stacklevel=2)
        return have
    if jax.default_backend() != "cpu":
        warnings.warn(f"cpu_devices={n} ignored: the default JAX backend is {jax.default_backend()}", stacklevel=2)
        return 1
    return len(jax.devices())


def seed_sharding(num_seeds: int, num_devices: int) -> NamedSharding | None:
    """Sharding of arrays whose leading axis is the seed, over the first `num_devices` devices (None: one)."""
    if num_devices <= 1:
        return None
    if num_seeds % num_devices:
        raise ValueError(f"--seeds {num_seeds} cannot be split evenly over {num_devices} CPU devices; "
                         "use a multiple of --cpu-devices")
    mesh = Mesh(np.asarray(jax.devices()[:num_devices]), ("seed",))
    return NamedSharding(mesh, PartitionSpec("seed"))
