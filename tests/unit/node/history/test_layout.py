"""The history package's modules import each other without circles, and the engine is
composed (no mixins). Counts every import, ``if TYPE_CHECKING:`` ones included."""

from __future__ import annotations

import ast
import pathlib

import shoal.node.history
from shoal.node.history.children import CrossWorkflowEvents
from shoal.node.history.engine import HistoryEngine

PKG = "shoal.node.history"
PKG_DIR = pathlib.Path(shoal.node.history.__file__).parent


def _imports() -> dict[str, set[str]]:
    modules = {f"{PKG}.{p.stem}": p for p in PKG_DIR.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            if nxt == goal:
                return True
            seen.add(nxt)
            todo.append(nxt)
    return False


def test_no_history_module_imports_itself_through_another() -> None:
    graph = _imports()
    assert [m for m in sorted(graph) if _reaches(graph, m, m)] == []


def test_transition_does_not_import_workflow_task() -> None:
    assert f"{PKG}.workflow_task" not in _imports()[f"{PKG}.transition"]


def test_engine_owns_its_cross_workflow_events_and_is_no_mixin() -> None:
    engine = HistoryEngine()
    assert isinstance(engine.cross, CrossWorkflowEvents) and engine.cross.cfg is engine.cfg
    names = [n.name for p in PKG_DIR.glob("*.py") for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.ClassDef)]
    assert not [n for n in names if n.endswith("Mixin")]
