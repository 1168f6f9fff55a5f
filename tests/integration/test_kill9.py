"""kill -9 of the node in the middle of 200 workflows; restart on the same data dir.

Every workflow must complete with the right result, no activity completion may be recorded
twice, and every history must satisfy DESIGN §4 invariant 4.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import trio

from helpers.node_proc import NodeProcess, free_port
from shoal import activity, workflow, wire
from shoal.client import Client
from shoal.node.history.invariants import check_history
from shoal.worker import Worker

pytestmark = pytest.mark.timeout(180)

WORKFLOWS = 200


@activity.defn
async def add_one(x: int) -> int:
    return x + 1


@workflow.defn
class TwoStepsAndATimer:
    @workflow.run
    async def run(self, x: int) -> int:
        a = await workflow.execute_activity(add_one, x, start_to_close_timeout=timedelta(seconds=5))
        await asyncio.sleep(0.3)
        return await workflow.execute_activity(add_one, a, start_to_close_timeout=timedelta(seconds=5))


async def test_kill9_mid_workload_loses_nothing(tmp_path) -> None:
    node = NodeProcess(tmp_path / "data", port=free_port())
    await node.start_async()
    try:
        client = await Client.connect(node.address)
        tq = f"kill9-{uuid.uuid4().hex[:6]}"
        ids = [f"k9-{i}-{uuid.uuid4().hex[:6]}" for i in range(WORKFLOWS)]
        results: dict[str, int] = {}

        async def run_one(i: int) -> None:
            handle = await client.start_workflow(TwoStepsAndATimer.run, i, id=ids[i], task_queue=tq)
            results[ids[i]] = await handle.result()

        async with Worker(client, task_queue=tq, workflows=[TwoStepsAndATimer], activities=[add_one]):
            async with trio.open_nursery() as nursery:
                for i in range(WORKFLOWS):
                    nursery.start_soon(run_one, i)
                # Kill once a good part of the work is done and a good part is not.
                while len(results) < WORKFLOWS // 4:
                    await trio.sleep(0.01)
                node.kill()
                killed_at = len(results)
                await node.start_async()
        assert killed_at < WORKFLOWS
        assert results == {ids[i]: i + 2 for i in range(WORKFLOWS)}

        for wf_id in ids:
            events = [e.raw for e in (await client.get_workflow_handle(wf_id).fetch_history()).events]
            assert check_history(events) == [], wf_id
            completed = [e.attributes.scheduled_event_id for e in events
                         if e.event_type == wire.EventType.ACTIVITY_TASK_COMPLETED]
            assert len(completed) == len(set(completed)) == 2, wf_id
            assert events[-1].event_type == wire.EventType.WORKFLOW_EXECUTION_COMPLETED
    finally:
        node.kill()
