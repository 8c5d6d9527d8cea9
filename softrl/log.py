"""Run logs: JSONL and CSV per seed, always; TensorBoard and Weights & Biases (softrl.tracking) when asked.

Layout: RUN_DIR/seed_<s>/{metrics.jsonl, episodes.csv, train.csv, eval.csv}.
Every record carries `step` (env steps done by that seed). Files are appended and
flushed as we go, so an interrupted run keeps everything it logged; on resume, rows
past the checkpoint's step are dropped so the logs match an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

KINDS = ("episodes", "train", "eval")


def _clean(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class RunLogger:
    def __init__(self, run_dir: Path, seeds: list[int], tensorboard: bool = False, *,
                 wandb_project: str | None = None, wandb_config: dict[str, Any] | None = None):
        """`wandb_project`: also log every row to W&B (one W&B run per seed; softrl.tracking)."""
        self.run_dir = Path(run_dir)
        self.seeds = seeds
        self._fields: dict[tuple[int, str], list[str]] = {}
        self._tb = None
        for s in seeds:
            (self.run_dir / f"seed_{s}").mkdir(parents=True, exist_ok=True)
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError as err:
                raise RuntimeError("--tensorboard needs tensorboardX: pip install tensorboardX") from err
            self._tb = {s: SummaryWriter(str(self.run_dir / "tb" / f"seed_{s}")) for s in seeds}
        from softrl.tracking import make_writer

        self._wandb = make_writer(wandb_project, self.run_dir, seeds, config=wandb_config)

    def path(self, seed: int, kind: str) -> Path:
        return self.run_dir / f"seed_{seed}" / (f"{kind}.csv" if kind in KINDS else f"{kind}.jsonl")

    def write(self, seed: int, kind: str, row: dict[str, Any]) -> None:
        row = {k: _clean(v) for k, v in row.items()}
        with open(self.path(seed, "metrics"), "a") as f:
            f.write(json.dumps({"kind": kind, **row}) + "\n")
        csv_path = self.path(seed, kind)
        fields = self._fields.get((seed, kind))
        if fields is None:
            if csv_path.exists() and csv_path.stat().st_size > 0:
                with open(csv_path) as f:
                    fields = next(csv.reader(f))
            else:
                fields = list(row)
                with open(csv_path, "w", newline="") as f:
                    csv.writer(f).writerow(fields)
            self._fields[(seed, kind)] = fields
        with open(csv_path, "a", newline="") as f:
            csv.DictWriter(f, fields, extrasaction="ignore").writerow(row)
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb[seed].add_scalar(f"{kind}/{k}", v, row["step"])
        if self._wandb is not None:
            self._wandb.log(row["step"], seed, kind, row)

    def truncate_after(self, step: int, drop_eval_at_step: bool = False) -> None:
        """Drop rows logged after `step` (they belong to a run that was interrupted and is now resumed). With
        `drop_eval_at_step`, the evaluation at `step` goes too: a resumed run that is already at its last step
        evaluates once more, and its final evaluation must not appear twice."""

        def kept(kind: str, row_step: int) -> bool:
            return row_step < step or (row_step == step and not (drop_eval_at_step and kind == "eval"))

        for s in self.seeds:
            for kind in (*KINDS, "metrics"):
                p = self.path(s, kind)
                if not p.exists():
                    continue
                lines = p.read_text().splitlines(keepends=True)
                if kind == "metrics":
                    rows_json = [(ln, json.loads(ln)) for ln in lines]
                    keep = [ln for ln, r in rows_json if kept(r.get("kind", ""), int(r.get("step", 0)))]
                else:
                    header, rows = lines[:1], lines[1:]
                    idx = next(csv.reader(header)).index("step") if header else 0
                    keep = header + [ln for ln in rows if kept(kind, int(float(next(csv.reader([ln]))[idx])))]
                tmp = p.with_suffix(p.suffix + ".tmp")
                tmp.write_text("".join(keep))
                os.replace(tmp, p)

    def close(self) -> None:
        if self._tb is not None:
            for w in self._tb.values():
                w.close()
        if self._wandb is not None:
            self._wandb.close()
            self._wandb = None


def read_csv(path: Path) -> list[dict[str, float]]:
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
