"""Signals, cancel requests, terminate, markers and continue-as-new in the history engine."""

from __future__ import annotations

import pytest
from helpers.history_driver import E, Run, activity, complete, token_of

from shoal import wire
from shoal.node.history.engine import HistoryEngine
from shoal.node.history.invariants import check_history

Cause = wire.WorkflowTaskFailedCause
Status = wire.WorkflowExecutionStatus


def test_signal_between_tasks_schedules_a_workflow_task(run: Run) -> None:
    run.run_wt([])
    before = len([t for t in run.transfers if t.kind.name == "WORKFLOW_TASK"])
    run.signal("go", b"1")
    assert run.types()[-2:] == ["WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]
    sig = run.last(E.WORKFLOW_EXECUTION_SIGNALED).attributes
    assert (sig.signal_name, sig.input, sig.identity) == ("go", [b"1"], "client")
    assert len([t for t in run.transfers if t.kind.name == "WORKFLOW_TASK"]) == before + 1


def test_signal_while_task_pending_rides_on_that_task(run: Run) -> None:
    run.signal("early")
    # The first task is scheduled, not started: no second task.
    assert run.types() == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_EXECUTION_SIGNALED"]
    run.poll_wt()
    assert run.types()[-2:] == ["WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_STARTED"]


def test_signal_during_started_task_is_buffered_then_new_task(run: Run) -> None:
    task = run.poll_wt()
    run.signal("mid")
    assert "WORKFLOW_EXECUTION_SIGNALED" not in run.types()  # buffered
    run.complete_wt(task, [])
    assert run.types()[-3:] == ["WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]


def test_completing_while_a_signal_waits_is_rejected(run: Run) -> None:
    task = run.poll_wt()
    run.signal("mid")
    run.complete_wt(task, [complete()])
    failed = run.last(E.WORKFLOW_TASK_FAILED).attributes
    assert failed.cause == Cause.UNHANDLED_COMMAND
    assert run.state.status == Status.RUNNING
    # The retried task sees the signal and may now complete.
    run.run_wt([complete()])
    assert run.state.status == Status.COMPLETED


def test_retried_signal_is_recorded_once(run: Run) -> None:
    run.signal("s", request_id="r-1")
    run.signal("s", request_id="r-1")
    run.signal("s", request_id="r-2")
    assert run.types().count("WORKFLOW_EXECUTION_SIGNALED") == 2


def test_signal_errors(run: Run) -> None:
    with pytest.raises(wire.ShoalError) as exc:
        run.signal("")
    assert exc.value.code == wire.Code.INVALID_ARGUMENT
    with pytest.raises(wire.ShoalError) as exc:
        run.signal("big", b"x" * (wire.PAYLOAD_BYTES_MAX + 1))
    assert exc.value.code == wire.Code.PAYLOAD_TOO_LARGE
    run.run_wt([complete()])
    with pytest.raises(wire.ShoalError) as exc:
        run.signal("late")
    assert exc.value.code == wire.Code.WORKFLOW_NOT_RUNNING


def test_cancel_request_then_workflow_cancels(run: Run) -> None:
    run.run_wt([])
    run.request_cancel()
    run.request_cancel()  # a repeat is a no-op, not an error
    assert run.types().count("WORKFLOW_EXECUTION_CANCEL_REQUESTED") == 1
    run.run_wt([wire.CancelWorkflowExecutionCommand(details=[b"bye"])])
    assert run.state.status == Status.CANCELED
    assert run.state.failure is not None and run.state.failure.kind == wire.FailureKind.CANCELED
    assert run.history[-1].event_type == E.WORKFLOW_EXECUTION_CANCELED


def test_cancel_command_without_request_fails_the_task(run: Run) -> None:
    run.run_wt([wire.CancelWorkflowExecutionCommand()])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.BAD_CANCEL_WORKFLOW_EXECUTION_ATTRIBUTES
    assert run.state.status == Status.RUNNING


def test_terminate_closes_at_once(run: Run) -> None:
    run.poll_wt()
    run.apply(run.engine.terminate(run.state, reason="stop", identity="op", now=run.now))
    assert run.state.status == Status.TERMINATED
    with pytest.raises(wire.ShoalError) as exc:
        run.engine.terminate(run.state, reason="again", identity="op", now=run.now)
    assert exc.value.code == wire.Code.WORKFLOW_NOT_RUNNING


def test_marker_is_recorded(run: Run) -> None:
    run.run_wt([wire.RecordMarkerCommand(marker_name="core_patch", details={"patch_id": [b"p1"]})])
    marker = run.last(E.MARKER_RECORDED).attributes
    assert marker.marker_name == "core_patch" and marker.details == {"patch_id": [b"p1"]}


def test_bad_marker_fails_the_task(run: Run) -> None:
    run.run_wt([wire.RecordMarkerCommand(marker_name="")])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.BAD_RECORD_MARKER_ATTRIBUTES


def test_continue_as_new_builds_the_next_run(run: Run) -> None:
    tr = run.run_wt([wire.ContinueAsNewWorkflowExecutionCommand(input=[b"n=2"])])
    assert run.state.status == Status.CONTINUED_AS_NEW
    assert run.state.new_execution_run_id == "run-2"
    closing = run.history[-1].attributes
    assert isinstance(closing, wire.WorkflowExecutionContinuedAsNewAttributes)
    assert closing.new_execution_run_id == "run-2" and closing.input == [b"n=2"]
    assert tr.new_run is not None
    new_state, new_tr = tr.new_run
    assert new_state.run_id == "run-2" and new_state.workflow_id == run.state.workflow_id
    assert new_state.first_execution_run_id == "run-1"
    started = new_tr.events[0].attributes
    assert started.continued_execution_run_id == "run-1" and started.input == [b"n=2"]
    assert started.workflow_type == "Greeting" and started.task_queue == "q"
    assert check_history(new_tr.events) == []
    assert [e.event_type for e in new_tr.events] == [E.WORKFLOW_EXECUTION_STARTED, E.WORKFLOW_TASK_SCHEDULED]


def test_continue_as_new_keeps_the_execution_deadline() -> None:
    run = Run(HistoryEngine(), workflow_execution_timeout_s=100.0)
    tr = run.run_wt([wire.ContinueAsNewWorkflowExecutionCommand()], at=140.0)
    new_state, _ = tr.new_run
    assert new_state.execution_expiration_time == pytest.approx(200.0)
    assert new_state.run_expiration_time == pytest.approx(200.0)


def test_continue_as_new_must_be_last(run: Run) -> None:
    run.run_wt([wire.ContinueAsNewWorkflowExecutionCommand(), wire.StartTimerCommand(timer_id="t", start_to_fire_timeout_s=1)])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.BAD_CONTINUE_AS_NEW_ATTRIBUTES
    assert run.state.status == Status.RUNNING


def test_bad_continue_as_new_fails_the_task(run: Run) -> None:
    run.run_wt([wire.ContinueAsNewWorkflowExecutionCommand(input=[b"x" * (wire.PAYLOAD_BYTES_MAX + 1)])])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.BAD_CONTINUE_AS_NEW_ATTRIBUTES


# --- activity cancellation ----------------------------------------------------------------


def _cancel_activity(run: Run, activity_id: str = "a1") -> None:
    run.run_wt([wire.RequestCancelActivityTaskCommand(scheduled_event_id=run.scheduled_id(activity_id))])


def test_cancelling_an_unstarted_activity_cancels_it_at_once(run: Run) -> None:
    run.run_wt([activity()])
    run.signal("wake")  # a new task in which the workflow cancels
    _cancel_activity(run)
    assert run.types()[-3:] == ["ACTIVITY_TASK_CANCEL_REQUESTED", "ACTIVITY_TASK_CANCELED", "WORKFLOW_TASK_SCHEDULED"]
    canceled = run.last(E.ACTIVITY_TASK_CANCELED).attributes
    assert canceled.started_event_id == 0
    assert canceled.latest_cancel_requested_event_id == run.last(E.ACTIVITY_TASK_CANCEL_REQUESTED).event_id
    assert run.state.activities == {}


def test_a_started_activity_learns_of_the_cancel_from_its_heartbeat(run: Run) -> None:
    run.run_wt([activity(heartbeat_timeout_s=5.0)])
    task = run.poll_activity()
    beat = run.apply(run.engine.record_activity_heartbeat(run.state, token=token_of(task), details=[b"p"], now=run.now))
    assert beat.response.cancel_requested is False and beat.events == []
    run.signal("wake")
    _cancel_activity(run)
    assert run.types()[-1] == "ACTIVITY_TASK_CANCEL_REQUESTED"
    beat = run.apply(run.engine.record_activity_heartbeat(run.state, token=token_of(task), details=None, now=run.now))
    assert beat.response.cancel_requested is True
    run.apply(run.engine.cancel_activity_task(run.state, token=token_of(task), details=[b"bye"], identity="w", now=run.now))
    assert run.types()[-3:] == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_CANCELED", "WORKFLOW_TASK_SCHEDULED"]
    assert run.last(E.ACTIVITY_TASK_CANCELED).attributes.details == [b"bye"]


def test_a_cancelling_activity_that_fails_is_not_retried(run: Run) -> None:
    run.run_wt([activity(retry_policy=wire.RetryPolicy(maximum_attempts=5))])
    task = run.poll_activity()
    run.signal("wake")
    _cancel_activity(run)
    run.fail_activity(task)
    failed = run.last(E.ACTIVITY_TASK_FAILED).attributes
    assert failed.retry_state == wire.RetryState.CANCEL_REQUESTED


def test_cancel_reports_need_a_request_and_a_pending_activity(run: Run) -> None:
    run.run_wt([activity()])
    task = run.poll_activity()
    with pytest.raises(wire.ShoalError) as exc:
        run.engine.cancel_activity_task(run.state, token=token_of(task), details=[], identity="w", now=run.now)
    assert exc.value.code == wire.Code.INVALID_ARGUMENT
    run.signal("wake")
    run.run_wt([wire.RequestCancelActivityTaskCommand(scheduled_event_id=999)])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES


def test_upsert_memo_records_an_event_and_changes_the_memo(run: Run) -> None:
    run.run_wt([wire.ModifyWorkflowPropertiesCommand(upserted_memo={"a": b"1", "b": b"2"})])
    assert run.state.memo == {"a": b"1", "b": b"2"}
    run.signal("go")
    run.run_wt([wire.ModifyWorkflowPropertiesCommand(upserted_memo={"a": b"", "c": b"3"})])
    assert run.state.memo == {"b": b"2", "c": b"3"}  # an empty payload removes a field
    attrs = run.last(E.WORKFLOW_PROPERTIES_MODIFIED).attributes
    assert attrs.upserted_memo == {"a": b"", "c": b"3"}
    assert check_history(run.history) == []


@pytest.mark.parametrize("memo", [{}, {"": b"1"}, {f"k{i}": b"v" for i in range(101)}])
def test_a_bad_upsert_memo_fails_the_task_and_changes_nothing(run: Run, memo) -> None:
    run.run_wt([wire.ModifyWorkflowPropertiesCommand(upserted_memo=memo)])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.BAD_MODIFY_WORKFLOW_PROPERTIES_ATTRIBUTES
    assert run.state.memo == {}
