"""Queries see every event that was in history when they arrived, as on Temporal: a query
right after start waits for the first workflow task, a query right after a signal was
acknowledged sees it, and a query of a closed run can be rejected by condition. Real node
processes (one, and a 3-node cluster) and real workers; no sleeps."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import trio

from shoal import workflow
from shoal.client import Client, WorkflowQueryRejectedError
from shoal.common import QueryRejectCondition
from shoal.exceptions import ApplicationError
from shoal.sdk.connection import RPCError
from shoal.worker import Worker

from helpers.node_cluster import running_cluster, views, wait_balanced

pytestmark = pytest.mark.timeout(120)

CLUSTER = ["--gossip-preset", "small", "--shard-log", "replicated"]


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


@workflow.defn
class Tally:
    def __init__(self) -> None:
        self.values: list[int] = []
        self.done = False
        self.started = False

    @workflow.run
    async def run(self, fail: bool = False) -> list[int]:
        self.started = True
        await workflow.wait_condition(lambda: self.done)
        if fail:
            raise ApplicationError("asked to fail", non_retryable=True)
        return self.values

    @workflow.signal
    def add(self, value: int) -> None:
        self.values.append(value)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def total(self) -> int:
        return sum(self.values)

    @workflow.query
    def seen(self) -> list[int]:
        return list(self.values)

    @workflow.query
    def is_started(self) -> bool:
        return self.started


async def _signal_then_query(handle, rounds: int) -> None:
    for i in range(1, rounds + 1):
        await handle.signal(Tally.add, i)
        assert await handle.query(Tally.seen) == list(range(1, i + 1))


@pytest.mark.parametrize("cached", [1000, 0], ids=["sticky", "non-sticky"])
async def test_a_query_after_each_signal_sees_that_signal(client: Client, cached: int) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Tally], max_cached_workflows=cached):
        handle = await client.start_workflow(Tally.run, id=_id("tally"), task_queue=tq)
        await _signal_then_query(handle, 15)
        await handle.signal(Tally.finish)
        assert await handle.result() == list(range(1, 16))


async def test_a_query_right_after_start_waits_for_the_first_workflow_task(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Tally]):
        for _ in range(5):
            handle = await client.start_workflow(Tally.run, id=_id("fresh"), task_queue=tq)
            assert await handle.query(Tally.is_started) is True
            await handle.signal(Tally.finish)


async def test_a_query_sent_before_any_worker_is_answered_once_one_runs(client: Client) -> None:
    tq = _id("tq")
    handle = await client.start_workflow(Tally.run, id=_id("slow"), task_queue=tq)
    await handle.signal(Tally.add, 7)
    await handle.signal(Tally.add, 8)
    answers: list[int] = []

    async def ask() -> None:
        answers.append(await handle.query(Tally.total, timeout=timedelta(seconds=20)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()  # the query is parked on the node
        async with Worker(client, task_queue=tq, workflows=[Tally]):
            while not answers:
                await trio.sleep(0.01)
            await handle.signal(Tally.finish)
            await handle.result()
    assert answers == [15]


async def test_queries_racing_signals_never_see_fewer_than_were_acknowledged(client: Client) -> None:
    tq = _id("tq")
    acked = 0
    async with Worker(client, task_queue=tq, workflows=[Tally]):
        handle = await client.start_workflow(Tally.run, id=_id("race"), task_queue=tq)

        async def signals() -> None:
            nonlocal acked
            for i in range(1, 31):
                await handle.signal(Tally.add, 1)
                acked = i

        async def queries() -> None:
            while acked < 30:
                floor = acked
                assert await handle.query(Tally.total) >= floor
        async with trio.open_nursery() as nursery:
            nursery.start_soon(signals)
            nursery.start_soon(queries)
        assert await handle.query(Tally.total) == 30
        await handle.signal(Tally.finish)
        await handle.result()


async def test_reject_conditions_refuse_closed_runs_as_temporal_does(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Tally]):
        ok = await client.start_workflow(Tally.run, id=_id("ok"), task_queue=tq)
        await ok.signal(Tally.add, 3)
        await ok.signal(Tally.finish)
        await ok.result()
        failed = await client.start_workflow(Tally.run, True, id=_id("bad"), task_queue=tq)
        await failed.signal(Tally.finish)
        with pytest.raises(Exception):
            await failed.result()

        # A closed run is answered by replaying its history...
        assert await ok.query(Tally.total) == 3
        assert await ok.query(Tally.total, reject_condition=QueryRejectCondition.NONE) == 3
        assert await ok.query(Tally.total,
                              reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY) == 3
        # ...unless the condition refuses it.
        with pytest.raises(WorkflowQueryRejectedError) as exc:
            await ok.query(Tally.total, reject_condition=QueryRejectCondition.NOT_OPEN)
        assert exc.value.status.name == "COMPLETED"
        with pytest.raises(WorkflowQueryRejectedError) as exc:
            await failed.query(Tally.total,
                               reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY)
        assert exc.value.status.name == "FAILED"
        # A running run is never rejected.
        running = await client.start_workflow(Tally.run, id=_id("open"), task_queue=tq)
        assert await running.query(Tally.total, reject_condition=QueryRejectCondition.NOT_OPEN) == 0
        await running.signal(Tally.finish)


async def test_a_query_with_no_worker_still_times_out_clearly(client: Client) -> None:
    handle = await client.start_workflow(Tally.run, id=_id("none"), task_queue=_id("nobody"))
    with pytest.raises(RPCError) as exc:
        await handle.query(Tally.total, timeout=timedelta(seconds=0.3))
    assert exc.value.code == "DEADLINE_EXCEEDED" and "is a worker polling" in exc.value.message


async def test_queries_are_consistent_across_a_three_node_cluster(tmp_path) -> None:
    with running_cluster(tmp_path, 3, CLUSTER) as nodes:
        # Settled first, as the other cluster tests do: while shards and task-queue
        # partitions still move to the joiners, a first workflow task (and so a query
        # waiting for it) can take longer than the query's timeout.
        async with views(nodes) as v:
            await wait_balanced(v, nodes, nodes[0].num_shards, timeout_s=60)
        # The client and the worker talk to different nodes: most requests are forwarded.
        client = await Client.connect(nodes[0].address)
        worker_client = await Client.connect(nodes[2].address)
        tq = _id("tq")
        async with Worker(worker_client, task_queue=tq, workflows=[Tally]):
            handles = [await client.start_workflow(Tally.run, id=_id("c"), task_queue=tq)
                       for _ in range(3)]
            for handle in handles:
                assert await handle.query(Tally.is_started) is True
                await _signal_then_query(handle, 5)
                await handle.signal(Tally.finish)
                assert await handle.result() == [1, 2, 3, 4, 5]
        await client.service.close()
        await worker_client.service.close()
