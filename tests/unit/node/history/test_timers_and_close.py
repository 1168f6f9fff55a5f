"""User timers, workflow timeouts, terminate, and the close rules."""

import pytest
from helpers.history_driver import Run, activity, app_failure, complete

from shoal import wire
from shoal.node.history.records import TimerKind

E = wire.EventType
Cause = wire.WorkflowTaskFailedCause


def _timer(tid: str = "t1", seconds: float = 5.0) -> wire.StartTimerCommand:
    return wire.StartTimerCommand(timer_id=tid, start_to_fire_timeout_s=seconds)


def test_timer_fires_into_history_and_schedules_a_task(run: Run) -> None:
    run.run_wt([_timer("t1", 5.0)], at=100.0)
    started = run.last(E.TIMER_STARTED)
    assert started.attributes.workflow_task_completed_event_id == 4
    task = run.timer(TimerKind.USER_TIMER)
    assert (task.fire_time, task.timer_id, task.event_id) == (105.0, "t1", started.event_id)
    run.fire(task)
    assert run.types(6) == ["TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED"]
    assert run.last(E.TIMER_FIRED).attributes.started_event_id == 5
    assert run.state.timers == {}


def test_cancelled_timer_never_fires(run: Run) -> None:
    run.run_wt([_timer("t1"), activity("a1")])
    run.complete_activity(run.poll_activity())  # gives the workflow a task to cancel in
    run.run_wt([wire.CancelTimerCommand(timer_id="t1")])
    canceled = run.last(E.TIMER_CANCELED).attributes
    assert canceled.started_event_id == 5 and canceled.identity == "worker-1"
    assert run.state.timers == {}
    tr = run.fire(run.timer(TimerKind.USER_TIMER))
    assert tr.events == [] and E.TIMER_FIRED.name not in run.types()


def test_cancel_of_a_timer_that_fired_unseen_removes_the_fired_event(run: Run) -> None:
    run.run_wt([_timer("t1"), activity("a1")])
    run.complete_activity(run.poll_activity())
    task = run.poll_wt()
    run.fire(run.timer(TimerKind.USER_TIMER))  # buffered: a task is started
    assert len(run.state.buffered_events) == 1
    run.complete_wt(task, [wire.CancelTimerCommand(timer_id="t1"), complete()])
    assert E.TIMER_FIRED.name not in run.types()
    assert run.types()[-2:] == ["TIMER_CANCELED", "WORKFLOW_EXECUTION_COMPLETED"]


def test_cancel_of_an_unknown_timer_fails_the_task(run: Run) -> None:
    run.run_wt([wire.CancelTimerCommand(timer_id="nope")])
    failed = run.last(E.WORKFLOW_TASK_FAILED).attributes
    assert failed.cause == Cause.BAD_START_TIMER_ATTRIBUTES and "nope" in failed.failure.message


def test_duplicate_timer_id_fails_the_task(run: Run) -> None:
    run.run_wt([_timer("t1"), _timer("t1")])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.START_TIMER_DUPLICATE_ID
    assert E.TIMER_STARTED.name not in run.types()


@pytest.mark.parametrize("kind", [TimerKind.WORKFLOW_RUN_TIMEOUT, TimerKind.WORKFLOW_EXECUTION_TIMEOUT])
def test_workflow_timeout_closes_the_run_and_drops_pending_work(engine, kind: TimerKind) -> None:
    run = Run(engine, workflow_execution_timeout_s=60.0, workflow_run_timeout_s=30.0)
    assert run.state.run_expiration_time == 130.0 and run.state.execution_expiration_time == 160.0
    run.run_wt([activity("a1"), _timer("t1")])
    assert run.state.workflow_task is None  # no news for the workflow yet
    tr = run.fire(run.timer(kind))
    assert tr.closed and run.types()[-1] == "WORKFLOW_EXECUTION_TIMED_OUT"
    assert run.state.status == wire.WorkflowExecutionStatus.TIMED_OUT
    assert run.state.activities == {} and run.state.timers == {}
    # Every other timer is now stale and writes nothing.
    for t in list(run.timers):
        assert run.fire(t).events == []


def test_terminate_flushes_buffered_events_then_closes(run: Run) -> None:
    run.run_wt([activity("a1")])
    act = run.poll_activity()
    run.complete_activity(act)
    run.poll_wt()
    run.fire(run.timer(TimerKind.ACTIVITY_TIMEOUT))  # stale: completed
    tr = run.apply(run.engine.terminate(run.state, reason="operator", identity="cli", now=run.now,
                                        details=[b"why"]))
    assert tr.closed and run.types()[-1] == "WORKFLOW_EXECUTION_TERMINATED"
    attrs = run.last(E.WORKFLOW_EXECUTION_TERMINATED).attributes
    assert (attrs.reason, attrs.identity, attrs.details) == ("operator", "cli", [b"why"])
    assert run.state.failure.kind == wire.FailureKind.TERMINATED
    assert run.state.workflow_task is None


def test_terminate_while_a_task_runs_keeps_the_events_it_buffered(run: Run) -> None:
    run.run_wt([activity("a1"), activity("a2")])
    run.complete_activity(run.poll_activity("a1"))
    run.poll_wt()
    run.complete_activity(run.poll_activity("a2"))
    assert len(run.state.buffered_events) == 2
    run.apply(run.engine.terminate(run.state, reason="stop", identity="cli", now=run.now))
    assert run.types()[-3:] == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED", "WORKFLOW_EXECUTION_TERMINATED"]


def test_commands_after_a_close_fail_the_task(run: Run) -> None:
    run.run_wt([complete(), _timer("t1")])
    failed = run.last(E.WORKFLOW_TASK_FAILED).attributes
    assert failed.cause == Cause.BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES
    assert "last command" in failed.failure.message
    assert run.state.status == wire.WorkflowExecutionStatus.RUNNING
    assert run.wt_dispatch().attempt == 2


def test_completion_racing_a_new_event_is_refused_and_the_workflow_sees_it(run: Run) -> None:
    run.run_wt([activity("a1"), activity("a2")])
    run.complete_activity(run.poll_activity("a1"))
    task = run.poll_wt()
    run.complete_activity(run.poll_activity("a2"))  # arrives while the task runs: buffered
    run.complete_wt(task, [complete()])
    failed = run.last(E.WORKFLOW_TASK_FAILED).attributes
    assert failed.cause == Cause.UNHANDLED_COMMAND
    assert run.types()[-4:] == [
        "WORKFLOW_TASK_FAILED", "ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED",
        "WORKFLOW_TASK_SCHEDULED",
    ]
    assert run.state.status == wire.WorkflowExecutionStatus.RUNNING
    assert run.wt_dispatch().attempt == 1  # the news makes the retry a normal task
    run.run_wt([complete()])
    assert run.state.status == wire.WorkflowExecutionStatus.COMPLETED


def test_fail_workflow_execution_closes_as_failed(run: Run) -> None:
    run.run_wt([wire.FailWorkflowExecutionCommand(failure=app_failure("bad"))])
    assert run.types()[-1] == "WORKFLOW_EXECUTION_FAILED"
    assert run.state.status == wire.WorkflowExecutionStatus.FAILED
    assert run.state.failure.message == "bad"
