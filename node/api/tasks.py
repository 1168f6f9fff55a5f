"""Handlers for workflow and activity tasks: polls, starts, completions, failures,
heartbeats (DESIGN §3, steps 4-6).

Owns: long polls on this node's task queue partitions, recording a matched task started on
its shard's leader (``START_TASK``), the history a workflow task carries (sticky tasks get
only what is new), query tasks for pollers, eager activities inside a workflow-task
completion, and every task-token op. Must not: make bytes or change state other than
through ``Shard.run_op``.
"""

from __future__ import annotations

import dataclasses
import uuid

import trio

from shoal import wire
from shoal.node.api.checks import POLL_WAIT_MAX_S, check_id, check_payloads, decode_token
from shoal.node.cluster.task_router import from_wire, to_wire
from shoal.node.history.engine import HistoryEngine
from shoal.node.matching.matching import DispatchTask, Matching
from shoal.node.shard.queries import Queries
from shoal.node.shard.shard import Batch
from shoal.node.shard.shards import ShardSet
from shoal.node.shard.updates import Updates
from shoal.node.history import records
from shoal.node.history.records import TransferKind

EAGER_ACTIVITIES_MAX = 3  # activities started inside one workflow-task completion
_STALE = frozenset({wire.Code.TASK_NOT_FOUND, wire.Code.NOT_FOUND, wire.Code.WORKFLOW_NOT_RUNNING})


