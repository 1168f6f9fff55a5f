"""A run on a real node, its history fetched (API and CLI), replayed with the Replayer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from shoal import activity, workflow
from shoal.client import Client, WorkflowHistory
from shoal.worker import Replayer, Worker
from shoal.workflow import NondeterminismError

FIVE_S = timedelta(seconds=5)


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn(name="ReplayedGreeter")
class Greeter:
    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(greet, name, start_to_close_timeout=FIVE_S)
        await asyncio.sleep(0.1)
        return greeting


@workflow.defn(name="ReplayedGreeter")
class GreeterChanged:  # sleeps before the activity: incompatible with recorded runs
    @workflow.run
    async def run(self, name: str) -> str:
        await asyncio.sleep(0.1)
        return await workflow.execute_activity(greet, name, start_to_close_timeout=FIVE_S)


async def test_fetched_history_replays_and_changed_code_is_caught(client: Client) -> None:
    tq = f"replay-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[Greeter], activities=[greet]):
        handle = await client.start_workflow(Greeter.run, "ann", id=f"r-{uuid.uuid4()}",
                                             task_queue=tq)
        assert await handle.result() == "Hello, ann!"
    history = await handle.fetch_history()
    assert (await Replayer(workflows=[Greeter]).replay_workflow(history)).replay_failure is None
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[GreeterChanged]).replay_workflow(history)
    again = WorkflowHistory.from_json(handle.id, history.to_json())
    results = await Replayer(workflows=[Greeter]).replay_workflows([again, history])
    assert results.replay_failures == {}
