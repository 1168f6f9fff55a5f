"""Activity state machine: scheduled -> started -> completed / failed / timed out, with retries.

Owns: what scheduling, starting, completing, failing and timing out an activity attempt
does to the run, following Temporal (``mutable_state_impl.go``, ``timer_queue_active_task_
executor.go``, ``retry.go``): no event is written when an attempt starts; an attempt that
is retried leaves no events at all (the next attempt carries ``last_failure``); the
attempt that ends the activity writes ActivityTaskStarted together with its
Completed/Failed/TimedOut event. Must not: validate tokens (``engine.py``) or do I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal import wire
from shoal.node.history import retry, workflow_task
from shoal.node.history.transition import BUFFERED_STARTED_ID, Txn
from shoal.node.history import records
from shoal.node.history.records import TimerKind, TransferKind


def schedule(txn: Txn, cmd: wire.ScheduleActivityTaskCommand, completed_event_id: int) -> None:
    """Apply a validated, normalised ScheduleActivityTask command (``commands.py``)."""
    st = txn.state
    policy = retry.effective_policy(cmd.retry_policy)
    scheduled_id = txn.append(
        wire.ActivityTaskScheduledAttributes(
            activity_id=cmd.activity_id, activity_type=cmd.activity_type,
            task_queue=cmd.task_queue, input=list(cmd.input),
            schedule_to_close_timeout_s=cmd.schedule_to_close_timeout_s,
            schedule_to_start_timeout_s=cmd.schedule_to_start_timeout_s,
            start_to_close_timeout_s=cmd.start_to_close_timeout_s,
            heartbeat_timeout_s=cmd.heartbeat_timeout_s,
            workflow_task_completed_event_id=completed_event_id, retry_policy=policy,
        )
    )
    ai = records.ActivityInfo(
        scheduled_event_id=scheduled_id, activity_id=cmd.activity_id,
        activity_type=cmd.activity_type, task_queue=cmd.task_queue, input=list(cmd.input),
        schedule_to_close_timeout_s=cmd.schedule_to_close_timeout_s,
        schedule_to_start_timeout_s=cmd.schedule_to_start_timeout_s,
        start_to_close_timeout_s=cmd.start_to_close_timeout_s,
        heartbeat_timeout_s=cmd.heartbeat_timeout_s, retry_policy=policy,
        scheduled_time=txn.now, current_attempt_scheduled_time=txn.now,
    )
    st.activities[scheduled_id] = ai
    st.activity_ids[ai.activity_id] = scheduled_id
    if ai.schedule_to_close_timeout_s is not None:
        # One deadline for all attempts: its fence is the scheduled id alone.
        _timeout_timer(txn, ai, wire.TimeoutType.SCHEDULE_TO_CLOSE, ai.scheduled_time + ai.schedule_to_close_timeout_s)
    _dispatch(txn, ai)


def _dispatch(txn: Txn, ai: records.ActivityInfo) -> None:
    """Offer the current attempt to matching; its schedule-to-start clock starts now."""
    txn.transfer(TransferKind.ACTIVITY_TASK, ai.task_queue, ai.scheduled_event_id, ai.attempt)
    if ai.schedule_to_start_timeout_s is not None:
        _timeout_timer(txn, ai, wire.TimeoutType.SCHEDULE_TO_START, txn.now + ai.schedule_to_start_timeout_s)


def _timeout_timer(txn: Txn, ai: records.ActivityInfo, kind: wire.TimeoutType, fire_time: float) -> None:
    txn.timer(
        TimerKind.ACTIVITY_TIMEOUT, fire_time, event_id=ai.scheduled_event_id,
        attempt=ai.attempt, timeout_type=kind,
    )


def start(txn: Txn, ai: records.ActivityInfo, *, identity: str, request_id: str) -> wire.ActivityTask:
    """Record the (validated) current attempt as started; no event is written yet."""
    ai.started_time = txn.now
    ai.started_identity = identity
    ai.started_request_id = request_id
    if ai.start_to_close_timeout_s is not None:
        _timeout_timer(txn, ai, wire.TimeoutType.START_TO_CLOSE, txn.now + ai.start_to_close_timeout_s)
    if ai.heartbeat_timeout_s is not None:
        _timeout_timer(txn, ai, wire.TimeoutType.HEARTBEAT, txn.now + ai.heartbeat_timeout_s)
    return build_task(txn.state, ai)


def build_task(state: records.ExecutionState, ai: records.ActivityInfo) -> wire.ActivityTask:
    """The worker's view of a started attempt (also the answer to a retried record-started)."""
    assert ai.started_time is not None
    token = wire.TaskToken(
        namespace=state.namespace, workflow_id=state.workflow_id, run_id=state.run_id,
        scheduled_event_id=ai.scheduled_event_id, attempt=ai.attempt, activity_id=ai.activity_id,
    )
    return wire.ActivityTask(
        task_token=wire.dumps(token), workflow_id=state.workflow_id, run_id=state.run_id,
        workflow_type=state.workflow_type, activity_id=ai.activity_id,
        activity_type=ai.activity_type, task_queue=ai.task_queue, input=list(ai.input),
        attempt=ai.attempt, scheduled_time=ai.scheduled_time,
        current_attempt_scheduled_time=ai.current_attempt_scheduled_time,
        started_time=ai.started_time, schedule_to_close_timeout_s=ai.schedule_to_close_timeout_s,
        start_to_close_timeout_s=ai.start_to_close_timeout_s,
        heartbeat_timeout_s=ai.heartbeat_timeout_s, heartbeat_details=ai.heartbeat_details,
    )


