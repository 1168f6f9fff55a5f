"""A completed workflow task's commands: validation, normalisation and application.

Owns: checking a worker's command list against the run's state and the limits (as
Temporal's ``workflow_task_completed_handler.go`` and ``command_checker.go`` do), filling in
defaults (activity timeouts and task queue), and turning valid commands into events, state
and tasks. A bad command does not raise: it becomes a ``Problem`` with a
``WorkflowTaskFailedCause``, and the engine fails the workflow task with it. Must not: do
I/O or touch the workflow task itself (``workflow_task.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from shoal import wire
from shoal.node.history import activities, children, interactions, retry, updates
from shoal.node.history.config import HistoryConfig
from shoal.node.history.transition import Txn
from shoal.node.history import records
from shoal.node.history.records import TimerKind

Cause = wire.WorkflowTaskFailedCause

_CLOSE_CAUSE = {
    wire.CompleteWorkflowExecutionCommand: Cause.BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES,
    wire.FailWorkflowExecutionCommand: Cause.BAD_FAIL_WORKFLOW_EXECUTION_ATTRIBUTES,
    wire.CancelWorkflowExecutionCommand: Cause.BAD_CANCEL_WORKFLOW_EXECUTION_ATTRIBUTES,
    wire.ContinueAsNewWorkflowExecutionCommand: Cause.BAD_CONTINUE_AS_NEW_ATTRIBUTES,
}


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a command list is rejected: the workflow task fails with ``cause``."""

    cause: wire.WorkflowTaskFailedCause
    message: str


class _Reject(Exception):
    def __init__(self, cause: wire.WorkflowTaskFailedCause, message: str) -> None:
        super().__init__(message)
        self.problem = Problem(cause, message)


def _id_problem(name: str, value: str, cause: Cause) -> None:
    if not value:
        raise _Reject(cause, f"{name} must not be empty")
    if len(value) > wire.ID_CHARS_MAX:
        raise _Reject(cause, f"{name} is {len(value)} characters; the limit is {wire.ID_CHARS_MAX}")


def _timeout(name: str, value: float | None, cause: Cause) -> float | None:
    """A timeout as stored: None when unset; 0 means unset too (protobuf's zero duration)."""
    if value is None:
        return None
    if math.isnan(value) or value < 0:
        raise _Reject(cause, f"{name} is {value}; it must be >= 0 seconds")
    return None if value == 0 or math.isinf(value) else value


def _size_check(name: str, size: int, cfg: HistoryConfig, cause: Cause) -> None:
    if size > cfg.payload_bytes_max:
        raise _Reject(cause, f"{name} is {size} bytes; the limit is {cfg.payload_bytes_max} bytes")


@dataclass(slots=True)
class _Check:
    """What the commands seen so far would change: ids taken, timers gone, a close."""

    state: records.ExecutionState
    cfg: HistoryConfig
    new_activity_ids: set[str] = dataclasses.field(default_factory=set)
    new_timer_ids: set[str] = dataclasses.field(default_factory=set)
    canceled_timer_ids: set[str] = dataclasses.field(default_factory=set)
    unbuffered_fired: int = 0  # buffered TimerFired events a CancelTimer will remove
    cancel_requested: set[int] = dataclasses.field(default_factory=set)  # activities
    updates: updates.UpdateCheck = dataclasses.field(default_factory=updates.UpdateCheck)
    close: type | None = None


def validate(
    state: records.ExecutionState, commands: list[wire.Command], cfg: HistoryConfig
) -> tuple[list[wire.Command], Problem | None]:
    """Check ``commands`` without changing anything.

    Returns:
        ``(normalised commands, None)`` when all are valid, else ``([], problem)``.
    """
    check = _Check(state, cfg)
    out: list[wire.Command] = []
    try:
        for cmd in commands:
            if check.close is not None:
                raise _Reject(
                    _CLOSE_CAUSE[check.close],
                    f"{check.close.__name__} must be the last command; commands follow it",
                )
            out.append(_validate_one(check, cmd))
        if check.close is not None and len(state.buffered_events) > check.unbuffered_fired:
            # New events arrived while the task ran: the workflow must see them before it
            # may close (Temporal answers UNHANDLED_COMMAND the same way).
            raise _Reject(
                Cause.UNHANDLED_COMMAND,
                f"{len(state.buffered_events) - check.unbuffered_fired} new events arrived "
                "while the workflow task ran; the workflow must handle them before closing",
            )
    except _Reject as rej:
        return [], rej.problem
    return out, None


