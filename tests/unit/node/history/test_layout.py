"""The engine composes its cross-workflow events, and the transaction stands below the
workflow task. (No circles, no mixins: tests/unit/test_layering.py.)"""

from __future__ import annotations

from helpers.import_graph import GRAPH
from shoal.node.history.children import CrossWorkflowEvents
from shoal.node.history.engine import HistoryEngine

PKG = "shoal.node.history"


def test_transition_does_not_import_workflow_task() -> None:
    assert f"{PKG}.workflow_task" not in GRAPH[f"{PKG}.transition"]


def test_engine_owns_its_cross_workflow_events_and() -> None:
    engine = HistoryEngine()
    assert isinstance(engine.cross, CrossWorkflowEvents) and engine.cross.cfg is engine.cfg
