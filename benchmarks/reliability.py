"""Reliability: inject each fault N times into a tiny run, recover as a user would, and measure what was lost.

    python benchmarks/reliability.py [--repeats 5] [--seed 0] [--faults sigint,kill9,...] [--out FILE.json]

Each trial trains `softrl train sac --env Pendulum-v1` (hidden 16 16, 300 steps, a checkpoint every 50, a
replay buffer of 200 that wraps around) in a child process, hits it with one fault at a step drawn from a
seeded rng, then recovers with the command a user would type (`softrl train --resume RUN`) in a fresh process.
What was lost is measured against one uninterrupted reference run with the same config:

- recovered bitwise: every array of the final checkpoint (agent, replay buffer, PRNG keys, env states), the
  final evaluation in summary.json, the policy files and the logs (minus wall-clock columns) are identical;
- env steps redone: steps the faulted process had completed minus the step the resume started from;
- message: the fault was reported as expected (exit code and the one line the user sees; no traceback).

Faults are injected by a wrapper around the CLI in the child (`CHILD` below): a signal sent to itself before its
k-th env step, a SIGKILL at a chosen point inside a checkpoint write, an OSError(ENOSPC) from the array writer,
an env whose `step` raises or returns NaN, or a pause at step k while a second process tries the run dir. Damage
to the newest checkpoint (a flipped bit, truncation) is done on disk between the kill and the resume. The full
disk is real when a tmpfs can be mounted (root): the run dir lives on a tiny tmpfs, which is then enlarged.
Children share a JAX compilation cache (in the work folder) to keep process start-up short; it does not change
results (the reference run uses it too, and cached and fresh runs agree bitwise).

Besides the trials, `meta_bit_flips` loads the newest checkpoint once with every single-bit flip of its
meta.json (in-process, no training) and counts how many are caught, harmless or silently accepted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOTAL, EVERY = 300, 50
ARGS = ["--env", "Pendulum-v1", "--no-preset", "--total-steps", str(TOTAL), "--learning-starts", "100",
        "--eval-every", "0", "--eval-episodes", "1", "--hidden", "16", "16", "--batch-size", "16",
        "--buffer-size", "200", "--log-every", "50", "--checkpoint-every", str(EVERY), "--no-progress"]
TIMEOUT = 300

# The CLI in a child process with faults hooked in, as given by the JSON spec in argv[1]. It records in
# spec["progress"] the number of env steps it has completed (one pwrite per step: survives kill -9).
CHILD = r"""
import errno, json, os, signal, sys, time
import numpy as np
from softrl import checkpoint, collect
from softrl.cli import main

spec = json.loads(sys.argv[1])
fd = os.open(spec["progress"], os.O_RDWR | os.O_CREAT, 0o644)
done, saves, signalled = [0], [0], [False]

def mark(text):
    os.pwrite(fd, text.encode().ljust(32), 0)

env_step = collect.SeedEnvs.step
def step(self, action):
    k = done[0] + 1
    if k == spec.get("signal_at"):
        signalled[0] = True
        os.kill(os.getpid(), spec["signal"])
    if k == spec.get("block_at"):
        mark(f"{done[0]} blocked")
        while not os.path.exists(spec["go"]):
            time.sleep(0.05)
    out = env_step(self, action)
    done[0] = k
    mark(str(k))
    return out
collect.SeedEnvs.step = step

if "env_raise_at" in spec or "env_nan_at" in spec:
    from gymnasium.envs.classic_control.pendulum import PendulumEnv
    pend_step, calls = PendulumEnv.step, [0]
    def faulty(self, u):
        calls[0] += 1
        if calls[0] == spec.get("env_raise_at"):
            raise RuntimeError("injected fault: the simulator exploded")
        obs, r, term, trunc, info = pend_step(self, u)
        if calls[0] == spec.get("env_nan_at"):
            obs = np.full_like(obs, np.nan)
        return obs, r, term, trunc, info
    PendulumEnv.step = faulty

save = checkpoint.save
def counted_save(*a, **kw):
    saves[0] += 1
    return save(*a, **kw)
checkpoint.save = counted_save

def sabotage(tensors, what):
    # the array file dies or fails part way: after the header and the first `frac` of the tensors
    names = list(tensors)
    name = names[min(int(spec.get("frac", 0.5) * len(names)), len(names) - 1)]
    t = tensors[name]
    def chunks():
        if what == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if what == "sigint":
            os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C while the interrupted run saves
        if what == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device")
        yield from t.chunks()
    return {**tensors, name: checkpoint.Tensor(t.dtype, t.shape, chunks)}