def _validate_one(check: _Check, cmd: wire.Command) -> wire.Command:
    if isinstance(cmd, wire.ScheduleActivityTaskCommand):
        return _validate_schedule_activity(check, cmd)
    if isinstance(cmd, wire.StartTimerCommand):
        cause = Cause.BAD_START_TIMER_ATTRIBUTES
        _id_problem("timer_id", cmd.timer_id, cause)
        if cmd.timer_id in check.state.timers or cmd.timer_id in check.new_timer_ids:
            if cmd.timer_id not in check.canceled_timer_ids:
                raise _Reject(Cause.START_TIMER_DUPLICATE_ID, f"timer {cmd.timer_id!r} is already started")
        fire = cmd.start_to_fire_timeout_s
        if math.isnan(fire) or math.isinf(fire) or fire <= 0:
            raise _Reject(cause, f"start_to_fire_timeout_s is {fire}; it must be > 0 seconds")
        check.new_timer_ids.add(cmd.timer_id)
        check.canceled_timer_ids.discard(cmd.timer_id)
        return cmd
    if isinstance(cmd, wire.CancelTimerCommand):
        return _validate_cancel_timer(check, cmd)
    if isinstance(cmd, wire.CompleteWorkflowExecutionCommand):
        cause = _CLOSE_CAUSE[type(cmd)]
        _size_check("result", wire.payloads_size(cmd.result), check.cfg, cause)
        check.close = type(cmd)
        return cmd
    if isinstance(cmd, wire.FailWorkflowExecutionCommand):
        cause = _CLOSE_CAUSE[type(cmd)]
        _size_check("failure", len(wire.dumps(cmd.failure)), check.cfg, cause)
        check.close = type(cmd)
        return cmd
    return _validate_interaction(check, cmd)


def _validate_interaction(check: _Check, cmd: wire.Command) -> wire.Command:
    if isinstance(cmd, wire.CancelWorkflowExecutionCommand):
        cause = _CLOSE_CAUSE[type(cmd)]
        if not check.state.cancel_requested:
            # As Temporal: a workflow may only cancel itself in answer to a cancel request.
            raise _Reject(cause, "CancelWorkflowExecution without a cancel request; fail or complete instead")
        _size_check("details", wire.payloads_size(cmd.details), check.cfg, cause)
        check.close = type(cmd)
        return cmd
    if isinstance(cmd, wire.ContinueAsNewWorkflowExecutionCommand):
        problem = interactions.check_continue_as_new(check.state, cmd, check.cfg)
        if problem is not None:
            raise _Reject(_CLOSE_CAUSE[type(cmd)], problem)
        check.close = type(cmd)
        return cmd
    if isinstance(cmd, wire.RequestCancelActivityTaskCommand):
        sid = cmd.scheduled_event_id
        ai = check.state.activities.get(sid)
        if ai is None or ai.cancel_requested_event_id or sid in check.cancel_requested:
            # Also when it ended while the task ran: the retried task sees how it ended.
            raise _Reject(Cause.BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES,
                          f"RequestCancelActivityTask names activity {sid}, which is not pending "
                          "or is already being cancelled")
        check.cancel_requested.add(sid)
        return cmd
    if isinstance(cmd, wire.StartChildWorkflowExecutionCommand):
        problem = children.check_start_child(check.state, cmd, check.cfg)
        if problem is not None:
            raise _Reject(Cause.BAD_START_CHILD_EXECUTION_ATTRIBUTES, problem)
        return cmd
    if isinstance(cmd, (wire.RequestCancelExternalWorkflowExecutionCommand,
                        wire.SignalExternalWorkflowExecutionCommand)):
        problem = children.check_external(cmd, check.cfg)
        if problem is not None:
            cause = (Cause.BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES
                     if isinstance(cmd, wire.SignalExternalWorkflowExecutionCommand)
                     else Cause.BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES)
            raise _Reject(cause, problem)
        return cmd
    if isinstance(cmd, updates.UPDATE_COMMANDS):
        problem = updates.check(check.state, check.updates, cmd, check.cfg)
        if problem is not None:
            raise _Reject(Cause.BAD_UPDATE_ATTRIBUTES, problem)
        return cmd
    if isinstance(cmd, wire.UpsertWorkflowSearchAttributesCommand):
        problem = interactions.check_upsert(check.state, cmd, check.cfg)
        if problem is not None:
            raise _Reject(Cause.BAD_SEARCH_ATTRIBUTES, problem)
        return cmd
    if isinstance(cmd, wire.ModifyWorkflowPropertiesCommand):
        problem = interactions.check_memo(check.state, cmd, check.cfg)
        if problem is not None:
            raise _Reject(Cause.BAD_MODIFY_WORKFLOW_PROPERTIES_ATTRIBUTES, problem)
        return cmd
    if isinstance(cmd, wire.RecordMarkerCommand):
        problem = interactions.check_marker(cmd, check.cfg)
        if problem is not None:
            raise _Reject(Cause.BAD_RECORD_MARKER_ATTRIBUTES, problem)
        return cmd
    raise _Reject(Cause.UNHANDLED_COMMAND, f"command {type(cmd).__name__} is not supported")


