"""Temporal-style programs ported to shoal (imports, trio.run, trio.sleep, address changed).

Each test is a sample a temporalio user would write, run against a real node process.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
import trio

from shoal import activity, workflow
from shoal.client import Client, WorkflowFailureError
from shoal.common import EventType, RetryPolicy
from shoal.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType
from shoal.worker import Worker

pytestmark = pytest.mark.timeout(60)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


# --- hello activity ---------------------------------------------------------------------


@dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


@activity.defn
async def compose_greeting(input: ComposeGreetingInput) -> str:
    return f"{input.greeting}, {input.name}!"


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            compose_greeting, ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
        )


async def test_hello_activity(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[GreetingWorkflow], activities=[compose_greeting]):
        result = await client.execute_workflow(GreetingWorkflow.run, "World", id=_id("hello"), task_queue=tq)
    assert result == "Hello, World!"


async def test_history_reads_like_temporal(client: Client) -> None:
    tq = _id("tq")
    wf_id = _id("hist")
    async with Worker(client, task_queue=tq, workflows=[GreetingWorkflow], activities=[compose_greeting]):
        handle = await client.start_workflow(GreetingWorkflow.run, "H", id=wf_id, task_queue=tq)
        await handle.result()
    history = await handle.fetch_history()
    types = [e.event_type for e in history.events]
    assert types[0] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    sched = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert sched[0].activity_task_scheduled_event_attributes.activity_type.name == "compose_greeting"
    done = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    assert done[0].activity_task_completed_event_attributes.scheduled_event_id == sched[0].event_id
    assert [e.event_id for e in history.events] == list(range(1, len(history.events) + 1))
    desc = await handle.describe()
    assert desc.status == desc.status.COMPLETED and desc.workflow_type == "GreetingWorkflow"


# --- retries with attempt counts ---------------------------------------------------------

_flaky_attempts: list[int] = []


@activity.defn
async def flaky(times_to_fail: int) -> int:
    attempt = activity.info().attempt
    _flaky_attempts.append(attempt)
    if attempt <= times_to_fail:
        raise RuntimeError(f"failing attempt {attempt}")
    return attempt


@workflow.defn
class RetryWorkflow:
    @workflow.run
    async def run(self, times_to_fail: int) -> int:
        return await workflow.execute_activity(
            flaky, times_to_fail, start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50),
                                     backoff_coefficient=1.0, maximum_attempts=5),
        )


async def test_activity_retries_until_success_with_attempt_numbers(client: Client) -> None:
    tq = _id("tq")
    _flaky_attempts.clear()
    async with Worker(client, task_queue=tq, workflows=[RetryWorkflow], activities=[flaky]):
        assert await client.execute_workflow(RetryWorkflow.run, 2, id=_id("retry"), task_queue=tq) == 3
    assert _flaky_attempts == [1, 2, 3]


async def test_retries_exhausted_fail_workflow_with_cause_chain(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[RetryWorkflow], activities=[flaky]):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(RetryWorkflow.run, 99, id=_id("retry"), task_queue=tq)
    act_err = info.value.cause
    assert isinstance(act_err, ActivityError)
    assert isinstance(act_err.cause, ApplicationError)
    assert "failing attempt 5" in act_err.cause.message
    assert act_err.cause.type == "RuntimeError"


# --- non-retryable failure -----------------------------------------------------------------

_fatal_calls: list[int] = []


@activity.defn
async def fatal() -> None:
    _fatal_calls.append(activity.info().attempt)
    raise ApplicationError("card declined", "detail-1", type="PaymentError", non_retryable=True)


@workflow.defn
class NonRetryableWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(fatal, start_to_close_timeout=timedelta(seconds=5))


async def test_non_retryable_failure_reaches_client_with_chain(client: Client) -> None:
    tq = _id("tq")
    _fatal_calls.clear()
    async with Worker(client, task_queue=tq, workflows=[NonRetryableWorkflow], activities=[fatal]):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(NonRetryableWorkflow.run, id=_id("fatal"), task_queue=tq)
    assert _fatal_calls == [1]
    cause = info.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "PaymentError" and cause.cause.non_retryable
    assert cause.cause.message == "card declined"
    assert list(cause.cause.details) == ["detail-1"]


# --- start-to-close timeout then retry ---------------------------------------------------

_slow_attempts: list[int] = []


@activity.defn
async def slow_first_time() -> str:
    attempt = activity.info().attempt
    _slow_attempts.append(attempt)
    if attempt == 1:
        await trio.sleep(30)  # past start-to-close: the node times this attempt out
    return f"done on attempt {attempt}"


@workflow.defn
class TimeoutRetryWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            slow_first_time, start_to_close_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


async def test_start_to_close_timeout_then_retry_succeeds(client: Client) -> None:
    tq = _id("tq")
    _slow_attempts.clear()
    async with Worker(client, task_queue=tq, workflows=[TimeoutRetryWorkflow], activities=[slow_first_time]):
        result = await client.execute_workflow(TimeoutRetryWorkflow.run, id=_id("s2c"), task_queue=tq)
    assert result == "done on attempt 2"
    assert _slow_attempts == [1, 2]


@workflow.defn
class TimeoutNoRetryWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            slow_first_time, start_to_close_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_start_to_close_timeout_without_retry_is_timeout_error(client: Client) -> None:
    tq = _id("tq")
    _slow_attempts.clear()
    async with Worker(client, task_queue=tq, workflows=[TimeoutNoRetryWorkflow], activities=[slow_first_time]):
        with pytest.raises(WorkflowFailureError) as info:
            await client.execute_workflow(TimeoutNoRetryWorkflow.run, id=_id("s2c"), task_queue=tq)
    cause = info.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, TimeoutError)
    assert cause.cause.type == TimeoutType.START_TO_CLOSE


# --- durable timers and gather -----------------------------------------------------------


@workflow.defn
class TimerWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> float:
        start = workflow.now()
        await asyncio.sleep(seconds)
        return (workflow.now() - start).total_seconds()


async def test_durable_timer_fires_and_is_recorded(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[TimerWorkflow]):
        handle = await client.start_workflow(TimerWorkflow.run, 1.0, id=_id("timer"), task_queue=tq)
        elapsed = await handle.result()
    assert elapsed >= 1.0
    types = [e.event_type for e in (await handle.fetch_history()).events]
    assert EventType.EVENT_TYPE_TIMER_STARTED in types and EventType.EVENT_TYPE_TIMER_FIRED in types


@activity.defn
def square(x: int) -> int:  # a plain function: runs in a worker thread
    return x * x


@workflow.defn
class GatherWorkflow:
    @workflow.run
    async def run(self, n: int) -> list[int]:
        return list(await asyncio.gather(*[
            workflow.execute_activity(square, i, start_to_close_timeout=timedelta(seconds=5))
            for i in range(n)
        ]))


async def test_gather_of_activities(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[GatherWorkflow], activities=[square]):
        assert await client.execute_workflow(GatherWorkflow.run, 5, id=_id("gather"), task_queue=tq) == [0, 1, 4, 9, 16]


# --- a worker restarted mid-workflow -------------------------------------------------------

_gate = {"open": False}


@activity.defn
async def step(i: int) -> int:
    return i


@workflow.defn
class StepsWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += await workflow.execute_activity(step, i, start_to_close_timeout=timedelta(seconds=2))
            await asyncio.sleep(0.2)
        return total


async def test_worker_restarted_mid_workflow_resumes_by_replay(client: Client) -> None:
    tq = _id("tq")
    wf_id = _id("steps")
    async with Worker(client, task_queue=tq, workflows=[StepsWorkflow], activities=[step]):
        # Short task timeout: work the old worker had taken is handed out again soon.
        handle = await client.start_workflow(StepsWorkflow.run, 6, id=wf_id, task_queue=tq,
                                             task_timeout=timedelta(seconds=2))
        # Wait until some progress is recorded, then drop the worker (and its cache).
        for _ in range(500):
            hist = await handle.fetch_history()
            if sum(e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED for e in hist.events) >= 2:
                break
            await trio.sleep(0.02)
    async with Worker(client, task_queue=tq, workflows=[StepsWorkflow], activities=[step]):
        assert await handle.result() == sum(range(6))


async def test_start_same_id_while_running_is_already_started(client: Client) -> None:
    from shoal.exceptions import WorkflowAlreadyStartedError

    tq = _id("tq")  # no worker: the first run stays running
    wf_id = _id("dup")
    await client.start_workflow(TimerWorkflow.run, 1.0, id=wf_id, task_queue=tq)
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(TimerWorkflow.run, 1.0, id=wf_id, task_queue=tq)