write_arrays = checkpoint._write_arrays
def hooked_write(path, tensors):
    if saves[0] == spec.get("kill_in_save") and spec.get("stage") == "array file":
        tensors = sabotage(tensors, "kill")
    if saves[0] == spec.get("enospc_in_save"):
        tensors = sabotage(tensors, "enospc")
    if signalled[0] and spec.get("second_sigint"):
        tensors = sabotage(tensors, "sigint")
    return write_arrays(path, tensors)
checkpoint._write_arrays = hooked_write

fsync_dir = checkpoint._fsync_dir
def hooked_fsync_dir(path):
    fsync_dir(path)
    if saves[0] == spec.get("kill_in_save"):
        tmp = os.path.basename(str(path)).startswith(".tmp-")
        if (tmp and spec["stage"] == "before rename") or (not tmp and spec["stage"] == "after rename"):
            os.kill(os.getpid(), signal.SIGKILL)
checkpoint._fsync_dir = hooked_fsync_dir

sys.exit(main(sys.argv[2:]))
"""


# ----- processes ---------------------------------------------------------------------------------------


class Ctx:
    def __init__(self, work: Path, rng: np.random.Generator):
        self.work, self.rng, self.n = work, rng, 0
        self.env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                    "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(work / "jax-cache"),
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
        self.ref = work / "reference"

    def new_dir(self, name: str) -> Path:
        self.n += 1
        return self.work / f"{self.n:03d}-{name}"


def child_cmd(ctx: Ctx, run: Path, spec: dict, args: list[str] | None = None) -> list[str]:
    spec = {"progress": str(run.parent / (run.name + ".progress")), **spec}
    return [sys.executable, "-c", CHILD, json.dumps(spec), *(args or ["train", "sac", *ARGS, "--run-dir", str(run)])]


def run_cmd(ctx: Ctx, cmd: list[str]) -> dict:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=ctx.env, cwd=ctx.work)
    return {"rc": p.returncode, "err": p.stderr, "s": time.perf_counter() - t0}


def faulted(ctx: Ctx, run: Path, spec: dict) -> dict:
    return run_cmd(ctx, child_cmd(ctx, run, spec))


def resume(ctx: Ctx, run: Path) -> dict:
    return run_cmd(ctx, [sys.executable, "-m", "softrl.cli", "train", "--resume", str(run), "--no-progress"])


def reached(run: Path) -> int:
    text = (run.parent / (run.name + ".progress")).read_text().split()
    return int(text[0]) if text else 0


def last_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def clean(err: str) -> bool:
    return "Traceback" not in err


def kill_step(ctx: Ctx, lo: int = 1) -> int:
    return int(ctx.rng.integers(lo, TOTAL))


def newest(run: Path) -> Path:
    from softrl import checkpoint, rundir

    return checkpoint.list_checkpoints(rundir.checkpoints_dir(run))[-1][1]


# ----- faults: each injects one fault into `run` and returns what it did and saw -------------------------


def sig_fault(sig: int) -> Callable[[Ctx, Path], dict]:
    def inject(ctx: Ctx, run: Path) -> dict:
        k = kill_step(ctx)
        f = faulted(ctx, run, {"signal_at": k, "signal": int(sig)})
        if sig == signal.SIGKILL:
            ok = f["rc"] == -signal.SIGKILL
        else:
            ok = f["rc"] == 130 and f"run saved at step {k}" in f["err"] and clean(f["err"])
        return {"param": f"before env step {k}", "proc": f, "message_ok": ok}
    return inject


def kill_in_save(ctx: Ctx, run: Path) -> dict:
    nth = int(ctx.rng.integers(1, TOTAL // EVERY + 2))  # save 1 is step 0, the last one is the final save
    stage = str(ctx.rng.choice(["array file", "before rename", "after rename"]))
    frac = float(ctx.rng.uniform())
    f = faulted(ctx, run, {"kill_in_save": nth, "stage": stage, "frac": frac})
    return {"param": f"save #{nth} (step {(nth - 1) * EVERY}), {stage}", "proc": f,
            "message_ok": f["rc"] == -signal.SIGKILL}


def double_ctrl_c(ctx: Ctx, run: Path) -> dict:
    k = kill_step(ctx)
    while k % EVERY == 0:  # at a multiple the loop has saved already; the second Ctrl-C must hit a save
        k = kill_step(ctx)
    f = faulted(ctx, run, {"signal_at": k, "signal": int(signal.SIGINT), "second_sigint": True,
                           "frac": float(ctx.rng.uniform())})
    said = last_line(f["err"])
    ok = f["rc"] == 130 and clean(f["err"]) and said.strip() != "softrl:"  # not an empty message
    return {"param": f"before env step {k}, again mid-save", "proc": f, "message_ok": ok}


def damaged(how: str) -> Callable[[Ctx, Path], dict]:
    def inject(ctx: Ctx, run: Path) -> dict:
        k = kill_step(ctx, EVERY + 1)  # two checkpoints on disk: the newest is damaged, the previous is there
        f = faulted(ctx, run, {"signal_at": k, "signal": int(signal.SIGKILL)})
        if how == "flip env digit":
            return {**flip_env_digit(ctx, newest(run) / "meta.json"), "proc": f, "param_k": k,
                    "message_ok": f["rc"] == -signal.SIGKILL, "detect": "could not be read"}
        target = newest(run) / ("meta.json" if how == "flip meta" else
                                "arrays.safetensors" if how == "flip arrays" else
                                str(ctx.rng.choice(["meta.json", "arrays.safetensors"])))
        raw = bytearray(target.read_bytes())
        if how == "truncate":
            cut = int(ctx.rng.integers(0, len(raw)))
            target.write_bytes(bytes(raw[:cut]))
            what = f"{target.name} cut to {cut}/{len(raw)} bytes"
        else:
            pos, bit = int(ctx.rng.integers(0, len(raw))), int(ctx.rng.integers(0, 8))
            raw[pos] ^= 1 << bit
            target.write_bytes(bytes(raw))
            what = f"{target.name} byte {pos}/{len(raw)} bit {bit}"
        return {"param": f"kill -9 before step {k}, {target.parent.name}: {what}", "proc": f,
                "message_ok": f["rc"] == -signal.SIGKILL, "resume_expect": None if how == "flip meta" else
                "could not be read", "detect": "could not be read"}
    return inject


def flip_env_digit(ctx: Ctx, meta: Path) -> dict:
    """One bit flip that keeps meta.json valid JSON: a digit of the env state turned into its neighbour."""
    raw = bytearray(meta.read_bytes())
    start = raw.index(b'"envs"')
    end = raw.index(b'"arrays"', start) if b'"arrays"' in raw[start:] else len(raw)
    numbers = re.finditer(rb":\s*(-?[0-9][0-9.eE+-]*)", bytes(raw[start:end]))  # values, not names like envs[0]
    digits = [start + m.start(1) + j for m in numbers for j, c in enumerate(m.group(1)) if 48 <= c <= 57]
    pos = int(ctx.rng.choice(digits))
    before = raw[pos:pos + 1].decode()
    raw[pos] ^= 1
    meta.write_bytes(bytes(raw))
    ctxt = raw[max(0, pos - 24):pos + 4].decode(errors="replace").replace("\n", " ")
    return {"param": f"{meta.parent.name}/meta.json byte {pos}: {before} -> {chr(raw[pos])} in ...{ctxt}..."}


def enospc(ctx: Ctx, run: Path) -> dict:
    nth = int(ctx.rng.integers(2, TOTAL // EVERY + 2))
    f = faulted(ctx, run, {"enospc_in_save": nth, "frac": float(ctx.rng.uniform())})
    step = (nth - 1) * EVERY
    ok = f["rc"] == 2 and clean(f["err"]) and f"could not write the checkpoint of step {step}" in last_line(f["err"])
    return {"param": f"save #{nth} (step {step})", "proc": f, "message_ok": ok}


def full_disk(ctx: Ctx, run: Path) -> dict:
    mnt = run.parent / (run.name + ".mnt")
    mnt.mkdir()
    size = int(ctx.rng.integers(16, 46)) * 4  # KiB: from "fails at the first checkpoint" to "near the end"
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}k", "tmpfs", str(mnt)], capture_output=True,
                       text=True)
    if m.returncode != 0:
        return {"skip": f"cannot mount a tmpfs ({last_line(m.stderr) or m.returncode})"}
    ctx.mounts.append(mnt)
    inner = mnt / "run"
    f = run_cmd(ctx, child_cmd(ctx, run, {}, ["train", "sac", *ARGS, "--run-dir", str(inner)]))
    subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)  # the user frees space
    if f["rc"] == 0:
        return {"skip": f"the run fit in {size} KiB: fault not triggered"}
    ok = f["rc"] == 2 and clean(f["err"]) and "No space left on device" in last_line(f["err"])
    return {"param": f"tmpfs of {size} KiB", "proc": f, "message_ok": ok, "run": inner}


def env_fault(kind: str) -> Callable[[Ctx, Path], dict]:
    def inject(ctx: Ctx, run: Path) -> dict:
        k = kill_step(ctx)
        f = faulted(ctx, run, {"env_raise_at" if kind == "raise" else "env_nan_at": k})
        line = last_line(f["err"])
        if kind == "raise":
            ok = all(p in line for p in ("Pendulum-v1", "seed 0", "raised in step", "simulator exploded",
                                         f"env step {k}", "last checkpoint (step"))
        else:
            ok = "non-finite observation or reward" in line and f"env step {k}" in line
        return {"param": f"env step {k}", "proc": f, "message_ok": f["rc"] == 2 and ok and clean(f["err"])}
    return inject


def second_process(ctx: Ctx, run: Path) -> dict:
    k = kill_step(ctx)
    go = run.parent / (run.name + ".go")
    a = subprocess.Popen(child_cmd(ctx, run, {"block_at": k, "go": str(go)}), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ctx.env, cwd=ctx.work)
    progress = run.parent / (run.name + ".progress")
    t0 = time.monotonic()
    try:
        while not (progress.exists() and "blocked" in progress.read_text()):
            if a.poll() is not None or time.monotonic() - t0 > TIMEOUT:
                raise RuntimeError(f"the first process did not reach step {k}: rc {a.poll()}")
            time.sleep(0.1)
        intruders = [run_cmd(ctx, [sys.executable, "-m", "softrl.cli", "train", "--resume", str(run), "--no-progress"]),
                     run_cmd(ctx, [sys.executable, "-m", "softrl.cli", "train", "sac", *ARGS, "--run-dir", str(run),
                                   "--overwrite"])]
    finally:
        go.touch()
        _, err = a.communicate(timeout=TIMEOUT)
    ok = all(i["rc"] == 2 and f"in use by process {a.pid}" in last_line(i["err"]) and clean(i["err"])
             for i in intruders)
    f = {"rc": a.returncode, "err": err, "s": time.monotonic() - t0}
    return {"param": f"at env step {k}: --resume, then a new run with --overwrite", "proc": f,
            "message_ok": ok and a.returncode == 0, "intruders": [last_line(i["err"]) for i in intruders],
            "no_resume": True}


def stale_lock(ctx: Ctx, run: Path) -> dict:
    k = kill_step(ctx)
    f = faulted(ctx, run, {"signal_at": k, "signal": int(signal.SIGKILL)})
    reused = bool(ctx.rng.integers(0, 2))
    sleeper = None
    if reused:  # the dead process's pid now belongs to another, live, process
        sleeper = subprocess.Popen(["sleep", "600"])
        (run / "lock").write_text(str(sleeper.pid))
    ctx.sleepers.append(sleeper)
    state = "not holding it" if reused else "no longer running"
    return {"param": f"kill -9 before step {k}; lock names a {'live unrelated' if reused else 'dead'} pid",
            "proc": f, "message_ok": f["rc"] == -signal.SIGKILL, "resume_expect": f"({state})"}


FAULTS: dict[str, tuple[str, Callable[[Ctx, Path], dict]]] = {
    "sigint": ("SIGINT (Ctrl-C) mid-run", sig_fault(signal.SIGINT)),
    "sigterm": ("SIGTERM (preemption) mid-run", sig_fault(signal.SIGTERM)),
    "kill9": ("kill -9 mid-run", sig_fault(signal.SIGKILL)),
    "kill9-save": ("kill -9 during a checkpoint write", kill_in_save),
    "double-ctrl-c": ("Ctrl-C, then Ctrl-C again during its save", double_ctrl_c),
    "flip-arrays": ("bit flip in the newest arrays.safetensors", damaged("flip arrays")),
    "flip-meta": ("bit flip in the newest meta.json", damaged("flip meta")),
    "flip-env-digit": ("bit flip in a digit of the newest meta.json's env state", damaged("flip env digit")),
    "truncate": ("truncated newest checkpoint file", damaged("truncate")),
    "enospc": ("ENOSPC during a checkpoint write (monkeypatched)", enospc),
    "full-disk": ("full disk (real: run dir on a tiny tmpfs)", full_disk),
    "env-raise": ("env raises in step", env_fault("raise")),
    "env-nan": ("env returns a NaN observation", env_fault("nan")),
    "second-process": ("second process on the live run dir", second_process),
    "stale-lock": ("stale lock (dead pid, or a reused live pid)", stale_lock),
}


# ----- what was lost ------------------------------------------------------------------------------------


def without_timing(path: Path) -> list:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    if path.suffix == ".jsonl":
        return [{k: v for k, v in json.loads(ln).items() if k != "steps_per_s"} for ln in lines]
    rows = [ln.split(",") for ln in lines]
    drop = rows[0].index("steps_per_s") if rows and "steps_per_s" in rows[0] else None
    return [[c for j, c in enumerate(r) if j != drop] for r in rows]


def compare(ref: Path, run: Path) -> list[str]:
    """What differs between the finished `run` and the reference; [] when nothing."""
    from softrl import checkpoint, rundir

    diffs = []
    try:
        ma, a, _ = checkpoint.load_latest(rundir.checkpoints_dir(ref), print)
        mb, b, _ = checkpoint.load_latest(rundir.checkpoints_dir(run), print)
    except checkpoint.CheckpointError as err:
        return [f"final checkpoint unreadable: {err}"]
    if mb["step"] != ma["step"]:
        diffs.append(f"final step {mb['step']} != {ma['step']}")
    bad = sorted(set(a) ^ set(b)) + [n for n in sorted(set(a) & set(b)) if not np.array_equal(a[n], b[n])]
    if bad:
        diffs.append(f"{len(bad)} checkpoint arrays differ (e.g. {bad[0]})")
    summ = run / "summary.json"
    if not summ.exists() or json.loads(summ.read_text())["final_eval"] != json.loads(
            (ref / "summary.json").read_text())["final_eval"]:
        diffs.append("final evaluation differs")
    for name in ("policy/arrays.safetensors", "best_policy/arrays.safetensors"):
        if not (run / name).exists() or (run / name).read_bytes() != (ref / name).read_bytes():
            diffs.append(f"{name} differs")
    for name in ("episodes.csv", "train.csv", "eval.csv", "metrics.jsonl"):
        if without_timing(run / "seed_0" / name) != without_timing(ref / "seed_0" / name):
            diffs.append(f"seed_0/{name} differs")
    return diffs


def trial(ctx: Ctx, key: str) -> dict:
    label, inject = FAULTS[key]
    run = ctx.new_dir(key)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"fault": key, **inject(ctx, run)}
    if "skip" in out:
        return out
    done = reached(run)  # the progress file sits next to the trial's folder, also when the run is elsewhere
    run = out.pop("run", run)
    fault = out.pop("proc")
    out.update(fault_rc=fault["rc"], fault_said=last_line(fault["err"]), reached=done)
    if out.pop("no_resume", False):
        out.update(resume_rc=None, start=TOTAL, redone=0)
    else:
        r = resume(ctx, run)
        expect = out.pop("resume_expect", None)
        out.update(resume_rc=r["rc"], resume_said=last_line(r["err"]), notes=[
            ln for ln in r["err"].splitlines() if ln.startswith("softrl: note")])
        if (expect is not None and expect not in r["err"]) or not clean(r["err"]):
            out["message_ok"] = False
        detect = out.pop("detect", None)
        if detect is not None:
            out["damage_detected"] = detect in r["err"]
        if r["rc"] == 0:
            timing = json.loads((run / "summary.json").read_text())["timing"]
            out["start"] = TOTAL - int(timing["env_steps_per_seed"])
            out["redone"] = out["reached"] - out["start"]
    out["diffs"] = compare(ctx.ref, run) if out.get("resume_rc") in (0, None) else ["resume failed"]
    out["bitwise"] = not out["diffs"]
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


# ----- single-bit flips of meta.json, in-process ----------------------------------------------------------


def meta_bit_flips(ref: Path, n: int, rng: np.random.Generator) -> dict:
    """Load the newest checkpoint of `ref` with `n` single-bit flips of its meta.json (drawn without replacement;
    all of them if n >= 8 x its size)."""
    from softrl import checkpoint

    src = newest(ref)
    meta0 = json.loads((src / "meta.json").read_text())
    raw = (src / "meta.json").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / src.name
        shutil.copytree(src, d)
        counts = {"refused": 0, "same content": 0, "accepted changed": 0}
        examples: list[str] = []
        by_field: dict[str, int] = {}  # accepted changes by top-level field (a changed key name counts twice)
        flips = rng.choice(len(raw) * 8, size=min(n, len(raw) * 8), replace=False)
        for pos, bit in (divmod(int(f), 8) for f in sorted(flips)):
            b = bytearray(raw)
            b[pos] ^= 1 << bit
            (d / "meta.json").write_bytes(bytes(b))
            try:
                meta, _ = checkpoint.load(d)
            except checkpoint.CheckpointError:
                counts["refused"] += 1
                continue
            if meta == meta0:
                counts["same content"] += 1
            else:
                counts["accepted changed"] += 1
                for field in sorted({*meta, *meta0}):
                    if meta.get(field) != meta0.get(field):
                        by_field[field] = by_field.get(field, 0) + 1
                if len(examples) < 8:
                    ctxt = raw[max(0, pos - 30):pos + 10].decode(errors="replace").replace("\n", " ")
                    examples.append(f"byte {pos} bit {bit}: ...{ctxt}...")
    return {"checkpoint": src.name, "bytes": len(raw), "flips": len(flips), **counts,
            "accepted_by_field": by_field, "examples": examples}


# ----- report -------------------------------------------------------------------------------------------


def table(trials: list[dict], faults: list[str]) -> str:
    rows = ["| fault | injected | recovered bitwise | env steps redone (median/max) | message as expected | lost |",
            "|---|---|---|---|---|---|"]
    for key in faults:
        ts = [t for t in trials if t["fault"] == key and "skip" not in t]
        if not ts:
            skipped = [t["skip"] for t in trials if t["fault"] == key]
            rows.append(f"| {FAULTS[key][0]} | 0 | - | - | - | not run: {skipped[0] if skipped else 'not selected'} |")
            continue
        redone = [t["redone"] for t in ts if "redone" in t]
        red = f"{statistics.median(redone):g} / {max(redone)}" if redone else "-"
        lost = sorted({d for t in ts for d in t["diffs"]})
        rows.append(f"| {FAULTS[key][0]} | {len(ts)} | {sum(t['bitwise'] for t in ts)}/{len(ts)} | {red} | "
                    f"{sum(bool(t['message_ok']) for t in ts)}/{len(ts)} | {'; '.join(lost) or 'nothing'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of: {', '.join(FAULTS)}")
    p.add_argument("--meta-flips", type=int, default=5000, help="single-bit flips of meta.json to try")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "reliability.json"))
    p.add_argument("--work", default=None, help="work folder (default: a temporary one, removed at the end)")
    a = p.parse_args(argv)
    faults = [f for f in a.faults.split(",") if f]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        p.error(f"unknown faults {unknown}; choose from {', '.join(FAULTS)}")
    work = Path(a.work or tempfile.mkdtemp(prefix="softrl-reliability-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(work, np.random.default_rng(a.seed))
    ctx.mounts, ctx.sleepers = [], []  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    trials: list[dict] = []
    try:
        ref = run_cmd(ctx, [sys.executable, "-m", "softrl.cli", "train", "sac", *ARGS, "--run-dir", str(ctx.ref)])
        if ref["rc"] != 0:
            raise SystemExit(f"the reference run failed: {ref['err'][-2000:]}")
        print(f"reference run: {ref['s']:.1f} s", flush=True)
        for rep in range(a.repeats):
            for key in faults:
                t = trial(ctx, key)
                t["repeat"] = rep
                trials.append(t)
                print(json.dumps({k: v for k, v in t.items() if k not in ("notes",)}), flush=True)
        flips = meta_bit_flips(ctx.ref, a.meta_flips, ctx.rng)
    finally:
        for mnt in ctx.mounts:  # type: ignore[attr-defined]
            subprocess.run(["umount", str(mnt)], capture_output=True)
        for s in ctx.sleepers:  # type: ignore[attr-defined]
            if s is not None:
                s.kill()
                s.wait()
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    md = table(trials, faults)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(["python", "benchmarks/reliability.py", *(sys.argv[1:] if argv is None else argv)]),
              "repeats": a.repeats, "seed": a.seed, "run_args": ARGS, "wall_s": round(time.perf_counter() - t0, 1),
              "trials": trials, "meta_bit_flips": flips, "table": md}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1, default=str))
    print(md)
    print(f"meta.json single-bit flips: {json.dumps({k: v for k, v in flips.items() if k != 'examples'})}")
    print(f"wall time {result['wall_s']} s; results in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
