"""The checkpoint format (softrl.checkpoint): a plain safetensors file plus JSON, written atomically, checked on
load, two kept, and nothing in it executed."""

import errno
import json

import numpy as np
import pytest

from softrl import checkpoint
from softrl.checkpoint import CheckpointError, Tensor, tensor


def arrays_example():
    rng = np.random.default_rng(0)
    return {
        "a": rng.normal(size=(3, 5)).astype(np.float32),
        "b": np.arange(7, dtype=np.int32),
        "flags": np.array([True, False, True]),
        "key": np.array([[1, 2**32 - 1]], np.uint32),
        "x64": np.array(np.pi),
        "empty": np.zeros((2, 0, 4), np.float32),
    }


def test_roundtrip_is_exact_and_readable_by_safetensors(tmp_path):
    arrs = arrays_example()
    # A tensor given in row pieces, as the replay buffer is.
    big = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2)
    tensors = {k: tensor(v) for k, v in arrs.items()}
    tensors["rows"] = Tensor(big.dtype, (4, 3, 2), lambda: (big[i, :3] for i in range(4)))
    path = checkpoint.save(tmp_path, 7, {"config": {"x": 1}}, tensors)
    meta, back = checkpoint.load(path)
    assert meta["step"] == 7 and meta["config"] == {"x": 1} and path.name == "step_000000007"
    for k, v in arrs.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)
    np.testing.assert_array_equal(back["rows"], big[:, :3])
    from safetensors.numpy import load_file  # the file is a standard safetensors file

    other = load_file(path / checkpoint.ARRAYS)
    np.testing.assert_array_equal(other["rows"], big[:, :3])
    np.testing.assert_array_equal(other["key"], arrs["key"])


def test_keeps_the_newest_two_and_resaving_a_step_replaces_it(tmp_path):
    for step in (0, 10, 20, 30):
        checkpoint.save(tmp_path, step, {}, {"v": tensor(np.array([step]))})
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [20, 30]
    checkpoint.save(tmp_path, 30, {}, {"v": tensor(np.array([31]))})
    assert checkpoint.load(checkpoint.step_dir(tmp_path, 30))[1]["v"].tolist() == [31]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_000000020", "step_000000030"]


def test_corrupt_or_truncated_newest_falls_back_to_the_previous(tmp_path):
    for step in (10, 20):
        checkpoint.save(tmp_path, step, {}, {"v": tensor(np.full(100, step, np.float32))})
    newest = checkpoint.step_dir(tmp_path, 20) / checkpoint.ARRAYS
    raw = bytearray(newest.read_bytes())
    raw[-5] ^= 1  # one bit in the data: only the checksum sees it
    newest.write_bytes(bytes(raw))
    notes = []
    meta, arrays, path = checkpoint.load_latest(tmp_path, notes.append)
    assert meta["step"] == 10 and arrays["v"][0] == 10 and "step_000000020" in notes[0] and "checksum" in notes[0]
    newest.write_bytes(bytes(raw[:-50]))
    notes.clear()
    assert checkpoint.load_latest(tmp_path, notes.append)[0]["step"] == 10 and "truncated" in notes[0]
    (checkpoint.step_dir(tmp_path, 10) / checkpoint.META).write_text('{"format": "softrl-checkpoint", "vers')
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        checkpoint.load_latest(tmp_path, notes.append)
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        checkpoint.load_latest(tmp_path / "nothing", notes.append)


def test_a_failed_write_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, 10, {}, {"v": tensor(np.ones(10))})

    def pieces():  # the disk fills up half way through the array file
        yield np.ones(5)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        checkpoint.save(tmp_path, 20, {}, {"v": Tensor(np.dtype(np.float64), (10,), pieces)})
    assert [p.name for p in tmp_path.iterdir()] == ["step_000000010"]  # no partial folder left behind
    assert checkpoint.load_latest(tmp_path, print)[0]["step"] == 10


