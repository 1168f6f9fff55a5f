"""The house rules on imports, checked on the source (an AST walk, nothing imported).

Imports point down: ``cli`` -> ``sdk`` -> ``wire``; ``node`` -> ``store``, ``ring``,
``gossip`` -> ``wire``; ``wire`` imports nothing else of shoal. ``sdk`` never imports
``node``; ``node`` never imports ``sdk`` or ``cli``. Only ``cli/node.py`` (it starts a node)
and ``cli/sim.py`` (it runs the simulators) reach below the SDK. And no module imports
itself back through others (no circles), counting imports made only for type checking
(``if TYPE_CHECKING:``) and inside functions: a circle there is a circle in the design.
See ARCHITECTURE.md.
"""

from __future__ import annotations

from helpers.import_graph import GRAPH, circles, class_names, upward_imports


def test_the_walk_sees_the_whole_package() -> None:
    assert {"shoal.wire", "shoal.node.node", "shoal.sdk.client", "shoal.cli.main"} <= set(GRAPH)
    assert "shoal.wire" in GRAPH["shoal.node.node"]
    assert "shoal.node.shard.shard" in GRAPH["shoal.node.node"]


def test_imports_point_down() -> None:
    assert upward_imports(GRAPH) == []


def test_there_is_no_import_circle() -> None:
    assert circles(GRAPH) == []


def test_the_checks_catch_what_they_look_for() -> None:
    # The rules above would be worthless if these could not fail: an upward import and a
    # circle injected into a copy of the real graph are both reported.
    graph = {m: list(t) for m, t in GRAPH.items()}
    graph["shoal.wire.errors"] = [*graph["shoal.wire.errors"], "shoal.node.node"]
    graph["shoal.sdk.client"] = [*graph["shoal.sdk.client"], "shoal.node.node"]
    assert {"shoal.wire.errors -> shoal.node.node", "shoal.sdk.client -> shoal.node.node"} <= set(
        upward_imports(graph))
    found = circles(graph)
    assert any({"shoal.wire.errors", "shoal.node.node"} <= set(c) for c in found)


def test_no_class_is_a_mixin() -> None:
    # Roles and handler groups are composed objects (ARCHITECTURE.md), never mixins.
    names = class_names()
    assert ("shoal.node.replication.core", "Replica") in names
    assert [f"{m}.{c}" for m, c in names if c.endswith("Mixin")] == []
