"""WorkflowEnvironment.start_local(): a real node embedded in the test's trio run, on a
temporary data dir, with a client, as temporalio programs write their tests."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from shoal import activity, workflow
from shoal.testing import WorkflowEnvironment
from shoal.worker import Worker

pytestmark = pytest.mark.timeout(60)


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class Greeting:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name,
                                               start_to_close_timeout=timedelta(seconds=10))


async def test_start_local_runs_a_workflow_end_to_end_and_cleans_up() -> None:
    env = await WorkflowEnvironment.start_local()
    data_dir = env._node.data_dir
    assert data_dir.exists() and not env.supports_time_skipping
    async with env:
        async with Worker(env.client, task_queue="tq", workflows=[Greeting], activities=[greet]):
            result = await env.client.execute_workflow(
                Greeting.run, "World", id=f"g-{uuid.uuid4()}", task_queue="tq")
        assert result == "Hello, World!"
    assert not data_dir.exists()  # the temporary data dir went with the node


async def test_a_kept_data_dir_survives_into_a_second_environment(tmp_path: Path) -> None:
    path = str(tmp_path / "data")
    wf_id = f"g-{uuid.uuid4()}"
    async with await WorkflowEnvironment.start_local(dev_server_database_filename=path) as env:
        async with Worker(env.client, task_queue="tq", workflows=[Greeting], activities=[greet]):
            await env.client.execute_workflow(Greeting.run, "again", id=wf_id, task_queue="tq")
    async with await WorkflowEnvironment.start_local(dev_server_database_filename=path) as env:
        assert await env.client.get_workflow_handle(wf_id).result() == "Hello, again!"
    assert (tmp_path / "data").exists()
