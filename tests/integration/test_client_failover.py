"""A client and a worker given several node addresses fail over when the node in use dies."""

from __future__ import annotations

import uuid

import pytest

from shoal import workflow
from shoal.client import Client
from shoal.worker import Worker

from helpers.node_proc import NodeProcess

pytestmark = pytest.mark.timeout(60)


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, value: str) -> str:
        return value


@pytest.fixture
def two_nodes(tmp_path):
    nodes = [NodeProcess(tmp_path / f"n{i}") for i in range(2)]
    for n in nodes:
        n.start()
    yield nodes
    for n in nodes:
        n.kill()


async def test_calls_and_polls_move_to_the_next_node_when_one_dies(two_nodes) -> None:
    a, b = two_nodes
    client = await Client.connect([a.address, b.address])
    assert client.service.address == a.address
    tq = f"failover-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[Echo]):
        assert await client.execute_workflow(Echo.run, "on a", id=f"e-{uuid.uuid4()}",
                                             task_queue=tq) == "on a"
        a.kill()  # the worker's long polls are in flight on a
        # The next call (and the worker's polls) reconnect to b.
        assert await client.execute_workflow(Echo.run, "on b", id=f"e-{uuid.uuid4()}",
                                             task_queue=tq) == "on b"
    assert client.service.address == b.address
    await client.service.close()


async def test_connect_skips_an_address_that_does_not_answer(two_nodes) -> None:
    client = await Client.connect(["ws://127.0.0.1:1", two_nodes[1].address])
    assert client.service.address == two_nodes[1].address
    assert [w async for w in client.list_workflows("WorkflowId = 'none'")] == []
    await client.service.close()