def heartbeat(txn: Txn, ai: records.ActivityInfo, details: wire.Payloads | None) -> None:
    """Note a heartbeat; the heartbeat timer re-arms itself from this time when it fires."""
    ai.last_heartbeat_time = txn.now
    if details is not None:
        ai.heartbeat_details = list(details)


def complete(txn: Txn, ai: records.ActivityInfo, *, result: wire.Payloads, identity: str) -> None:
    """The started attempt succeeded: ActivityTaskStarted + ActivityTaskCompleted."""
    _end(
        txn, ai, started=True,
        make_close=lambda started_id: wire.ActivityTaskCompletedAttributes(
            result=list(result), scheduled_event_id=ai.scheduled_event_id,
            started_event_id=started_id, identity=identity,
        ),
    )


def fail(
    txn: Txn,
    ai: records.ActivityInfo,
    *,
    failure: wire.Failure,
    last_heartbeat_details: wire.Payloads | None,
    identity: str,
) -> None:
    """The started attempt failed: retry it if the policy allows, else record the failure."""
    if last_heartbeat_details is not None:
        ai.heartbeat_details = list(last_heartbeat_details)
    delay, retry_state = _backoff(txn, ai, failure)
    if delay is not None:
        _retry(txn, ai, failure, delay)
        return
    _end(
        txn, ai, started=True,
        make_close=lambda started_id: wire.ActivityTaskFailedAttributes(
            failure=failure, scheduled_event_id=ai.scheduled_event_id,
            started_event_id=started_id, identity=identity, retry_state=retry_state,
        ),
    )


def request_cancel(txn: Txn, ai: records.ActivityInfo, completed_event_id: int) -> None:
    """The workflow asked to cancel the activity: ActivityTaskCancelRequested.

    An attempt that has not started (scheduled, or backing off) is cancelled at once with
    ActivityTaskCanceled, as Temporal does; a started one learns of it from its next
    heartbeat answer and ends with RespondActivityTaskCanceled (or completes or fails).
    """
    requested_id = txn.append(
        wire.ActivityTaskCancelRequestedAttributes(
            scheduled_event_id=ai.scheduled_event_id,
            workflow_task_completed_event_id=completed_event_id,
        )
    )
    ai.cancel_requested_event_id = requested_id
    if ai.started_time is None:
        canceled(txn, ai, details=[], identity="")


def canceled(txn: Txn, ai: records.ActivityInfo, *, details: wire.Payloads, identity: str) -> None:
    """The activity ended cancelled (after a cancel request): ActivityTaskCanceled."""
    assert ai.cancel_requested_event_id
    _end(
        txn, ai, started=ai.started_time is not None,
        make_close=lambda started_id: wire.ActivityTaskCanceledAttributes(
            details=list(details), latest_cancel_requested_event_id=ai.cancel_requested_event_id,
            scheduled_event_id=ai.scheduled_event_id, started_event_id=started_id,
            identity=identity,
        ),
    )


