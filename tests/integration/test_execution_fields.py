"""describe() and list_workflows report a child's parent and root, a run's namespace and its
history size (temporalio's WorkflowExecution fields) against a real node."""

from __future__ import annotations

import uuid

import pytest

from shoal import workflow
from shoal.client import Client, WorkflowExecutionStatus
from shoal.worker import Worker

from helpers.node_proc import wait_until

pytestmark = pytest.mark.timeout(60)


@workflow.defn
class Grandchild:
    @workflow.run
    async def run(self) -> str:
        return workflow.info().workflow_id


@workflow.defn
class MiddleChild:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_child_workflow(
            Grandchild.run, id=f"{workflow.info().workflow_id}-grand")


@workflow.defn
class TopParent:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_child_workflow(
            MiddleChild.run, id=f"{workflow.info().workflow_id}-child")


async def test_describe_and_list_report_parent_and_root_down_a_chain(client: Client) -> None:
    tq, top_id = f"fields-{uuid.uuid4()}", f"top-{uuid.uuid4()}"
    child_id, grand_id = f"{top_id}-child", f"{top_id}-child-grand"
    async with Worker(client, task_queue=tq, workflows=[TopParent, MiddleChild, Grandchild]):
        top = await client.start_workflow(TopParent.run, id=top_id, task_queue=tq)
        assert await top.result() == grand_id
    top_d = await client.get_workflow_handle(top_id).describe()
    child_d = await client.get_workflow_handle(child_id).describe()
    grand_d = await client.get_workflow_handle(grand_id).describe()
    assert top.result_run_id == top_d.run_id

    assert (top_d.parent_id, top_d.parent_run_id) == (None, None)
    assert (top_d.root_id, top_d.root_run_id) == (top_id, top_d.run_id)  # its own root
    assert (child_d.parent_id, child_d.parent_run_id) == (top_id, top_d.run_id)
    assert (child_d.root_id, child_d.root_run_id) == (top_id, top_d.run_id)
    assert (grand_d.parent_id, grand_d.parent_run_id) == (child_id, child_d.run_id)
    assert (grand_d.root_id, grand_d.root_run_id) == (top_id, top_d.run_id)

    for d in (top_d, child_d, grand_d):
        assert d.status == WorkflowExecutionStatus.COMPLETED
        assert d.namespace == client.namespace
        assert d.execution_time == d.start_time
        history = await client.get_workflow_handle(d.id, run_id=d.run_id).fetch_history()
        assert d.history_length == len(history.events)
        assert d.raw_info.history_size_bytes > 0

    # The list carries the same fields, and selects the whole chain by its root.
    query = f"RootWorkflowId = '{top_id}'"
    await wait_until(lambda: _count(client, query, 3), timeout_s=10)
    listed = {w.id: w async for w in client.list_workflows(query)}
    assert set(listed) == {top_id, child_id, grand_id}
    assert (listed[grand_id].parent_id, listed[grand_id].parent_run_id) == (child_id, child_d.run_id)
    assert (listed[grand_id].root_id, listed[grand_id].root_run_id) == (top_id, top_d.run_id)
    assert listed[child_id].parent_id == top_id and listed[top_id].parent_id is None
    assert listed[grand_id].raw_info.history_size_bytes == grand_d.raw_info.history_size_bytes
    children = [w.id async for w in client.list_workflows(f"ParentWorkflowId = '{top_id}'")]
    assert children == [child_id]


async def _count(client: Client, query: str, n: int) -> bool:
    return len([w async for w in client.list_workflows(query)]) == n
