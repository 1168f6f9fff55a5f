"""The SDK's modules import each other without circles, and moved names still import.

Counts every import: top level, under ``if TYPE_CHECKING:`` and inside functions, since a
circle hidden behind any of them is still two modules that cannot be read apart.
"""

from __future__ import annotations

import ast
import pathlib

import shoal.sdk

SDK_DIR = pathlib.Path(shoal.sdk.__file__).parent


def _import_graph() -> dict[str, set[str]]:
    modules = {f"shoal.sdk.{p.stem}": p for p in SDK_DIR.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                # ``from shoal.sdk import exceptions`` names a module too.
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_sdk_modules_import_each_other_without_circles() -> None:
    assert _circles(_import_graph()) == []


def test_circle_finder_reports_a_two_module_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_runtime_and_its_parts_do_not_import_the_workflow_api() -> None:
    graph = _import_graph()
    for low_module in ("_runtime", "_children", "_interactions", "_workflow_types"):
        assert "shoal.sdk.workflow" not in graph[f"shoal.sdk.{low_module}"], low_module


def test_names_moved_to_workflow_types_still_import_from_the_workflow_api() -> None:
    from shoal import workflow as root_workflow
    from shoal.sdk import _workflow_types, workflow
    from shoal.sdk._runtime import HistoryMismatch

    for name in ("Info", "ActivityHandle", "ActivityCancellationType"):
        assert getattr(workflow, name) is getattr(_workflow_types, name)
        assert getattr(root_workflow, name) is getattr(_workflow_types, name)
    assert HistoryMismatch is _workflow_types.HistoryMismatch
    assert all(hasattr(root_workflow, name) for name in workflow.__all__)
