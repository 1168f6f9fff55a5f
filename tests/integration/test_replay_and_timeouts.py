"""Non-determinism shows in describe; workflow run timeouts close the run as Temporal's do."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import trio

from shoal import activity, workflow
from shoal.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from shoal.common import EventType
from shoal.exceptions import TimeoutError
from shoal.worker import Worker

pytestmark = pytest.mark.timeout(60)


@activity.defn
async def first() -> str:
    return "first"


@activity.defn
async def other() -> str:
    return "other"


@workflow.defn(name="Versioned")
class VersionedV1:
    @workflow.run
    async def run(self) -> str:
        a = await workflow.execute_activity(first, start_to_close_timeout=timedelta(seconds=5))
        await asyncio.sleep(1.0)
        return a


@workflow.defn(name="Versioned")
class VersionedV2:  # a changed workflow: a different first activity
    @workflow.run
    async def run(self) -> str:
        a = await workflow.execute_activity(other, start_to_close_timeout=timedelta(seconds=5))
        await asyncio.sleep(1.0)
        return a


async def test_changed_workflow_code_fails_the_task_and_describe_shows_it(client: Client) -> None:
    tq = f"tq-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[VersionedV1], activities=[first, other]):
        handle = await client.start_workflow("Versioned", id=f"v-{uuid.uuid4()}", task_queue=tq)
        for _ in range(500):  # until the timer is started: the next task must replay
            events = (await handle.fetch_history()).events
            if any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in events):
                break
            await trio.sleep(0.01)
    async with Worker(client, task_queue=tq, workflows=[VersionedV2], activities=[first, other],
                      max_cached_workflows=0):
        for _ in range(500):
            desc = await handle.describe()
            if desc.last_workflow_task_failure is not None:
                break
            await trio.sleep(0.02)
    failure = desc.last_workflow_task_failure
    assert failure is not None
    assert "first" in failure.message and "other" in failure.message
    assert desc.status == WorkflowExecutionStatus.RUNNING


@workflow.defn
class Forever:
    @workflow.run
    async def run(self) -> None:
        await asyncio.sleep(3600)


async def test_run_timeout_closes_the_run_as_timed_out(client: Client) -> None:
    tq = f"tq-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[Forever]):
        handle = await client.start_workflow(Forever.run, id=f"f-{uuid.uuid4()}", task_queue=tq,
                                             run_timeout=timedelta(seconds=1))
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    assert isinstance(info.value.cause, TimeoutError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.TIMED_OUT
