"""The workflow task state machine: scheduled -> started -> completed / failed / timed out.

Owns: scheduling a workflow task (a WorkflowTaskScheduled event, or a transient attempt
with no events), starting it (WorkflowTaskStarted, a start-to-close timer, the task the
worker gets), writing its end events, and rescheduling after a failure or timeout, as
Temporal's ``workflow_task_state_machine.go`` does. Must not: validate tokens or commands
(``engine.py`` and ``commands.py`` do) or do I/O.

Transient tasks: after a failed or timed-out attempt, the retry (attempt > 1) writes no
WorkflowTaskScheduled/Started events; the worker receives them in ``WorkflowTask.history``
with the ids they will take, and they are written only when the attempt completes. A task
that keeps failing therefore leaves one WorkflowTaskFailed event, not three per attempt.

Events for the workflow to react to go through :func:`add_workflow_event`, which buffers
them while a task is started or schedules a task to deliver them.
"""

from __future__ import annotations

from typing import Any

from shoal import wire
from shoal.node.history.config import HistoryConfig
from shoal.node.history.transition import Txn, event_type_of
from shoal.node.history import records
from shoal.node.history.records import TimerKind, TransferKind


def dispatch_backoff_s(cfg: HistoryConfig, attempt: int) -> float:
    """Delay before dispatching workflow task ``attempt``: 0 for the first few attempts."""
    extra = attempt - cfg.workflow_task_backoff_min_attempts
    if extra <= 0:
        return 0.0
    return min(cfg.workflow_task_backoff_initial_s * 2.0 ** min(extra - 1, 60), cfg.workflow_task_backoff_max_s)


def schedule(txn: Txn, *, attempt: int, speculative: bool = False) -> records.WorkflowTaskInfo:
    """Schedule the run's next workflow task (none may be pending) and dispatch it.

    ``speculative``: a task only to deliver updates; it is transient (no events) so that
    one that only rejects them leaves no trace (see ``drop_speculative``).
    """
    st = txn.state
    assert st.workflow_task is None, "one workflow task at a time"
    transient = attempt > 1 or speculative
    sticky = bool(st.sticky_task_queue)
    queue = st.sticky_task_queue or st.task_queue
    if transient:
        scheduled_event_id = st.next_event_id  # the id its Scheduled event will take
    else:
        scheduled_event_id = txn.append(
            wire.WorkflowTaskScheduledAttributes(
                task_queue=queue, start_to_close_timeout_s=st.workflow_task_timeout_s,
                attempt=attempt,
            )
        )
    wt = records.WorkflowTaskInfo(
        scheduled_event_id=scheduled_event_id, attempt=attempt, task_queue=queue, sticky=sticky,
        timeout_s=st.workflow_task_timeout_s, scheduled_time=txn.now, transient=transient,
        speculative=speculative,
    )
    st.workflow_task = wt
    delay = dispatch_backoff_s(txn.cfg, attempt)
    if delay > 0:
        # A task failing again and again: wait before offering it, so a broken worker does
        # not spin; the WORKFLOW_TASK_RETRY timer dispatches it.
        txn.timer(TimerKind.WORKFLOW_TASK_RETRY, txn.now + delay, event_id=scheduled_event_id, attempt=attempt)
    else:
        txn.transfer(TransferKind.WORKFLOW_TASK, wt.task_queue, scheduled_event_id, attempt)
    if sticky:
        # The caching worker may be gone: fall back to the normal queue if not started soon.
        txn.timer(TimerKind.WORKFLOW_TASK_TIMEOUT, txn.now + st.sticky_schedule_to_start_timeout_s,
                  event_id=scheduled_event_id, attempt=attempt,
                  timeout_type=wire.TimeoutType.SCHEDULE_TO_START)
    return wt


