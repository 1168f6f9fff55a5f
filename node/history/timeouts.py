"""Durable timer tasks coming due: user timers, activity and workflow task timeouts, retries.

Owns: the fence that recognises a stale timer task (its subject completed, moved to another
attempt, or the run closed) and, for a live one, the call into the state machine it
belongs to (Temporal's timer queue active task executor). Must not: read a clock (the
fire time is the caller's ``now``) or do I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from shoal import wire
from shoal.node.history import activities, workflow_task
from shoal.node.history.transition import Txn
from shoal.node.history import records
from shoal.node.history.records import TimerKind


def on_user_timer(txn: Txn, task: records.TimerTask) -> None:
    st = txn.state
    info = st.timers.get(task.timer_id or "")
    if info is None or info.started_event_id != task.event_id:
        return  # canceled, or the id was reused by a later timer
    del st.timers[info.timer_id]
    workflow_task.add_workflow_event(
        txn,
        wire.TimerFiredAttributes(timer_id=info.timer_id, started_event_id=info.started_event_id)
    )


def on_activity_timeout(txn: Txn, task: records.TimerTask) -> None:
    ai = txn.state.activities.get(task.event_id)
    kind = task.timeout_type
    if ai is None or kind is None:
        return
    if kind == wire.TimeoutType.SCHEDULE_TO_CLOSE:
        activities.on_timeout(txn, ai, kind)  # one deadline for every attempt
        return
    if ai.attempt != task.attempt:
        return  # an earlier attempt's timer
    started = ai.started_time is not None
    if kind == wire.TimeoutType.SCHEDULE_TO_START and (started or ai.backing_off):
        return
    if kind in (wire.TimeoutType.START_TO_CLOSE, wire.TimeoutType.HEARTBEAT) and not started:
        return
    if kind == wire.TimeoutType.HEARTBEAT:
        deadline = activities.heartbeat_deadline(ai)
        if deadline > txn.now:
            activities.rearm_heartbeat(txn, ai, deadline)  # heartbeats came in meanwhile
            return
    activities.on_timeout(txn, ai, kind)


def on_activity_retry(txn: Txn, task: records.TimerTask) -> None:
    ai = txn.state.activities.get(task.event_id)
    if ai is None or ai.attempt != task.attempt or not ai.backing_off:
        return
    activities.on_retry_timer(txn, ai)


def on_workflow_task_timeout(txn: Txn, task: records.TimerTask) -> None:
    wt = txn.state.workflow_task
    if wt is None or wt.scheduled_event_id != task.event_id or wt.attempt != task.attempt:
        return
    if task.timeout_type == wire.TimeoutType.SCHEDULE_TO_START:
        # Sticky schedule-to-start: only matters if the sticky worker has not started it.
        if not wt.started_event_id and wt.sticky:
            workflow_task.fall_back_from_sticky(txn)
        return
    if not wt.started_event_id:
        return  # start-to-close timers are armed at start; nothing to time out yet
    failure = wire.Failure(
        message=f"workflow task timed out after {wt.timeout_s:g} s (start-to-close)",
        kind=wire.FailureKind.TIMEOUT, timeout_type=wire.TimeoutType.START_TO_CLOSE,
    )
    workflow_task.fail(txn, cause=None, failure=failure, identity="")


def on_workflow_task_retry(txn: Txn, task: records.TimerTask) -> None:
    wt = txn.state.workflow_task
    if wt is None or wt.scheduled_event_id != task.event_id or wt.attempt != task.attempt:
        return
    if wt.started_event_id:
        return
    txn.transfer(records.TransferKind.WORKFLOW_TASK, wt.task_queue, wt.scheduled_event_id, wt.attempt)


def on_workflow_timeout(txn: Txn, task: records.TimerTask) -> None:
    st = txn.state
    deadline = (
        st.run_expiration_time
        if task.kind == TimerKind.WORKFLOW_RUN_TIMEOUT
        else st.execution_expiration_time
    )
    if deadline is None:
        return
    txn.close(wire.WorkflowExecutionTimedOutAttributes(retry_state=wire.RetryState.TIMEOUT))


HANDLERS: dict[TimerKind, Callable[[Txn, records.TimerTask], None]] = {
    TimerKind.USER_TIMER: on_user_timer,
    TimerKind.ACTIVITY_TIMEOUT: on_activity_timeout,
    TimerKind.WORKFLOW_TASK_TIMEOUT: on_workflow_task_timeout,
    TimerKind.WORKFLOW_RUN_TIMEOUT: on_workflow_timeout,
    TimerKind.WORKFLOW_EXECUTION_TIMEOUT: on_workflow_timeout,
    TimerKind.ACTIVITY_RETRY: on_activity_retry,
    TimerKind.WORKFLOW_TASK_RETRY: on_workflow_task_retry,
}
