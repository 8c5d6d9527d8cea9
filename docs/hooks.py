"""mkdocs hook: the agents reference lists every module in softrl/agents/, so a new algorithm appears by itself.

A page line `<!-- softrl:agent-modules -->` becomes one mkdocstrings `:::` block per `softrl/agents/*.py`
(base and the shared update first, then the algorithms in file-name order).
"""

from __future__ import annotations

from pathlib import Path

MARKER = "<!-- softrl:agent-modules -->"
_FIRST = ("base", "actor_critic", "ddpg")


def agent_modules(root: Path) -> list[str]:
    names = sorted(p.stem for p in (root / "softrl" / "agents").glob("*.py") if not p.stem.startswith("_"))
    ordered = [n for n in _FIRST if n in names] + [n for n in names if n not in _FIRST]
    return [f"softrl.agents.{n}" for n in ordered]


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    root = Path(config["config_file_path"]).parent
    blocks = "\n\n".join(f"::: {m}" for m in agent_modules(root))
    return markdown.replace(MARKER, blocks)
