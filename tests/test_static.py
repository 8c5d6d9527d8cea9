"""Static checks as tests: `ruff check .` and `pyright softrl` must both be clean.

Both tools come with the `dev` extra (pyright through `pyright[nodejs]`, which ships its own node), so a
missing tool is a broken install and fails here rather than being skipped. The pyright settings (mode,
Python version, what it covers) live in pyproject.toml's `[tool.pyright]`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: this checkout's softrl, whatever the caller's environment points at.
    # PYRIGHT_PYTHON_IGNORE_WARNINGS: no "new version available" look-up over the network.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _report(tool: str, out: subprocess.CompletedProcess[str]) -> str:
    return f"`{tool}` exited {out.returncode}:\n{out.stdout[-20_000:]}\n{out.stderr[-5_000:]}"


def test_ruff_clean():
    out = _run(["ruff", "check", "."], timeout=120)
    if out.returncode != 0:
        pytest.fail(_report("ruff check .", out), pytrace=False)


def test_pyright_clean():
    # --pythonpath: resolve imports in this interpreter's environment, not whichever `python` is on PATH.
    out = _run(["pyright", "--pythonpath", sys.executable, "softrl"], timeout=600)
    if out.returncode != 0:
        pytest.fail(_report("pyright softrl", out), pytrace=False)
