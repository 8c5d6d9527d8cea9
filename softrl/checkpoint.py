"""Checkpoints: one file, written atomically, checked on load.

Format: the magic line, a sha256 of the payload, then the pickled payload (numpy
arrays and plain Python). Writes go to `*.tmp` and are renamed over the old file, so
a crash mid-write leaves the previous checkpoint intact. Only load checkpoints you
wrote: pickle runs code on load.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import jax
import numpy as np

MAGIC = b"softrl-checkpoint-v1\n"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not match the run it is loaded into."""


def save(path: str | Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    data = pickle.dumps(jax.device_get(payload), protocol=pickle.HIGHEST_PROTOCOL)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(hashlib.sha256(data).hexdigest().encode() + b"\n")
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a softrl checkpoint (bad header)")
    rest = raw[len(MAGIC) :]
    digest, _, data = rest.partition(b"\n")
    if hashlib.sha256(data).hexdigest().encode() != digest:
        raise CheckpointError(f"{path} is corrupt: its checksum does not match (truncated or modified file)")
    try:
        return pickle.loads(data)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"{path} could not be decoded: {err}") from err


def check_like(loaded: Any, template: Any, what: str) -> Any:
    """Return `loaded` with the template's tree structure, or raise naming the first mismatch."""
    t_leaves, t_def = jax.tree.flatten(template)
    l_leaves, l_def = jax.tree.flatten(loaded)
    if t_def != l_def:
        raise CheckpointError(
            f"checkpoint {what} does not match this configuration (different structure: was it written by "
            f"another algorithm, network size or number of seeds?)"
        )
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(template)[0]]
    for p, t, x in zip(paths, t_leaves, l_leaves):
        if np.shape(t) != np.shape(x) or np.asarray(t).dtype != np.asarray(x).dtype:
            raise CheckpointError(
                f"checkpoint {what}{p} has shape {np.shape(x)} {np.asarray(x).dtype}, "
                f"but this configuration needs {np.shape(t)} {np.asarray(t).dtype}"
            )
    return jax.tree.unflatten(t_def, [jax.numpy.asarray(x) for x in l_leaves])