def add_workflow_event(txn: Txn, attrs: Any, *, event_time: float | None = None) -> None:
    """Record an event the workflow must react to (activity result, timer fired ...).

    While a workflow task is started the event is buffered: the worker is replaying up
    to WorkflowTaskStarted and must see WorkflowTaskCompleted right after it. Otherwise
    it is appended and, if no workflow task is pending, one is scheduled to deliver it.
    """
    st = txn.state
    wt = st.workflow_task
    if wt is not None and wt.started_event_id:
        st.buffered_events.append(
            wire.HistoryEvent(
                event_id=0, event_time=txn.now if event_time is None else event_time,
                event_type=event_type_of(attrs), attributes=attrs,
            )
        )
        return
    txn.append(attrs, event_time=event_time)
    if wt is None:
        schedule(txn, attempt=1)


def fall_back_from_sticky(txn: Txn) -> None:
    """The sticky worker did not start the task in time: offer it on the normal queue (its
    next poller gets the full history) and stop being sticky until a worker asks again."""
    st = txn.state
    wt = st.workflow_task
    assert wt is not None and wt.sticky and not wt.started_event_id
    st.sticky_task_queue = ""
    wt.sticky = False
    wt.task_queue = st.task_queue
    txn.transfer(TransferKind.WORKFLOW_TASK, wt.task_queue, wt.scheduled_event_id, wt.attempt)


def _scheduled_attrs(wt: records.WorkflowTaskInfo) -> wire.WorkflowTaskScheduledAttributes:
    return wire.WorkflowTaskScheduledAttributes(
        task_queue=wt.task_queue, start_to_close_timeout_s=wt.timeout_s, attempt=wt.attempt
    )


def _started_attrs(wt: records.WorkflowTaskInfo) -> wire.WorkflowTaskStartedAttributes:
    return wire.WorkflowTaskStartedAttributes(
        scheduled_event_id=wt.scheduled_event_id, identity=wt.started_identity,
        request_id=wt.request_id,
    )


def start(txn: Txn, *, identity: str, request_id: str) -> wire.WorkflowTask:
    """Record the pending (scheduled, validated) workflow task as started.

    Returns the task for the worker, ``history`` holding only the events that are not in
    the stored history (a transient attempt's Scheduled and Started events), so the shell
    sends stored events [1, next_event_id) followed by these.
    """
    st = txn.state
    wt = st.workflow_task
    assert wt is not None and not wt.started_event_id
    if wt.transient and wt.scheduled_event_id != st.next_event_id:
        # Events arrived since the transient attempt was scheduled and took its ids: make
        # it a normal task with real events, attempt 1 (as Temporal does).
        wt.transient = wt.speculative = False
        wt.attempt = 1
        wt.scheduled_event_id = txn.append(_scheduled_attrs(wt), event_time=wt.scheduled_time)
    wt.started_time = txn.now
    wt.started_identity = identity
    wt.request_id = request_id
    if wt.transient:
        wt.started_event_id = wt.scheduled_event_id + 1  # written at completion, if ever
    else:
        wt.started_event_id = txn.append(_started_attrs(wt))
    txn.timer(
        TimerKind.WORKFLOW_TASK_TIMEOUT, txn.now + wt.timeout_s, event_id=wt.scheduled_event_id,
        attempt=wt.attempt, timeout_type=wire.TimeoutType.START_TO_CLOSE,
    )
    return build_task(st, transient_events(st))


def build_task(state: records.ExecutionState, history: list[wire.HistoryEvent]) -> wire.WorkflowTask:
    """The worker's view of the run's started workflow task, with ``history`` as given.

    Also answers a retried record-started (same request id) with the same task.
    """
    wt = state.workflow_task
    assert wt is not None and wt.started_event_id and wt.started_time is not None
    token = wire.TaskToken(
        namespace=state.namespace, workflow_id=state.workflow_id, run_id=state.run_id,
        scheduled_event_id=wt.scheduled_event_id, attempt=wt.attempt,
        started_event_id=wt.started_event_id,
    )
    return wire.WorkflowTask(
        task_token=wire.dumps(token), workflow_id=state.workflow_id, run_id=state.run_id,
        workflow_type=state.workflow_type, attempt=wt.attempt,
        started_event_id=wt.started_event_id, previous_started_event_id=state.last_started_event_id,
        history=history, scheduled_time=wt.scheduled_time, started_time=wt.started_time,
        sticky=wt.sticky,
    )


