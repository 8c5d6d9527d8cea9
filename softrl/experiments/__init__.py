"""Reproducible experiments for Lecture 17 ("Stochastic Actors and Maximum Entropy RL").

`softrl experiment NAME [--quick] [--seeds N] [--out DIR]` runs one experiment and writes
DIR/report.md (what was run, the budget, tables, figures, an honest reading), DIR/results.json
(every number in the report, plus the identity checks) and the PNG figures the report embeds.

Every experiment module has `NAME`, `SUMMARY` and `run(out, quick, seeds) -> Report`, and uses only
the public API (`softrl.tabular`, `softrl.backups`, `softrl.train`, `softrl.rollout`). Each does its work in
three parts that `run` calls in turn: `compute(...) -> results`, a plain dict of numbers with its identity checks under
"checks" (what results.json holds; keys starting with "_" are figure-only data, left out of it), then
`figures(results, out) -> [Figure]`, then `reading(results, report, ...)`, which writes the markdown. Tests check
the numbers of `compute()`, not the markdown. Episodes are played by `softrl.rollout.rollout`.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Literal, get_args

import tyro

from softrl.experiments import (
    alpha_vs_reward_scale,
    distribution_matching,
    exploration,
    figure1,
    one_step_vs_maxent,
    q_learning_limit,
    robustness,
    satisficing_frontier,
)

ExperimentName = Literal[
    "figure1", "alpha-vs-reward-scale", "q-learning-limit", "one-step-vs-maxent", "exploration", "robustness",
    "satisficing", "distribution-matching",
]

EXPERIMENTS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        figure1, alpha_vs_reward_scale, q_learning_limit, one_step_vs_maxent, exploration, robustness,
        satisficing_frontier, distribution_matching,
    )
}
assert tuple(EXPERIMENTS) == get_args(ExperimentName), "ExperimentName must list EXPERIMENTS in order"


@dataclasses.dataclass(frozen=True)
class ExperimentCommand:
    """Run one Lecture 17 experiment: writes OUT/report.md, OUT/results.json and the PNG figures it embeds."""

    name: Annotated[ExperimentName, tyro.conf.Positional]
    """Which experiment:
    figure1: softmax(Q/alpha), entropy per state (Eq. 20)
    alpha-vs-reward-scale: c*R, c*alpha: same pi (Sec. 3)
    q-learning-limit: soft -> hard Q as alpha->0 (Eq. 26)
    one-step-vs-maxent: WP one-step bonus vs MaxEnt at a cliff (Sec. 1.3)
    exploration: MaxEnt reaches several goals (Sec. 5.1)
    robustness: trained nominal, tested perturbed (Eq. 27)
    satisficing: frontier, alpha picked per eps (Eq. 28)
    distribution-matching: KL(pi||p*)=-J+log Z (Eq. 29-34)
    """
    quick: bool = False
    """Tiny budget for a smoke test (tabular parts are exact either way; deep parts shrink or are skipped)."""
    seeds: int | None = None
    """Seeds: random MDPs / perturbations for tabular parts, agents for deep parts (confidence intervals).
    Default: the experiment's own (30 for exploration and robustness's point mass, on device; 3 otherwise)."""
    out: str | None = None
    """Output directory (default: experiments/NAME)."""


def run_experiment(cmd: ExperimentCommand) -> int:
    """Runs `cmd.name`, writes its report and prints where. Returns 0, or 1 if an identity check failed."""
    if cmd.name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {cmd.name!r}; choose one of {', '.join(EXPERIMENTS)}")
    if cmd.seeds is not None and cmd.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {cmd.seeds}")
    out = Path(cmd.out) if cmd.out else Path("experiments") / cmd.name
    seeds = {} if cmd.seeds is None else {"seeds": cmd.seeds}  # absent: the experiment's default
    report = EXPERIMENTS[cmd.name].run(out, quick=cmd.quick, **seeds)
    path = report.write()
    n_ok = sum(c.passed for c in report.checks)
    print(f"{cmd.name}: report written to {path} ({len(report.figures)} figure(s), "
          f"{n_ok}/{len(report.checks)} checks passed)")
    for c in report.checks:
        if not c.passed:
            print(f"  FAILED {c.name}: {c.value:.3g} (tolerance {c.tol:.3g}): {c.description}", file=sys.stderr)
    return 0 if report.all_passed else 1


__all__ = ["EXPERIMENTS", "ExperimentCommand", "ExperimentName", "run_experiment"]