def test_header_lies_are_refused(tmp_path):
    path = checkpoint.save(tmp_path / "shape", 1, {}, {"v": tensor(np.ones(40, np.float32))})
    raw = (path / checkpoint.ARRAYS).read_bytes()
    assert raw.count(b'"shape":[40]') == 1
    (path / checkpoint.ARRAYS).write_bytes(raw.replace(b'"shape":[40]', b'"shape":[-4]'))  # same length
    for defer in (None, lambda name: True):
        with pytest.raises(CheckpointError, match="bad header entry for v"):
            checkpoint.load(path, defer)
    path = checkpoint.save(tmp_path, 1, {}, {"v": tensor(np.ones(4, np.float32))})
    meta = json.loads((path / checkpoint.META).read_text())
    meta["version"] = 1
    (path / checkpoint.META).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="version 1"):
        checkpoint.load(path)


def test_env_state_encoding_is_json_plus_arrays_and_exact():
    rng = np.random.Generator(np.random.PCG64(3))
    state = {"envs": [{"levels": [{"_elapsed_steps": 3, "flag": True, "name": "x", "t": (1, 2.5), "none": None,
                                   "arr": np.arange(3.0), "scalar": np.float32(1.5), "big": 2**100}],
                       "np_random": rng.bit_generator.state}],
             "obs": np.ones((1, 3), np.float32)}
    tensors = {}
    enc = checkpoint.encode_state(state, "envs", tensors)
    text = json.dumps(enc)  # plain JSON
    back = checkpoint.decode_state(json.loads(text), {k: np.asarray(t.chunks()[0]) for k, t in tensors.items()})
    lvl = back["envs"][0]["levels"][0]
    assert lvl["t"] == (1, 2.5) and lvl["big"] == 2**100 and lvl["flag"] is True and lvl["none"] is None
    assert type(lvl["scalar"]) is np.float32 and lvl["scalar"] == 1.5
    np.testing.assert_array_equal(lvl["arr"], np.arange(3.0))
    other = np.random.Generator(np.random.PCG64())
    other.bit_generator.state = back["envs"][0]["np_random"]
    assert other.random() == rng.random()
    with pytest.raises(CheckpointError, match="without pickle"):
        checkpoint.encode_state({"obj": object()}, "envs", {})


def test_a_flipped_bit_in_meta_json_falls_back_to_the_previous_checkpoint(tmp_path):
    """meta.json holds the array file's digest and the env states, so it carries its own digest too: a changed
    number, key or step makes the newest checkpoint unreadable (and the previous one is used), never silently
    different."""
    import json as _json

    from softrl import checkpoint as ck

    tensors = {"v": ck.tensor(np.ones(3, np.float32))}
    ck.save(tmp_path, 100, {"envs": {"t": 7}}, tensors)
    ck.save(tmp_path, 200, {"envs": {"t": 8}}, tensors)
    newest = ck.step_dir(tmp_path, 200) / ck.META
    text = newest.read_text()
    for old, new in (('"t": 8', '"t": 6'), ('"step": 200', '"step": 300'), ('"envs"', '"envz"')):
        assert old in text
        newest.write_text(text.replace(old, new))
        notes: list[str] = []
        meta, _, path = ck.load_latest(tmp_path, notes.append)
        assert meta["step"] == 100 and meta["envs"] == {"t": 7} and path.name.endswith("100")
        assert len(notes) == 1 and "corrupt" in notes[0]
    newest.write_text(text)
    meta, _, _ = ck.load_latest(tmp_path, lambda m: None)
    assert meta["step"] == 200 and _json.loads(text)["envs"] == {"t": 8}


