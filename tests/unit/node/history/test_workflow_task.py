"""Workflow task state machine: round trip, buffering, failure, timeout, transient retries."""

import pytest
from helpers.history_driver import Run, activity, complete, token_of

from shoal import wire
from shoal.node.history.records import TimerKind, TransferKind

E = wire.EventType


def test_start_then_workflow_task_round_trip_completes_the_run(run: Run) -> None:
    assert run.types() == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED"]
    assert [(t.kind, t.scheduled_event_id, t.attempt) for t in run.transfers] == [
        (TransferKind.WORKFLOW_TASK, 2, 1)
    ]
    task = run.poll_wt(at=101.0)
    assert (task.started_event_id, task.previous_started_event_id, task.attempt) == (3, 0, 1)
    assert task.history == []  # nothing beyond the stored history
    assert run.timer(TimerKind.WORKFLOW_TASK_TIMEOUT).fire_time == 111.0
    tr = run.complete_wt(task, [complete(b"ok")], at=102.0)
    assert run.types(3) == [
        "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED"
    ]
    assert tr.closed and run.state.status == wire.WorkflowExecutionStatus.COMPLETED
    assert run.state.result == [b"ok"] and run.state.close_time == 102.0
    assert run.last(E.WORKFLOW_EXECUTION_COMPLETED).attributes.workflow_task_completed_event_id == 4


def test_completion_with_no_commands_waits_without_a_new_task(run: Run) -> None:
    run.run_wt([])
    assert run.state.workflow_task is None
    assert len([t for t in run.transfers if t.kind == TransferKind.WORKFLOW_TASK]) == 1
    assert run.state.last_started_event_id == 3


def test_events_during_started_task_are_buffered_and_flushed_after_completion(run: Run) -> None:
    run.run_wt([activity("a1"), activity("a2")])  # 5, 6
    act = run.poll_activity("a1")
    assert run.state.workflow_task is None  # no news for the workflow yet
    run.complete_activity(act)  # no task pending: appended directly, new task scheduled
    assert run.types(7) == ["ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED"]
    task = run.poll_wt()  # 10
    act2 = run.poll_activity("a2")
    tr = run.complete_activity(act2)
    assert tr.events == [] and len(run.state.buffered_events) == 2
    run.complete_wt(task, [])
    assert run.types(10) == [
        "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED",
        "ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED",
    ]
    done = run.last(E.ACTIVITY_TASK_COMPLETED).attributes
    assert done.started_event_id == 12 and done.scheduled_event_id == 6
    assert run.state.buffered_events == []


def test_command_events_come_before_flushed_events(run: Run) -> None:
    run.run_wt([wire.StartTimerCommand(timer_id="t1", start_to_fire_timeout_s=1.0)])
    assert run.state.workflow_task is None  # no news for the workflow yet
    run.fire(run.timer(TimerKind.USER_TIMER))  # TimerFired + WT scheduled
    task = run.poll_wt()
    run.fire(run.timer(TimerKind.USER_TIMER), at=200.0)  # stale: already fired
    run.complete_wt(task, [wire.StartTimerCommand(timer_id="t2", start_to_fire_timeout_s=1.0)])
    run.fire(run.timer(TimerKind.USER_TIMER, timer_id="t2"))
    assert run.types(5) == [
        "TIMER_STARTED", "TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
        "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED", "TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED",
    ]


def test_failed_task_writes_one_failure_then_retries_transiently(run: Run) -> None:
    task = run.poll_wt()
    run.fail_wt(task)
    assert run.types(3) == ["WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_FAILED"]
    assert run.state.last_workflow_task_failure.message == "nondeterminism"
    retry = run.wt_dispatch()
    assert (retry.attempt, retry.scheduled_event_id) == (2, 5)
    # Attempt 2 and 3 fail too: no events at all.
    for attempt in (2, 3):
        task = run.poll_wt()
        assert task.attempt == attempt and task.started_event_id == 6
        assert [(e.event_id, e.event_type.name) for e in task.history] == [
            (5, "WORKFLOW_TASK_SCHEDULED"), (6, "WORKFLOW_TASK_STARTED")
        ]
        run.fail_wt(task)
        assert len(run.history) == 4
    # Attempt 4 waits a backoff (WORKFLOW_TASK_RETRY), then succeeds: its events appear.
    assert run.wt_dispatch().attempt == 3
    backoff = run.timer(TimerKind.WORKFLOW_TASK_RETRY, attempt=4)
    assert backoff.fire_time == run.now + 1.0
    run.fire(backoff)
    assert run.wt_dispatch().attempt == 4
    task = run.poll_wt()
    run.complete_wt(task, [complete()])
    assert run.types(5) == [
        "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED",
        "WORKFLOW_EXECUTION_COMPLETED",
    ]
    assert run.history[4].attributes.attempt == 4
    assert run.state.last_workflow_task_failure is None


def test_start_to_close_timeout_times_out_and_reschedules(run: Run) -> None:
    task = run.poll_wt(at=100.0)
    run.fire(run.timer(TimerKind.WORKFLOW_TASK_TIMEOUT))
    assert run.types(3) == ["WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_TIMED_OUT"]
    assert run.state.last_workflow_task_failure.kind == wire.FailureKind.TIMEOUT
    assert run.wt_dispatch().attempt == 2
    with pytest.raises(wire.ShoalError) as err:
        run.complete_wt(task, [complete()])  # the timed-out attempt's late answer
    assert err.value.code == wire.Code.TASK_NOT_FOUND


