"""Cross-workflow effects: what each START_CHILD / CANCEL_EXTERNAL / SIGNAL_EXTERNAL /
CHILD_CLOSED / PARENT_CLOSE_POLICY transfer task does, and the peer ops that land them.

Owns: carrying one run's outbox task to another workflow's shard (start the child, cancel or
signal the target, tell the parent how its child ended, apply a parent close policy), then
recording the outcome in the initiating run and deleting the task's row in that same entry.
The two steps touch two shards and are not one transaction, so each is idempotent: the
child's start request id is derived from the parent run and initiating event, signals carry
a request id, and the engine's callbacks ignore an outcome recorded already. A crash between
the steps re-runs the task and lands in the same place. Must not: decide workflow semantics
(the engine does) or write anything except through ``Shard.run_op``.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from shoal import wire
from shoal.node.history.engine import HistoryEngine
from shoal.node.history.start import ParentRef
from shoal.node.shard.shard import Batch, Shard
from shoal.node.shard.shards import ShardSet
from shoal.node.history import records
from shoal.node.history.records import TransferKind

_RUNNING = wire.WorkflowExecutionStatus.RUNNING
_GONE = frozenset({wire.Code.NOT_FOUND, wire.Code.WORKFLOW_NOT_RUNNING})
NOT_FOUND_CAUSE = "EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND"
_CHANGE_ACTIONS = ("signal", "cancel", "terminate")


class CrossWorkflow:
    """Carries cross-workflow outbox tasks (the transfer processor calls ``process_transfer``)
    and serves the peer ops that land them: ``START_CHILD_RUN``, ``RECORD_CHILD_CLOSED`` and
    ``CHANGE_RUN``."""

    def __init__(self, shards: ShardSet, engine: HistoryEngine) -> None:
        self.shards, self.engine = shards, engine

    async def process_transfer(self, shard_id: int, task: records.TransferTask) -> None:
        """Carry out one cross-workflow transfer task (the transfer processor calls this).

        A shard this node no longer leads drops it: its new leader runs it from the outbox."""
        if not self.shards.view.serving(shard_id):
            return
        shard = self.shards[shard_id]
        if task.kind == TransferKind.START_CHILD:
            await self._start_child(shard, task)
        elif task.kind in (TransferKind.CANCEL_EXTERNAL, TransferKind.SIGNAL_EXTERNAL):
            await self._deliver_external(shard, task)
        elif task.kind == TransferKind.CHILD_CLOSED:
            await self._tell_parent(shard, task)
        elif task.kind == TransferKind.PARENT_CLOSE_POLICY:
            await self._apply_parent_close_policy(shard, task)
        else:
            raise AssertionError(f"transfer kind {task.kind!r} is not processed here")

    async def _finish(self, shard: Shard, task: records.TransferTask,
                      change: Callable[[records.ExecutionState, float], Any] | None) -> None:
        """Record the outcome in the task's run (``change``) and delete the task, in one entry."""
        def op(b: Batch) -> None:
            if change is not None:
                try:
                    st = b.load(task.run_id)
                except wire.ShoalError as exc:
                    if exc.code != wire.Code.NOT_FOUND:
                        raise
                else:
                    b.record(st, change(st, b.now))
            b.delete_transfer_task(task.task_id)

        await shard.run_op(task.namespace, task.workflow_id, op)

    async def _start_child(self, shard: Shard, task: records.TransferTask) -> None:
        ns, eid = task.namespace, task.scheduled_event_id
        parent = self.shards.read_state(shard, ns, task.workflow_id, task.run_id)
        child = parent.children.get(eid)
        if parent.status != _RUNNING or child is None or child.run_id:
            await self._finish(shard, task, None)  # closed meanwhile, or done already
            return
        initiated = shard.history(ns, task.workflow_id, task.run_id, eid)[-1].attributes
        assert isinstance(initiated, wire.StartChildWorkflowExecutionInitiatedAttributes)
        req = wire.StartWorkflowRequest(
            workflow_id=initiated.workflow_id, workflow_type=initiated.workflow_type,
            task_queue=initiated.task_queue, input=list(initiated.input),
            request_id=f"child:{task.run_id}:{eid}",  # a re-run finds the child it started
            id_reuse_policy=initiated.workflow_id_reuse_policy,
            workflow_execution_timeout_s=initiated.workflow_execution_timeout_s,
            workflow_run_timeout_s=initiated.workflow_run_timeout_s,
            workflow_task_timeout_s=initiated.workflow_task_timeout_s,
            retry_policy=initiated.retry_policy, memo=dict(initiated.memo),
            search_attributes=dict(initiated.search_attributes),
            identity=f"parent:{task.workflow_id}",
        )
        run_id = str(uuid.uuid4())
        engine = self.engine
        try:
            resp = await self.shards.call(ns, wire.Op.START_CHILD_RUN, wire.StartChildRunRequest(
                request=req, parent_namespace=ns, parent=wire.WorkflowExecution(
                    workflow_id=task.workflow_id, run_id=task.run_id),
                initiated_event_id=eid, run_id=run_id, root=records.root_of(parent)))
        except wire.ShoalError as exc:
            if exc.code != wire.Code.WORKFLOW_ALREADY_STARTED:
                raise
            await self._finish(shard, task, lambda st, now: engine.record_child_start_failed(
                st, initiated_event_id=eid, cause="WORKFLOW_ALREADY_EXISTS", now=now))
            return
        assert isinstance(resp, wire.StartWorkflowResponse)
        await self._finish(shard, task, lambda st, now: engine.record_child_started(
            st, initiated_event_id=eid, child_run_id=resp.run_id, now=now))

    async def start_child_run(self, ns: str, req: wire.StartChildRunRequest
                              ) -> wire.StartWorkflowResponse:
        """``START_CHILD_RUN`` (on the child's shard leader): start a parent's child."""
        start = req.request
        ref = ParentRef(req.parent_namespace, req.parent, req.initiated_event_id, req.root)
        engine = self.engine
        return await self.shards.for_workflow(ns, start.workflow_id).run_op(
            ns, start.workflow_id,
            lambda b: engine.start_in_batch(b, start, namespace=ns, run_id=req.run_id, parent=ref))

    async def _tell_parent(self, shard: Shard, task: records.TransferTask) -> None:
        """A child's chain closed: record the outcome in its parent, then drop the task."""
        child = self.shards.read_state(shard, task.namespace, task.workflow_id, task.run_id)
        parent = child.parent
        if parent is not None:
            await self.shards.call(child.parent_namespace, wire.Op.RECORD_CHILD_CLOSED,
                            wire.RecordChildClosedRequest(
                                parent=parent, initiated_event_id=child.parent_initiated_event_id,
                                child=wire.ChildClose(run_id=child.run_id, status=child.status,
                                                      result=child.result, failure=child.failure)))
        await self._finish(shard, task, None)

    async def record_child_closed(self, ns: str, req: wire.RecordChildClosedRequest
                                  ) -> wire.Empty:
        """``RECORD_CHILD_CLOSED`` (on the parent's shard leader)."""
        engine, parent, eid = self.engine, req.parent, req.initiated_event_id

        def op(b: Batch) -> None:
            try:
                st = b.load(parent.run_id)
            except wire.ShoalError as exc:
                if exc.code != wire.Code.NOT_FOUND:
                    raise
                return
            b.record(st, engine.record_child_closed(st, initiated_event_id=eid, closed=req.child,
                                                    now=b.now))

        await self.shards.for_workflow(ns, parent.workflow_id).run_op(ns, parent.workflow_id, op)
        return wire.Empty()

    async def _apply_parent_close_policy(self, shard: Shard, task: records.TransferTask) -> None:
        """The parent closed: terminate or ask to cancel its running child, as its policy says."""
        parent = self.shards.read_state(shard, task.namespace, task.workflow_id, task.run_id)
        child = parent.children.get(task.scheduled_event_id)
        if child is not None:
            terminate = child.parent_close_policy == wire.ParentClosePolicy.TERMINATE
            try:
                await self.shards.call(child.namespace, wire.Op.CHANGE_RUN, wire.ChangeRunRequest(
                    execution=wire.WorkflowExecution(workflow_id=child.workflow_id),
                    action="terminate" if terminate else "cancel",
                    reason=f"parent {task.workflow_id!r} closed (parent close policy)",
                    identity="shoal",
                    request_id=f"parent-close:{task.run_id}:{child.initiated_event_id}",
                    expect_parent_workflow_id=task.workflow_id,
                    expect_initiated_event_id=child.initiated_event_id))
            except wire.ShoalError as exc:
                if exc.code not in _GONE:
                    raise  # a child that closed already needs nothing
        await self._finish(shard, task, None)

    async def _deliver_external(self, shard: Shard, task: records.TransferTask) -> None:
        ns, eid = task.namespace, task.scheduled_event_id
        source = self.shards.read_state(shard, ns, task.workflow_id, task.run_id)
        request = source.external_requests.get(eid)
        if source.status != _RUNNING or request is None:
            await self._finish(shard, task, None)
            return
        engine = self.engine
        failed = None
        try:
            await self.shards.call(request.namespace, wire.Op.CHANGE_RUN, wire.ChangeRunRequest(
                execution=wire.WorkflowExecution(workflow_id=request.workflow_id,
                                                 run_id=request.run_id),
                action="signal" if request.signal_name else "cancel",
                signal_name=request.signal_name, input=list(request.input or []),
                reason=request.reason, identity=f"workflow:{task.workflow_id}",
                request_id=f"external:{task.run_id}:{eid}",
                expect_parent_workflow_id=task.workflow_id if request.child_workflow_only else None))
        except wire.ShoalError as exc:
            if exc.code not in _GONE:
                raise
            failed = NOT_FOUND_CAUSE
        await self._finish(shard, task, lambda st, now: engine.record_external_result(
            st, initiated_event_id=eid, failed_cause=failed, now=now))

    async def change_run(self, ns: str, req: wire.ChangeRunRequest) -> wire.Empty:
        """``CHANGE_RUN`` (on the target's shard leader): signal, cancel or terminate a run
        for another workflow; with ``expect_parent_workflow_id``, only that parent's child.

        Raises:
            ShoalError: NOT_FOUND / WORKFLOW_NOT_RUNNING when there is no such running run;
                INVALID_ARGUMENT for an unknown action.
        """
        engine, execution = self.engine, req.execution
        if req.action not in _CHANGE_ACTIONS:
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT,
                                  f"action must be one of {', '.join(_CHANGE_ACTIONS)}")

        def change(st: records.ExecutionState, now: float) -> Any:
            if req.action == "signal":
                return engine.signal(st, signal_name=req.signal_name, input=req.input,
                                     identity=req.identity, request_id=req.request_id, now=now)
            if req.action == "terminate":
                return engine.terminate(st, reason=req.reason, identity=req.identity, now=now)
            return engine.request_cancel(st, reason=req.reason, identity=req.identity,
                                         request_id=req.request_id, now=now)

        def op(b: Batch) -> None:
            st = b.load(execution.run_id)
            wf_id, eid = req.expect_parent_workflow_id, req.expect_initiated_event_id
            if wf_id is not None and (st.parent is None or st.parent.workflow_id != wf_id or (
                    eid and st.parent_initiated_event_id != eid)):
                raise wire.ShoalError(wire.Code.NOT_FOUND,
                                      f"workflow {execution.workflow_id!r} is not a child of {wf_id!r}")
            b.record(st, change(st, b.now))

        await self.shards.for_workflow(ns, execution.workflow_id).run_op(ns, execution.workflow_id, op)
        return wire.Empty()
