"""One state change in progress: event ids, buffering, outbox tasks, closing a run.

Owns: ``Transition`` (what the engine hands the shell) and ``Txn``, the builder every engine
operation uses to append events to a run (ids dense from ``state.next_event_id``), flush
the events buffered while a workflow task was started, collect transfer and timer tasks,
and close the run. Must not: validate requests (callers do that first), do I/O, or import
``workflow_task`` (which builds on ``Txn``: delivering an event to the workflow is
``workflow_task.add_workflow_event``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from shoal import wire
from shoal.node.history.config import HistoryConfig
from shoal.node.history import records
from shoal.node.history.records import TimerKind, TransferKind

# A buffered activity-close event refers to its ActivityTaskStarted event, which is buffered
# too and has no id yet; this placeholder is replaced with that id on flush (Temporal's
# history builder wires buffered event ids the same way).
BUFFERED_STARTED_ID = -1

_ACTIVITY_CLOSE = (
    wire.ActivityTaskCompletedAttributes,
    wire.ActivityTaskFailedAttributes,
    wire.ActivityTaskTimedOutAttributes,
    wire.ActivityTaskCanceledAttributes,
)

_CHILD_CLOSE = (
    wire.ChildWorkflowExecutionCompletedAttributes,
    wire.ChildWorkflowExecutionFailedAttributes,
    wire.ChildWorkflowExecutionCanceledAttributes,
    wire.ChildWorkflowExecutionTimedOutAttributes,
    wire.ChildWorkflowExecutionTerminatedAttributes,
)

_CLOSE_STATUS = {
    wire.WorkflowExecutionCompletedAttributes: wire.WorkflowExecutionStatus.COMPLETED,
    wire.WorkflowExecutionFailedAttributes: wire.WorkflowExecutionStatus.FAILED,
    wire.WorkflowExecutionTimedOutAttributes: wire.WorkflowExecutionStatus.TIMED_OUT,
    wire.WorkflowExecutionTerminatedAttributes: wire.WorkflowExecutionStatus.TERMINATED,
    wire.WorkflowExecutionCanceledAttributes: wire.WorkflowExecutionStatus.CANCELED,
    wire.WorkflowExecutionContinuedAsNewAttributes: wire.WorkflowExecutionStatus.CONTINUED_AS_NEW,
}


@dataclass(slots=True)
class Transition:
    """What one engine call did to a run; the shell commits it as part of one log entry.

    ``events`` continue the run's history densely (the first one's id was the state's
    ``next_event_id`` before the call). Task ids are left 0: the shell assigns them.
    ``response`` is the answer body for the caller, if the call has one. ``closed`` says
    the run closed in this transition.
    """

    events: list[wire.HistoryEvent] = field(default_factory=list)
    transfer_tasks: list[records.TransferTask] = field(default_factory=list)
    timer_tasks: list[records.TimerTask] = field(default_factory=list)
    response: Any = None
    closed: bool = False
    # Continue-as-new: the successor run (its state and first transition), which the shell
    # adds and makes current in the same entry.
    new_run: tuple[records.ExecutionState, Transition] | None = None
    # Updates this transition accepted, and outcomes it settled (rejected or completed):
    # the shell answers their callers once the entry has committed.
    accepted_updates: list[str] = field(default_factory=list)
    update_outcomes: dict[str, wire.UpdateOutcome] = field(default_factory=dict)


def event_type_of(attrs: Any) -> wire.EventType:
    return wire.EventType(int(attrs.KIND))


class Txn:
    """Builds one ``Transition`` while mutating ``state`` in place. Validation is done."""

    def __init__(self, state: records.ExecutionState, now: float, cfg: HistoryConfig) -> None:
        self.state = state
        self.now = now
        self.cfg = cfg
        self.tr = Transition()
        self._first_event_id = state.next_event_id

    # --- events ------------------------------------------------------------------------

    def append(self, attrs: Any, *, event_time: float | None = None) -> int:
        """Append one event to history now; returns its id."""
        st = self.state
        assert st.status == wire.WorkflowExecutionStatus.RUNNING, "nothing after close (§4.4)"
        event = wire.HistoryEvent(
            event_id=st.next_event_id,
            event_time=self.now if event_time is None else event_time,
            event_type=event_type_of(attrs),
            attributes=attrs,
        )
        st.next_event_id += 1
        self.tr.events.append(event)
        return event.event_id

    def flush_buffered(self) -> bool:
        """Append the buffered events (ids assigned now); True if there were any."""
        st = self.state
        if not st.buffered_events:
            return False
        pending, st.buffered_events = st.buffered_events, []
        started_ids: dict[int, int] = {}
        child_started_ids: dict[int, int] = {}
        for ev in pending:
            attrs = ev.attributes
            if isinstance(attrs, _ACTIVITY_CLOSE) and attrs.started_event_id == BUFFERED_STARTED_ID:
                attrs = dataclasses.replace(
                    attrs, started_event_id=started_ids[attrs.scheduled_event_id]
                )
            elif isinstance(attrs, _CHILD_CLOSE) and attrs.started_event_id == BUFFERED_STARTED_ID:
                attrs = dataclasses.replace(
                    attrs, started_event_id=child_started_ids[attrs.initiated_event_id]
                )
            event_id = self.append(attrs, event_time=ev.event_time)
            if isinstance(attrs, wire.ActivityTaskStartedAttributes):
                started_ids[attrs.scheduled_event_id] = event_id
            elif isinstance(attrs, wire.ChildWorkflowExecutionStartedAttributes):
                child_started_ids[attrs.initiated_event_id] = event_id
                child = st.children.get(attrs.initiated_event_id)
                if child is not None:
                    child.started_event_id = event_id
        return True

    # --- outbox ------------------------------------------------------------------------

    def transfer(self, kind: TransferKind, task_queue: str, scheduled_event_id: int, attempt: int) -> None:
        st = self.state
        self.tr.transfer_tasks.append(
            records.TransferTask(
                kind=kind, namespace=st.namespace, workflow_id=st.workflow_id,
                run_id=st.run_id, task_queue=task_queue,
                scheduled_event_id=scheduled_event_id, attempt=attempt,
            )
        )

    def timer(
        self,
        kind: TimerKind,
        fire_time: float,
        *,
        event_id: int = 0,
        attempt: int = 1,
        timer_id: str | None = None,
        timeout_type: wire.TimeoutType | None = None,
    ) -> None:
        st = self.state
        self.tr.timer_tasks.append(
            records.TimerTask(
                fire_time=fire_time, kind=kind, namespace=st.namespace,
                workflow_id=st.workflow_id, run_id=st.run_id, event_id=event_id,
                attempt=attempt, timer_id=timer_id, timeout_type=timeout_type,
            )
        )

    # --- closing -----------------------------------------------------------------------

    def close(self, attrs: Any) -> None:
        """Append the run's close event and settle its state (DESIGN §4.4: nothing after).

        Buffered events are flushed first so nothing that happened is lost; pending
        activities, timers and the workflow task are dropped (their stale timer and
        transfer tasks find the run closed and do nothing).
        """
        st = self.state
        self.flush_buffered()
        self.append(attrs)
        st.status = _CLOSE_STATUS[type(attrs)]
        st.close_time = self.now
        if isinstance(attrs, wire.WorkflowExecutionCompletedAttributes):
            st.result = list(attrs.result)
        elif isinstance(attrs, wire.WorkflowExecutionFailedAttributes):
            st.failure = attrs.failure
        elif isinstance(attrs, wire.WorkflowExecutionTerminatedAttributes):
            st.failure = wire.Failure(
                message=attrs.reason or "terminated", kind=wire.FailureKind.TERMINATED,
                details=list(attrs.details), identity=attrs.identity or None,
            )
        elif isinstance(attrs, wire.WorkflowExecutionCanceledAttributes):
            st.failure = wire.Failure(
                message="workflow canceled", kind=wire.FailureKind.CANCELED, details=list(attrs.details)
            )
        elif isinstance(attrs, wire.WorkflowExecutionTimedOutAttributes):
            st.failure = wire.Failure(
                message="workflow timed out", kind=wire.FailureKind.TIMEOUT,
                timeout_type=wire.TimeoutType.START_TO_CLOSE,
            )
        st.workflow_task = None
        st.activities.clear()
        st.activity_ids.clear()
        st.timers.clear()
        st.external_requests.clear()
        self._cross_workflow_effects(attrs)
        self.tr.closed = True

    def _cross_workflow_effects(self, attrs: Any) -> None:
        """A closing run tells its parent (unless it continues as new: the chain goes on)
        and applies its parent close policy to its running children."""
        st = self.state
        if st.parent is not None and not isinstance(attrs, wire.WorkflowExecutionContinuedAsNewAttributes):
            self.transfer(TransferKind.CHILD_CLOSED, "", 0, 1)
        for child in st.children.values():
            if child.run_id and child.parent_close_policy != wire.ParentClosePolicy.ABANDON:
                self.transfer(TransferKind.PARENT_CLOSE_POLICY, "", child.initiated_event_id, 1)

    def finish(self) -> Transition:
        """End the transition: enforce the history limit and check invariants on exit.

        A run whose history grew past the limit is terminated, as Temporal does, so it
        stops growing and a person sees why.
        """
        st = self.state
        history_events_max = self.cfg.history_events_max
        if st.status == wire.WorkflowExecutionStatus.RUNNING and st.next_event_id - 1 > history_events_max:
            self.close(
                wire.WorkflowExecutionTerminatedAttributes(
                    reason=(
                        f"history has {st.next_event_id - 1} events; the limit is "
                        f"{history_events_max}: the run was terminated (use continue-as-new "
                        "for long-lived workflows)"
                    ),
                    identity="history-service",
                )
            )
        events = self.tr.events
        assert not events or events[0].event_id == self._first_event_id
        assert st.next_event_id == self._first_event_id + len(events)
        return self.tr
