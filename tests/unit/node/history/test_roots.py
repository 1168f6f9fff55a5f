"""Root executions (Temporal's root_workflow_execution): who is the top of a parent chain."""

from __future__ import annotations

from helpers.history_driver import Run, complete

from shoal import wire
from shoal.node.history import records
from shoal.node.history.engine import HistoryEngine
from shoal.node.history.start import ParentRef


def _x(wf: str, run: str) -> wire.WorkflowExecution:
    return wire.WorkflowExecution(workflow_id=wf, run_id=run)


def _start(engine: HistoryEngine, wf: str, run_id: str, parent: ParentRef | None = None):
    req = wire.StartWorkflowRequest(workflow_id=wf, workflow_type="T", task_queue="q",
                                    request_id=f"req-{run_id}")
    return engine.start_workflow(req, namespace="default", run_id=run_id, current=None, now=1.0,
                                 parent=parent)


def _child_of(engine: HistoryEngine, parent: records.ExecutionState, wf: str, run_id: str):
    # What the child's shard gets from cross_workflow: the parent, and the parent's root.
    ref = ParentRef(parent.namespace, _x(parent.workflow_id, parent.run_id), 5,
                    records.root_of(parent))
    return _start(engine, wf, run_id, ref)


def test_a_run_without_a_parent_is_its_own_root() -> None:
    res = _start(HistoryEngine(), "top", "top-run")
    assert res.state.root == _x("top", "top-run")
    started = res.transition.events[0].attributes
    assert (started.root_workflow_id, started.root_run_id) == ("top", "top-run")


def test_root_ids_propagate_parent_to_child_to_grandchild() -> None:
    engine = HistoryEngine()
    top = _start(engine, "top", "top-run").state
    child = _child_of(engine, top, "child", "child-run")
    grandchild = _child_of(engine, child.state, "grand", "grand-run")
    assert child.state.parent == _x("top", "top-run")
    assert child.state.root == _x("top", "top-run")
    assert grandchild.state.parent == _x("child", "child-run")
    assert grandchild.state.root == _x("top", "top-run")
    started = grandchild.transition.events[0].attributes
    assert (started.parent_workflow_id, started.root_workflow_id) == ("child", "top")
    assert started.root_run_id == "top-run"


def test_a_continued_child_keeps_its_chains_root() -> None:
    engine = HistoryEngine()
    top = _start(engine, "top", "top-run").state
    res = _child_of(engine, top, "child", "child-1")
    child = Run.adopt(engine, res.state, res.transition, now=1.0)
    new_state, _ = child.run_wt([wire.ContinueAsNewWorkflowExecutionCommand()]).new_run
    assert new_state.root == _x("top", "top-run")


def test_a_continued_run_without_a_parent_is_its_own_root() -> None:
    engine = HistoryEngine()
    run = Run(engine, workflow_id="solo", run_id="solo-1")
    new_state, _ = run.run_wt([wire.ContinueAsNewWorkflowExecutionCommand()]).new_run
    assert new_state.root == _x("solo", new_state.run_id)
    assert new_state.run_id != "solo-1"


def test_an_unrecorded_root_is_the_run_itself_only_when_it_has_no_parent() -> None:
    engine = HistoryEngine()
    top = _start(engine, "top", "top-run").state
    top.root = None  # a state written before roots were kept
    assert records.root_of(top) == _x("top", "top-run")
    # A child whose parent's peer sent no root: its root is unknown, not guessed.
    child = _start(engine, "child", "child-run",
                   ParentRef("default", _x("top", "top-run"), 5, None)).state
    assert child.root is None and records.root_of(child) is None


def test_a_closed_run_keeps_its_root() -> None:
    engine = HistoryEngine()
    top = _start(engine, "top", "top-run").state
    res = _child_of(engine, top, "child", "child-run")
    child = Run.adopt(engine, res.state, res.transition, now=1.0)
    child.run_wt([complete()])
    assert child.state.status == wire.WorkflowExecutionStatus.COMPLETED
    assert records.root_of(child.state) == _x("top", "top-run")