class TaskOps:
    """Every op a worker sends about its tasks, and ``START_TASK`` between nodes."""

    def __init__(self, shards: ShardSet, engine: HistoryEngine, matching: Matching,
                 queries: Queries, updates: Updates) -> None:
        self.shards, self.engine, self.matching = shards, engine, matching
        self.queries, self.updates = queries, updates

    async def poll_workflow_task(
        self, ns: str, req: wire.PollWorkflowTaskRequest
    ) -> wire.PollWorkflowTaskResponse:
        started = await self._poll_and_start(ns, TransferKind.WORKFLOW_TASK, req)
        return wire.PollWorkflowTaskResponse(task=started.workflow_task if started else None)

    async def _poll_and_start(self, ns: str, kind: TransferKind, req) -> wire.StartTaskResponse | None:
        """Long-poll a task queue (this node owns its partition) until a task is recorded
        started by its shard's leader (or the wait ends).

        Stale dispatches (the task moved on meanwhile) are dropped and the poll goes on.
        Returns what the poller gets, or None when the wait ends.
        """
        check_id("task_queue", req.task_queue)
        queue = self.matching.queue(ns, kind, req.task_queue)
        deadline = trio.current_time() + min(max(req.wait_s, 0.0), POLL_WAIT_MAX_S)
        request_id = str(uuid.uuid4())
        while True:
            task = await queue.poll(max(deadline - trio.current_time(), 0.0))
            if task is None:
                return None
            try:
                started = await self.shards.call(ns, wire.Op.START_TASK, wire.StartTaskRequest(
                    task=to_wire(task), identity=req.identity, request_id=request_id))
            except BaseException:
                # Not the task's fault (storage trouble, no leader yet, our caller left):
                # offer it again; if it did start, its leader drops the duplicate.
                self.matching.add(task)
                raise
            assert isinstance(started, wire.StartTaskResponse)
            if started.workflow_task is not None or started.activity_task is not None:
                return started

    async def start_task(self, ns: str, req: wire.StartTaskRequest) -> wire.StartTaskResponse:
        """``START_TASK`` (on the task's shard leader): record a matched task started and
        return what its poller gets; an empty answer if the task went stale."""
        task = from_wire(req.task)
        if task.query_id:
            self.shards.served(task.shard)
            return wire.StartTaskResponse(workflow_task=self._query_task(task))
        check_id("request_id", req.request_id)
        started = await self._record_started(task, req.identity, req.request_id)
        if started is None:
            return wire.StartTaskResponse()
        if task.kind == TransferKind.ACTIVITY_TASK:
            return wire.StartTaskResponse(activity_task=started)
        wt = started
        history = self.shards[task.shard].history(
            ns, task.workflow_id, task.run_id, wt.started_event_id
        )
        if wt.sticky:  # the sticky worker has the rest cached
            history = [e for e in history if e.event_id > wt.previous_started_event_id]
        # The engine's task carries only the transient events (a retried task's
        # Scheduled/Started, not stored); the stored history comes first.
        full = history + list(wt.history)
        run = (ns, task.workflow_id, task.run_id)
        return wire.StartTaskResponse(workflow_task=dataclasses.replace(
            wt, history=[e for e in full if e.event_id <= wt.started_event_id],
            updates=self.updates.unaccepted(run),
            queries=self.queries.attach(run, (wt.started_event_id, wt.attempt)),
        ))

    async def _record_started(self, task: DispatchTask, identity: str, request_id: str):
        """Ask the task's shard to record it started; None if the task went stale."""
        engine = self.engine
        shard = self.shards.served(task.shard)

        def op(b: Batch):
            st = b.load(task.run_id)
            if task.kind == TransferKind.WORKFLOW_TASK:
                tr = engine.record_workflow_task_started(
                    st, scheduled_event_id=task.scheduled_event_id, attempt=task.attempt,
                    identity=identity, request_id=request_id, now=b.now,
                )
            else:
                tr = engine.record_activity_task_started(
                    st, scheduled_event_id=task.scheduled_event_id, attempt=task.attempt,
                    identity=identity, request_id=request_id, now=b.now,
                )
            b.record(st, tr)
            b.delete_transfer_task(task.task_id)
            return tr.response

        try:
            return await shard.run_op(task.namespace, task.workflow_id, op)
        except wire.ShoalError as exc:
            if exc.code not in _STALE:
                raise  # not the task's fault: the poller offers it again

        def drop(b: Batch) -> None:
            b.delete_transfer_task(task.task_id)

        await shard.run_op(task.namespace, task.workflow_id, drop)
        return None

    async def complete_workflow_task(
        self, ns: str, req: wire.CompleteWorkflowTaskRequest
    ) -> wire.CompleteWorkflowTaskResponse:
        token = decode_token(req.task_token)
        check_id("sticky_task_queue", req.sticky_task_queue, required=False)
        for answer in req.query_results.values():
            check_payloads("query result", answer.result)
        if not 0 < req.sticky_schedule_to_start_timeout_s <= POLL_WAIT_MAX_S:
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT,
                                  f"sticky_schedule_to_start_timeout_s must be in (0, {POLL_WAIT_MAX_S:g}]")
        engine = self.engine
        eager_ids = {
            c.activity_id for c in req.commands
            if isinstance(c, wire.ScheduleActivityTaskCommand) and c.request_eager_execution
        }
        request_id = str(uuid.uuid4())
        new_run_id = str(uuid.uuid4())  # used only if a command continues the run as new

        key = (ns, token.workflow_id, token.run_id)
        settled: list = []

        def op(b: Batch) -> list[wire.ActivityTask]:
            st = b.load(token.run_id)
            tr = engine.complete_workflow_task(
                st, token=token, commands=req.commands, identity=req.identity, now=b.now,
                new_run_id=new_run_id, sticky_task_queue=req.sticky_task_queue,
                sticky_schedule_to_start_timeout_s=req.sticky_schedule_to_start_timeout_s,
            )
            eager = self._take_eager(st, tr, eager_ids)
            b.record(st, tr)
            # The token was valid: the task's answers to the queries it carried are taken
            # now, before the commit wakes their askers (who would otherwise re-send them).
            self.queries.settle(key, (token.started_event_id, token.attempt), req.query_results)
            settled[:] = [tr.accepted_updates, tr.update_outcomes]
            waiting = {u.update_id for u in self.updates.unaccepted(key)}
            if waiting - set(tr.accepted_updates) - set(tr.update_outcomes):
                # Updates arrived while the task ran: a task must carry them.
                b.record(st, engine.schedule_update_task(st, now=b.now))
            started = []
            for t in eager:
                # Same entry as the schedule: one commit instead of a poll and another.
                tr2 = engine.record_activity_task_started(
                    st, scheduled_event_id=t.scheduled_event_id, attempt=t.attempt,
                    identity=req.identity, request_id=request_id, now=b.now,
                )
                b.record(st, tr2)
                started.append(tr2.response)
            return started

        tasks = await self._token_op(ns, token, op)
        if settled:
            self.updates.settle(key, *settled)  # committed: answer the callers
        return wire.CompleteWorkflowTaskResponse(activity_tasks=tasks)

    @staticmethod
    def _take_eager(st: records.ExecutionState, tr, eager_ids: set[str]) -> list[records.TransferTask]:
        """Pull out the dispatches of activities the worker asked to run eagerly.

        Only activities on the workflow's own task queue qualify (the completing worker
        polls that queue), at most ``EAGER_ACTIVITIES_MAX`` per task, as Temporal limits it.
        """
        if not eager_ids:
            return []
        eager: list[records.TransferTask] = []
        keep: list[records.TransferTask] = []
        for t in tr.transfer_tasks:
            ai = st.activities.get(t.scheduled_event_id) if t.kind == TransferKind.ACTIVITY_TASK else None
            if (ai is not None and ai.activity_id in eager_ids and t.task_queue == st.task_queue
                    and len(eager) < EAGER_ACTIVITIES_MAX):
                eager.append(t)
            else:
                keep.append(t)
        tr.transfer_tasks = keep
        return eager

    async def fail_workflow_task(self, ns: str, req: wire.FailWorkflowTaskRequest) -> wire.Empty:
        token = decode_token(req.task_token)
        engine = self.engine

        def op(b: Batch) -> None:
            st = b.load(token.run_id)
            tr = engine.fail_workflow_task(
                st, token=token, cause=req.cause, failure=req.failure, identity=req.identity,
                now=b.now,
            )
            b.record(st, tr)

        await self._token_op(ns, token, op)
        return wire.Empty()

    async def poll_activity_task(
        self, ns: str, req: wire.PollActivityTaskRequest
    ) -> wire.PollActivityTaskResponse:
        started = await self._poll_and_start(ns, TransferKind.ACTIVITY_TASK, req)
        return wire.PollActivityTaskResponse(task=started.activity_task if started else None)

    async def complete_activity_task(
        self, ns: str, req: wire.CompleteActivityTaskRequest
    ) -> wire.Empty:
        token = decode_token(req.task_token)
        check_payloads("result", req.result)
        engine = self.engine

        def op(b: Batch) -> None:
            st = b.load(token.run_id)
            tr = engine.complete_activity_task(
                st, token=token, result=req.result, identity=req.identity, now=b.now
            )
            b.record(st, tr)

        await self._token_op(ns, token, op)
        return wire.Empty()

    async def fail_activity_task(self, ns: str, req: wire.FailActivityTaskRequest) -> wire.Empty:
        token = decode_token(req.task_token)
        check_payloads("last_heartbeat_details", req.last_heartbeat_details)
        engine = self.engine

        def op(b: Batch) -> None:
            st = b.load(token.run_id)
            tr = engine.fail_activity_task(
                st, token=token, failure=req.failure,
                last_heartbeat_details=req.last_heartbeat_details, identity=req.identity,
                now=b.now,
            )
            b.record(st, tr)

        await self._token_op(ns, token, op)
        return wire.Empty()

    async def record_activity_heartbeat(
        self, ns: str, req: wire.RecordActivityHeartbeatRequest
    ) -> wire.RecordActivityHeartbeatResponse:
        token = decode_token(req.task_token)
        check_payloads("details", req.details)
        engine = self.engine

        def op(b: Batch) -> wire.RecordActivityHeartbeatResponse:
            st = b.load(token.run_id)
            tr = engine.record_activity_heartbeat(st, token=token, details=req.details, now=b.now)
            b.record(st, tr)
            return tr.response

        return await self._token_op(ns, token, op)

    async def respond_activity_task_canceled(
        self, ns: str, req: wire.RespondActivityTaskCanceledRequest
    ) -> wire.Empty:
        token = decode_token(req.task_token)
        check_payloads("details", req.details)
        engine = self.engine

        def op(b: Batch) -> None:
            st = b.load(token.run_id)
            b.record(st, engine.cancel_activity_task(
                st, token=token, details=req.details, identity=req.identity, now=b.now))

        await self._token_op(ns, token, op)
        return wire.Empty()

    async def _token_op(self, ns: str, token: wire.TaskToken, op):
        if token.namespace != ns:
            raise wire.ShoalError(
                wire.Code.TASK_NOT_FOUND, "task_token belongs to another namespace"
            )
        return await self.shards.for_workflow(ns, token.workflow_id).run_op(ns, token.workflow_id, op)

    def _query_task(self, task: DispatchTask) -> wire.WorkflowTask | None:
        """The query task for a poller: the run's committed history and the query.

        None when the asker gave up or the run is gone. A workflow task in flight is left
        out (its Started event): the query sees the state as of the last completed task.
        """
        pending = self.queries.waiting(task.query_id)
        if pending is None:
            return None
        shard = self.shards[task.shard]
        try:
            st = self.shards.read_state(shard, task.namespace, task.workflow_id, task.run_id)
        except wire.ShoalError:
            return None
        history = shard.history(task.namespace, task.workflow_id, task.run_id, st.next_event_id - 1)
        if history and history[-1].event_type == wire.EventType.WORKFLOW_TASK_STARTED:
            history = history[:-1]
        return wire.WorkflowTask(
            task_token=b"", workflow_id=st.workflow_id, run_id=st.run_id,
            workflow_type=st.workflow_type, attempt=0, started_event_id=0,
            previous_started_event_id=0, history=history, scheduled_time=0.0, started_time=0.0,
            query_id=task.query_id, query=pending.query,
        )
