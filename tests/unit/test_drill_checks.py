"""The drill's checks (tests/helpers/drill.py) on hand-built histories: they must name each
kind of violation the issue 7 drill looks for, and place a kill in the right phase."""

from __future__ import annotations

from types import SimpleNamespace

from shoal import wire

from helpers.drill import DRILL_ACTIVITIES, Driven, drill_result, phase_at, run_problems
from helpers.history_builder import HistoryBuilder


def drill_history(*, signals: int = 1, completions: int = 1) -> HistoryBuilder:
    """A DrillChain run as the server records it, one second between steps: signal(s),
    DRILL_ACTIVITIES activities (each completed ``completions`` times), a timer, the close."""
    b = HistoryBuilder("DrillChain", 1)
    for _ in range(signals):
        b.advance(1).add(wire.WorkflowExecutionSignaledAttributes(signal_name="bump"))
    for k in range(DRILL_ACTIVITIES):
        aid = str(k + 1)
        b.advance(1)
        b.scheduled[aid] = b.add(wire.ActivityTaskScheduledAttributes(
            activity_id=aid, activity_type="drill_double", task_queue="tq")).event_id
        b.advance(1).activity_started(aid)
        for _ in range(completions):
            b.activity_completed(aid, 2 ** (k + 1))
    b.advance(1)
    b.timers["t"] = b.add(wire.TimerStartedAttributes(
        timer_id="t", start_to_fire_timeout_s=1.0)).event_id
    b.advance(1).timer_fired("t")
    b.advance(1).add(wire.WorkflowExecutionCompletedAttributes())
    return b


def driven(b: HistoryBuilder, *, result: int, signals_acked: int = 1) -> Driven:
    d = Driven(index=1, handle=SimpleNamespace(id="wf-1"),  # type: ignore[arg-type]
               signals_acked=signals_acked, result=result)
    d.events = b.events
    return d


def test_a_clean_run_has_no_problems() -> None:
    assert run_problems(driven(drill_history(), result=drill_result(1)),
                        drill_result(1), DRILL_ACTIVITIES) == []


def test_each_violation_is_named() -> None:
    ok = drill_result(1)
    cases = [
        (driven(drill_history(), result=ok + 1), "result"),
        (driven(drill_history(signals=2), result=ok), "signals acknowledged"),
        (driven(drill_history(), result=ok, signals_acked=2), "signals acknowledged"),
        (driven(drill_history(completions=2), result=ok), "more than one outcome"),
    ]
    for d, phrase in cases:
        problems = run_problems(d, ok, DRILL_ACTIVITIES)
        assert any(phrase in p for p in problems), (phrase, problems)
    twice_closed = drill_history()
    twice_closed.add(wire.WorkflowExecutionCompletedAttributes())
    problems = run_problems(driven(twice_closed, result=ok), ok, DRILL_ACTIVITIES)
    assert any("close events" in p for p in problems)
    assert any("2 completed events" in p for p in problems)


def test_a_kill_is_placed_in_the_phase_the_history_was_in() -> None:
    events = drill_history().events
    t = {e.event_type: e.event_time for e in events}  # the last of each type
    E = wire.EventType
    first_scheduled = next(e.event_time for e in events if e.event_type == E.ACTIVITY_TASK_SCHEDULED)
    assert phase_at(events, t[E.WORKFLOW_EXECUTION_SIGNALED] - 0.5) == "waiting for a signal"
    assert phase_at(events, first_scheduled - 0.5) == "in a workflow task"
    assert phase_at(events, first_scheduled + 0.5) == "in an activity"
    assert phase_at(events, t[E.TIMER_STARTED] + 0.5) == "in a timer"
    assert phase_at(events, t[E.WORKFLOW_EXECUTION_COMPLETED]) == "closed"
