"""Activities: success, retries with backoff, non-retryable failures, every timeout type."""

import dataclasses
import pytest
from helpers.history_driver import Run, activity, app_failure, token_of

from shoal import wire
from shoal.node.history.records import TimerKind, TransferKind

E = wire.EventType
T = wire.TimeoutType


def _scheduled(run: Run, **kw) -> int:
    run.run_wt([activity("a1", **kw)])
    return run.scheduled_id("a1")


def test_activity_success_writes_started_and_completed_then_a_task(run: Run) -> None:
    sid = _scheduled(run, input=[b"World"])
    sched = run.history[sid - 1].attributes
    assert sched.retry_policy == wire.RetryPolicy(maximum_interval_s=100.0)  # Temporal's default
    task = run.poll_activity(at=105.0)
    assert (task.activity_id, task.attempt, task.input, task.started_time) == ("a1", 1, [b"World"], 105.0)
    assert token_of(task).activity_id == "a1"
    assert run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.START_TO_CLOSE).fire_time == 115.0
    assert len(run.history) == sid  # starting an attempt writes nothing
    run.complete_activity(task, b"Hello", at=106.0)
    assert run.types(sid + 1) == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED"]
    started = run.last(E.ACTIVITY_TASK_STARTED)
    assert started.event_time == 105.0 and started.attributes.attempt == 1
    assert run.last(E.ACTIVITY_TASK_COMPLETED).attributes.result == [b"Hello"]
    assert run.state.activities == {} and run.state.activity_ids == {}


def test_failure_is_retried_with_exponential_backoff_and_no_events(run: Run) -> None:
    sid = _scheduled(run, retry_policy=wire.RetryPolicy(initial_interval_s=1.0, backoff_coefficient=2.0,
                                                        maximum_interval_s=3.0, maximum_attempts=4))
    delays = []
    for attempt in (1, 2, 3):
        task = run.poll_activity(at=run.now)
        assert task.attempt == attempt
        run.fail_activity(task, app_failure(f"fail {attempt}"))
        assert len(run.history) == sid  # a retried attempt leaves no events
        ai = run.state.activities[sid]
        assert ai.backing_off and ai.attempt == attempt + 1
        retry = run.timer(TimerKind.ACTIVITY_RETRY, attempt=attempt + 1)
        delays.append(retry.fire_time - run.now)
        with pytest.raises(wire.ShoalError):  # backing off: a stale dispatch cannot start it
            run.poll_activity()
        run.fire(retry)
        assert run.act_dispatch().attempt == attempt + 1
    assert delays == [1.0, 2.0, 3.0]  # 1, 2, then capped at 3
    task = run.poll_activity(at=run.now)
    assert task.attempt == 4
    stale = dataclasses.replace(task, task_token=wire.dumps(
        dataclasses.replace(token_of(task), attempt=3)))
    with pytest.raises(wire.ShoalError) as err:
        run.complete_activity(stale)  # attempt 3's worker answering late
    assert err.value.code == wire.Code.TASK_NOT_FOUND
    run.fail_activity(task, app_failure("fail 4"))
    assert run.types(sid + 1) == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_FAILED", "WORKFLOW_TASK_SCHEDULED"]
    started = run.last(E.ACTIVITY_TASK_STARTED).attributes
    assert started.attempt == 4 and started.last_failure.message == "fail 3"
    failed = run.last(E.ACTIVITY_TASK_FAILED).attributes
    assert failed.failure.message == "fail 4"
    assert failed.retry_state == wire.RetryState.MAXIMUM_ATTEMPTS_REACHED


@pytest.mark.parametrize("failure", [
    app_failure("bad input", non_retryable=True),
    app_failure("bad input", type="ValueError"),
])
def test_non_retryable_failure_ends_the_activity_at_once(run: Run, failure: wire.Failure) -> None:
    _scheduled(run, retry_policy=wire.RetryPolicy(non_retryable_error_types=["ValueError"]))
    run.fail_activity(run.poll_activity(), failure)
    failed = run.last(E.ACTIVITY_TASK_FAILED).attributes
    assert failed.retry_state == wire.RetryState.NON_RETRYABLE_FAILURE
    assert run.state.activities == {}


def test_retry_that_would_start_after_schedule_to_close_is_not_made(run: Run) -> None:
    _scheduled(run, schedule_to_close_timeout_s=10.0, start_to_close_timeout_s=5.0,
               retry_policy=wire.RetryPolicy(initial_interval_s=4.0))
    run.fail_activity(run.poll_activity(at=101.0), at=102.0)  # retry at 106 < 110: ok
    run.fire(run.timer(TimerKind.ACTIVITY_RETRY))
    run.fail_activity(run.poll_activity(at=106.0), at=107.0)  # next at 115 > 110: stop
    failed = run.last(E.ACTIVITY_TASK_FAILED).attributes
    assert failed.retry_state == wire.RetryState.TIMEOUT


def test_start_to_close_timeout_is_retried_then_times_out_with_cause(run: Run) -> None:
    sid = _scheduled(run, retry_policy=wire.RetryPolicy(maximum_attempts=2))
    task = run.poll_activity(at=100.0)
    run.fail_activity(task, app_failure("first"), at=100.5)
    run.fire(run.timer(TimerKind.ACTIVITY_RETRY))
    task = run.poll_activity(at=102.0)
    run.fire(run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.START_TO_CLOSE, attempt=1))  # stale
    assert len(run.history) == sid
    run.fire(run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.START_TO_CLOSE, attempt=2))
    assert run.types(sid + 1) == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED"]
    timed_out = run.last(E.ACTIVITY_TASK_TIMED_OUT).attributes
    assert timed_out.failure.kind == wire.FailureKind.TIMEOUT
    assert timed_out.failure.timeout_type == T.START_TO_CLOSE
    assert timed_out.failure.cause.message == "first"
    assert timed_out.retry_state == wire.RetryState.MAXIMUM_ATTEMPTS_REACHED
    with pytest.raises(wire.ShoalError) as err:
        run.complete_activity(task)  # the timed-out attempt reports late
    assert err.value.code == wire.Code.TASK_NOT_FOUND


