"""WorkflowInstance driven by hand-built histories: commands, resolution, replay, failures."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from helpers.history_builder import CONV, Driver, HistoryBuilder, command_types

from shoal import wire
from shoal.sdk import activity, workflow
from shoal.sdk.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType
from shoal.sdk.workflow_instance import WorkflowInstance

TEN_S = timedelta(seconds=10)
Cause = wire.WorkflowTaskFailedCause


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@activity.defn(name="count")
async def count_letters(text: str) -> int:
    return len(text)


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=TEN_S)


@workflow.defn
class MultiStep:
    @workflow.run
    async def run(self, name: str) -> list:
        await asyncio.sleep(5)
        greeting = await workflow.execute_activity(greet, name, start_to_close_timeout=TEN_S)
        loud = await workflow.execute_activity(shout, greeting, start_to_close_timeout=TEN_S)
        return [greeting, loud]


@workflow.defn(name="MultiStep")
class MultiStepChanged:
    """MultiStep after an incompatible change: a different second activity."""

    @workflow.run
    async def run(self, name: str) -> list:
        await asyncio.sleep(5)
        greeting = await workflow.execute_activity(greet, name, start_to_close_timeout=TEN_S)
        n = await workflow.execute_activity(count_letters, greeting, start_to_close_timeout=TEN_S)
        return [greeting, n]


@workflow.defn(name="MultiStep")
class MultiStepMore:
    """MultiStep that starts an extra timer in its second task."""

    @workflow.run
    async def run(self, name: str) -> list:
        await asyncio.sleep(5)
        greeting = await workflow.execute_activity(greet, name, start_to_close_timeout=TEN_S)
        await asyncio.sleep(1)
        return [greeting]


@workflow.defn
class Gather3:
    @workflow.run
    async def run(self) -> list:
        return list(await asyncio.gather(*(
            workflow.execute_activity(greet, n, start_to_close_timeout=TEN_S)
            for n in ("a", "b", "c"))))


# --- first activation, resolution, cached vs. replayed ---------------------------------


def test_first_activation_schedules_the_activity():
    d = Driver(OneActivity, "World")
    act = d.activate()
    assert act.failure is None
    (cmd,) = act.commands
    assert isinstance(cmd, wire.ScheduleActivityTaskCommand)
    assert (cmd.activity_id, cmd.activity_type, cmd.task_queue) == ("1", "greet", "tq")
    assert cmd.start_to_close_timeout_s == 10.0
    assert CONV.from_payloads(cmd.input, [str]) == ["World"]


@pytest.mark.parametrize("replay", [False, True])
def test_completed_activity_resolves_and_workflow_completes(replay):
    d = Driver(OneActivity, "World", replay_every_task=replay)
    d.activate()
    d.history.activity_completed("1", "Hello, World!")
    act = d.activate()
    assert command_types(act) == ["CompleteWorkflowExecutionCommand"]
    assert d.result() == "Hello, World!"


@pytest.mark.parametrize("replay", [False, True])
def test_multi_step_history_runs_to_completion_cached_or_replayed(replay):
    d = Driver(MultiStep, "Ann", replay_every_task=replay)
    assert command_types(d.activate()) == ["StartTimerCommand"]
    d.history.advance(5).timer_fired("1")
    act = d.activate()
    assert [(c.activity_id, c.activity_type) for c in act.commands] == [("2", "greet")]
    d.history.activity_completed("2", "Hello, Ann!")
    act = d.activate()
    assert [(c.activity_id, c.activity_type) for c in act.commands] == [("3", "shout")]
    d.history.activity_completed("3", "HELLO, ANN!")
    assert command_types(d.activate()) == ["CompleteWorkflowExecutionCommand"]
    assert d.result() == ["Hello, Ann!", "HELLO, ANN!"]


def test_full_replay_of_closed_history_matches_without_new_commands():
    d = Driver(MultiStep, "Ann")
    d.activate()
    d.history.advance(5).timer_fired("1")
    d.activate()
    d.history.activity_completed("2", "Hello, Ann!")
    d.activate()
    d.history.activity_completed("3", "HELLO, ANN!")
    d.activate()
    fresh = d.new_instance()
    act = fresh.activate(d.history.events)  # ends with WorkflowExecutionCompleted
    assert act.failure is None and act.commands == []
    assert fresh.is_closed


def test_replay_gives_the_same_commands_as_the_original_run():
    d = Driver(MultiStep, "Ann")
    d.activate()
    d.history.advance(5).timer_fired("1")
    d.activate()
    d.history.activity_completed("2", "Hello, Ann!")
    d.history.start_task()
    cached = d.instance.activate(d.history.since(d.seen))
    fresh = d.new_instance().activate(d.history.events)
    assert cached.commands == fresh.commands
    assert [c.activity_type for c in fresh.commands] == ["shout"]


# --- non-determinism ------------------------------------------------------------------


def _multistep_history_until_second_activity() -> HistoryBuilder:
    d = Driver(MultiStep, "Ann")
    d.activate()
    d.history.advance(5).timer_fired("1")
    d.activate()
    d.history.activity_completed("2", "Hello, Ann!")
    d.activate()  # records ScheduleActivityTask shout
    d.history.activity_completed("3", "HELLO, ANN!")
    d.history.start_task()
    return d.history


def _instance(cls: type) -> WorkflowInstance:
    return WorkflowInstance(workflow.WorkflowDefinition.from_class(cls), namespace="default",
                            task_queue="tq", workflow_id="wf-1", run_id="run-1",
                            converter=CONV)


def test_changed_activity_is_a_nondeterminism_failure_naming_both_commands():
    act = _instance(MultiStepChanged).activate(_multistep_history_until_second_activity().events)
    assert act.commands == []
    assert act.cause == Cause.NON_DETERMINISTIC_ERROR
    assert act.failure is not None and act.failure.type == "NondeterminismError"
    assert "activity_type='shout'" in act.failure.message  # what history has
    assert "activity_type='count'" in act.failure.message  # what the code produced


def test_extra_command_during_replay_is_a_nondeterminism_failure():
    act = _instance(MultiStepMore).activate(_multistep_history_until_second_activity().events)
    assert act.cause == Cause.NON_DETERMINISTIC_ERROR
    assert "StartTimer(timer_id='3'" in act.failure.message


@workflow.defn(name="MultiStep")
class MultiStepFewer:
    @workflow.run
    async def run(self, name: str) -> list:
        await asyncio.sleep(5)
        await asyncio.Event().wait()  # never schedules the activities history has
        return []


def test_missing_command_during_replay_is_a_nondeterminism_failure():
    act = _instance(MultiStepFewer).activate(_multistep_history_until_second_activity().events)
    assert act.cause == Cause.NON_DETERMINISTIC_ERROR
    assert "ACTIVITY_TASK_SCHEDULED(activity_id='2'" in act.failure.message
    assert "no matching command" in act.failure.message


# --- gather and completion order --------------------------------------------------------


@pytest.mark.parametrize("order", [("1", "2", "3"), ("3", "1", "2"), ("2", "3", "1")])
@pytest.mark.parametrize("replay", [False, True])
def test_gather_of_three_activities_schedules_three_and_resolves_in_any_order(order, replay):
    d = Driver(Gather3, replay_every_task=replay)
    act = d.activate()
    assert [c.activity_id for c in act.commands] == ["1", "2", "3"]
    names = {"1": "a", "2": "b", "3": "c"}
    for i, aid in enumerate(order):
        d.history.activity_completed(aid, f"Hello, {names[aid]}!")
        act = d.activate()
        if i < 2:
            assert act.commands == [] and act.failure is None
    assert d.result() == ["Hello, a!", "Hello, b!", "Hello, c!"]


def test_two_completions_in_one_task_resolve_together():
    d = Driver(Gather3)
    d.activate()
    d.history.activity_completed("2", "B").activity_completed("1", "A")
    assert d.activate().commands == []
    d.history.activity_completed("3", "C")
    d.activate()
    assert d.result() == ["A", "B", "C"]


# --- timers -------------------------------------------------------------------------------


@workflow.defn
class WaitForActivity:
    @workflow.run
    async def run(self) -> str:
        try:
            return await asyncio.wait_for(
                workflow.execute_activity(greet, "x", start_to_close_timeout=TEN_S), 5)
        except asyncio.TimeoutError:
            return "timed out"


@workflow.defn
class SleepRace:
    @workflow.run
    async def run(self) -> str:
        try:
            await asyncio.wait_for(asyncio.sleep(100), timeout=5)
        except asyncio.TimeoutError:
            return "timeout"
        return "slept"


@pytest.mark.parametrize("replay", [False, True])
def test_sleep_starts_a_timer_and_timer_fired_resumes(replay):
    d = Driver(MultiStep, "Ann", replay_every_task=replay)
    (cmd,) = d.activate().commands
    assert cmd == wire.StartTimerCommand(timer_id="1", start_to_fire_timeout_s=5.0)
    assert d.activate().commands == []  # nothing happened: still blocked on the timer
    d.history.advance(5).timer_fired("1")
    assert command_types(d.activate()) == ["ScheduleActivityTaskCommand"]


@pytest.mark.parametrize("replay", [False, True])
def test_wait_for_activity_winning_cancels_the_timeout_timer(replay):
    d = Driver(WaitForActivity, replay_every_task=replay)
    act = d.activate()
    # wait_for arms its timeout before the wrapped coroutine first runs.
    assert command_types(act) == ["StartTimerCommand", "ScheduleActivityTaskCommand"]
    assert (act.commands[0].timer_id, act.commands[1].activity_id) == ("1", "2")
    d.history.activity_completed("2", "Hello, x!")
    act = d.activate()
    assert act.commands[0] == wire.CancelTimerCommand(timer_id="1")
    assert command_types(act) == ["CancelTimerCommand", "CompleteWorkflowExecutionCommand"]
    assert d.result() == "Hello, x!"


@pytest.mark.parametrize("replay", [False, True])
def test_wait_for_timeout_cancels_the_inner_sleep_timer(replay):
    d = Driver(SleepRace, replay_every_task=replay)
    act = d.activate()
    assert [(c.timer_id, c.start_to_fire_timeout_s) for c in act.commands] == [
        ("1", 5.0), ("2", 100.0)]
    d.history.advance(5).timer_fired("1")
    act = d.activate()
    assert command_types(act) == ["CancelTimerCommand", "CompleteWorkflowExecutionCommand"]
    assert act.commands[0] == wire.CancelTimerCommand(timer_id="2")
    assert d.result() == "timeout"


def test_wait_for_timeout_in_the_same_task_as_completion_sends_no_cancel():
    d = Driver(WaitForActivity)
    d.activate()
    d.history.advance(5).activity_completed("2", "late").timer_fired("1")
    act = d.activate()
    # Both arrived: the activity came first in history, so it wins; the fired timer
    # needs no CancelTimer.
    assert command_types(act) == ["CompleteWorkflowExecutionCommand"]
    assert d.result() == "late"


@workflow.defn
class StartAndCancelInOneTask:
    @workflow.run
    async def run(self) -> str:
        sleeper = asyncio.ensure_future(asyncio.sleep(30))
        await asyncio.sleep(0)  # let the sleeper start its timer
        sleeper.cancel()
        await asyncio.sleep(1)
        return "done"


def test_timer_started_and_cancelled_in_one_task_is_never_sent():
    d = Driver(StartAndCancelInOneTask)
    act = d.activate()
    assert act.commands == [wire.StartTimerCommand(timer_id="2", start_to_fire_timeout_s=1.0)]
    d.history.advance(1).timer_fired("2")
    d.activate()
    assert d.result() == "done"


# --- activity outcomes -------------------------------------------------------------------


@workflow.defn
class CatchActivityError:
    @workflow.run
    async def run(self) -> list:
        try:
            await workflow.execute_activity(greet, "x", start_to_close_timeout=TEN_S)
        except ActivityError as err:
            cause = err.cause
            out = [type(err).__name__, err.activity_type, err.activity_id,
                   err.retry_state.name, type(cause).__name__, cause.message]
            if isinstance(cause, ApplicationError):
                out += [cause.type, list(cause.details), cause.non_retryable]
            if isinstance(cause, TimeoutError):
                out += [cause.type == TimeoutType.START_TO_CLOSE]
            return out
        return []


def test_activity_failure_reaches_workflow_as_activity_error_with_application_cause():
    d = Driver(CatchActivityError)
    d.activate()
    d.history.activity_failed("1", wire.Failure(
        message="boom", type="Boom", details=CONV.to_payloads([{"k": 1}, "two"]),
        non_retryable=True), retry_state=wire.RetryState.NON_RETRYABLE_FAILURE)
    d.activate()
    assert d.result() == ["ActivityError", "greet", "1", "NON_RETRYABLE_FAILURE",
                          "ApplicationError", "boom", "Boom", [{"k": 1}, "two"], True]


def test_activity_timeout_reaches_workflow_as_activity_error_with_timeout_cause():
    d = Driver(CatchActivityError)
    d.activate()
    d.history.activity_timed_out("1")
    d.activate()
    assert d.result() == ["ActivityError", "greet", "1", "TIMEOUT", "TimeoutError",
                          "activity timeout", True]


# --- workflow failure vs. workflow task failure -----------------------------------------


@workflow.defn
class FailsWithChain:
    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.execute_activity(greet, "x", start_to_close_timeout=TEN_S)
        except ActivityError as err:
            raise ApplicationError("gave up", "why", type="GaveUp") from err


def test_application_error_fails_the_workflow_with_the_cause_chain():
    d = Driver(FailsWithChain)
    d.activate()
    d.history.activity_failed("1", wire.Failure(message="boom", type="Boom"))
    act = d.activate()
    assert act.failure is None
    (cmd,) = act.commands
    assert isinstance(cmd, wire.FailWorkflowExecutionCommand)
    f = cmd.failure
    assert (f.message, f.type, f.kind) == ("gave up", "GaveUp", wire.FailureKind.APPLICATION)
    assert CONV.from_payloads(f.details) == ["why"]
    assert "raise ApplicationError" in f.stack_trace
    assert f.cause.kind == wire.FailureKind.ACTIVITY and f.cause.activity_type == "greet"
    assert (f.cause.cause.message, f.cause.cause.type) == ("boom", "Boom")
    assert isinstance(d.history.events[-1].attributes, wire.WorkflowExecutionFailedAttributes)


@workflow.defn
class Buggy:
    broken = True  # flipped by the test to model deploying a fix

    @workflow.run
    async def run(self) -> str:
        await asyncio.sleep(1)
        if Buggy.broken:
            return str(1 / 0)
        return "fixed"


def test_bug_in_workflow_code_fails_the_task_and_the_retry_runs_from_the_same_point():
    Buggy.broken = True
    d = Driver(Buggy)
    d.activate()
    d.history.advance(1).timer_fired("1")
    d.history.start_task()
    act = d.instance.activate(d.history.since(d.seen))
    d.seen = d.history.last_id
    assert act.commands == [] and act.cause == Cause.WORKFLOW_WORKER_UNHANDLED_FAILURE
    assert act.failure.type == "ZeroDivisionError"
    assert "division by zero" in act.failure.message and "1 / 0" in act.failure.stack_trace
    d.history.fail_task()
    Buggy.broken = False
    act = d.activate()  # the same cached instance: it rebuilds from full history
    assert command_types(act) == ["CompleteWorkflowExecutionCommand"]
    assert d.result() == "fixed"


def test_timed_out_task_attempt_is_rerun_by_a_cached_instance():
    d = Driver(MultiStep, "Ann")
    d.activate()
    d.history.advance(5).timer_fired("1")
    d.history.start_task()
    first = d.instance.activate(d.history.since(d.seen))
    d.seen = d.history.last_id
    d.history.time_out_task()  # the server never saw those commands
    again = d.activate()
    assert again.commands == first.commands
    assert [c.activity_id for c in again.commands] == ["2"]


def test_history_gap_asks_for_a_sticky_reset():
    d = Driver(MultiStep, "Ann")
    d.activate()
    d.history.advance(5).timer_fired("1").start_task()
    act = d.instance.activate(d.history.since(d.seen + 1))  # one event missing
    assert act.cause == Cause.RESET_STICKY_TASK_QUEUE and act.commands == []
    full = d.instance.activate(d.history.events)  # starting over from event 1 works
    assert command_types(full) == ["ScheduleActivityTaskCommand"]


@workflow.defn
class BadArgs:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


def test_undecodable_workflow_input_fails_the_task():
    act = _instance(BadArgs).activate(HistoryBuilder("BadArgs", "not a number").start_task().events)
    assert act.cause == Cause.WORKFLOW_WORKER_UNHANDLED_FAILURE
    assert "expected an integer" in act.failure.message
