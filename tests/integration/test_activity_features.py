"""Activity heartbeats, activity cancellation and async completion, Temporal-style programs
against a real node (imports, trio sleeps and the address changed)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import trio

from shoal import activity, wire, workflow
from shoal.client import Client, WorkflowFailureError
from shoal.common import RetryPolicy
from shoal.exceptions import ActivityError, CancelledError
from shoal.worker import Worker
from shoal.node.history.invariants import check_history

from helpers.node_proc import wait_until

pytestmark = pytest.mark.timeout(60)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def _history(handle) -> list[wire.HistoryEvent]:
    return [e.raw for e in (await handle.fetch_history()).events]


# --- heartbeats: progress survives a lost attempt ----------------------------------------

ATTEMPTS: dict[str, list[tuple[int, list]]] = {}


@activity.defn
async def count_to(key: str) -> int:
    info = activity.info()
    start = info.heartbeat_details[0] if info.heartbeat_details else 0
    ATTEMPTS.setdefault(key, []).append((info.attempt, list(info.heartbeat_details)))
    for i in range(start, 10):
        activity.heartbeat(i)
        if info.attempt == 1 and i == 5:
            await trio.sleep(30)  # "crash": stop heartbeating; the heartbeat timeout ends it
        await trio.sleep(0.01)
    return start


@workflow.defn
class HeartbeatWorkflow:
    @workflow.run
    async def run(self, key: str) -> int:
        return await workflow.execute_activity(
            count_to, key, start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50)),
        )


async def test_next_attempt_resumes_from_the_last_heartbeat(client: Client) -> None:
    tq, key = _id("tq"), _id("k")
    async with Worker(client, task_queue=tq, workflows=[HeartbeatWorkflow], activities=[count_to]):
        resumed_from = await client.execute_workflow(HeartbeatWorkflow.run, key, id=_id("hb"), task_queue=tq)
    attempts = ATTEMPTS[key]
    assert [a for a, _ in attempts] == [1, 2]
    # Heartbeats are throttled, so the last one recorded is at most the last one sent (5).
    assert 0 < resumed_from <= 5
    assert attempts[1][1] == [resumed_from]


# --- cancellation reaches a heartbeating activity ----------------------------------------

CANCELLED: set[str] = set()


@activity.defn
async def long_running(key: str) -> str:
    try:
        while True:
            activity.heartbeat()
            await trio.sleep(0.05)
    finally:
        CANCELLED.add(key)  # cleanup runs: the cancel arrived as trio cancellation


@workflow.defn
class CancelActivityWorkflow:
    @workflow.run
    async def run(self, key: str, wait: bool) -> str:
        handle = workflow.start_activity(
            long_running, key, start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=(workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED if wait
                               else workflow.ActivityCancellationType.TRY_CANCEL),
        )
        await workflow.sleep(0.5)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            assert isinstance(err.cause, CancelledError)
            return "activity cancelled"
        return "activity finished"


@pytest.mark.parametrize("wait", [True, False])
async def test_cancelling_an_activity_reaches_its_heartbeat(client: Client, wait: bool) -> None:
    tq, key = _id("tq"), _id("k")
    async with Worker(client, task_queue=tq, workflows=[CancelActivityWorkflow], activities=[long_running]):
        handle = await client.start_workflow(CancelActivityWorkflow.run, args=[key, wait], id=_id("ca"), task_queue=tq)
        assert await handle.result() == "activity cancelled"
        # With TRY_CANCEL the run closes at once and the attempt stops when its heartbeat
        # finds the run closed; with WAIT the attempt acknowledged before the run went on.
        await wait_until(lambda: key in CANCELLED, timeout_s=10)
    history = await _history(handle)
    assert check_history(history) == []
    types = [e.event_type for e in history]
    assert wire.EventType.ACTIVITY_TASK_CANCEL_REQUESTED in types
    if wait:
        assert types.index(wire.EventType.ACTIVITY_TASK_CANCELED) < types.index(wire.EventType.WORKFLOW_EXECUTION_COMPLETED)


async def _has(handle, event_type) -> bool:
    return event_type in [e.event_type for e in await _history(handle)]


@workflow.defn
class CancelWhileRunningActivity:
    @workflow.run
    async def run(self, key: str) -> str:
        return await workflow.execute_activity(
            long_running, key, start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=2))


async def test_cancelling_the_workflow_cancels_its_activity(client: Client) -> None:
    tq, key = _id("tq"), _id("k")
    async with Worker(client, task_queue=tq, workflows=[CancelWhileRunningActivity], activities=[long_running]):
        handle = await client.start_workflow(CancelWhileRunningActivity.run, key, id=_id("cw"), task_queue=tq)
        await wait_until(lambda: _has(handle, wire.EventType.ACTIVITY_TASK_SCHEDULED), timeout_s=10)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as exc:
            await handle.result()
        assert isinstance(exc.value.cause, CancelledError)
        await wait_until(lambda: key in CANCELLED, timeout_s=10)


# --- async completion --------------------------------------------------------------------

TOKENS: dict[str, bytes] = {}


@activity.defn
async def wait_for_human(key: str) -> str:
    TOKENS[key] = activity.info().task_token
    activity.raise_complete_async()


@workflow.defn
class ApprovalWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        decision = await workflow.execute_activity(
            wait_for_human, key, start_to_close_timeout=timedelta(seconds=30))
        return f"decision: {decision}"


async def test_an_activity_completed_later_by_its_task_token(client: Client) -> None:
    tq, key = _id("tq"), _id("k")
    async with Worker(client, task_queue=tq, workflows=[ApprovalWorkflow], activities=[wait_for_human]):
        handle = await client.start_workflow(ApprovalWorkflow.run, key, id=_id("async"), task_queue=tq)
        await wait_until(lambda: key in TOKENS, timeout_s=10)
        async_handle = client.get_async_activity_handle(task_token=TOKENS[key])
        assert await async_handle.heartbeat("still thinking") is False
        await async_handle.complete("approved")
        assert await handle.result() == "decision: approved"
        with pytest.raises(Exception) as exc:
            await async_handle.complete("again")  # recorded at most once
        assert getattr(exc.value, "code", None) in (wire.Code.TASK_NOT_FOUND, wire.Code.WORKFLOW_NOT_RUNNING)
