"""DESIGN §4 invariants 4 and 5 on a run's history, as a client fetches it."""

from __future__ import annotations

from shoal import wire

E = wire.EventType
CLOSE_EVENTS = frozenset({
    E.WORKFLOW_EXECUTION_COMPLETED, E.WORKFLOW_EXECUTION_FAILED, E.WORKFLOW_EXECUTION_TIMED_OUT,
    E.WORKFLOW_EXECUTION_CANCELED, E.WORKFLOW_EXECUTION_TERMINATED,
    E.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
})
ACTIVITY_OUTCOMES = frozenset({
    E.ACTIVITY_TASK_COMPLETED, E.ACTIVITY_TASK_FAILED, E.ACTIVITY_TASK_TIMED_OUT,
    E.ACTIVITY_TASK_CANCELED,
})


def history_problems(events: list[wire.HistoryEvent]) -> list[str]:
    """What is wrong with a run's history (empty: nothing).

    Invariant 4: event ids dense from 1, exactly one start (first), at most one close event
    and nothing after it. Invariant 5: each scheduled activity's outcome at most once, and
    an outcome only for a scheduled activity.
    """
    problems: list[str] = []
    ids = [e.event_id for e in events]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"event ids are not dense from 1: {ids[:5]}...{ids[-5:]}")
    starts = [e for e in events if e.event_type == E.WORKFLOW_EXECUTION_STARTED]
    if len(starts) != 1 or (events and events[0].event_type != E.WORKFLOW_EXECUTION_STARTED):
        problems.append(f"{len(starts)} start events, first is {events[0].event_type if events else None}")
    closes = [i for i, e in enumerate(events) if e.event_type in CLOSE_EVENTS]
    if len(closes) > 1:
        problems.append(f"{len(closes)} close events")
    if closes and closes[0] != len(events) - 1:
        problems.append(f"{len(events) - 1 - closes[0]} events after the close")
    scheduled = {e.event_id for e in events if e.event_type == E.ACTIVITY_TASK_SCHEDULED}
    outcomes: dict[int, int] = {}
    for e in events:
        if e.event_type in ACTIVITY_OUTCOMES:
            sid = e.attributes.scheduled_event_id
            outcomes[sid] = outcomes.get(sid, 0) + 1
            if sid not in scheduled:
                problems.append(f"activity outcome for unscheduled event {sid}")
    twice = sorted(sid for sid, n in outcomes.items() if n > 1)
    if twice:
        problems.append(f"activities with more than one outcome: {twice}")
    return problems
