"""The docs site builds offline with `mkdocs build --strict` (any warning fails), and its API pages are generated
from the docstrings of the code in this checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "NO_MKDOCS_2_WARNING": "1", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    return out, log


def test_strict_build_has_no_warnings(site):
    _, log = site
    bad = [ln for ln in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", ln)]
    assert not bad, "\n".join(bad)


def test_api_reference_is_generated_from_this_checkout(site):
    out, _ = site
    page = (out / "reference" / "softrl" / "index.html").read_text()
    for name in ("softrl.train", "softrl.TrainConfig", "softrl.load_run", "softrl.evaluate"):
        assert f'id="{name}"' in page, name
    agents = (out / "reference" / "agents" / "index.html").read_text()
    modules = sorted(p.stem for p in (ROOT / "softrl" / "agents").glob("*.py") if not p.stem.startswith("_"))
    assert modules, "no agent modules found"
    for m in modules:  # the docs hook lists every agent module, so a new algorithm is documented by itself
        assert f'id="softrl.agents.{m}"' in agents, m
    optional = [m for m in ("rollout",) if (ROOT / "softrl" / f"{m}.py").is_file()]
    for module in ("softrl.backups", "softrl.dists", "softrl.nets", "softrl.replay", "softrl.tabular",
                   *(f"softrl.{m}" for m in optional)):
        pages = "".join(p.read_text() for p in (out / "reference").glob("*/index.html"))
        assert f'id="{module}"' in pages, module


def test_site_needs_no_network_and_shows_the_committed_figures(site):
    out, _ = site
    index = (out / "index.html").read_text()
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', index), "a page loads something remote"
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', index)
    assert len(images) == 8, images
    for src in images:
        assert (out / src).is_file(), src
