"""A local two-worker-node Ray cluster (`ray.cluster_utils.Cluster`, all on 127.0.0.1): the node running a
trial is removed mid-trial; Ray retries the trial on the other node, it resumes from its last checkpoint,
and ends bitwise equal to an uninterrupted run of the same trial."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before Ray is imported
import psutil  # noqa: E402  (a Ray dependency)
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from softrl import checkpoint, rundir  # noqa: E402
from softrl.config import AgentConfig  # noqa: E402
from softrl.loop import TrainConfig  # noqa: E402
from softrl.sweep import make_spec, runner, trials  # noqa: E402


def _node_of(pid: int, nodes) -> object:
    """The cluster node whose raylet is an ancestor of worker process `pid`."""
    ancestors = {p.pid for p in psutil.Process(pid).parents()}
    for node in nodes:
        raylet = node.all_processes["raylet"][0].process.pid
        if raylet in ancestors:
            return node
    raise AssertionError(f"worker {pid} belongs to no worker node")


def test_killed_node_trial_resumes_bitwise(tmp_path):
    base = TrainConfig(learning_starts=100, eval_every=0, eval_episodes=1, checkpoint_every=100,
                       agent=AgentConfig(hidden=(16, 16), batch_size=32))
    spec = make_spec("sac", ["Pendulum-v1"], 2, 0, 400, {"alpha": ["0.1", "0.2"]}, 0, 0, base)
    (trial,) = trials(spec)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1)]
    try:
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        remote = ray.remote(num_cpus=1, max_retries=runner.MAX_RETRIES)(runner.run_trial)
        reference = remote.remote(spec.to_json(), trial.to_json(), str(tmp_path / "reference"))
        killed = remote.remote(spec.to_json(), trial.to_json(), str(tmp_path / "killed"))
        packed_dir = tmp_path / "killed" / trial.name / "packed"  # the trial's combined checkpoints
        deadline = time.monotonic() + 600
        while _newest_step(packed_dir) < 100:  # the first scheduled checkpoint (step 100) is written
            assert time.monotonic() < deadline, "trial wrote no checkpoint"
            time.sleep(0.1)
        assert not (packed_dir.parent / "agent_00" / "summary.json").exists(), "trial finished before the kill"
        step_at_kill = _newest_step(packed_dir)
        pid = _worker_pid(tmp_path / "killed" / trial.name)
        cluster.remove_node(_node_of(pid, workers), allow_graceful=False)
        cluster.add_node(num_cpus=1)  # capacity for the reference trial if it ran on the removed node
        out_ref, out_killed = ray.get([reference, killed], timeout=900)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert step_at_kill < 400 and out_killed["pid"] != pid
    assert out_killed["agents"][0]["resumed"] and not out_ref["agents"][0]["resumed"]
    for k in ("agent_00", "agent_01"):
        a, b = tmp_path / "reference" / trial.name / k, tmp_path / "killed" / trial.name / k
        assert (a / "seed_1" / "eval.csv").read_text() == (b / "seed_1" / "eval.csv").read_text()
        (ma, xa, _), (mb, xb, _) = (checkpoint.load_latest(rundir.checkpoints_dir(d), print) for d in (a, b))
        assert ma["step"] == mb["step"] == 400
        assert xa.keys() == xb.keys() and all(np.array_equal(xa[k], xb[k]) for k in xa)


def _newest_step(run_dir: Path) -> int:
    found = checkpoint.list_checkpoints(rundir.checkpoints_dir(run_dir))
    return found[-1][0] if found else -1


def _worker_pid(trial_dir: Path) -> int:
    """The pid of the worker process running the trial (runner.run_trial writes it when it starts)."""
    return json.loads((trial_dir / "worker.json").read_text())["pid"]
