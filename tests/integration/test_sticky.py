"""Sticky execution against a real node: a caching worker gets its runs' next tasks on its
own queue with only new events; when it is gone the task falls back to the normal queue."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shoal import activity, wire, workflow
from shoal.client import Client
from shoal.worker import Worker

from helpers.node_proc import wait_until

pytestmark = pytest.mark.timeout(60)


@activity.defn
async def plus_one(x: int) -> int:
    return x + 1


@workflow.defn
class FiveSteps:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, x: int) -> int:
        for _ in range(5):
            x = await workflow.execute_activity(plus_one, x, start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: self.go)
        return x

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


async def _scheduled_queues(handle) -> list[str]:
    return [e.raw.attributes.task_queue for e in (await handle.fetch_history()).events
            if e.raw.event_type == wire.EventType.WORKFLOW_TASK_SCHEDULED]


async def test_caching_worker_gets_later_tasks_on_its_sticky_queue(client: Client) -> None:
    tq = f"tq-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[FiveSteps], activities=[plus_one],
                      disable_eager_activity_execution=True):
        handle = await client.start_workflow(FiveSteps.run, 0, id=f"sticky-{uuid.uuid4()}", task_queue=tq)
        await handle.signal(FiveSteps.proceed)
        assert await handle.result() == 5
    queues = await _scheduled_queues(handle)
    assert queues[0] == tq  # the first task: nobody caches the run yet
    assert len(queues) >= 6 and all(q.startswith(f"{tq}-sticky-") for q in queues[1:]), queues


async def test_without_a_cache_every_task_uses_the_normal_queue(client: Client) -> None:
    tq = f"tq-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[FiveSteps], activities=[plus_one],
                      max_cached_workflows=0, disable_eager_activity_execution=True):
        handle = await client.start_workflow(FiveSteps.run, 0, id=f"nosticky-{uuid.uuid4()}", task_queue=tq)
        await handle.signal(FiveSteps.proceed)
        assert await handle.result() == 5
    assert set(await _scheduled_queues(handle)) == {tq}


async def test_task_falls_back_to_the_normal_queue_when_the_sticky_worker_is_gone(client: Client) -> None:
    tq = f"tq-{uuid.uuid4()}"
    short = timedelta(seconds=0.5)
    async with Worker(client, task_queue=tq, workflows=[FiveSteps], activities=[plus_one],
                      sticky_queue_schedule_to_start_timeout=short):
        handle = await client.start_workflow(FiveSteps.run, 10, id=f"fallback-{uuid.uuid4()}", task_queue=tq)
        # Wait until the run sits at its wait_condition (all five activities seen).
        await wait_until(lambda: _activities_done(handle, 5), timeout_s=10)
    # The caching worker is gone; its sticky queue has no poller, so only the fallback to
    # the normal queue lets the second worker (another sticky queue) get the task.
    await handle.signal(FiveSteps.proceed)
    async with Worker(client, task_queue=tq, workflows=[FiveSteps], activities=[plus_one]):
        assert await handle.result() == 15
    desc = await handle.describe()
    assert desc.raw_description.last_workflow_task_failure is None


async def _activities_done(handle, n: int) -> bool:
    types = [e.raw.event_type for e in (await handle.fetch_history()).events]
    return types.count(wire.EventType.ACTIVITY_TASK_COMPLETED) >= n and types[-1] == wire.EventType.WORKFLOW_TASK_COMPLETED
