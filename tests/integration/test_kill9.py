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


# Both shard logs: the single-node default and the consensus replica (R = 1) the cluster uses.
SHARD_LOGS = pytest.mark.parametrize("shard_log", ["local", "replicated"])


@SHARD_LOGS
async def test_kill9_mid_workload_loses_nothing(tmp_path, shard_log: str) -> None:
    node = NodeProcess(tmp_path / "data", port=free_port(), extra=["--shard-log", shard_log])
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


# --- signals, a child workflow and timers across a kill -9 -------------------------------

FAMILIES = 40


@workflow.defn
class K9Child:
    def __init__(self) -> None:
        self.got: int | None = None

    @workflow.run
    async def run(self, x: int) -> int:
        await workflow.sleep(0.3)
        await workflow.wait_condition(lambda: self.got is not None)
        return x + (self.got or 0)

    @workflow.signal
    def give(self, value: int) -> None:
        self.got = value


@workflow.defn
class K9Parent:
    def __init__(self) -> None:
        self.signals: list[int] = []

    @workflow.run
    async def run(self, x: int) -> int:
        child = await workflow.start_child_workflow(K9Child.run, x, id=f"{workflow.info().workflow_id}-child",
                                                    task_timeout=timedelta(seconds=2))
        await workflow.wait_condition(lambda: len(self.signals) >= 3)
        await child.signal(K9Child.give, sum(self.signals))
        result = await child
        await workflow.sleep(0.2)
        return result

    @workflow.signal
    def add(self, value: int) -> None:
        self.signals.append(value)


@SHARD_LOGS
async def test_kill9_amid_signals_children_and_timers(tmp_path, shard_log: str) -> None:
    node = NodeProcess(tmp_path / "data", port=free_port(), extra=["--shard-log", shard_log])
    await node.start_async()
    try:
        client = await Client.connect(node.address)
        tq = f"k9f-{uuid.uuid4().hex[:6]}"
        ids = [f"k9f-{i}-{uuid.uuid4().hex[:6]}" for i in range(FAMILIES)]
        results: dict[str, int] = {}
        signals_sent = 0

        async def run_one(i: int) -> None:
            nonlocal signals_sent
            # A short task timeout: tasks in flight at the kill are retried sooner.
            handle = await client.start_workflow(K9Parent.run, i, id=ids[i], task_queue=tq,
                                                 task_timeout=timedelta(seconds=2))
            for value in (1, 2, 3):
                await trio.sleep(0.05 * value)
                await handle.signal(K9Parent.add, value)
                signals_sent += 1
            results[ids[i]] = await handle.result()

        async with Worker(client, task_queue=tq, workflows=[K9Parent, K9Child]):
            async with trio.open_nursery() as nursery:
                for i in range(FAMILIES):
                    nursery.start_soon(run_one, i)
                while signals_sent < FAMILIES:  # about a third of the signals are in
                    await trio.sleep(0.005)
                node.kill()
                killed_at = (signals_sent, len(results))
                await node.start_async()
        assert killed_at[0] < 3 * FAMILIES and killed_at[1] < FAMILIES
        assert results == {ids[i]: i + 6 for i in range(FAMILIES)}

        for wf_id in ids:
            for run_of in (wf_id, f"{wf_id}-child"):
                events = [e.raw for e in (await client.get_workflow_handle(run_of).fetch_history()).events]
                assert check_history(events) == [], run_of
                assert events[-1].event_type == wire.EventType.WORKFLOW_EXECUTION_COMPLETED, run_of
            parent = [e.raw for e in (await client.get_workflow_handle(wf_id).fetch_history()).events]
            signals = [e for e in parent if e.event_type == wire.EventType.WORKFLOW_EXECUTION_SIGNALED]
            assert len(signals) == 3, wf_id  # retried signals are recorded once
            assert sum(1 for e in parent if e.event_type == wire.EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED) == 1
    finally:
        node.kill()