def on_timeout(txn: Txn, ai: records.ActivityInfo, timeout_type: wire.TimeoutType) -> None:
    """A (fenced, still relevant) activity timeout fired.

    Start-to-close and heartbeat timeouts end the attempt and are retried like failures;
    schedule-to-start and schedule-to-close end the activity.
    """
    started = ai.started_time is not None
    failure = wire.Failure(
        message=f"activity {timeout_type.name} timeout", kind=wire.FailureKind.TIMEOUT,
        timeout_type=timeout_type,
        details=list(ai.heartbeat_details or []) if timeout_type == wire.TimeoutType.HEARTBEAT else [],
        cause=ai.last_failure,
    )
    retry_state = wire.RetryState.TIMEOUT
    if timeout_type in (wire.TimeoutType.START_TO_CLOSE, wire.TimeoutType.HEARTBEAT):
        delay, retry_state = _backoff(txn, ai, failure)
        if delay is not None:
            _retry(txn, ai, failure, delay)
            return
    _end(
        txn, ai, started=started,
        make_close=lambda started_id: wire.ActivityTaskTimedOutAttributes(
            failure=failure, scheduled_event_id=ai.scheduled_event_id,
            started_event_id=started_id, retry_state=retry_state,
        ),
    )


def on_retry_timer(txn: Txn, ai: records.ActivityInfo) -> None:
    """The backoff before the next attempt is over: dispatch it."""
    ai.backing_off = False
    ai.current_attempt_scheduled_time = txn.now
    _dispatch(txn, ai)


def heartbeat_deadline(ai: records.ActivityInfo) -> float:
    """When the started attempt's heartbeat timeout expires, counting the last heartbeat."""
    assert ai.heartbeat_timeout_s is not None and ai.started_time is not None
    last = ai.last_heartbeat_time if ai.last_heartbeat_time is not None else ai.started_time
    return max(last, ai.started_time) + ai.heartbeat_timeout_s


def rearm_heartbeat(txn: Txn, ai: records.ActivityInfo, fire_time: float) -> None:
    _timeout_timer(txn, ai, wire.TimeoutType.HEARTBEAT, fire_time)


def _backoff(txn: Txn, ai: records.ActivityInfo, failure: wire.Failure) -> tuple[float | None, wire.RetryState]:
    assert ai.retry_policy is not None
    if ai.cancel_requested_event_id:
        return None, wire.RetryState.CANCEL_REQUESTED  # as Temporal: no retry once cancelling
    expiration = (
        ai.scheduled_time + ai.schedule_to_close_timeout_s
        if ai.schedule_to_close_timeout_s is not None
        else None
    )
    return retry.backoff_interval(
        ai.retry_policy, attempt=ai.attempt, failure=failure, now=txn.now, expiration_time=expiration
    )


def _retry(txn: Txn, ai: records.ActivityInfo, failure: wire.Failure, delay: float) -> None:
    """Leave no events for the failed attempt; wait ``delay`` then dispatch attempt + 1."""
    ai.attempt += 1
    ai.last_failure = failure
    ai.started_time = None
    ai.started_identity = ""
    ai.started_request_id = ""
    ai.last_heartbeat_time = None
    ai.backing_off = True
    ai.current_attempt_scheduled_time = txn.now + delay
    txn.timer(TimerKind.ACTIVITY_RETRY, txn.now + delay, event_id=ai.scheduled_event_id, attempt=ai.attempt)


def _end(txn: Txn, ai: records.ActivityInfo, *, started: bool, make_close: Callable[[int], Any]) -> None:
    """Write the activity's final events and forget it.

    ActivityTaskStarted (if the attempt started) is appended or buffered together with the
    close event, which names it; while buffered its id is a placeholder that the flush fills.
    """
    st = txn.state
    wt = st.workflow_task
    started_id = 0
    if started:
        started_attrs = wire.ActivityTaskStartedAttributes(
            scheduled_event_id=ai.scheduled_event_id, identity=ai.started_identity,
            request_id=ai.started_request_id, attempt=ai.attempt, last_failure=ai.last_failure,
        )
        if wt is not None and wt.started_event_id:
            workflow_task.add_workflow_event(txn, started_attrs, event_time=ai.started_time)
            started_id = BUFFERED_STARTED_ID
        else:
            # Appended directly, not through add_workflow_event: the workflow task it may
            # schedule must come after the close event, not between the two.
            started_id = txn.append(started_attrs, event_time=ai.started_time)
    del st.activities[ai.scheduled_event_id]
    del st.activity_ids[ai.activity_id]
    workflow_task.add_workflow_event(txn, make_close(started_id))
