"""A stale timer costs no commit of its own: its row's delete rides on the shard's next entry."""

from __future__ import annotations

from helpers.inproc import inproc_node
from shoal import wire
from shoal.node.shard.timers import timer_firer
from shoal.store import tables
from shoal.node.history import records
from shoal.node.history.records import TimerKind


def _start(wf_id: str) -> wire.StartWorkflowRequest:
    return wire.StartWorkflowRequest(workflow_id=wf_id, workflow_type="T", task_queue="q",
                                     request_id=wf_id)


async def test_stale_timer_delete_is_deferred_to_the_next_entry(tmp_path) -> None:
    async with inproc_node(tmp_path / "data", num_shards=1) as node:
        svc = node.handlers
        store = svc.shards.store
        await svc.workflows.start_workflow("default", _start("a"))
        wt = (await svc.task_ops.poll_workflow_task("default", wire.PollWorkflowTaskRequest(task_queue="q", wait_s=1))).task
        await svc.task_ops.complete_workflow_task("default", wire.CompleteWorkflowTaskRequest(
            task_token=wt.task_token, commands=[wire.CompleteWorkflowExecutionCommand()]))
        with store.read() as txn:
            timers = [t for t in tables.scan_timer_tasks(txn, records.TimerTask, 0) if t.kind == TimerKind.WORKFLOW_TASK_TIMEOUT]
        assert len(timers) == 1  # the completed task's timeout: stale now
        applied = svc.shards[0].log.applied_index

        await timer_firer(svc.shards, svc.engine)(0, timers[0])
        assert svc.shards[0].log.applied_index == applied  # no entry of its own
        with store.read() as txn:
            assert timers[0].task_id in {t.task_id for t in tables.scan_timer_tasks(txn, records.TimerTask, 0)}

        await svc.workflows.start_workflow("default", _start("b"))  # the shard's next entry
        with store.read() as txn:
            assert timers[0].task_id not in {t.task_id for t in tables.scan_timer_tasks(txn, records.TimerTask, 0)}
