"""mkdocs hook: API pages that follow the code, so that a new module is documented without editing the docs.

- `<!-- softrl:agent-modules -->` becomes one mkdocstrings `:::` block per `softrl/agents/*.py`
  (base and the shared update first, then the algorithms in file-name order);
- `<!-- softrl:module softrl.NAME -->` becomes `::: softrl.NAME` if that module exists in this checkout, and
  nothing otherwise (for modules that are being added on other branches).
"""

from __future__ import annotations

import re
from pathlib import Path

AGENTS = "<!-- softrl:agent-modules -->"
OPTIONAL = re.compile(r"<!-- softrl:module ([\w.]+) -->")
_FIRST = ("base", "actor_critic", "ddpg")


def agent_modules(root: Path) -> list[str]:
    names = sorted(p.stem for p in (root / "softrl" / "agents").glob("*.py") if not p.stem.startswith("_"))
    ordered = [n for n in _FIRST if n in names] + [n for n in names if n not in _FIRST]
    return [f"softrl.agents.{n}" for n in ordered]


def module_exists(root: Path, module: str) -> bool:
    path = root.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def on_page_markdown(markdown: str, page, config, files) -> str:
    root = Path(config["config_file_path"]).parent
    if AGENTS in markdown:
        markdown = markdown.replace(AGENTS, "\n\n".join(f"::: {m}" for m in agent_modules(root)))
    return OPTIONAL.sub(lambda m: f"::: {m[1]}" if module_exists(root, m[1]) else "", markdown)