def test_deferred_arrays_are_verified_but_left_in_the_file(tmp_path):
    """`defer`: the named arrays are checksummed with the rest but come back as `Stored` handles that read the
    file again; a flipped bit inside one still makes the checkpoint unreadable, and a file replaced after it was
    verified is refused."""
    big = np.arange(2 * 300 * 3, dtype=np.float32).reshape(2, 300, 3)
    tensors = {"small": tensor(np.arange(4)), "buffer.data.obs": tensor(big), "buffer.data.flag": tensor(big > 900)}
    for step in (10, 20):
        checkpoint.save(tmp_path, step, {}, {**tensors, "step": tensor(np.array(step))})
    defer = lambda name: name.startswith("buffer.data")  # noqa: E731
    _, arrays = checkpoint.load(checkpoint.step_dir(tmp_path, 20), defer)
    assert isinstance(arrays["small"], np.ndarray) and arrays["step"] == 20
    obs, flag = arrays["buffer.data.obs"], arrays["buffer.data.flag"]
    assert isinstance(obs, checkpoint.Stored) and obs.shape == big.shape and obs.dtype == np.float32
    assert flag.shape == big.shape and flag.dtype == bool
    np.testing.assert_array_equal(obs.read(0, big.size).reshape(big.shape), big)
    np.testing.assert_array_equal(obs.read(7, 20), big.reshape(-1)[7:20])
    np.testing.assert_array_equal(flag.read(0, big.size), (big > 900).reshape(-1))
    with pytest.raises(IndexError):
        obs.read(0, big.size + 1)

    newest = checkpoint.step_dir(tmp_path, 20) / checkpoint.ARRAYS
    raw = bytearray(newest.read_bytes())
    raw[obs.offset + 1000] ^= 1  # a bit inside the deferred array
    newest.write_bytes(bytes(raw))
    notes = []
    _, arrays, path = checkpoint.load_latest(tmp_path, notes.append, defer)
    assert arrays["step"] == 10 and "checksum" in notes[0] and path.name == "step_000000010"
    checkpoint.save(tmp_path, 10, {}, {**tensors, "step": tensor(np.array(10))})  # replaced by rename: a new file
    with pytest.raises(CheckpointError, match="changed after its checksum was verified"):
        arrays["buffer.data.obs"].read(0, 3)


def test_buffer_restore_writes_the_saved_rows_in_place(tmp_path, monkeypatch):
    """`_restore_buffer` from deferred arrays: the saved rows land in the template's own memory (no second buffer:
    the same addresses), chunk by chunk (many small chunks here, the last one of each seed overlapping), and equal
    the saved buffer's filled rows, with zeros after them; eagerly loaded arrays give the same buffer."""
    import jax
    import jax.numpy as jnp

    from softrl import loop, replay
    from softrl.types import Transition

    n, cap, size = 3, 50, 37
    rng = np.random.default_rng(1)
    data = Transition(rng.normal(size=(n, cap, 4)).astype(np.float32), rng.integers(0, 9, (n, cap)).astype(np.int32),
                      rng.normal(size=(n, cap)).astype(np.float32), rng.normal(size=(n, cap, 4)).astype(np.float32),
                      rng.random((n, cap)) < 0.5, rng.random((n, cap)) < 0.5)
    full = np.full(n, size, np.int32)
    buffer = replay.Buffer(jax.tree.map(jnp.asarray, data), jnp.asarray(full), jnp.asarray(full))
    path = checkpoint.save(tmp_path, 1, {}, loop._buffer_tensors(buffer))
    monkeypatch.setattr(loop, "_RESTORE_CHUNK", 7 * 16)  # 7 obs rows, 28 action rows at a time
    expected = [np.concatenate([x[:, :size], np.zeros_like(x[:, size:])], axis=1) for x in data]
    for defer in (loop.is_buffer_data, None):
        arrays = checkpoint.load(path, defer)[1]
        assert isinstance(arrays["buffer.data.obs"], checkpoint.Stored if defer else np.ndarray)
        template = jax.tree.map(jnp.zeros_like, buffer)
        addresses = [x.unsafe_buffer_pointer() for x in jax.tree.leaves(template.data)]
        restored = loop._restore_buffer(template, arrays)
        assert [x.unsafe_buffer_pointer() for x in jax.tree.leaves(restored.data)] == addresses
        for x, y in zip(jax.tree.leaves(restored.data), expected, strict=True):
            np.testing.assert_array_equal(np.asarray(x), y)
        assert np.asarray(restored.size).tolist() == [size] * n
