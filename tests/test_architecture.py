"""The engine's layers: no import cycle inside core/ (imports inside functions count), and the lowest layers
import nothing of ours."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

CORE = REPO / "core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every module of ours that ``path`` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        # a module importing its own package's names (``from . import x``) does not depend on the package
        found.update(t for t in targets if t in modules and t != name and not name.startswith(t + "."))
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in CORE.rglob("*.py")}
    return {name: _imports(path, name, set(files)) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other (Tarjan's strongly connected components of size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_core_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40
    assert cycles(graph) == []


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_lowest_layers_import_nothing_of_ours():
    graph = import_graph()
    for leaf in ("core.stack", "core.tasks", "core.home", "core.distributed"):
        assert graph[leaf] == set(), (leaf, graph[leaf])
    # the engine's recipes are reached through the recipe table; inference and export never reach into the engine
    for outside in ("core.inference.chat", "core.inference.classify", "core.export"):
        assert not any(m.startswith("core.engine") for m in graph[outside]), (outside, graph[outside])
