"""Child workflows and external requests in the history engine (the parent's side)."""

from __future__ import annotations

import pytest
from helpers.history_driver import E, Run, complete

from shoal import wire
from shoal.node.history.engine import HistoryEngine
from shoal.node.history.start import ParentRef
from shoal.node.history.records import TransferKind

Cause = wire.WorkflowTaskFailedCause
Status = wire.WorkflowExecutionStatus


def _child_cmd(**kw) -> wire.StartChildWorkflowExecutionCommand:
    args = dict(workflow_id="child-1", workflow_type="Child", input=[b"i"])
    args.update(kw)
    return wire.StartChildWorkflowExecutionCommand(**args)


def _transfers(run: Run, kind: TransferKind):
    return [t for t in run.transfers if t.kind == kind]


def _initiate(run: Run, **kw) -> int:
    run.run_wt([_child_cmd(**kw)])
    return run.last(E.START_CHILD_WORKFLOW_EXECUTION_INITIATED).event_id


def _closed_child(engine: HistoryEngine, status: str = "complete"):
    child = Run(engine, workflow_id="child-1", run_id="child-run")
    if status == "complete":
        child.run_wt([complete(b"child says hi")])
    else:
        child.run_wt([wire.FailWorkflowExecutionCommand(failure=wire.Failure(message="nope"))])
    return child.state


def test_initiating_a_child_records_it_and_queues_its_start(run: Run) -> None:
    eid = _initiate(run, task_queue="")
    attrs = run.last(E.START_CHILD_WORKFLOW_EXECUTION_INITIATED).attributes
    assert attrs.task_queue == "q"  # defaults to the parent's queue
    assert run.state.children[eid].workflow_id == "child-1"
    (t,) = _transfers(run, TransferKind.START_CHILD)
    assert t.scheduled_event_id == eid


def test_a_bad_child_command_fails_the_task(run: Run) -> None:
    run.run_wt([_child_cmd(workflow_id="wf-1")])  # the parent's own id
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.BAD_START_CHILD_EXECUTION_ATTRIBUTES
    run.signal("again")
    run.run_wt([_child_cmd(workflow_type="")])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.BAD_START_CHILD_EXECUTION_ATTRIBUTES


def test_child_started_then_completed_reaches_the_parent_once(run: Run) -> None:
    engine = run.engine
    eid = _initiate(run)
    run.apply(engine.record_child_started(run.state, initiated_event_id=eid, child_run_id="child-run", now=run.now))
    run.apply(engine.record_child_started(run.state, initiated_event_id=eid, child_run_id="child-run", now=run.now))
    assert run.types().count("CHILD_WORKFLOW_EXECUTION_STARTED") == 1
    started_id = run.last(E.CHILD_WORKFLOW_EXECUTION_STARTED).event_id
    closed = _closed_child(engine)
    run.apply(engine.record_child_closed(run.state, initiated_event_id=eid, closed=closed, now=run.now))
    run.apply(engine.record_child_closed(run.state, initiated_event_id=eid, closed=closed, now=run.now))
    done = [e for e in run.history if e.event_type == E.CHILD_WORKFLOW_EXECUTION_COMPLETED]
    assert len(done) == 1
    assert done[0].attributes.result == [b"child says hi"] and done[0].attributes.started_event_id == started_id
    assert run.state.children == {}


def test_child_close_before_its_start_is_recorded_is_retried(run: Run) -> None:
    eid = _initiate(run)
    with pytest.raises(wire.ShoalError) as exc:
        run.engine.record_child_closed(run.state, initiated_event_id=eid, closed=_closed_child(run.engine), now=run.now)
    assert exc.value.code == wire.Code.UNAVAILABLE


