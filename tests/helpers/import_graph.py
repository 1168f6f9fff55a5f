"""The import graph of the shoal package, read from the source (an AST walk, nothing is
imported), and the checks the layering tests run on it.

Every import counts: top level, under ``if TYPE_CHECKING:`` and inside functions, since a
circle or an upward import hidden behind any of them is still in the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout is the ``shoal`` package
SKIP = {"tests", ".venv", "build", ".git"}

# What each part may import (besides itself). ``root`` is the top-level re-export modules
# laid out like temporalio's (shoal.client, shoal.workflow, ...).
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    "ring": {"wire"},
    "gossip": {"wire"},
    "store": {"wire"},
    "node": {"store", "ring", "gossip", "wire"},
    "sdk": {"wire"},
    "cli": {"sdk", "wire", "root"},
    "sim": {"node", "store", "ring", "gossip", "wire"},
    "testing": {"sdk", "node", "store", "wire", "root"},  # embeds a node, like cli/node.py
    "bench": {"node", "store", "ring", "gossip", "wire", "sdk", "root", "sim"},
    "root": {"sdk", "wire"},
}
# The CLI commands that start a node or run the simulators in-process.
EXCEPTIONS: dict[str, set[str]] = {
    "shoal.cli.node": {"node", "store"},
    "shoal.cli.sim": {"sim"},
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if SKIP & set(rel.parts):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(["shoal", *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every shoal module ``name`` imports, wherever the import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from shoal.x import y``: y is a module when one has that name.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("shoal.") and target != name:
                yield target


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def part_of(module: str) -> str:
    top = module.split(".")[1] if module.count(".") else ""
    path = MODULES[module]
    return top if path.parent != ROOT else "root"


def upward_imports(graph: dict[str, list[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        if module == "shoal":
            continue  # the package itself re-exports the SDK
        part = part_of(module)
        allowed = ALLOWED[part] | EXCEPTIONS.get(module, set()) | {part}
        bad += [f"{module} -> {t}" for t in targets if part_of(t) not in allowed and t != "shoal"]
    return bad


def circles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph.get(root, [])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def reaches(graph: dict[str, list[str]], start: str, goal: str) -> bool:
    """``start`` imports ``goal``, directly or through other modules."""
    seen, todo = set(), list(graph.get(start, []))
    while todo:
        module = todo.pop()
        if module == goal:
            return True
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, []))
    return False


def class_names() -> list[tuple[str, str]]:
    """(module, class name) of every class in the package."""
    return [(name, node.name) for name, path in MODULES.items()
            for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)]
