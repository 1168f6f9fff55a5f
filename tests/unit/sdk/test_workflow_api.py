"""The workflow API and the asyncio surface of the deterministic loop."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from helpers.history_builder import CONV, Driver, HistoryBuilder, command_types

from shoal import wire
from shoal.sdk import activity, workflow
from shoal.sdk.common import RetryPolicy
from shoal.sdk.exceptions import ActivityError, CancelledError

TEN_S = timedelta(seconds=10)


@activity.defn
async def echo(value: str) -> str:
    return value


def _run_to_end(d: Driver, step) -> None:
    """Activate until the workflow closes; ``step(d, activation)`` adds outcomes."""
    for _ in range(20):
        act = d.activate()
        assert act.failure is None, act.failure
        if any(isinstance(c, wire.CompleteWorkflowExecutionCommand) for c in act.commands):
            return
        step(d, act)
    raise AssertionError("workflow did not finish")


def _fire_timers_and_complete_activities(d: Driver, act) -> None:
    for c in act.commands:
        if isinstance(c, wire.StartTimerCommand):
            d.history.advance(c.start_to_fire_timeout_s).timer_fired(c.timer_id)
        elif isinstance(c, wire.ScheduleActivityTaskCommand):
            d.history.activity_completed(c.activity_id, CONV.from_payloads(c.input)[0])


# --- deterministic values ------------------------------------------------------------


@workflow.defn
class Values:
    @workflow.run
    async def run(self) -> list:
        first = [str(workflow.uuid4()), workflow.random().randint(0, 10**9),
                 workflow.now().isoformat(), asyncio.get_running_loop().time(),
                 workflow.info().workflow_id, workflow.info().workflow_type,
                 workflow.info().attempt, workflow.info().start_time.isoformat()]
        await asyncio.sleep(60)
        second = [str(workflow.uuid4()), workflow.now().isoformat(), workflow.time()]
        return [first, second]


@pytest.mark.parametrize("replay", [False, True])
def test_now_uuid4_random_and_info_are_stable_across_replay(replay):
    d = Driver(Values, replay_every_task=replay)
    started = d.history.now
    _run_to_end(d, _fire_timers_and_complete_activities)
    first, second = d.result()
    assert first[3] == started and first[2] == datetime.fromtimestamp(started, timezone.utc).isoformat()
    assert first[4:] == ["wf-1", "Values", 1, datetime.fromtimestamp(started, timezone.utc).isoformat()]
    assert second[2] == started + 60  # the second task started after the timer
    assert uuid.UUID(first[0]).version == 4 and first[0] != second[0]
    # A fresh instance replaying the closed history reproduces the same values.
    other = Driver(Values, replay_every_task=not replay)
    _run_to_end(other, _fire_timers_and_complete_activities)
    assert other.result() == [first, second]


@workflow.defn
class RunIdSeeded:
    @workflow.run
    async def run(self) -> str:
        return str(workflow.uuid4())


def test_uuid4_depends_on_the_run_id():
    d = Driver(RunIdSeeded)
    d.activate()
    instance = workflow.WorkflowDefinition.from_class(RunIdSeeded)
    from shoal.sdk.workflow_instance import WorkflowInstance

    other = WorkflowInstance(instance, namespace="default", task_queue="tq", workflow_id="wf-1",
                             run_id="run-2", converter=CONV)
    act = other.activate(HistoryBuilder("RunIdSeeded").start_task().events)
    assert CONV.from_payloads(act.commands[0].result) != [d.result()]


def test_workflow_api_outside_a_workflow_raises():
    with pytest.raises(RuntimeError, match="Not in workflow event loop"):
        workflow.now()
    assert not workflow.in_workflow()


# --- wait_condition -----------------------------------------------------------------------


@workflow.defn
class Condition:
    def __init__(self) -> None:
        self.results: list[str] = []

    async def _collect(self, v: str) -> None:
        self.results.append(
            await workflow.execute_activity(echo, v, start_to_close_timeout=TEN_S))

    @workflow.run
    async def run(self) -> list:
        for v in ("a", "b"):
            asyncio.create_task(self._collect(v))
        await workflow.wait_condition(lambda: len(self.results) == 2)
        try:
            await workflow.wait_condition(lambda: False, timeout=timedelta(seconds=30))
        except asyncio.TimeoutError:
            self.results.append("timeout")
        return self.results


def test_wait_condition_resumes_when_true_and_times_out_with_a_timer():
    d = Driver(Condition)
    act = d.activate()
    assert [c.activity_id for c in act.commands] == ["1", "2"]
    d.history.activity_completed("2", "b")
    assert d.activate().commands == []  # one of two: the condition is still false
    d.history.activity_completed("1", "a")
    act = d.activate()
    assert act.commands == [wire.StartTimerCommand(timer_id="3", start_to_fire_timeout_s=30.0)]
    d.history.advance(30).timer_fired("3")
    d.activate()
    assert d.result() == ["b", "a", "timeout"]


# --- asyncio primitives on the workflow loop --------------------------------------------


@workflow.defn
class Primitives:
    @workflow.run
    async def run(self) -> list:
        out: list = []
        event, lock, queue = asyncio.Event(), asyncio.Lock(), asyncio.Queue()

        async def producer() -> None:
            async with lock:
                await asyncio.sleep(1)
                await queue.put("from producer")
            event.set()

        task = asyncio.create_task(producer())
        await event.wait()
        out.append(await queue.get())
        out.append(await asyncio.shield(task))
        done, pending = await asyncio.wait(
            [asyncio.ensure_future(asyncio.sleep(5, "five")),
             asyncio.ensure_future(asyncio.sleep(2, "two"))],
            return_when=asyncio.FIRST_COMPLETED)
        out.append([t.result() for t in done])
        for t in pending:
            t.cancel()
        out.append([type(r).__name__ for r in await asyncio.gather(*pending, return_exceptions=True)])
        out.append(asyncio.current_task() is not None)
        out.append(asyncio.get_event_loop() is asyncio.get_running_loop())
        return out


def test_event_lock_queue_shield_and_wait_work_on_the_workflow_loop():
    d = Driver(Primitives)
    assert d.activate().commands == [wire.StartTimerCommand(timer_id="1", start_to_fire_timeout_s=1.0)]
    d.history.advance(1).timer_fired("1")
    act = d.activate()
    assert [(c.timer_id, c.start_to_fire_timeout_s) for c in act.commands] == [("2", 5.0), ("3", 2.0)]
    d.history.advance(2).timer_fired("3")
    act = d.activate()
    assert act.commands[0] == wire.CancelTimerCommand(timer_id="2")
    assert command_types(act) == ["CancelTimerCommand", "CompleteWorkflowExecutionCommand"]
    assert d.result() == ["from producer", None, ["two"], ["CancelledError"], True, True]


def test_activation_leaves_no_running_loop_behind():
    d = Driver(Primitives)
    d.activate()
    assert asyncio.events._get_running_loop() is None


async def test_activation_works_inside_trio_and_restores_state():
    d = Driver(Primitives)
    act = d.activate()
    assert command_types(act) == ["StartTimerCommand"]
    assert asyncio.events._get_running_loop() is None


@workflow.defn
class CallbackBug:
    @workflow.run
    async def run(self) -> None:
        asyncio.get_running_loop().call_soon(lambda: 1 / 0)
        await asyncio.sleep(1)


def test_exception_in_a_plain_callback_fails_the_task():
    act = Driver(CallbackBug).activate()
    assert act.cause == wire.WorkflowTaskFailedCause.WORKFLOW_WORKER_UNHANDLED_FAILURE
    assert act.failure.type == "ZeroDivisionError"


# --- activity options -----------------------------------------------------------------


@workflow.defn
class Options:
    @workflow.run
    async def run(self) -> int:
        h = workflow.start_activity(
            "by-name", args=["x", 2], task_queue="other", schedule_to_close_timeout=TEN_S,
            heartbeat_timeout=timedelta(seconds=3), activity_id="custom",
            retry_policy=RetryPolicy(maximum_attempts=5), result_type=int)
        assert isinstance(h, workflow.ActivityHandle) and isinstance(h, asyncio.Task)
        return await h


def test_start_activity_options_reach_the_command_and_result_type_decodes():
    d = Driver(Options)
    (cmd,) = d.activate().commands
    assert (cmd.activity_id, cmd.activity_type, cmd.task_queue) == ("custom", "by-name", "other")
    assert CONV.from_payloads(cmd.input) == ["x", 2]
    assert (cmd.schedule_to_close_timeout_s, cmd.heartbeat_timeout_s) == (10.0, 3.0)
    assert cmd.start_to_close_timeout_s is None
    assert cmd.retry_policy == wire.RetryPolicy(maximum_attempts=5)
    d.history.activity_completed("custom", 7)
    d.activate()
    assert d.result() == 7


@workflow.defn
class NoTimeout:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(echo, "x")


def test_activity_without_a_timeout_fails_the_task():
    act = Driver(NoTimeout).activate()
    assert "start_to_close_timeout or schedule_to_close_timeout" in act.failure.message


# --- logger -----------------------------------------------------------------------------


@workflow.defn
class Logs:
    @workflow.run
    async def run(self) -> None:
        workflow.logger.info("task at %s", workflow.time())
        await asyncio.sleep(1)
        workflow.logger.info("after sleep")


def test_logger_is_silent_while_replaying(caplog):
    caplog.set_level(logging.INFO, logger="shoal.workflow")
    d = Driver(Logs, replay_every_task=True)
    d.activate()
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [f"task at {d.history.now}"]
    assert caplog.records[0].workflow_info["workflow_id"] == "wf-1"
    caplog.clear()
    d.history.advance(1).timer_fired("1")
    d.activate()  # a fresh instance replays the first task silently
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["after sleep"]


@workflow.defn
class TimeoutBlock:
    @workflow.run
    async def run(self) -> str:
        try:
            async with asyncio.timeout(10):
                await workflow.execute_activity(echo, "slow", start_to_close_timeout=TEN_S)
        except TimeoutError:
            return "timed out"
        except ActivityError as err:
            # As temporalio: the cancelled activity handle raises ActivityError (caused by
            # CancelledError), which asyncio.timeout passes through.
            assert isinstance(err.cause, CancelledError)
            return "timed out, activity cancelled"
        return "in time"


def test_asyncio_timeout_block_uses_a_durable_timer_and_cancels_the_activity():
    d = Driver(TimeoutBlock)
    act = d.activate()
    assert command_types(act) == ["StartTimerCommand", "ScheduleActivityTaskCommand"]
    d.history.advance(10).timer_fired("1")
    act = d.activate()
    assert command_types(act)[0] == "RequestCancelActivityTaskCommand"
    assert d.result() == "timed out, activity cancelled"


@workflow.defn
class Cleanup:
    cleaned: list = []

    @workflow.run
    async def run(self) -> None:
        try:
            await asyncio.sleep(100)
        finally:
            Cleanup.cleaned.append((workflow.in_workflow(), asyncio.get_running_loop().time()))
            await asyncio.sleep(1)  # a command during teardown is dropped, not an error


def test_close_runs_finally_blocks_on_the_workflow_loop():
    Cleanup.cleaned = []
    d = Driver(Cleanup)
    d.activate()
    d.instance.close()
    assert Cleanup.cleaned == [(True, d.history.now)]
    assert asyncio.events._get_running_loop() is None


@workflow.defn
class LocalAndTypo:
    typo = False

    @workflow.run
    async def run(self) -> str:
        if LocalAndTypo.typo:
            return await workflow.execute_activity(echo, "x", start_to_close_timout=TEN_S)
        return await workflow.execute_local_activity(
            echo, "x", start_to_close_timeout=TEN_S, local_retry_threshold=TEN_S)


def test_local_activity_runs_as_an_activity_and_unknown_options_are_refused():
    LocalAndTypo.typo = False
    (cmd,) = Driver(LocalAndTypo).activate().commands
    assert cmd.activity_type == "echo"
    LocalAndTypo.typo = True
    act = Driver(LocalAndTypo).activate()
    assert "start_to_close_timout" in act.failure.message
