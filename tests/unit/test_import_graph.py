"""ablauf's modules import one another in one direction only.

Every import counts: at module level, inside functions, and under
``TYPE_CHECKING`` — a type-only import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in (SRC / "ablauf").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules:
                        graph[name].add(target)
                    elif base in modules:
                        graph[name].add(base)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_a_cycle_is_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for other in graph[todo.pop()]:
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # The deterministic core: no store, no engine, no worker.
        ("ablauf.replay", ("ablauf.engine", "ablauf.store", "ablauf.worker", "ablauf.client")),
        ("ablauf.history", ("ablauf.engine", "ablauf.replay", "ablauf.worker", "ablauf.client")),
        # The store knows SQL, not the engine.
        ("ablauf.store", ("ablauf.engine", "ablauf.replay", "ablauf.worker", "ablauf.client")),
        ("ablauf.engine", ("ablauf.worker", "ablauf.client", "ablauf.replay")),
    ],
)
def test_layers_depend_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    graph = _graph()
    for module in (m for m in graph if m == layer or m.startswith(layer + ".")):
        bad = {
            m
            for m in _reaches(graph, module)
            if any(m.startswith(f + ".") or m == f for f in forbidden)
        }
        assert not bad, f"{module} depends on {sorted(bad)}"


def test_handlers_see_the_engine_only_through_its_context() -> None:
    graph = _graph()
    importers = sorted(m for m, targets in graph.items() if "ablauf.engine.engine" in targets)
    # The composition root is used by what builds an engine, never by a handler.
    assert importers == [
        "ablauf.client",
        "ablauf.engine.frontend",
        "ablauf.engine.worker_api",
    ]


def test_the_worker_uses_the_engine_through_its_worker_api_only() -> None:
    graph = _graph()
    used = {
        target
        for module, targets in graph.items()
        if module.startswith("ablauf.worker.")
        for target in targets
        if target.startswith("ablauf.engine")
    }
    # Besides the API: the engine's error types, a task's reference, the
    # transition a fast-path task runs in (as a type), and whether it is compiled.
    assert used == {
        "ablauf.engine",
        "ablauf.engine.worker_api",
        "ablauf.engine.errors",
        "ablauf.engine.matching",
        "ablauf.engine.context",
    }
