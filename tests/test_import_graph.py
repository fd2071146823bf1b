"""The import graph (every import, lazy ones inside functions included): no circle between the
modules issue 23 untangled, task sources import no agent, and the package holds no quickstart
builder (those live in scripts/)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "memgym"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the memgym modules it imports anywhere in its body."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[_module(path)] = {m for m in found if m.startswith("memgym")}
    return graph


def test_no_circle_between_the_untangled_pairs():
    graph = _imports()
    for a, b in (("memgym.eval.runner", "memgym.eval.shards"),
                 ("memgym.quickstart.memory_r1", "memgym.quickstart.run")):
        assert not (b in graph[a] and a in graph[b]), f"{a} and {b} import each other"


def test_task_sources_import_no_agent():
    graph = _imports()
    for module, imported in graph.items():
        if module.startswith("memgym.data"):
            assert not any(m.startswith("memgym.agents") for m in imported), (module, imported)


def test_the_package_holds_no_quickstart_builder():
    assert not (PACKAGE / "quickstart" / "build_model.py").exists()
    for path in (PACKAGE / "quickstart").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "def build_manager" not in text and "def save_manager" not in text, path
