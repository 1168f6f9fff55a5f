"""Scripted scenarios whose expected output is the whole history, so a behaviour change is a
readable diff."""

from helpers.history_driver import Run, activity, app_failure, complete

from shoal import wire
from shoal.node.history.engine import HistoryEngine
from shoal.node.history.records import TimerKind


def test_design_greeting_sleep_then_flaky_activity_then_result(engine: HistoryEngine) -> None:
    """DESIGN §1's Greeting: a 5 s durable sleep, then say_hello (fails twice), then return."""
    run = Run(engine, now=0.0, input=[b"World"])
    run.run_wt([wire.StartTimerCommand(timer_id="1", start_to_fire_timeout_s=5.0)], at=0.1)
    run.fire(run.timer(TimerKind.USER_TIMER))  # at 5.1
    run.run_wt([activity("1", retry_policy=wire.RetryPolicy(maximum_attempts=5))], at=5.2)
    for attempt, at in ((1, 5.3), (2, 6.4)):
        run.fail_activity(run.poll_activity("1", at=at), app_failure(f"flaky {attempt}"), at=at + 0.1)
        run.fire(run.timer(TimerKind.ACTIVITY_RETRY, attempt=attempt + 1))
    task = run.poll_activity("1", at=8.5)
    assert task.attempt == 3
    run.complete_activity(task, b"Hello, World!", at=8.6)
    run.run_wt([complete(b"Hello, World!")], at=8.7)
    assert [(e.event_id, e.event_type.name) for e in run.history] == [
        (1, "WORKFLOW_EXECUTION_STARTED"),
        (2, "WORKFLOW_TASK_SCHEDULED"),
        (3, "WORKFLOW_TASK_STARTED"),
        (4, "WORKFLOW_TASK_COMPLETED"),
        (5, "TIMER_STARTED"),
        (6, "TIMER_FIRED"),
        (7, "WORKFLOW_TASK_SCHEDULED"),
        (8, "WORKFLOW_TASK_STARTED"),
        (9, "WORKFLOW_TASK_COMPLETED"),
        (10, "ACTIVITY_TASK_SCHEDULED"),
        (11, "ACTIVITY_TASK_STARTED"),
        (12, "ACTIVITY_TASK_COMPLETED"),
        (13, "WORKFLOW_TASK_SCHEDULED"),
        (14, "WORKFLOW_TASK_STARTED"),
        (15, "WORKFLOW_TASK_COMPLETED"),
        (16, "WORKFLOW_EXECUTION_COMPLETED"),
    ]
    started = run.history[10]
    assert started.attributes.attempt == 3 and started.attributes.last_failure.message == "flaky 2"
    assert started.event_time == 8.5
    assert run.state.result == [b"Hello, World!"] and run.state.close_time == 8.7


def test_parallel_activities_finishing_during_a_task_arrive_in_the_next_one(engine: HistoryEngine) -> None:
    run = Run(engine, now=0.0)
    run.run_wt([activity("a"), activity("b"), activity("c")])
    tasks = {a: run.poll_activity(a) for a in "abc"}
    run.complete_activity(tasks["a"])  # schedules WT 10
    wt = run.poll_wt()  # 11
    run.complete_activity(tasks["b"])  # buffered
    run.fail_activity(tasks["c"], app_failure("no", non_retryable=True))  # buffered
    run.complete_wt(wt, [])
    run.run_wt([complete()])
    assert [(e.event_id, e.event_type.name) for e in run.history[4:]] == [
        (5, "ACTIVITY_TASK_SCHEDULED"),
        (6, "ACTIVITY_TASK_SCHEDULED"),
        (7, "ACTIVITY_TASK_SCHEDULED"),
        (8, "ACTIVITY_TASK_STARTED"),
        (9, "ACTIVITY_TASK_COMPLETED"),
        (10, "WORKFLOW_TASK_SCHEDULED"),
        (11, "WORKFLOW_TASK_STARTED"),
        (12, "WORKFLOW_TASK_COMPLETED"),
        (13, "ACTIVITY_TASK_STARTED"),
        (14, "ACTIVITY_TASK_COMPLETED"),
        (15, "ACTIVITY_TASK_STARTED"),
        (16, "ACTIVITY_TASK_FAILED"),
        (17, "WORKFLOW_TASK_SCHEDULED"),
        (18, "WORKFLOW_TASK_STARTED"),
        (19, "WORKFLOW_TASK_COMPLETED"),
        (20, "WORKFLOW_EXECUTION_COMPLETED"),
    ]
    assert run.history[13].attributes.started_event_id == 13
    assert run.history[15].attributes.started_event_id == 15
