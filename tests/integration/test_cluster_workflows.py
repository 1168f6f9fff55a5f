"""Workflows on a real 3-node cluster: any node takes any request, shards are replicated,
and a killed shard leader's work goes on elsewhere (issue 7)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import trio

from shoal import activity, workflow
from shoal.client import Client
from shoal.worker import Worker

from helpers.node_cluster import running_cluster

pytestmark = pytest.mark.timeout(120)

CLUSTER = ["--gossip-preset", "small", "--shard-log", "replicated"]


@activity.defn
async def double(x: int) -> int:
    return 2 * x


@workflow.defn
class Chain:
    def __init__(self) -> None:
        self.bumps = 0

    @workflow.signal
    def bump(self) -> None:
        self.bumps += 1

    @workflow.run
    async def run(self, x: int) -> int:
        await workflow.wait_condition(lambda: self.bumps > 0)
        for _ in range(3):
            x = await workflow.execute_activity(double, x,
                                                start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(0.2)
        return x + self.bumps


async def test_any_node_serves_workflows_whose_shards_live_elsewhere(tmp_path) -> None:
    with running_cluster(tmp_path, 3, CLUSTER) as nodes:
        starter = await Client.connect(nodes[0].address)
        worker_client = await Client.connect(nodes[1].address)
        tq = f"chain-{uuid.uuid4()}"
        async with Worker(worker_client, task_queue=tq, workflows=[Chain], activities=[double]):
            handles = [await starter.start_workflow(Chain.run, i, id=f"chain-{i}-{uuid.uuid4()}",
                                                    task_queue=tq) for i in range(20)]
            for h in handles:
                await h.signal(Chain.bump)
            results = [await h.result() for h in handles]
        assert results == [8 * i + 1 for i in range(20)]
        await starter.service.close()
        await worker_client.service.close()
