"""Pure checks of a run's history: DESIGN §4 invariant 4, plus the engine's own rules.

Owns: ``check_history(events) -> list[str]``, called by unit tests after every scenario and
by the integration tests and simulator on every history they read. Must not: raise on a
bad history (it reports), do I/O, or depend on the engine's state.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal import wire

E = wire.EventType

CLOSE_EVENTS = frozenset({
    E.WORKFLOW_EXECUTION_COMPLETED,
    E.WORKFLOW_EXECUTION_FAILED,
    E.WORKFLOW_EXECUTION_TIMED_OUT,
    E.WORKFLOW_EXECUTION_CANCELED,
    E.WORKFLOW_EXECUTION_TERMINATED,
    E.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
})

_WT_END = frozenset({E.WORKFLOW_TASK_COMPLETED, E.WORKFLOW_TASK_FAILED, E.WORKFLOW_TASK_TIMED_OUT})
_ACTIVITY_END = frozenset({
    E.ACTIVITY_TASK_COMPLETED, E.ACTIVITY_TASK_FAILED, E.ACTIVITY_TASK_TIMED_OUT, E.ACTIVITY_TASK_CANCELED,
})


def check_history(events: Sequence[wire.HistoryEvent]) -> list[str]:
    """List every violation in one run's history (empty when it is valid).

    Invariant 4: event ids dense from 1, exactly one WorkflowExecutionStarted (the first
    event), at most one close event, nothing after it. Also checked, because the engine
    promises them: a workflow task's Started names an earlier Scheduled and its end event
    comes right after Started; an activity ends at most once (invariant 5), after it was
    scheduled, and its ActivityTaskStarted comes right before or with its end.
    """
    problems: list[str] = []
    if not events:
        return ["history is empty: it must start with WorkflowExecutionStarted"]
    problems += _check_ids_and_lifecycle(events)
    problems += _check_workflow_tasks(events)
    problems += _check_activities(events)
    problems += _check_cancellation(events)
    return problems


def _check_ids_and_lifecycle(events: Sequence[wire.HistoryEvent]) -> list[str]:
    problems: list[str] = []
    for i, ev in enumerate(events):
        if ev.event_id != i + 1:
            problems.append(f"event #{i + 1} has id {ev.event_id}: ids must be dense from 1")
            break
    if events[0].event_type != E.WORKFLOW_EXECUTION_STARTED:
        problems.append(f"first event is {events[0].event_type.name}, not WORKFLOW_EXECUTION_STARTED")
    starts = [ev.event_id for ev in events if ev.event_type == E.WORKFLOW_EXECUTION_STARTED]
    if len(starts) > 1:
        problems.append(f"{len(starts)} WorkflowExecutionStarted events (ids {starts}); exactly one allowed")
    closes = [ev.event_id for ev in events if ev.event_type in CLOSE_EVENTS]
    if len(closes) > 1:
        problems.append(f"{len(closes)} close events (ids {closes}); at most one allowed")
    if closes and closes[0] != events[-1].event_id:
        problems.append(
            f"close event {closes[0]} is followed by {events[-1].event_id - closes[0]} more events"
        )
    return problems


def _check_workflow_tasks(events: Sequence[wire.HistoryEvent]) -> list[str]:
    problems: list[str] = []
    by_id = {ev.event_id: ev for ev in events}
    for ev in events:
        attrs = ev.attributes
        if ev.event_type == E.WORKFLOW_TASK_STARTED:
            sched = by_id.get(attrs.scheduled_event_id)
            if sched is None or sched.event_type != E.WORKFLOW_TASK_SCHEDULED or sched.event_id >= ev.event_id:
                problems.append(
                    f"WorkflowTaskStarted {ev.event_id} names {attrs.scheduled_event_id}, "
                    "not an earlier WorkflowTaskScheduled"
                )
        elif ev.event_type in _WT_END and attrs.started_event_id:
            if attrs.started_event_id != ev.event_id - 1:
                problems.append(
                    f"{ev.event_type.name} {ev.event_id} does not directly follow its "
                    f"WorkflowTaskStarted {attrs.started_event_id}"
                )
    return problems


def _check_activities(events: Sequence[wire.HistoryEvent]) -> list[str]:
    problems: list[str] = []
    scheduled: set[int] = set()
    ended: set[int] = set()
    started_of: dict[int, int] = {}
    for ev in events:
        attrs = ev.attributes
        if ev.event_type == E.ACTIVITY_TASK_SCHEDULED:
            scheduled.add(ev.event_id)
        elif ev.event_type == E.ACTIVITY_TASK_STARTED:
            sid = attrs.scheduled_event_id
            if sid not in scheduled or sid in ended or sid in started_of:
                problems.append(f"ActivityTaskStarted {ev.event_id} for activity {sid} not waiting to start")
            started_of[sid] = ev.event_id
        elif ev.event_type in _ACTIVITY_END:
            sid = attrs.scheduled_event_id
            if sid not in scheduled:
                problems.append(f"{ev.event_type.name} {ev.event_id} names unscheduled activity {sid}")
            if sid in ended:
                problems.append(f"activity {sid} ended twice (again at {ev.event_id})")
            if attrs.started_event_id != started_of.get(sid, 0):
                problems.append(
                    f"{ev.event_type.name} {ev.event_id} names started event "
                    f"{attrs.started_event_id}, expected {started_of.get(sid, 0)}"
                )
            ended.add(sid)
    return problems


def _check_cancellation(events: Sequence[wire.HistoryEvent]) -> list[str]:
    """A cancel request is recorded once; a run closes as canceled only after one."""
    requests = [ev.event_id for ev in events if ev.event_type == E.WORKFLOW_EXECUTION_CANCEL_REQUESTED]
    problems = []
    if len(requests) > 1:
        problems.append(f"{len(requests)} WorkflowExecutionCancelRequested events (ids {requests}); at most one")
    for ev in events:
        if ev.event_type == E.WORKFLOW_EXECUTION_CANCELED and not (requests and requests[0] < ev.event_id):
            problems.append(f"WorkflowExecutionCanceled {ev.event_id} without an earlier cancel request")
    return problems
