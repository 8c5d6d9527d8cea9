import os

# Deterministic CPU results: the bitwise-equality tests rely on this.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


import gc  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Every compiled CPU program keeps a few memory mappings of JIT code until it is freed; one process running
    the whole suite compiled enough of them to pass Linux's default `vm.max_map_count` (65530), and XLA then
    crashed inside a compile (a segfault, not a test failure). Measured: ~5 mappings per program, all returned
    by `jax.clear_caches()`."""
    yield
    jax.clear_caches()
    gc.collect()
