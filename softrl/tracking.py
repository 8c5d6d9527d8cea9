"""Optional Weights & Biases logging, beside the CSV/JSONL logs and TensorBoard of `softrl.log.RunLogger`.

One W&B run per seed, all grouped under the softrl run's name, so W&B's group view draws the mean and
spread over seeds. Each row that `RunLogger.write(seed, kind, row)` writes goes to that seed's W&B run
under the same names as its TensorBoard scalars, `{kind}/{field}` (`train/critic_loss`, `eval/mean_return`,
`episodes/return`), plotted against `env_step` (the row's `step`, env steps done by that seed).
W&B's own step counter only numbers the log calls, so rows of different kinds never need to arrive in
step order. Offline use: `WANDB_MODE=offline`, then `wandb sync DIR` later.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

STEP_METRIC = "env_step"


def _wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise ImportError("--wandb needs the wandb package: pip install 'softrl[wandb]'") from None
    return wandb


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's finite-or-not numbers, as RunLogger sends them to TensorBoard (bools and strings dropped)."""
    out = {}
    for k, v in row.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step":
            out[k] = float(v)
    return out


class WandbWriter:
    """`log(step, seed, kind, row)` / `close()`, one W&B run per seed.

    project: the W&B project. group: the softrl run's name (default: the run dir's name).
    config: recorded with every seed's run (e.g. `dataclasses.asdict(TrainConfig)`), plus `seed`.
    mode: 'online', 'offline' or 'disabled'; None leaves it to WANDB_MODE.
    wandb_dir: where W&B keeps its files (RUN_DIR/wandb/...): default WANDB_DIR if set, else `run_dir`.
    """

    def __init__(
        self,
        project: str,
        run_dir: str | Path,
        seeds: list[int],
        *,
        config: dict[str, Any] | None = None,
        group: str | None = None,
        entity: str | None = None,
        mode: str | None = None,
        wandb_dir: str | Path | None = None,
    ):
        wandb = _wandb()
        run_dir = Path(run_dir)
        wandb_dir = wandb_dir or os.environ.get("WANDB_DIR") or run_dir
        Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        group = group or run_dir.name
        self.runs = {}
        for s in seeds:
            run = wandb.init(
                project=project, entity=entity, group=group, name=f"{group}-seed{s}", job_type="train",
                config={**(config or {}), "seed": s}, dir=str(wandb_dir), mode=mode, reinit="create_new",
            )
            run.define_metric(STEP_METRIC)
            run.define_metric("*", step_metric=STEP_METRIC)
            self.runs[s] = run

    def log(self, step: int, seed: int, kind: str, row: dict[str, Any]) -> None:
        """Log `row`'s numbers as `{kind}/{field}` at env step `step` to seed `seed`'s run."""
        values = {f"{kind}/{k}": v for k, v in _scalars(row).items()}
        if values:
            self.runs[seed].log({STEP_METRIC: int(step), **values})

    def close(self) -> None:
        for run in self.runs.values():
            run.finish()
        self.runs = {}


def make_writer(project: str | None, run_dir: str | Path, seeds: list[int], **kwargs: Any) -> WandbWriter | None:
    """A WandbWriter when `project` is given (`--wandb PROJECT`), else None."""
    if not project:
        return None
    return WandbWriter(project, run_dir, seeds, **kwargs)


__all__ = ["STEP_METRIC", "WandbWriter", "make_writer"]
