"""Matching is soft state: a task its partition owner lost is handed off again once its
dispatch deadline passes (DESIGN §3 step 4), and a started one never is."""

from __future__ import annotations

from helpers.inproc import inproc_node
from shoal import wire
from shoal.node.matching.matching import Matching
from shoal.node.history.records import TransferKind


async def test_a_lost_task_goes_out_again_after_its_deadline_and_a_started_one_does_not(tmp_path) -> None:
    async with inproc_node(tmp_path / "data", num_shards=1) as node:
        svc = node.handlers
        shard = svc.shards[0]
        for wf in ("a", "b"):
            await svc.workflows.start_workflow("default", wire.StartWorkflowRequest(
                workflow_id=wf, workflow_type="T", task_queue="q", request_id=wf))
        queue = svc.matching.queue("default", TransferKind.WORKFLOW_TASK, "q")
        assert queue.backlog_size == 2
        assert shard.redispatch(older_than_s=10.0) == 0  # just handed off: not yet due

        svc.matching._queues.clear()  # the owner restarted: what it held is gone
        assert shard.redispatch(older_than_s=10.0) == 0
        for task_id in shard._dispatched_at:
            shard._dispatched_at[task_id] -= 11.0  # both are now past the deadline
        assert shard.redispatch(older_than_s=10.0) == 2
        queue = svc.matching.queue("default", TransferKind.WORKFLOW_TASK, "q")
        assert queue.backlog_size == 2

        started = await svc.task_ops.poll_workflow_task("default", wire.PollWorkflowTaskRequest(
            task_queue="q", wait_s=1))
        assert started.task is not None
        for task_id in shard._dispatched_at:
            shard._dispatched_at[task_id] -= 11.0
        assert shard.redispatch(older_than_s=10.0) == 1  # only the one not started
        assert isinstance(svc.matching, Matching)