def test_child_events_while_a_task_runs_are_buffered_with_the_right_ids(run: Run) -> None:
    engine = run.engine
    eid = _initiate(run)
    run.signal("wake")
    task = run.poll_wt()
    run.apply(engine.record_child_started(run.state, initiated_event_id=eid, child_run_id="child-run", now=run.now))
    run.apply(engine.record_child_closed(run.state, initiated_event_id=eid, closed=_closed_child(engine, "fail"), now=run.now))
    run.complete_wt(task, [])
    started = run.last(E.CHILD_WORKFLOW_EXECUTION_STARTED)
    failed = run.last(E.CHILD_WORKFLOW_EXECUTION_FAILED).attributes
    assert failed.started_event_id == started.event_id and failed.failure.message == "nope"


def test_start_failure_is_recorded(run: Run) -> None:
    eid = _initiate(run)
    run.apply(run.engine.record_child_start_failed(run.state, initiated_event_id=eid, cause="WORKFLOW_ALREADY_EXISTS", now=run.now))
    attrs = run.last(E.START_CHILD_WORKFLOW_EXECUTION_FAILED).attributes
    assert attrs.cause == "WORKFLOW_ALREADY_EXISTS" and attrs.initiated_event_id == eid


def test_parent_close_queues_its_policy_for_started_children_only() -> None:
    engine = HistoryEngine()
    run = Run(engine)
    run.run_wt([_child_cmd(workflow_id="c-term"), _child_cmd(workflow_id="c-abandon",
               parent_close_policy=wire.ParentClosePolicy.ABANDON), _child_cmd(workflow_id="c-unstarted")])
    ids = {c.workflow_id: c.initiated_event_id for c in run.state.children.values()}
    for wf in ("c-term", "c-abandon"):
        run.apply(engine.record_child_started(run.state, initiated_event_id=ids[wf], child_run_id=f"{wf}-run", now=run.now))
    run.run_wt([complete()])
    policies = _transfers(run, TransferKind.PARENT_CLOSE_POLICY)
    assert [t.scheduled_event_id for t in policies] == [ids["c-term"]]


def test_a_child_tells_its_parent_when_its_chain_ends_not_when_it_continues() -> None:
    engine = HistoryEngine()
    parent = ParentRef("default", wire.WorkflowExecution(workflow_id="p", run_id="p-run"), 5)
    res = engine.start_workflow(wire.StartWorkflowRequest(workflow_id="c", workflow_type="C", task_queue="q",
                                                          request_id="r"), namespace="default", run_id="c-1",
                                current=None, now=1.0, parent=parent)
    assert res.transition.events[0].attributes.parent_workflow_id == "p"
    child = Run.adopt(engine, res.state, res.transition, now=1.0)
    tr = child.run_wt([wire.ContinueAsNewWorkflowExecutionCommand()])
    assert _transfers(child, TransferKind.CHILD_CLOSED) == []
    new_state, first = tr.new_run
    assert new_state.parent == parent.execution and new_state.parent_initiated_event_id == 5
    # The continued run's own close tells the parent.
    child2 = Run.adopt(engine, new_state, first, now=1.0)
    child2.run_wt([complete()])
    assert len(_transfers(child2, TransferKind.CHILD_CLOSED)) == 1


def test_external_signal_and_cancel_are_initiated_then_settled(run: Run) -> None:
    run.run_wt([wire.SignalExternalWorkflowExecutionCommand(workflow_id="other", signal_name="s", input=[b"x"]),
                wire.RequestCancelExternalWorkflowExecutionCommand(workflow_id="other")])
    sig = run.last(E.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED).event_id
    can = run.last(E.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED).event_id
    assert {t.kind for t in run.transfers} >= {TransferKind.SIGNAL_EXTERNAL, TransferKind.CANCEL_EXTERNAL}
    run.apply(run.engine.record_external_result(run.state, initiated_event_id=sig, failed_cause=None, now=run.now))
    run.apply(run.engine.record_external_result(run.state, initiated_event_id=can, failed_cause="EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND", now=run.now))
    run.apply(run.engine.record_external_result(run.state, initiated_event_id=can, failed_cause=None, now=run.now))
    assert run.types().count("EXTERNAL_WORKFLOW_EXECUTION_SIGNALED") == 1
    assert run.types().count("REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED") == 1
    assert run.types().count("EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED") == 0
