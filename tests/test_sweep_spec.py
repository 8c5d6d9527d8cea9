"""`softrl sweep` specs: parsing, validation, packable vs separate-trial fields, expansion (no Ray, no training)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tyro

from softrl.config import AgentConfig
from softrl.loop import TrainConfig
from softrl.sweep import Dist, SweepCommand, make_spec, parse_grid_item, points, run_sweep, trials
from softrl.sweep.command import _cpu_defaults, local_slots, prepare_out_dir, spec_from_command
from softrl.sweep.spec import notes, split_trials


def _spec(grid: dict, envs=("Pendulum-v1",), samples=0, seeds=2):
    return make_spec("sac", envs, seeds, 0, 200, grid, samples, 0, TrainConfig(agent=AgentConfig(hidden=(16, 16))))


def test_parse_grid_items():
    assert parse_grid_item("alpha=0.05,0.2,auto") == ("alpha", ["0.05", "0.2", "auto"])
    assert parse_grid_item("gamma=0.9,0.99") == ("gamma", [0.9, 0.99])
    assert parse_grid_item("hidden=16x16,64x64x64") == ("hidden", [(16, 16), (64, 64, 64)])
    assert parse_grid_item("batch-size=32,64") == ("batch_size", [32, 64])
    assert parse_grid_item("alpha_lr=none,1e-3") == ("alpha_lr", [None, 1e-3])
    assert parse_grid_item("lr=loguniform(1e-4, 1e-3)") == ("lr", Dist("loguniform", (1e-4, 1e-3)))
    assert parse_grid_item("tau=uniform(0.001,0.01)") == ("tau", Dist("uniform", (0.001, 0.01)))
    assert parse_grid_item("batch_size=choice(32,64)") == ("batch_size", Dist("choice", (32, 64)))


@pytest.mark.parametrize(
    "item, message",
    [
        ("gama=0.9", "unknown hyperparameter 'gama'; did you mean gamma?"),
        ("learning_rate=1e-3", "unknown hyperparameter 'learning_rate'"),
        ("seed=1,2", "cannot be swept"),
        ("gamma=high", "gamma='high': expected float"),
        ("batch_size=32.5", "batch_size='32.5': expected int"),
        ("hidden=16xa", "expected integers like 256x256"),
        ("lr=loguniform(0,1)", "needs 0 < a < b"),
        ("lr=uniform(1)", "takes two numbers"),
        ("lr=normal(0,1)", "unknown distribution 'normal'"),
        ("batch_size=uniform(16,64)", "samples real numbers"),
        ("alpha", "--grid takes NAME=V1,V2"),
    ],
)
def test_bad_grid_items(item, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        parse_grid_item(item)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"gamma": [0.9, 1.5]}, r"gamma must be in \[0, 1\), got 1.5 \(sweep point gamma=1.5 on Pendulum-v1\)"),
        ({"alpha": ["0.2", "-1"]}, "--alpha must be 'auto' or a finite number >= 0"),
        ({"tau": [0.0]}, r"tau must be in \(0, 1\]"),
        ({"batch_size": [0]}, "batch_size must be >= 1"),
    ],
)
def test_out_of_range_values(grid, message):
    with pytest.raises(ValueError, match=message):
        _spec(grid)


def test_unknown_env_and_sample_flags():
    with pytest.raises(ValueError, match="unknown environment 'Pendulum-v9'"):
        _spec({}, envs=("Pendulum-v9",))
    with pytest.raises(ValueError, match="need --samples K"):
        _spec({"lr": Dist("loguniform", (1e-4, 1e-3))})
    with pytest.raises(ValueError, match="--samples K needs"):
        _spec({"gamma": [0.9]}, samples=3)


def test_packable_values_share_a_trial():
    spec = _spec({"alpha": ["0.05", "0.2"], "gamma": [0.9, 0.99], "reward_scale": [1.0, 5.0]},
                 envs=("Pendulum-v1", "MountainCarContinuous-v0"))
    ts = trials(spec)
    assert [t.settings for t in ts] == [{"env": "Pendulum-v1"}, {"env": "MountainCarContinuous-v0"}]
    assert len(ts[0].agents) == 8 and ts[0].agents[0] == {"alpha": "0.05", "gamma": 0.9, "reward_scale": 1.0}
    assert notes(spec) == ["note: each environment makes separate trials"]


def test_separate_trial_fields_and_auto_alpha():
    spec = _spec({"alpha": ["auto", "0.1", "0.2"], "hidden": [(16, 16), (32, 32)], "lr": [1e-3, 3e-4]})
    ts = trials(spec)
    assert len(ts) == 4  # {auto, fixed} x 2 hidden
    auto = [t for t in ts if t.settings.get("alpha") == "auto"]
    fixed = [t for t in ts if "alpha" not in t.settings]
    assert len(auto) == 2 and all(len(t.agents) == 2 for t in auto)  # the two lrs
    assert len(fixed) == 2 and all(len(t.agents) == 4 for t in fixed)  # 2 alphas x 2 lrs
    text = " ".join(notes(spec))
    assert "auto and fixed alpha make separate trials" in text and "hidden is not stored" in text
    assert sum(len(t.agents) for t in ts) == len(points(spec)) == 12


def test_split_trials_by_setting_keeping_all_seeds():
    spec = _spec({"alpha": ["0.05", "0.1", "0.2", "0.4"]})
    (whole,) = trials(spec)
    halves = split_trials([whole], 2)
    assert [t.name for t in halves] == ["trial_000", "trial_001"]
    assert [t.agents for t in halves] == [whole.agents[:2], whole.agents[2:]]
    assert all(t.settings == whole.settings for t in halves)
    assert [len(t.agents) for t in split_trials([whole], 3)] == [1, 2, 1]  # sizes differ by at most one
    assert [len(t.agents) for t in split_trials([whole], 16)] == [1, 1, 1, 1]  # one setting per trial at most
    assert split_trials([whole], 1) == [whole]
    two_envs = trials(_spec({"alpha": ["0.1", "0.2"]}, envs=("Pendulum-v1", "MountainCarContinuous-v0")))
    assert split_trials(two_envs, 2) == two_envs  # already one trial per slot
    four = split_trials(two_envs, 4)
    assert [(t.settings["env"], t.agents) for t in four] == [
        ("Pendulum-v1", [{"alpha": "0.1"}]), ("Pendulum-v1", [{"alpha": "0.2"}]),
        ("MountainCarContinuous-v0", [{"alpha": "0.1"}]), ("MountainCarContinuous-v0", [{"alpha": "0.2"}])]


def test_local_cpu_defaults():
    spec = _spec({"alpha": ["0.1", "0.2"]})
    assert spec.base["vmap_updates"] is True and _cpu_defaults(spec).base["vmap_updates"] is False
    assert _cpu_defaults(_spec({"vmap_updates": [True]})).base["vmap_updates"] is True  # the user's choice stays
    on_device = make_spec("dqn", ("jax/CartPole-v1",), 2, 0, 200, {}, 0, 0, TrainConfig(algo="dqn"))
    assert _cpu_defaults(on_device).base["vmap_updates"] is True  # the on-device loop vmaps its whole step
    assert local_slots(SweepCommand(num_cpus=4)) == 4
    assert local_slots(SweepCommand(num_cpus=4, cpus_per_trial=2)) == 2
    assert local_slots(SweepCommand(num_cpus=1, cpus_per_trial=2)) == 1
    assert local_slots(SweepCommand()) == len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="--min-trials must be >= 0"):
        run_sweep(SweepCommand(algo="sac", env=("Pendulum-v1",), min_trials=-1))


# A process that claims a core, reports it and its affinity, and holds the claim until stdin closes.
PIN = (
    "import os, sys\n"
    "from pathlib import Path\n"
    "from softrl.sweep.runner import pin_to_free_core\n"
    "core = pin_to_free_core(Path(sys.argv[1]))\n"
    "again = pin_to_free_core(Path(sys.argv[1]))\n"
    "print(core, sorted(os.sched_getaffinity(0)), again, flush=True)\n"
    "sys.stdin.read()\n"
)


def test_trials_claim_distinct_cores_until_none_is_free(tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    procs = []
    try:
        seen = []
        for _ in range(len(cores) + 1):
            p = subprocess.Popen([sys.executable, "-c", PIN, str(tmp_path)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout is not None
            seen.append(p.stdout.readline().split(" ", 1))
        claimed = [int(c) for c, _ in seen[:-1]]
        assert sorted(claimed) == cores
        assert all(rest.startswith(f"[{c}] None") for (_, rest), c in zip(seen, claimed))  # pinned, one claim each
        assert seen[-1][0] == "None" and seen[-1][1].startswith(str(cores))  # every core taken: left unpinned
        procs[0].kill()  # a killed trial's claim dies with it
        procs[0].wait()
        p = subprocess.Popen([sys.executable, "-c", PIN, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout is not None and int(p.stdout.readline().split()[0]) == claimed[0]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_random_search_is_seeded_and_in_range():
    grid = {"lr": Dist("loguniform", (1e-4, 1e-2)), "tau": Dist("uniform", (0.001, 0.01)), "gamma": [0.9, 0.99]}
    pts = points(_spec(grid, samples=50))
    assert len(pts) == 100 and pts == points(_spec(grid, samples=50))
    lrs = np.array([p["lr"] for p in pts])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-2
    # log-uniform: about half the draws fall below the geometric midpoint 1e-3 (50 draws: a 4-sd band is +-14)
    assert abs(int((lrs[:50] < 1e-3).sum()) - 25) <= 14  # the first 50 points hold the 50 distinct draws
    assert len(trials(_spec(grid, samples=50))) == 1  # lr, tau, gamma are all packable


def test_command_line_and_toml(tmp_path):
    args = ["sac", "--env", "Pendulum-v1", "--seeds", "2", "--grid", "alpha=0.1,0.2", "--grid", "gamma=0.9,0.99",
            "--total-steps", "300", "--hidden", "16", "16", "--out", str(tmp_path / "a")]
    cmd = tyro.cli(SweepCommand, args=args)
    spec, out, address = spec_from_command(cmd)
    assert spec.grid == {"alpha": ["0.1", "0.2"], "gamma": [0.9, 0.99]} and spec.base["agent"]["hidden"] == (16, 16)
    assert out == str(tmp_path / "a") and address is None and spec.total_steps == 300
    toml = tmp_path / "sweep.toml"
    toml.write_text('algo = "sac"\nenv = ["Pendulum-v1"]\nseeds = 2\ntotal_steps = 300\n'
                    '[grid]\nalpha = [0.1, 0.2]\ngamma = [0.9, 0.99]\n[base]\nhidden = [16, 16]\n')
    spec2, _, _ = spec_from_command(SweepCommand(config=str(toml)))
    assert spec2.to_json() == spec.to_json()
    toml.write_text('algo = "sac"\nenv = "Pendulum-v1"\n[grid]\nlr = "loguniform(1e-4,1e-3)"\n')
    with pytest.raises(ValueError, match="need --samples"):
        spec_from_command(SweepCommand(config=str(toml)))
    toml.write_text('algo = "sac"\nenvs = ["Pendulum-v1"]\n')
    with pytest.raises(ValueError, match="unknown key"):
        spec_from_command(SweepCommand(config=str(toml)))


def test_out_dir_holding_another_sweep_is_refused(tmp_path):
    spec = _spec({"alpha": ["0.1", "0.2"]})
    out = tmp_path / "sweep"
    prepare_out_dir(out, spec, trials(spec))
    saved = (out / "sweep.json").read_text()
    other = _spec({"alpha": ["0.1", "0.3"]})
    with pytest.raises(ValueError, match="holds another sweep"):
        prepare_out_dir(out, other, trials(other))
    with pytest.raises(ValueError, match="already holds this sweep; continue it with softrl sweep --resume"):
        prepare_out_dir(out, spec, trials(spec))
    assert (out / "sweep.json").read_text() == saved  # nothing lost
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        prepare_out_dir(tmp_path / "busy", spec, trials(spec))
    assert json.loads(saved)["trials"][0]["agents"] == [{"alpha": "0.1"}, {"alpha": "0.2"}]


def test_unreachable_address_is_one_line(tmp_path):
    cmd = SweepCommand(algo="sac", env=("Pendulum-v1",), grid=("alpha=0.1",), total_steps=200,
                       out=str(tmp_path / "s"), address="127.0.0.1:9")  # port 9 (discard): nothing listens
    with pytest.raises(ValueError, match=r"cannot reach a Ray cluster at 127.0.0.1:9") as err:
        run_sweep(cmd)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="--address must be auto, HOST:PORT"):
        run_sweep(SweepCommand(algo="sac", env=("Pendulum-v1",), out=str(tmp_path / "t"), address="nowhere"))
