"""A run's history size is the bytes of its stored history batches, counted as written."""

from __future__ import annotations

from helpers.inproc import inproc_node
from shoal import wire
from shoal.store import tables

NS = "default"


def _stored_bytes(store, wf: str, run: str) -> int:
    with store.read() as txn:
        return sum(len(v) for _, v in txn.scan(tables.HISTORY, tables.run_key(0, NS, wf, run)))


async def _describe(svc, wf: str) -> wire.WorkflowExecutionInfo:
    resp = await svc.workflows.describe_workflow(NS, wire.DescribeWorkflowRequest(
        execution=wire.WorkflowExecution(workflow_id=wf, run_id="")))
    return resp.info


async def test_history_size_grows_with_each_stored_batch_and_matches_the_rows(tmp_path) -> None:
    async with inproc_node(tmp_path / "data", num_shards=1) as node:
        svc = node.handlers
        store = svc.shards.store
        start = await svc.workflows.start_workflow(NS, wire.StartWorkflowRequest(
            workflow_id="a", workflow_type="T", task_queue="q", request_id="a", input=[b"x" * 500]))
        run_id = start.run_id
        first = await _describe(svc, "a")
        assert first.history_size_bytes > 500  # the input is in WorkflowExecutionStarted
        assert first.history_size_bytes == _stored_bytes(store, "a", run_id)
        assert first.history_length == 2

        wt = (await svc.task_ops.poll_workflow_task(NS, wire.PollWorkflowTaskRequest(
            task_queue="q", wait_s=1))).task
        await svc.task_ops.complete_workflow_task(NS, wire.CompleteWorkflowTaskRequest(
            task_token=wt.task_token, commands=[wire.CompleteWorkflowExecutionCommand()]))
        done = await _describe(svc, "a")
        assert done.status == wire.WorkflowExecutionStatus.COMPLETED
        assert done.history_size_bytes > first.history_size_bytes
        assert done.history_size_bytes == _stored_bytes(store, "a", run_id)


async def test_describe_reports_namespace_and_a_parentless_run_as_its_own_root(tmp_path) -> None:
    async with inproc_node(tmp_path / "data", num_shards=1) as node:
        svc = node.handlers
        start = await svc.workflows.start_workflow(NS, wire.StartWorkflowRequest(
            workflow_id="solo", workflow_type="T", task_queue="q", request_id="solo"))
        info = await _describe(svc, "solo")
        assert info.namespace == NS
        assert info.parent_execution is None
        assert info.root_execution == wire.WorkflowExecution(workflow_id="solo", run_id=start.run_id)
        assert info.execution_time == info.start_time
