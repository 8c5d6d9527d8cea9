"""Checkpoints that cannot run code when loaded: arrays in a safetensors file, everything else in JSON.

Layout, under RUN_DIR/checkpoints/:

    step_000010000/
        arrays.safetensors   every array (agent state, replay buffer, PRNG keys, env arrays), by tree path
        meta.json            format/version, step, config, the env states as JSON (arrays referenced by name),
                             the name, dtype and shape of every array, and the sha256 and size of arrays.safetensors

A checkpoint is written into `.tmp-step_...` (each file fsynced), then renamed into place and the folder
fsynced, so a crash or a full disk mid-write leaves the previous checkpoints as they were. The newest
`keep` (2) are kept. Loading checks the size and sha256 of the array file in the same pass that reads it,
and parses only JSON and raw little-endian numbers: nothing in a checkpoint is ever executed.

The array file is a plain safetensors file (8-byte header length, JSON header, raw bytes), written by
streaming each array's rows to disk, so saving makes no copy of the replay buffer in memory. Loading need not
either: arrays named by `defer` are checksummed in passing but left in the file, as `Stored` handles that read
them back piece by piece into their final place (the training loop writes the replay buffer's rows straight
into its device buffer).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

FORMAT = "softrl-checkpoint"
VERSION = 2
ARRAYS = "arrays.safetensors"
META = "meta.json"
META_SHA = "meta_sha256"
KEEP = 2
_MAX_HEADER = 64 << 20
_CHUNK = 8 << 20  # bytes read at a time when checksumming a deferred array
_DTYPES = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16", "float16": "F16",
           "int32": "I32", "uint32": "U32", "float32": "F32", "float64": "F64", "int64": "I64", "uint64": "U64"}
_FROM_ST = {v: np.dtype(k).newbyteorder("<") for k, v in _DTYPES.items()}


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not match the run it is loaded into."""


class Tensor(NamedTuple):
    """An array to save, given as its dtype, shape and the C-order pieces that make up its bytes."""

    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: Callable[[], Iterable[np.ndarray]]


def tensor(x: Any) -> Tensor:
    """A small array saved in one piece."""
    a = np.asarray(x)
    return Tensor(a.dtype, a.shape, lambda: [a])


# ----- the array file ---------------------------------------------------------------------------------


def _st_dtype(dtype: np.dtype) -> str:
    name = np.dtype(dtype).name
    if name not in _DTYPES:
        raise CheckpointError(f"cannot save an array of dtype {name} (supported: {', '.join(_DTYPES)})")
    return _DTYPES[name]


def _bytes_of(a: np.ndarray) -> memoryview:
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.reshape(-1).data.cast("B")


def _write_arrays(path: Path, tensors: dict[str, Tensor]) -> tuple[str, int]:
    """Stream `tensors` into a safetensors file; returns (sha256 hex, size in bytes)."""
    header: dict[str, Any] = {}
    offset = 0
    for name, t in tensors.items():
        n = math.prod(t.shape) * np.dtype(t.dtype).itemsize
        header[name] = {"dtype": _st_dtype(t.dtype), "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": FORMAT, "version": str(VERSION)}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for piece in (struct.pack("<Q", len(raw)), raw):
            f.write(piece)
            digest.update(piece)
        for name, t in tensors.items():
            written = 0
            for chunk in t.chunks():
                view = _bytes_of(np.asarray(chunk, t.dtype))
                f.write(view)
                digest.update(view)
                written += view.nbytes
            if written != header[name]["data_offsets"][1] - header[name]["data_offsets"][0]:
                raise CheckpointError(f"internal error: array {name} gave {written} bytes, its shape needs more")
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest(), 8 + len(raw) + offset


