"""W&B logging in offline mode: every logged row lands in that seed's offline run, under TensorBoard's names."""

from __future__ import annotations

import struct
import sys
import time

import numpy as np
import pytest

from softrl.tracking import STEP_METRIC, WandbWriter, make_writer

# wandb is in the dev extra, so CI runs these tests rather than skipping them.


def _records(path):
    """The protobuf records of an offline `run-ID.wandb` file (a LevelDB-style log: 32 KiB blocks,
    7-byte chunk headers crc32/length/type, after a 7-byte file header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    block, pos, buf = 32768, 7, b""
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if pos + 7 + length > len(raw):  # a chunk still being written
            return
        buf += raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk: a record is complete
            record = pb.Record()
            record.ParseFromString(buf)
            buf = b""
            yield record


def _wait_for_exit_records(paths, timeout_s: float = 60.0) -> None:
    """`run.finish()` returns before W&B's service process has flushed the run file; wait until each
    file ends with its run's exit record (what `wandb sync` needs)."""
    deadline = time.monotonic() + timeout_s
    while any(not any(r.WhichOneof("record_type") == "exit" for r in _records(p)) for p in paths):
        assert time.monotonic() < deadline, "W&B never finished writing the offline run files"
        time.sleep(0.2)


def _offline_runs(root):
    """{display name: (group, config, [history rows])} for every offline run under `root`."""
    import json

    paths = sorted(root.glob("wandb/offline-run-*/run-*.wandb"))
    _wait_for_exit_records(paths)
    runs = {}
    for path in paths:
        name, group, config, rows = None, None, {}, []
        for r in _records(path):
            kind = r.WhichOneof("record_type")
            if kind == "run":
                name, group = r.run.display_name, r.run.run_group
                config = {u.key: json.loads(u.value_json) for u in r.run.config.update if u.key != "_wandb"}
            elif kind == "history":
                row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
                rows.append({k: v for k, v in row.items() if not k.startswith("_")})
        runs[name] = (group, config, rows)
    return runs


def test_offline_runs_hold_the_logged_history(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    writer = make_writer("softrl-test", tmp_path / "sac-run", [3, 4], config={"algo": "sac"})
    assert isinstance(writer, WandbWriter)
    # Rows as softrl.loop hands them to RunLogger.write (numpy scalars included), out of step order across kinds.
    writer.log(10, 3, "episodes", {"step": 10, "return": -3.5, "length": 10})
    writer.log(20, 4, "train", {"step": 20, "critic_loss": np.float32(0.25), "alpha": 0.5, "steps_per_s": 100.0})
    writer.log(20, 3, "eval", {"step": 20, "mean_return": 1.5, "std_return": 0.0, "note": "ignored"})
    writer.log(15, 3, "episodes", {"step": 15, "return": -1.0, "length": 5})
    writer.close()
    runs = _offline_runs(tmp_path)
    assert set(runs) == {"sac-run-seed3", "sac-run-seed4"}
    group, config, rows = runs["sac-run-seed3"]
    assert group == "sac-run" and config == {"algo": "sac", "seed": 3}
    assert rows == [
        {STEP_METRIC: 10, "episodes/return": -3.5, "episodes/length": 10},
        {STEP_METRIC: 20, "eval/mean_return": 1.5, "eval/std_return": 0},
        {STEP_METRIC: 15, "episodes/return": -1.0, "episodes/length": 5},
    ]
    assert runs["sac-run-seed4"][2] == [
        {STEP_METRIC: 20, "train/critic_loss": 0.25, "train/alpha": 0.5, "train/steps_per_s": 100}
    ]


def test_no_project_no_writer_and_missing_wandb_names_the_extra(tmp_path, monkeypatch):
    assert make_writer(None, tmp_path, [0]) is None
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'softrl\[wandb\]'") as info:
        make_writer("p", tmp_path, [0])
    assert "\n" not in str(info.value)


def test_train_with_wandb_logs_what_the_csv_logs(tmp_path, monkeypatch):
    from softrl.cli import main as cli_main
    from softrl.log import read_csv

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DIR", raising=False)  # default: the run directory
    run_dir = tmp_path / "run"
    args = ["train", "sac", "--seeds", "2", "--total-steps", "200", "--learning-starts", "100", "--eval-every", "100",
            "--eval-episodes", "1", "--log-every", "100", "--checkpoint-every", "0", "--hidden", "16", "16",
            "--batch-size", "32", "--no-progress", "--run-dir", str(run_dir), "--wandb", "softrl-test"]
    assert cli_main(args) == 0
    runs = _offline_runs(run_dir)
    assert set(runs) == {"run-seed0", "run-seed1"}
    for seed in (0, 1):
        group, config, rows = runs[f"run-seed{seed}"]
        assert group == "run" and config["seed"] == seed and config["wandb"] == "softrl-test"
        evals = [(r[STEP_METRIC], r["eval/mean_return"]) for r in rows if "eval/mean_return" in r]
        csv_rows = read_csv(run_dir / f"seed_{seed}" / "eval.csv")
        assert evals == [(int(r["step"]), pytest.approx(r["mean_return"], rel=1e-6)) for r in csv_rows]
        assert [r[STEP_METRIC] for r in rows if "train/critic_loss" in r] == [100, 200]
        episodes = [r for r in rows if "episodes/return" in r]
        assert len(episodes) == len(read_csv(run_dir / f"seed_{seed}" / "episodes.csv")) == 1
