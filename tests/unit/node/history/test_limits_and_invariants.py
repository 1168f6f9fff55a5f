"""Limits (history length, pending activities, payload sizes), command checks, the history
invariant checker, and the retry maths."""

import pytest
from helpers.history_driver import Run, activity, complete

from shoal import wire
from shoal.node.history import retry
from shoal.node.history.engine import HistoryConfig, HistoryEngine
from shoal.node.history.invariants import check_history
from shoal.node.history.records import TimerKind

E = wire.EventType
Cause = wire.WorkflowTaskFailedCause


def test_history_past_the_limit_terminates_the_run_with_a_reason() -> None:
    run = Run(HistoryEngine(HistoryConfig(history_events_max=12)))
    task = run.poll_wt()
    tr = run.complete_wt(task, [wire.StartTimerCommand(timer_id=f"t{i}", start_to_fire_timeout_s=1.0)
                                for i in range(10)])
    assert tr.closed and run.state.status == wire.WorkflowExecutionStatus.TERMINATED
    attrs = run.last(E.WORKFLOW_EXECUTION_TERMINATED).attributes
    assert "limit is 12" in attrs.reason
    assert len(run.history) == 15  # 14 events, then the one that closes it


def test_pending_activity_limit_fails_the_workflow_task() -> None:
    run = Run(HistoryEngine(HistoryConfig(pending_activities_max=2)))
    run.run_wt([activity("a1"), activity("a2"), activity("a3")])
    failed = run.last(E.WORKFLOW_TASK_FAILED).attributes
    assert failed.cause == Cause.PENDING_ACTIVITIES_LIMIT_EXCEEDED
    assert "limit is 2" in failed.failure.message
    assert run.state.activities == {}


@pytest.mark.parametrize("cmd,cause,words", [
    (activity("a1", input=[b"x" * (wire.PAYLOAD_BYTES_MAX + 1)]), Cause.BAD_SCHEDULE_ACTIVITY_ATTRIBUTES, "limit is"),
    (activity("a1", start_to_close_timeout_s=None), Cause.BAD_SCHEDULE_ACTIVITY_ATTRIBUTES, "needs start_to_close"),
    (activity("a1", start_to_close_timeout_s=-1.0), Cause.BAD_SCHEDULE_ACTIVITY_ATTRIBUTES, ">= 0"),
    (activity("a1", retry_policy=wire.RetryPolicy(backoff_coefficient=0.5)), Cause.BAD_SCHEDULE_ACTIVITY_ATTRIBUTES, "coefficient"),
    (activity(""), Cause.BAD_SCHEDULE_ACTIVITY_ATTRIBUTES, "activity_id"),
    (wire.StartTimerCommand(timer_id="t", start_to_fire_timeout_s=0.0), Cause.BAD_START_TIMER_ATTRIBUTES, "> 0"),
    (wire.CompleteWorkflowExecutionCommand(result=[b"x" * (wire.PAYLOAD_BYTES_MAX + 1)]),
     Cause.BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES, "limit is"),
])
def test_bad_commands_fail_the_task_with_a_clear_cause(run: Run, cmd, cause, words: str) -> None:
    run.run_wt([activity("ok"), cmd])  # one bad command voids the whole list
    failed = run.last(E.WORKFLOW_TASK_FAILED).attributes
    assert failed.cause == cause and words in failed.failure.message
    assert E.ACTIVITY_TASK_SCHEDULED.name not in run.types()


def test_duplicate_activity_id_among_pending_fails_the_task(run: Run) -> None:
    run.run_wt([activity("a1"), wire.StartTimerCommand(timer_id="t", start_to_fire_timeout_s=1.0)])
    run.fire(run.timer(TimerKind.USER_TIMER))
    run.run_wt([activity("a1")])
    assert run.last(E.WORKFLOW_TASK_FAILED).attributes.cause == Cause.SCHEDULE_ACTIVITY_DUPLICATE_ID


def test_oversized_workflow_task_failure_is_refused(run: Run) -> None:
    from helpers.history_driver import token_of

    task = run.poll_wt()
    with pytest.raises(wire.ShoalError) as err:
        run.engine.fail_workflow_task(
            run.state, token=token_of(task), cause=Cause.WORKFLOW_WORKER_UNHANDLED_FAILURE,
            failure=wire.Failure(message="x" * (wire.PAYLOAD_BYTES_MAX + 1)), identity="w", now=1.0)
    assert err.value.code == wire.Code.PAYLOAD_TOO_LARGE
    run.complete_wt(task, [complete()])