@dataclasses.dataclass(frozen=True)
class Stored:
    """An array left in a verified checkpoint file (see `load`'s `defer`), read back on demand; a leaf to JAX
    (not a NamedTuple, which jax.tree would walk into).

    It has the `shape` and `dtype` (native byte order) that `array_like` checks. `read(start, stop)` gives its
    flat C-order elements [start, stop) from the file, after checking the file is still the one whose sha256
    was verified (same inode, size and modification time; checkpoints are replaced by rename, never in place).
    """

    path: Path
    offset: int  # of the array's first byte in the file
    dtype: np.dtype
    shape: tuple[int, ...]
    identity: tuple[int, int, int]  # (st_ino, st_size, st_mtime_ns) of the verified file

    def read(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop <= math.prod(self.shape):
            raise IndexError(f"elements [{start}, {stop}) of an array of shape {self.shape}")
        out = np.empty(stop - start, self.dtype.newbyteorder("<"))
        view = out.data.cast("B")
        with open(self.path, "rb") as f:
            if _identity(os.fstat(f.fileno())) != self.identity:
                raise CheckpointError(f"{self.path} changed after its checksum was verified")
            f.seek(self.offset + start * out.itemsize)
            if f.readinto(view) != view.nbytes:
                raise CheckpointError(f"{self.path} is truncated")
        return out.astype(self.dtype, copy=False)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def _hash_through(f: Any, nbytes: int, digest: Any) -> bool:
    """Feed the next `nbytes` of `f` to `digest`, `_CHUNK` bytes at a time; False if the file ends first."""
    scratch = memoryview(bytearray(min(nbytes, _CHUNK)))
    while nbytes:
        piece = scratch[: min(nbytes, len(scratch))]
        if f.readinto(piece) != len(piece):
            return False
        digest.update(piece)
        nbytes -= len(piece)
    return True


def _read_arrays(
    path: Path, sha256: str, size: int, defer: Callable[[str], bool] | None = None
) -> dict[str, np.ndarray | Stored]:
    """Read a safetensors file written by `_write_arrays`, checking its size and sha256 as it is read. Arrays
    whose name `defer` accepts are checksummed but not kept: they come back as `Stored`."""
    if not path.exists():
        raise CheckpointError(f"{path} is missing")
    if path.stat().st_size != size:
        raise CheckpointError(f"{path} is truncated or modified ({path.stat().st_size} bytes, expected {size})")
    digest = hashlib.sha256()
    out: dict[str, np.ndarray | Stored] = {}
    with open(path, "rb") as f:
        identity = _identity(os.fstat(f.fileno()))
        head = f.read(8)
        (n,) = struct.unpack("<Q", head)
        if n > min(_MAX_HEADER, size - 8):
            raise CheckpointError(f"{path} has a bad header")
        raw = f.read(n)
        digest.update(head)
        digest.update(raw)
        try:
            header = json.loads(raw)
        except ValueError as err:
            raise CheckpointError(f"{path} has a bad header: {err}") from None
        header.pop("__metadata__", None)
        offset = 0
        for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            shape_ok = isinstance(e.get("shape"), list) and all(isinstance(d, int) and d >= 0 for d in e["shape"])
            if e.get("dtype") not in _FROM_ST or e["data_offsets"][0] != offset or not shape_ok:
                raise CheckpointError(f"{path} has a bad header entry for {name}")
            if defer is not None and defer(name):
                dtype, shape = _FROM_ST[e["dtype"]], tuple(e["shape"])
                nbytes = math.prod(shape) * dtype.itemsize
                if e["data_offsets"][1] - offset != nbytes or not _hash_through(f, nbytes, digest):
                    raise CheckpointError(f"{path} is truncated (array {name})")
                out[name] = Stored(path, 8 + n + offset, dtype.newbyteorder("="), shape, identity)
                offset += nbytes
                continue
            arr = np.empty(tuple(e["shape"]), _FROM_ST[e["dtype"]])
            view = arr.reshape(-1).data.cast("B")
            if e["data_offsets"][1] - offset != view.nbytes or f.readinto(view) != view.nbytes:
                raise CheckpointError(f"{path} is truncated (array {name})")
            digest.update(view)
            offset += view.nbytes
            out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if digest.hexdigest() != sha256:
        raise CheckpointError(f"{path} is corrupt: its checksum does not match (modified or damaged file)")
    return out


# ----- checkpoint folders -----------------------------------------------------------------------------


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step_{step:09d}"


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step_") and p.name[5:].isdigit():
            found.append((int(p.name[5:]), p))
    return sorted(found)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(root: Path, step: int, meta: dict[str, Any], tensors: dict[str, Tensor], keep: int = KEEP) -> Path:
    """Write checkpoint `step` under `root` atomically and keep the newest `keep`. Raises OSError on a failed
    write, after removing its partial folder; the older checkpoints are untouched."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(root, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        sha, size = _write_arrays(tmp / ARRAYS, tensors)
        info = {name: {"dtype": np.dtype(t.dtype).name, "shape": list(t.shape)} for name, t in tensors.items()}
        body = {"format": FORMAT, "version": VERSION, "step": step, **meta,
                "arrays": {"file": ARRAYS, "sha256": sha, "bytes": size, "tensors": info}}
        body[META_SHA] = _meta_digest(body)
        with open(tmp / META, "w") as f:
            json.dump(body, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():  # the same step saved again (a resumed run stopped before its next step)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for _, old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _meta_digest(body: dict[str, Any]) -> str:
    """sha256 of meta.json's content (canonical JSON without the digest itself): the array file's own digest
    lives in meta.json, so a flipped bit in meta.json (an env-state number, a key, the step) must be caught too."""
    rest = {k: v for k, v in body.items() if k != META_SHA}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def load(path: Path, defer: Callable[[str], bool] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, arrays) of one checkpoint folder, verified. Raises CheckpointError if it is damaged.

    Arrays whose name `defer` accepts are verified with the rest but not read into memory: they are `Stored`
    handles (a replay buffer of 1M transitions x 4 seeds is 633 MiB; see benchmarks/checkpoint_io.py)."""
    path = Path(path)
    try:
        meta = json.loads((path / META).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} has no {META} (an incomplete checkpoint)") from None
    except ValueError as err:
        raise CheckpointError(f"{path / META} is corrupt: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a softrl checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {meta.get('version')}; this softrl reads {VERSION}")
    if meta.get(META_SHA) != _meta_digest(meta):
        raise CheckpointError(f"{path / META} is corrupt: its checksum does not match its content")
    step = meta.get("step")
    if not isinstance(step, int) or step < 0 or step_dir(path.parent, step) != path:
        raise CheckpointError(f"{path / META} is corrupt: it names step {meta.get('step')!r}")
    try:
        arrays = meta["arrays"]
        return meta, _read_arrays(path / arrays["file"], arrays["sha256"], arrays["bytes"], defer)
    except (KeyError, TypeError, struct.error) as err:
        raise CheckpointError(f"{path} is corrupt: {err!r}") from None


def load_latest(
    root: Path, note: Callable[[str], None], defer: Callable[[str], bool] | None = None
) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """The newest checkpoint under `root` that loads (`defer` as in `load`); damaged newer ones are named through
    `note`."""
    found = list_checkpoints(root)
    errors: list[str] = []
    for _, path in reversed(found):
        try:
            meta, arrays = load(path, defer)
        except CheckpointError as err:
            errors.append(str(err))
            continue
        if errors:
            note(f"the newest checkpoint could not be read ({'; '.join(errors)}); using {path.name} instead")
        return meta, arrays, path
    if errors:
        raise CheckpointError(f"no readable checkpoint in {root}: {'; '.join(errors)}")
    raise CheckpointError(f"no checkpoint in {root}")


def clean_partial(root: Path) -> None:
    """Remove half-written `.tmp-*` folders left by a process that died while saving (call under the run lock)."""
    if Path(root).is_dir():
        for p in Path(root).glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


# ----- pytrees and env states -------------------------------------------------------------------------


def tree_tensors(prefix: str, tree: Any) -> dict[str, Tensor]:
    """One tensor per leaf, named PREFIX + the leaf's tree path."""
    return {prefix + jax.tree_util.keystr(p): tensor(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def tree_from(prefix: str, arrays: dict[str, Any], template: Any, what: str) -> Any:
    """The tree shaped like `template` whose leaves are `arrays[PREFIX + path]`; raises naming the first
    leaf that is missing or has another shape or dtype."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    out = [array_like(arrays, prefix + jax.tree_util.keystr(p), t, what + jax.tree_util.keystr(p)) for p, t in leaves]
    return jax.tree_util.tree_unflatten(treedef, out)


def array_like(arrays: dict[str, Any], name: str, template: Any, what: str) -> Any:
    """`arrays[name]`, refused unless it has the template's shape and dtype."""
    if name not in arrays:
        raise CheckpointError(f"checkpoint has no {what} (different structure: was it written by another "
                              "algorithm, network size or number of seeds?)")
    x = arrays[name]
    if tuple(template.shape) != x.shape or np.dtype(template.dtype) != x.dtype:
        raise CheckpointError(f"checkpoint {what} has shape {x.shape} {x.dtype}, but this configuration needs "
                              f"{tuple(template.shape)} {np.dtype(template.dtype)}")
    return x


def encode_state(obj: Any, prefix: str, tensors: dict[str, Tensor]) -> Any:
    """JSON for plain data (dicts with str keys, lists, tuples, numbers, str, None); numpy arrays and scalars go
    to `tensors` and are referenced by name. Anything else cannot be saved without pickle and is refused."""
    if isinstance(obj, (np.ndarray, np.generic)) and np.asarray(obj).dtype.name in _DTYPES:
        name = f"{prefix}#{len(tensors)}"
        tensors[name] = tensor(np.array(obj))
        return {"__array__" if isinstance(obj, np.ndarray) else "__scalar__": name}
    if isinstance(obj, np.str_):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {"__dict__": {k: encode_state(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        items = [encode_state(v, f"{prefix}[{i}]", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    raise CheckpointError(f"cannot save {prefix} of type {type(obj).__name__} without pickle; softrl saves only "
                          "plain data (numbers, strings, numpy arrays and lists/dicts of them)")


def decode_state(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The inverse of `encode_state`."""
    if isinstance(obj, list):
        return [decode_state(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    try:
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__scalar__" in obj:
            return arrays[obj["__scalar__"]][()]
    except KeyError as err:
        raise CheckpointError(f"checkpoint env state refers to a missing array {err}") from None
    if "__tuple__" in obj:
        return tuple(decode_state(v, arrays) for v in obj["__tuple__"])
    return {k: decode_state(v, arrays) for k, v in obj["__dict__"].items()}