def test_transient_task_becomes_normal_when_events_arrive_before_it_starts(run: Run) -> None:
    run.run_wt([activity("a1"), wire.StartTimerCommand(timer_id="t1", start_to_fire_timeout_s=5.0)])
    run.complete_activity(run.poll_activity("a1"))  # 7, 8 and a new WT at 9
    run.fail_wt(run.poll_wt())  # 10 started, 11 failed
    assert run.state.workflow_task.transient and run.wt_dispatch().attempt == 2
    run.fire(run.timer(TimerKind.USER_TIMER))  # 12: takes the id the transient task predicted
    task = run.poll_wt()
    assert task.attempt == 1 and task.history == [] and task.started_event_id == 14
    assert run.types(11) == [
        "WORKFLOW_TASK_FAILED", "TIMER_FIRED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED"
    ]
    run.complete_wt(task, [complete()])
    assert run.state.status == wire.WorkflowExecutionStatus.COMPLETED


def test_stale_and_duplicate_workflow_task_requests_are_rejected(run: Run) -> None:
    dispatch = run.wt_dispatch()
    task = run.poll_wt(request_id="r1")
    again = run.engine.record_workflow_task_started(
        run.state, scheduled_event_id=dispatch.scheduled_event_id, attempt=1,
        identity="w", request_id="r1", now=run.now)
    assert again.events == [] and again.response == task  # retried poll: same task
    for kwargs in ({"request_id": "r2"}, {"attempt": 2, "request_id": "r1"}):
        args = dict(scheduled_event_id=dispatch.scheduled_event_id, attempt=1, identity="w", now=run.now)
        args.update(kwargs)
        with pytest.raises(wire.ShoalError) as err:
            run.engine.record_workflow_task_started(run.state, **args)
        assert err.value.code == wire.Code.TASK_NOT_FOUND
    run.complete_wt(task, [])
    before = wire.dumps(run.state)
    with pytest.raises(wire.ShoalError) as err:
        run.complete_wt(task, [])
    assert err.value.code == wire.Code.TASK_NOT_FOUND
    assert wire.dumps(run.state) == before  # validation failed: state untouched


def test_requests_to_a_closed_run_answer_workflow_not_running(run: Run) -> None:
    task = run.poll_wt()
    run.complete_wt(task, [complete()])
    with pytest.raises(wire.ShoalError) as err:
        run.complete_wt(task, [])
    assert err.value.code == wire.Code.WORKFLOW_NOT_RUNNING
    with pytest.raises(wire.ShoalError) as err:
        run.engine.terminate(run.state, reason="r", identity="i", now=run.now)
    assert err.value.code == wire.Code.WORKFLOW_NOT_RUNNING


def test_build_workflow_task_joins_stored_and_transient_history(run: Run) -> None:
    run.fail_wt(run.poll_wt())
    task = run.poll_wt()
    full = run.engine.build_workflow_task(run.state, run.history)
    assert [e.event_id for e in full.history] == [1, 2, 3, 4, 5, 6]
    assert full.task_token == task.task_token
    assert token_of(full).started_event_id == 6


# --- sticky execution ---------------------------------------------------------------------


def _complete_sticky(run: Run, queue: str = "q-sticky-w1", timeout: float = 5.0, commands=()) -> None:
    task = run.poll_wt()
    run.apply(run.engine.complete_workflow_task(
        run.state, token=token_of(task), commands=list(commands), identity="w1", now=run.now,
        sticky_task_queue=queue, sticky_schedule_to_start_timeout_s=timeout))


def test_next_task_goes_to_the_sticky_queue_with_a_fallback_timer(run: Run) -> None:
    _complete_sticky(run)
    run.signal("wake")
    t = run.wt_dispatch()
    assert t.task_queue == "q-sticky-w1"
    timer = run.timer(TimerKind.WORKFLOW_TASK_TIMEOUT, event_id=t.scheduled_event_id)
    assert timer.timeout_type == wire.TimeoutType.SCHEDULE_TO_START and timer.fire_time == run.now + 5.0
    task = run.poll_wt()
    assert task.sticky and task.previous_started_event_id == 3
    # Started in time: the schedule-to-start timer does nothing.
    before = len(run.history)
    run.fire(timer)
    assert len(run.history) == before and run.state.workflow_task.started_event_id


def test_sticky_task_not_started_in_time_falls_back_to_the_normal_queue(run: Run) -> None:
    _complete_sticky(run, timeout=2.0)
    run.signal("wake")
    timer = run.timer(TimerKind.WORKFLOW_TASK_TIMEOUT, timeout_type=wire.TimeoutType.SCHEDULE_TO_START)
    run.fire(timer)
    assert run.wt_dispatch().task_queue == "q"
    assert run.state.sticky_task_queue == ""
    task = run.poll_wt()
    assert not task.sticky


def test_a_failed_task_resets_stickiness(run: Run) -> None:
    _complete_sticky(run)
    run.signal("wake")
    task = run.poll_wt()
    run.fail_wt(task, cause=wire.WorkflowTaskFailedCause.RESET_STICKY_TASK_QUEUE)
    assert run.state.sticky_task_queue == "" and run.wt_dispatch().task_queue == "q"