def _validate_cancel_timer(check: _Check, cmd: wire.CancelTimerCommand) -> wire.Command:
    # The wire has no BAD_CANCEL_TIMER_ATTRIBUTES cause; the timer cause is the closest.
    cause = Cause.BAD_START_TIMER_ATTRIBUTES
    tid = cmd.timer_id
    _id_problem("timer_id", tid, cause)
    if tid in check.canceled_timer_ids:
        raise _Reject(cause, f"CancelTimer: timer {tid!r} is already canceled by this task")
    if tid in check.state.timers or tid in check.new_timer_ids:
        check.canceled_timer_ids.add(tid)
        return cmd
    if _buffered_fired(check.state, tid) is not None:
        # It fired while the task ran: cancelling removes the unseen TimerFired (Temporal's
        # checkAndClearTimerFiredEvent), so the workflow never sees it fire.
        check.canceled_timer_ids.add(tid)
        check.unbuffered_fired += 1
        return cmd
    raise _Reject(cause, f"CancelTimer names timer {tid!r}, which is not pending")


def _validate_schedule_activity(check: _Check, cmd: wire.ScheduleActivityTaskCommand) -> wire.Command:
    cause = Cause.BAD_SCHEDULE_ACTIVITY_ATTRIBUTES
    st, cfg = check.state, check.cfg
    _id_problem("activity_id", cmd.activity_id, cause)
    _id_problem("activity_type", cmd.activity_type, cause)
    task_queue = cmd.task_queue or st.task_queue
    _id_problem("task_queue", task_queue, cause)
    if cmd.activity_id in st.activity_ids or cmd.activity_id in check.new_activity_ids:
        raise _Reject(
            Cause.SCHEDULE_ACTIVITY_DUPLICATE_ID, f"activity {cmd.activity_id!r} is already pending"
        )
    pending = len(st.activities) + len(check.new_activity_ids) + 1
    if pending > cfg.pending_activities_max:
        raise _Reject(
            Cause.PENDING_ACTIVITIES_LIMIT_EXCEEDED,
            f"{pending} activities would be pending; the limit is {cfg.pending_activities_max}",
        )
    _size_check("input", wire.payloads_size(cmd.input), cfg, cause)
    problem = retry.policy_problem(cmd.retry_policy)
    if problem is not None:
        raise _Reject(cause, problem)
    s2c = _timeout("schedule_to_close_timeout_s", cmd.schedule_to_close_timeout_s, cause)
    s2s = _timeout("schedule_to_start_timeout_s", cmd.schedule_to_start_timeout_s, cause)
    stc = _timeout("start_to_close_timeout_s", cmd.start_to_close_timeout_s, cause)
    hb = _timeout("heartbeat_timeout_s", cmd.heartbeat_timeout_s, cause)
    if s2c is None and stc is None:
        raise _Reject(
            cause, "a ScheduleActivityTask needs start_to_close_timeout_s or schedule_to_close_timeout_s"
        )
    # Defaults and caps as Temporal's validateActivityScheduleAttributes: no attempt may
    # outlive the whole activity.
    if stc is None or (s2c is not None and stc > s2c):
        stc = s2c
    if s2c is not None and (s2s is None or s2s > s2c):
        s2s = s2c
    if hb is not None and stc is not None and hb > stc:
        hb = stc
    check.new_activity_ids.add(cmd.activity_id)
    return dataclasses.replace(
        cmd, task_queue=task_queue, schedule_to_close_timeout_s=s2c,
        schedule_to_start_timeout_s=s2s, start_to_close_timeout_s=stc, heartbeat_timeout_s=hb,
    )


def _buffered_fired(state: records.ExecutionState, timer_id: str) -> int | None:
    """Index of a buffered TimerFired event of ``timer_id``, if the timer fired unseen."""
    for i, ev in enumerate(state.buffered_events):
        if isinstance(ev.attributes, wire.TimerFiredAttributes) and ev.attributes.timer_id == timer_id:
            return i
    return None