# --- the checker -------------------------------------------------------------------------


def _ev(event_id: int, attrs) -> wire.HistoryEvent:
    return wire.HistoryEvent(event_id=event_id, event_time=0.0, event_type=E(int(attrs.KIND)), attributes=attrs)


_STARTED = wire.WorkflowExecutionStartedAttributes(workflow_type="w", task_queue="q")
_SCHED = wire.WorkflowTaskScheduledAttributes(task_queue="q", start_to_close_timeout_s=10.0)
_DONE = wire.WorkflowExecutionCompletedAttributes()


def test_checker_accepts_a_valid_history(run: Run) -> None:
    run.run_wt([complete()])
    assert check_history(run.history) == []


@pytest.mark.parametrize("events,words", [
    ([], "empty"),
    ([_ev(1, _STARTED), _ev(3, _SCHED)], "dense"),
    ([_ev(1, _SCHED)], "first event"),
    ([_ev(1, _STARTED), _ev(2, _STARTED)], "WorkflowExecutionStarted events"),
    ([_ev(1, _STARTED), _ev(2, _DONE), _ev(3, _DONE)], "close events"),
    ([_ev(1, _STARTED), _ev(2, _DONE), _ev(3, _SCHED)], "followed by 1 more"),
    ([_ev(1, _STARTED), _ev(2, wire.WorkflowTaskStartedAttributes(scheduled_event_id=1))],
     "not an earlier WorkflowTaskScheduled"),
    ([_ev(1, _STARTED), _ev(2, wire.ActivityTaskCompletedAttributes(scheduled_event_id=1, started_event_id=0))],
     "unscheduled activity"),
])
def test_checker_reports_each_violation(events, words: str) -> None:
    problems = check_history(events)
    assert any(words in p for p in problems), problems


def test_checker_reports_an_activity_recorded_twice(run: Run) -> None:
    run.run_wt([activity("a1")])
    run.complete_activity(run.poll_activity())
    events = list(run.history)
    dup = events[-2]  # ActivityTaskCompleted
    assert dup.event_type == E.ACTIVITY_TASK_COMPLETED
    events.append(wire.HistoryEvent(event_id=len(events) + 1, event_time=0.0,
                                    event_type=dup.event_type, attributes=dup.attributes))
    assert any("ended twice" in p for p in check_history(events))


# --- retry maths -------------------------------------------------------------------------


@pytest.mark.parametrize("attempt,expected", [(1, 1.0), (2, 2.0), (3, 4.0), (7, 64.0), (8, 100.0), (10_000, 100.0)])
def test_default_backoff_doubles_up_to_100x_initial(attempt: int, expected: float) -> None:
    policy = retry.effective_policy(None)
    delay, state = retry.backoff_interval(policy, attempt=attempt, failure=None, now=0.0, expiration_time=None)
    assert (delay, state) == (expected, wire.RetryState.IN_PROGRESS)


@pytest.mark.parametrize("failure,state", [
    (wire.Failure(message="t", kind=wire.FailureKind.TIMEOUT, timeout_type=wire.TimeoutType.SCHEDULE_TO_START),
     wire.RetryState.NON_RETRYABLE_FAILURE),
    (wire.Failure(message="t", kind=wire.FailureKind.TIMEOUT, timeout_type=wire.TimeoutType.HEARTBEAT),
     wire.RetryState.IN_PROGRESS),
    (wire.Failure(message="x", non_retryable=True), wire.RetryState.NON_RETRYABLE_FAILURE),
    (wire.Failure(message="x", type="Fatal"), wire.RetryState.NON_RETRYABLE_FAILURE),
    (wire.Failure(message="x", type="Other"), wire.RetryState.IN_PROGRESS),
])
def test_retryability_by_failure(failure: wire.Failure, state: wire.RetryState) -> None:
    policy = retry.effective_policy(wire.RetryPolicy(non_retryable_error_types=["Fatal"]))
    assert retry.backoff_interval(policy, attempt=1, failure=failure, now=0.0, expiration_time=None)[1] == state
