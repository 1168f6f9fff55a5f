"""The replication package's modules import each other without circles, the replica is
composed of role objects (no mixins), and a role object can be swapped for a test's.

Counts every import (top level, under ``if TYPE_CHECKING:`` and inside functions): a circle
hidden behind any of them is still two modules that cannot be read apart.
"""

from __future__ import annotations

import ast
import pathlib
import random

import shoal.node.replication
from shoal import wire
from shoal.node.replication import Replica, ReplicaConfig
from shoal.node.replication.leader import Leader

PKG = "shoal.node.replication"
PKG_DIR = pathlib.Path(shoal.node.replication.__file__).parent


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


def test_no_replication_module_imports_itself_through_another() -> None:
    graph = _imports()
    assert [m for m in sorted(graph) if _reaches(graph, m, m)] == []


def test_role_modules_stand_on_role_base_not_on_each_other_or_core() -> None:
    graph = _imports()
    for role in ("candidate", "leader"):
        deps = graph[f"{PKG}.{role}"]
        assert f"{PKG}.role_base" in deps
        assert not deps & {f"{PKG}.core", f"{PKG}.candidate", f"{PKG}.leader"}, (role, deps)


def test_no_class_in_the_package_is_a_mixin() -> None:
    names = [n.name for p in PKG_DIR.glob("*.py") for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.ClassDef)]
    assert "Replica" in names and not [n for n in names if n.endswith("Mixin")]


def test_an_injected_leader_role_runs_the_term() -> None:
    started: list[Leader] = []

    class Recording(Leader):
        def start(self, now: float) -> None:
            started.append(self)
            super().start(now)

    r = Replica("a", 0, ReplicaConfig(fallback=False), random.Random(1), leader_role=Recording)
    r.bootstrap(wire.ShardConfig(voters=("a",)))
    r.on_persisted(wire.EPOCH_ZERO, 1, 0.0)
    r.campaign(0.0)
    assert len(started) == 1 and r.leading is started[0] and r.role.value == "leader"