def transient_events(state: records.ExecutionState) -> list[wire.HistoryEvent]:
    """The started transient task's Scheduled and Started events (empty if not transient)."""
    wt = state.workflow_task
    if wt is None or not wt.transient or not wt.started_event_id:
        return []
    assert wt.started_time is not None
    return [
        wire.HistoryEvent(
            event_id=wt.scheduled_event_id, event_time=wt.scheduled_time,
            event_type=wire.EventType.WORKFLOW_TASK_SCHEDULED, attributes=_scheduled_attrs(wt),
        ),
        wire.HistoryEvent(
            event_id=wt.started_event_id, event_time=wt.started_time,
            event_type=wire.EventType.WORKFLOW_TASK_STARTED, attributes=_started_attrs(wt),
        ),
    ]


def complete(txn: Txn, *, identity: str) -> int:
    """Write WorkflowTaskCompleted for the started task; returns its event id.

    A transient attempt's Scheduled and Started events are written first, with the ids
    the worker was given (nothing else can have been appended while it was started).
    """
    st = txn.state
    wt = st.workflow_task
    assert wt is not None and wt.started_event_id
    if wt.transient:
        assert wt.scheduled_event_id == st.next_event_id, "buffering keeps transient ids free"
        txn.append(_scheduled_attrs(wt), event_time=wt.scheduled_time)
        txn.append(_started_attrs(wt), event_time=wt.started_time)
    completed_id = txn.append(
        wire.WorkflowTaskCompletedAttributes(
            scheduled_event_id=wt.scheduled_event_id, started_event_id=wt.started_event_id,
            identity=identity,
        )
    )
    st.last_started_event_id = wt.started_event_id
    st.workflow_task = None
    return completed_id


def drop_speculative(txn: Txn) -> None:
    """End a speculative task that only rejected updates: it never existed in history."""
    st = txn.state
    wt = st.workflow_task
    assert wt is not None and wt.speculative and wt.transient and not st.buffered_events
    st.workflow_task = None
    # The worker's cached run has seen this task's transient events, whose ids the next
    # task reuses: send that one to the normal queue with full history (a replay).
    st.sticky_task_queue = ""


def fail(
    txn: Txn,
    *,
    cause: wire.WorkflowTaskFailedCause | None,
    failure: wire.Failure,
    identity: str,
) -> None:
    """End the started (or, for timeouts, scheduled) task unsuccessfully and retry it.

    ``cause`` None means it timed out (start-to-close). A normal task writes
    WorkflowTaskFailed/TimedOut; a transient one writes nothing. Buffered events are
    flushed; if there were any, the retry is a normal attempt 1 (the workflow has news to
    see), else attempt + 1, transient.
    """
    st = txn.state
    wt = st.workflow_task
    assert wt is not None
    st.sticky_task_queue = ""  # as Temporal: a failed or timed-out task resets stickiness
    if not wt.transient:
        if cause is None:
            txn.append(
                wire.WorkflowTaskTimedOutAttributes(
                    scheduled_event_id=wt.scheduled_event_id, started_event_id=wt.started_event_id,
                    timeout_type=wire.TimeoutType.START_TO_CLOSE,
                )
            )
        else:
            txn.append(
                wire.WorkflowTaskFailedAttributes(
                    scheduled_event_id=wt.scheduled_event_id, started_event_id=wt.started_event_id,
                    cause=cause, failure=failure, identity=identity,
                )
            )
    st.last_workflow_task_failure = failure
    st.workflow_task = None
    flushed = txn.flush_buffered()
    schedule(txn, attempt=1 if flushed else wt.attempt + 1)