def test_schedule_to_start_timeout_is_not_retried_and_has_no_started_event(run: Run) -> None:
    sid = _scheduled(run, schedule_to_start_timeout_s=5.0)
    run.fire(run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.SCHEDULE_TO_START))
    assert run.types(sid + 1) == ["ACTIVITY_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED"]
    timed_out = run.last(E.ACTIVITY_TASK_TIMED_OUT).attributes
    assert timed_out.started_event_id == 0 and timed_out.retry_state == wire.RetryState.TIMEOUT


def test_schedule_to_start_timer_of_a_started_attempt_is_stale(run: Run) -> None:
    sid = _scheduled(run, schedule_to_start_timeout_s=5.0)
    run.poll_activity()
    run.fire(run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.SCHEDULE_TO_START))
    assert len(run.history) == sid and sid in run.state.activities


def test_schedule_to_close_timeout_ends_a_started_activity(run: Run) -> None:
    sid = _scheduled(run, schedule_to_close_timeout_s=30.0, start_to_close_timeout_s=None)
    ai = run.state.activities[sid]
    assert (ai.start_to_close_timeout_s, ai.schedule_to_start_timeout_s) == (30.0, 30.0)
    run.poll_activity(at=101.0)
    run.fire(run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.SCHEDULE_TO_CLOSE))
    assert run.types(sid + 1) == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED"]
    assert run.last(E.ACTIVITY_TASK_TIMED_OUT).attributes.failure.timeout_type == T.SCHEDULE_TO_CLOSE


def test_schedule_to_close_timeout_while_backing_off_has_no_started_event(run: Run) -> None:
    sid = _scheduled(run, schedule_to_close_timeout_s=30.0, retry_policy=wire.RetryPolicy(initial_interval_s=5.0))
    run.fail_activity(run.poll_activity(), app_failure("flaky"))
    run.fire(run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.SCHEDULE_TO_CLOSE))
    timed_out = run.last(E.ACTIVITY_TASK_TIMED_OUT).attributes
    assert timed_out.started_event_id == 0 and timed_out.failure.cause.message == "flaky"
    run.fire(run.timer(TimerKind.ACTIVITY_RETRY))  # stale now
    assert run.types(sid + 1) == ["ACTIVITY_TASK_TIMED_OUT", "WORKFLOW_TASK_SCHEDULED"]


def test_heartbeat_timeout_rearms_after_heartbeats_then_fires(run: Run) -> None:
    sid = _scheduled(run, heartbeat_timeout_s=5.0, start_to_close_timeout_s=60.0,
                     retry_policy=wire.RetryPolicy(maximum_attempts=1))
    task = run.poll_activity(at=100.0)
    run.apply(run.engine.record_activity_heartbeat(run.state, token=token_of(task), details=[b"50%"], now=103.0))
    first = run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.HEARTBEAT)
    assert first.fire_time == 105.0
    tr = run.fire(first)
    assert tr.events == [] and [t.fire_time for t in tr.timer_tasks] == [108.0]
    run.fire(run.timer(TimerKind.ACTIVITY_TIMEOUT, timeout_type=T.HEARTBEAT))
    timed_out = run.last(E.ACTIVITY_TASK_TIMED_OUT).attributes
    assert timed_out.failure.timeout_type == T.HEARTBEAT and timed_out.failure.details == [b"50%"]
    assert run.types(sid + 1)[:2] == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_TIMED_OUT"]


def test_duplicate_and_stale_activity_completions_are_rejected_untouched(run: Run) -> None:
    _scheduled(run)
    task = run.poll_activity(request_id="r1")
    dispatch = run.act_dispatch()
    again = run.engine.record_activity_task_started(
        run.state, scheduled_event_id=dispatch.scheduled_event_id, attempt=1, identity="w",
        request_id="r1", now=run.now)
    assert again.events == [] and again.response == task
    with pytest.raises(wire.ShoalError):
        run.engine.record_activity_task_started(
            run.state, scheduled_event_id=dispatch.scheduled_event_id, attempt=1, identity="w",
            request_id="r2", now=run.now)
    run.complete_activity(task)
    completed = len([e for e in run.history if e.event_type == E.ACTIVITY_TASK_COMPLETED])
    before = wire.dumps(run.state)
    for call in (lambda: run.complete_activity(task), lambda: run.fail_activity(task)):
        with pytest.raises(wire.ShoalError) as err:
            call()
        assert err.value.code == wire.Code.TASK_NOT_FOUND
    assert wire.dumps(run.state) == before
    assert len([e for e in run.history if e.event_type == E.ACTIVITY_TASK_COMPLETED]) == completed == 1


def test_oversized_activity_result_is_rejected_with_payload_too_large(run: Run) -> None:
    _scheduled(run)
    task = run.poll_activity()
    with pytest.raises(wire.ShoalError) as err:
        run.complete_activity(task, b"x" * (wire.PAYLOAD_BYTES_MAX + 1))
    assert err.value.code == wire.Code.PAYLOAD_TOO_LARGE
    assert run.state.activities  # untouched: still pending
    run.complete_activity(task)


def test_activity_task_queue_defaults_to_the_workflows(run: Run) -> None:
    run.run_wt([activity("a1", task_queue="")])
    assert run.act_dispatch().task_queue == "q"
    assert [t.kind for t in run.transfers].count(TransferKind.ACTIVITY_TASK) == 1
