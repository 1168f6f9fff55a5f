"""Lists temporalio's public names, the reference ``tests/unit/sdk/test_temporal_parity.py``
holds shoal's modules against. It owns the extraction rules; it must never be imported by
shoal's package code, and the test reads only its checked-in output (temporalio need not be
installed to run the test).

Regenerate after upgrading temporalio (``pip install temporalio`` first)::

    .venv/bin/python tests/helpers/temporalio_names.py > tests/data/temporalio_names.json

Rules: a module's names are its ``__all__`` when it defines one, else the names its own source
binds at top level (``class``, ``def``, assignments), so stdlib/typing re-exports and
submodules drop out. Names with a leading underscore, ``TypeVar`` s and ``ParamSpec`` s are
never public API.
For a few key classes the public members (methods, properties, dataclass fields) are listed
too.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.metadata
import inspect
import json
import sys
import textwrap
from types import ModuleType
from typing import Any, ParamSpec, TypeVar

MODULES = ("workflow", "activity", "client", "worker", "common", "exceptions", "testing")
CLASSES = {
    "client": ("Client", "WorkflowHandle", "WorkflowExecution", "WorkflowExecutionDescription"),
    "worker": ("Worker",),
}


def _bound_at_top_level(source: str) -> set[str]:
    """Names a module's own statements bind (not its imports), under ``if``/``try`` too."""
    names: set[str] = set()
    stack: list[ast.stmt] = list(ast.parse(source).body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.If, ast.Try)):
            stack.extend(node.body + node.orelse + getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                stack.extend(handler.body)
    return names


def module_names(module: ModuleType) -> list[str]:
    """The public names of one module, sorted.

    Args:
        module: an imported module.

    Returns:
        Its ``__all__`` (or its own top-level bindings), without private names, submodules,
        ``TypeVar`` s and ``ParamSpec`` s.
    """
    declared = getattr(module, "__all__", None)
    if declared is None:
        declared = _bound_at_top_level(inspect.getsource(module))
    public = []
    for name in declared:
        value = getattr(module, name, None)
        if name.startswith("_") or isinstance(value, (ModuleType, TypeVar, ParamSpec)):
            continue
        public.append(name)
    return sorted(set(public))


def _self_attributes(cls: type) -> set[str]:
    """Attributes a class's methods set on ``self`` (``self.id = id`` in ``__init__``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # a builtin or generated class: no source to read
        return set()
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }


def class_members(cls: type) -> list[str]:
    """The public members of a class: methods, properties, class attributes, (dataclass
    or annotated) fields and attributes set on ``self``, its own and those inherited from
    classes other than builtins. The parity test applies the same rules to shoal's classes.

    Args:
        cls: the class.

    Returns:
        The sorted member names, without leading underscores.
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__ in ("builtins", "typing", "abc"):
            continue
        names.update(vars(klass))
        names.update(getattr(klass, "__annotations__", {}))
        names.update(_self_attributes(klass))
    if dataclasses.is_dataclass(cls):
        names.update(f.name for f in dataclasses.fields(cls))
    return sorted(n for n in names if not n.startswith("_"))


def collect() -> dict[str, Any]:
    """Everything the parity test needs, as one JSON-ready value."""
    modules: dict[str, list[str]] = {}
    classes: dict[str, dict[str, list[str]]] = {}
    for short in MODULES:
        module = importlib.import_module(f"temporalio.{short}")
        modules[short] = module_names(module)
        for cls_name in CLASSES.get(short, ()):
            classes.setdefault(short, {})[cls_name] = class_members(getattr(module, cls_name))
    return {
        "temporalio_version": importlib.metadata.version("temporalio"),
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "generated_by": "tests/helpers/temporalio_names.py",
        "modules": modules,
        "classes": classes,
    }


def main() -> None:
    """Print the JSON (sorted, indented, so a regeneration is a readable diff)."""
    print(json.dumps(collect(), indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