def apply(
    txn: Txn, commands: list[wire.Command], *, completed_event_id: int, identity: str, new_run_id: str
) -> None:
    """Write the events, state and tasks of validated, normalised commands, in order.

    ``new_run_id``: the run id a ContinueAsNew command gives its successor.
    """
    for cmd in commands:
        if isinstance(cmd, wire.ScheduleActivityTaskCommand):
            activities.schedule(txn, cmd, completed_event_id)
        elif isinstance(cmd, wire.StartTimerCommand):
            _start_timer(txn, cmd, completed_event_id)
        elif isinstance(cmd, wire.CancelTimerCommand):
            _cancel_timer(txn, cmd, completed_event_id, identity)
        elif isinstance(cmd, wire.CompleteWorkflowExecutionCommand):
            txn.close(
                wire.WorkflowExecutionCompletedAttributes(
                    result=list(cmd.result), workflow_task_completed_event_id=completed_event_id
                )
            )
        elif isinstance(cmd, wire.FailWorkflowExecutionCommand):
            # Workflow-level retry (a new run per the start's retry policy) is not done yet.
            txn.close(
                wire.WorkflowExecutionFailedAttributes(
                    failure=cmd.failure, retry_state=wire.RetryState.RETRY_POLICY_NOT_SET,
                    workflow_task_completed_event_id=completed_event_id,
                )
            )
        elif isinstance(cmd, wire.RequestCancelActivityTaskCommand):
            activities.request_cancel(txn, txn.state.activities[cmd.scheduled_event_id], completed_event_id)
        elif isinstance(cmd, wire.StartChildWorkflowExecutionCommand):
            children.initiate_child(txn, cmd, completed_event_id)
        elif isinstance(cmd, (wire.RequestCancelExternalWorkflowExecutionCommand,
                              wire.SignalExternalWorkflowExecutionCommand)):
            children.initiate_external(txn, cmd, completed_event_id)
        elif isinstance(cmd, updates.UPDATE_COMMANDS):
            updates.apply(txn, cmd)
        elif isinstance(cmd, wire.UpsertWorkflowSearchAttributesCommand):
            interactions.upsert_search_attributes(txn, cmd, completed_event_id)
        elif isinstance(cmd, wire.ModifyWorkflowPropertiesCommand):
            interactions.upsert_memo(txn, cmd, completed_event_id)
        elif isinstance(cmd, wire.RecordMarkerCommand):
            interactions.record_marker(txn, cmd, completed_event_id)
        elif isinstance(cmd, wire.CancelWorkflowExecutionCommand):
            interactions.cancel_workflow(txn, cmd, completed_event_id)
        elif isinstance(cmd, wire.ContinueAsNewWorkflowExecutionCommand):
            interactions.continue_as_new(txn, cmd, completed_event_id, new_run_id=new_run_id)
        else:  # validate() admits nothing else
            raise AssertionError(f"unvalidated command {cmd!r}")


def _start_timer(txn: Txn, cmd: wire.StartTimerCommand, completed_event_id: int) -> None:
    started_id = txn.append(
        wire.TimerStartedAttributes(
            timer_id=cmd.timer_id, start_to_fire_timeout_s=cmd.start_to_fire_timeout_s,
            workflow_task_completed_event_id=completed_event_id,
        )
    )
    fire_time = txn.now + cmd.start_to_fire_timeout_s
    txn.state.timers[cmd.timer_id] = records.TimerInfo(
        timer_id=cmd.timer_id, started_event_id=started_id, fire_time=fire_time
    )
    txn.timer(TimerKind.USER_TIMER, fire_time, event_id=started_id, timer_id=cmd.timer_id)


def _cancel_timer(txn: Txn, cmd: wire.CancelTimerCommand, completed_event_id: int, identity: str) -> None:
    st = txn.state
    info = st.timers.pop(cmd.timer_id, None)
    if info is not None:
        started_id = info.started_event_id
    else:
        index = _buffered_fired(st, cmd.timer_id)
        assert index is not None, "validate() checked the timer"
        fired = st.buffered_events.pop(index).attributes
        assert isinstance(fired, wire.TimerFiredAttributes)
        started_id = fired.started_event_id
    txn.append(
        wire.TimerCanceledAttributes(
            timer_id=cmd.timer_id, started_event_id=started_id,
            workflow_task_completed_event_id=completed_event_id, identity=identity,
        )
    )
