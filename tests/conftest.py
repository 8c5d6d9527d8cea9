import os

# Deterministic CPU results: the bitwise-equality tests rely on this.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
