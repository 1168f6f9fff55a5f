"""Handlers for a workflow's lifecycle and reads: start, result, describe, history.

Owns: checking those requests, running a start in the workflow's mailbox, the result long
poll, and the read-only answers served from LMDB (describe, history pages). Must not: make
bytes or change state other than through ``Shard.run_op``.
"""

from __future__ import annotations

import uuid

import trio

from shoal import wire
from shoal.node.api.checks import POLL_WAIT_MAX_S, check_id, check_page_size, check_payloads, page_token
from shoal.node.history.engine import HistoryEngine
from shoal.node.shard.shard import Batch, execution_info
from shoal.node.shard.shards import ShardSet
from shoal.node.history import records
from shoal.store import tables

_CLOSED = frozenset(s for s in wire.WorkflowExecutionStatus if s != wire.WorkflowExecutionStatus.RUNNING)


class WorkflowOps:
    """``START_WORKFLOW``, ``GET_RESULT``, ``DESCRIBE_WORKFLOW`` and ``GET_HISTORY``."""

    def __init__(self, shards: ShardSet, engine: HistoryEngine) -> None:
        self.shards, self.engine = shards, engine

    async def start_workflow(
        self, ns: str, req: wire.StartWorkflowRequest
    ) -> wire.StartWorkflowResponse:
        check_id("workflow_id", req.workflow_id)
        check_id("workflow_type", req.workflow_type)
        check_id("task_queue", req.task_queue)
        check_id("request_id", req.request_id)
        check_payloads("input", req.input)
        run_id = str(uuid.uuid4())
        engine = self.engine

        def op(b: Batch) -> wire.StartWorkflowResponse:
            return engine.start_in_batch(b, req, namespace=ns, run_id=run_id)

        return await self.shards.for_workflow(ns, req.workflow_id).run_op(ns, req.workflow_id, op)

    async def get_result(self, ns: str, req: wire.GetResultRequest) -> wire.GetResultResponse:
        wf_id, run_id = req.execution.workflow_id, req.execution.run_id
        check_id("workflow_id", wf_id)
        shard = self.shards.for_workflow(ns, wf_id)
        deadline = trio.current_time() + min(max(req.wait_s, 0.0), POLL_WAIT_MAX_S)
        while True:
            self.shards.served(shard.shard_id)  # moved away while we waited: the router goes on
            changed = shard.changed_event(ns, wf_id)
            st = self.shards.read_state(shard, ns, wf_id, run_id)
            if st.status in _CLOSED:
                if req.follow_runs and st.new_execution_run_id:
                    run_id = st.new_execution_run_id
                    continue
                return wire.GetResultResponse(
                    run_id=st.run_id, status=st.status, result=st.result, failure=st.failure,
                    new_execution_run_id=st.new_execution_run_id,
                )
            with trio.move_on_at(deadline):
                await changed.wait()
            if trio.current_time() >= deadline:
                return wire.GetResultResponse(run_id=st.run_id, status=st.status)

    async def describe_workflow(
        self, ns: str, req: wire.DescribeWorkflowRequest
    ) -> wire.DescribeWorkflowResponse:
        check_id("workflow_id", req.execution.workflow_id)
        shard = self.shards.for_workflow(ns, req.execution.workflow_id)
        await shard.confirm_leader()
        st = self.shards.read_state(shard, ns, req.execution.workflow_id, req.execution.run_id)
        return wire.DescribeWorkflowResponse(
            info=execution_info(st),
            pending_activities=[_pending_activity(a) for a in st.activities.values()],
            pending_workflow_task=_pending_wt(st.workflow_task),
            last_workflow_task_failure=st.last_workflow_task_failure,
        )

    async def get_history(self, ns: str, req: wire.GetHistoryRequest) -> wire.GetHistoryResponse:
        wf_id = req.execution.workflow_id
        check_id("workflow_id", wf_id)
        check_page_size(req.page_size)
        shard = self.shards.for_workflow(ns, wf_id)
        if not req.next_page_token:
            await shard.confirm_leader()  # later pages read events that cannot change
        st = self.shards.read_state(shard, ns, wf_id, req.execution.run_id)
        start = page_token(req.next_page_token, default=1)
        with self.shards.store.read() as txn:
            events = tables.read_history(
                txn, shard.shard_id, ns, wf_id, st.run_id, from_event_id=start,
                limit=req.page_size,
            )
        last = events[-1].event_id if events else start - 1
        token = wire.dumps(last + 1) if last < st.next_event_id - 1 else None
        return wire.GetHistoryResponse(events=events, next_page_token=token)


def _pending_activity(a: records.ActivityInfo) -> wire.PendingActivityInfo:
    state = "BACKING_OFF" if a.backing_off else ("STARTED" if a.started_time else "SCHEDULED")
    return wire.PendingActivityInfo(
        activity_id=a.activity_id, activity_type=a.activity_type, state=state,
        attempt=a.attempt, scheduled_time=a.scheduled_time, last_started_time=a.started_time,
        last_failure=a.last_failure,
        maximum_attempts=a.retry_policy.maximum_attempts if a.retry_policy else 0,
        heartbeat_details=a.heartbeat_details, last_heartbeat_time=a.last_heartbeat_time,
    )


def _pending_wt(wt: records.WorkflowTaskInfo | None) -> wire.PendingWorkflowTaskInfo | None:
    if wt is None:
        return None
    return wire.PendingWorkflowTaskInfo(
        state="STARTED" if wt.started_event_id else "SCHEDULED",
        scheduled_time=wt.scheduled_time, attempt=wt.attempt, started_time=wt.started_time,
    )
