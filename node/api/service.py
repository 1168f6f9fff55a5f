"""The node's request handlers: one method per client/worker op (DESIGN §3).

Owns: validating request bodies beyond their wire shape (ids, sizes), routing a request to
its shard, building the engine call that runs inside the shard's mailbox, long polls (task
polls, result waits), and the read-only ops served from LMDB. Must not: make bytes (wire and
tables do), or change state other than through ``Shard.run_op``.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

import trio

from shoal import wire
from shoal.node.history.engine import HistoryEngine
from shoal.node.api.checks import POLL_WAIT_MAX_S, check_id as _check_id, check_payloads as _check_payloads
from shoal.node.visibility import list_filter
from shoal.node.cluster.router import ClusterView, Router, SoloView, from_wire, not_leader, to_wire
from shoal.node.matching.matching import DispatchTask, Matching
from shoal.sdk.connection import ConnectionLost, RPCError
from shoal.node.shard.shard import TaskSink
from shoal.node.shard.queries import Queries
from shoal.node.shard.updates import Updates
from shoal.node.api.interactions import InteractionsMixin
from shoal.node.shard.cross_workflow import TransfersMixin
from shoal.node.cluster.routing import shard_for
from shoal.node.shard.shard import Batch, Shard
from shoal.store import records, tables
from shoal.store.env import Store
from shoal.store.records import TransferKind

log = logging.getLogger(__name__)

EAGER_ACTIVITIES_MAX = 3  # activities started inside one workflow-task completion
PAGE_SIZE_MAX = 10_000
SCAN_TIMEOUT_S = 10.0
_CLOSED = frozenset(s for s in wire.WorkflowExecutionStatus if s != wire.WorkflowExecutionStatus.RUNNING)
_STALE = frozenset({wire.Code.TASK_NOT_FOUND, wire.Code.NOT_FOUND, wire.Code.WORKFLOW_NOT_RUNNING})


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= PAGE_SIZE_MAX:
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"page_size must be 1..{PAGE_SIZE_MAX}")


def _page_token(raw: bytes | None, *, default: int) -> int:
    """The position a page token names (tokens are ``wire.dumps`` of an int)."""
    if not raw:
        return default
    try:
        return wire.loads(int, raw)  # type: ignore[arg-type]
    except wire.WireError:
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, "next_page_token is not valid") from None


def _decode_token(raw: bytes) -> wire.TaskToken:
    try:
        return wire.loads(wire.TaskToken, raw)
    except wire.WireError:
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, "task_token is not a valid token") from None


class Service(InteractionsMixin, TransfersMixin):
    """Handles every op for this node. One instance per node."""

    def __init__(
        self,
        *,
        store: Store,
        shards: list[Shard],
        matching: Matching,
        engine: HistoryEngine,
        clock: Callable[[], float] = time.time,
        view: ClusterView | None = None,
        tasks: TaskSink | None = None,
    ) -> None:
        """``view``: the cluster (default: a single node serving everything); ``tasks``:
        where dispatched tasks go (default: this node's ``matching``)."""
        self.store, self.shards, self.matching = store, shards, matching
        self.engine, self.clock = engine, clock
        self.view: ClusterView = view or SoloView("local")
        self.tasks: TaskSink = tasks or matching
        self.queries = Queries(self.tasks, self.view.me)
        self.updates = Updates()
        # Runs ops on the node that serves them; the node sets it once the dispatcher exists.
        self.router: Router | None = None

    def shard(self, namespace: str, workflow_id: str) -> Shard:
        """The shard of a workflow id, which this node must be serving.

        Raises:
            ShoalError(NOT_LEADER): another node serves it (the router sends the request on).
        """
        return self.served(shard_for(namespace, workflow_id, len(self.shards)))

    def served(self, shard_id: int) -> Shard:
        """Shard ``shard_id`` if this node serves it; else ``NOT_LEADER``
        (``INVALID_ARGUMENT`` for an id outside 0..NUM_SHARDS-1, as a peer op may carry)."""
        if not 0 <= shard_id < len(self.shards):
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT,
                                  f"shard {shard_id} does not exist (0..{len(self.shards) - 1})")
        if not self.view.serving(shard_id):
            raise not_leader(f"shard {shard_id}", self.view.leader(shard_id), self.view)
        return self.shards[shard_id]

    async def call(self, ns: str, op: wire.Op, body: object) -> object:
        """Run ``op`` where it is served (another shard's leader, maybe on another node)."""
        assert self.router is not None, "the node sets Service.router before serving"
        return await self.router.call(ns, op, body)

    # --- workflow lifecycle ------------------------------------------------------------

    async def start_workflow(
        self, ns: str, req: wire.StartWorkflowRequest
    ) -> wire.StartWorkflowResponse:
        _check_id("workflow_id", req.workflow_id)
        _check_id("workflow_type", req.workflow_type)
        _check_id("task_queue", req.task_queue)
        _check_id("request_id", req.request_id)
        _check_payloads("input", req.input)
        run_id = str(uuid.uuid4())
        engine = self.engine

        def op(b: Batch) -> wire.StartWorkflowResponse:
            return engine.start_in_batch(b, req, namespace=ns, run_id=run_id)

        return await self.shard(ns, req.workflow_id).run_op(ns, req.workflow_id, op)

    async def get_result(self, ns: str, req: wire.GetResultRequest) -> wire.GetResultResponse:
        wf_id, run_id = req.execution.workflow_id, req.execution.run_id
        _check_id("workflow_id", wf_id)
        shard = self.shard(ns, wf_id)
        deadline = trio.current_time() + min(max(req.wait_s, 0.0), POLL_WAIT_MAX_S)
        while True:
            self.served(shard.shard_id)  # moved away while we waited: the router goes on
            changed = shard.changed_event(ns, wf_id)
            st = self._read_state(shard, ns, wf_id, run_id)
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
        from shoal.node.shard.shard import execution_info

        _check_id("workflow_id", req.execution.workflow_id)
        shard = self.shard(ns, req.execution.workflow_id)
        await shard.confirm_leader()
        st = self._read_state(shard, ns, req.execution.workflow_id, req.execution.run_id)
        return wire.DescribeWorkflowResponse(
            info=execution_info(st),
            pending_activities=[_pending_activity(a) for a in st.activities.values()],
            pending_workflow_task=_pending_wt(st.workflow_task),
            last_workflow_task_failure=st.last_workflow_task_failure,
        )

    async def get_history(self, ns: str, req: wire.GetHistoryRequest) -> wire.GetHistoryResponse:
        wf_id = req.execution.workflow_id
        _check_id("workflow_id", wf_id)
        _check_page_size(req.page_size)
        shard = self.shard(ns, wf_id)
        if not req.next_page_token:
            await shard.confirm_leader()  # later pages read events that cannot change
        st = self._read_state(shard, ns, wf_id, req.execution.run_id)
        start = _page_token(req.next_page_token, default=1)
        with self.store.read() as txn:
            events = tables.read_history(
                txn, shard.shard_id, ns, wf_id, st.run_id, from_event_id=start,
                limit=req.page_size,
            )
        last = events[-1].event_id if events else start - 1
        token = wire.dumps(last + 1) if last < st.next_event_id - 1 else None
        return wire.GetHistoryResponse(events=events, next_page_token=token)

    async def list_workflows(
        self, ns: str, req: wire.ListWorkflowsRequest
    ) -> wire.ListWorkflowsResponse:
        _check_page_size(req.page_size)
        query = list_filter.parse(req.query)
        if query.group_by_status:
            raise wire.ShoalError(
                wire.Code.INVALID_ARGUMENT,
                "GROUP BY is for counting; use count_workflows, or drop GROUP BY to list",
            )
        offset = _page_token(req.next_page_token, default=0)
        found = await self._matching_runs(ns, req, query)
        query.sort(found)
        page = found[offset : offset + req.page_size]
        more = offset + req.page_size < len(found)
        return wire.ListWorkflowsResponse(
            executions=page, next_page_token=wire.dumps(offset + req.page_size) if more else None
        )

    async def count_workflows(
        self, ns: str, req: wire.CountWorkflowsRequest
    ) -> wire.CountWorkflowsResponse:
        query = list_filter.parse(req.query)
        found = await self._matching_runs(ns, wire.ListWorkflowsRequest(query=req.query), query)
        groups: list[wire.CountWorkflowsGroup] = []
        if query.group_by_status:
            by_status = collections.Counter(info.status for info in found)
            groups = [
                wire.CountWorkflowsGroup(status=status, count=n)
                for status, n in sorted(by_status.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
        return wire.CountWorkflowsResponse(count=len(found), groups=groups)

    async def _matching_runs(
        self, ns: str, req: wire.ListWorkflowsRequest, query: list_filter.ListFilter
    ) -> list[wire.WorkflowExecutionInfo]:
        """Every visibility row of ``ns`` that the request's fields and its query accept,
        read from each shard's leader (this node's tables for the shards it leads; a
        ``SCAN_VISIBILITY`` to each other leader for theirs).

        Raises:
            ShoalError(UNAVAILABLE): some shard had no reachable leader (the router gave up).
        """
        found: list[wire.WorkflowExecutionInfo] = []
        by_node: dict[str | None, list[int]] = {}
        for sid in range(len(self.shards)):
            node = self.view.me if self.view.serving(sid) else self.view.leader(sid)
            by_node.setdefault(node, []).append(sid)
        todo = by_node.pop(None, [])
        found.extend(self._scan_visibility(ns, req, query, by_node.pop(self.view.me, [])))
        for node, shards in by_node.items():  # one request per node that leads some
            assert node is not None
            try:
                resp = await self._scan_remote(ns, node, shards, req)
            except wire.ShoalError:
                todo.extend(shards)
                continue
            found.extend(resp.executions)
            todo.extend(resp.missing_shards)
        for sid in sorted(todo):
            # Our guess was stale: the router finds the leader (following its hints).
            resp = await self.call(ns, wire.Op.SCAN_VISIBILITY, wire.ScanVisibilityRequest(
                shards=[sid], request=req))
            assert isinstance(resp, wire.ScanVisibilityResponse)
            found.extend(resp.executions)
        return found

    async def _scan_remote(self, ns: str, node: str, shards: list[int],
                           req: wire.ListWorkflowsRequest) -> wire.ScanVisibilityResponse:
        addr = self.view.api_addr(node)
        peers = self.router.peers if self.router is not None else None
        if addr is None or peers is None:
            raise wire.ShoalError(wire.Code.UNAVAILABLE, f"node {node} cannot be reached")
        try:
            with trio.fail_after(SCAN_TIMEOUT_S):
                return await peers.call(addr, ns, wire.Op.SCAN_VISIBILITY,
                                        wire.ScanVisibilityRequest(shards=shards, request=req))
        except (RPCError, ConnectionLost, trio.TooSlowError) as exc:
            raise wire.ShoalError(wire.Code.UNAVAILABLE, f"node {node}: {exc}") from None

    async def scan_visibility(self, ns: str, req: wire.ScanVisibilityRequest
                              ) -> wire.ScanVisibilityResponse:
        """``SCAN_VISIBILITY``: the rows of the asked shards this node leads."""
        query = list_filter.parse(req.request.query)
        if len(req.shards) == 1:
            self.served(req.shards[0])  # routed to us as its leader: NOT_LEADER with a hint
        for sid in req.shards:
            if not 0 <= sid < len(self.shards):
                raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"shard {sid} does not exist")
        mine = [s for s in req.shards if self.view.serving(s)]
        missing = sorted(set(req.shards) - set(mine))
        return wire.ScanVisibilityResponse(
            executions=self._scan_visibility(ns, req.request, query, mine),
            missing_shards=missing)

    def _scan_visibility(self, ns: str, req: wire.ListWorkflowsRequest,
                         query: list_filter.ListFilter, shards: list[int]
                         ) -> list[wire.WorkflowExecutionInfo]:
        found: list[wire.WorkflowExecutionInfo] = []
        with self.store.read() as txn:
            for sid in shards:
                for info in tables.scan_visibility(txn, sid, ns):
                    if req.status is not None and info.status != req.status:
                        continue
                    if req.workflow_type is not None and info.workflow_type != req.workflow_type:
                        continue
                    if req.task_queue is not None and info.task_queue != req.task_queue:
                        continue
                    if query.matches(info):
                        found.append(info)
        return found

    def _read_state(
        self, shard: Shard, ns: str, wf_id: str, run_id: str
    ) -> records.ExecutionState:
        with self.store.read() as txn:
            if not run_id:
                cur = tables.get_current_run(txn, shard.shard_id, ns, wf_id)
                if cur is None:
                    raise wire.ShoalError(
                        wire.Code.NOT_FOUND, f"workflow {wf_id!r} does not exist"
                    )
                run_id = cur.run_id
            st = tables.get_execution(txn, shard.shard_id, ns, wf_id, run_id)
        if st is None:
            raise wire.ShoalError(
                wire.Code.NOT_FOUND, f"workflow {wf_id!r} run {run_id!r} does not exist"
            )
        return st

    # --- workflow tasks ----------------------------------------------------------------

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
        _check_id("task_queue", req.task_queue)
        queue = self.matching.queue(ns, kind, req.task_queue)
        deadline = trio.current_time() + min(max(req.wait_s, 0.0), POLL_WAIT_MAX_S)
        request_id = str(uuid.uuid4())
        while True:
            task = await queue.poll(max(deadline - trio.current_time(), 0.0))
            if task is None:
                return None
            try:
                started = await self.call(ns, wire.Op.START_TASK, wire.StartTaskRequest(
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
            self.served(task.shard)
            return wire.StartTaskResponse(workflow_task=self._query_task(task))
        _check_id("request_id", req.request_id)
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
        return wire.StartTaskResponse(workflow_task=dataclasses.replace(
            wt, history=[e for e in full if e.event_id <= wt.started_event_id],
            updates=self.updates.unaccepted((ns, task.workflow_id, task.run_id)),
        ))

    async def _record_started(self, task: DispatchTask, identity: str, request_id: str):
        """Ask the task's shard to record it started; None if the task went stale."""
        engine = self.engine
        shard = self.served(task.shard)

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
        token = _decode_token(req.task_token)
        _check_id("sticky_task_queue", req.sticky_task_queue, required=False)
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
        token = _decode_token(req.task_token)
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

    # --- activity tasks ----------------------------------------------------------------

    async def poll_activity_task(
        self, ns: str, req: wire.PollActivityTaskRequest
    ) -> wire.PollActivityTaskResponse:
        started = await self._poll_and_start(ns, TransferKind.ACTIVITY_TASK, req)
        return wire.PollActivityTaskResponse(task=started.activity_task if started else None)

    async def complete_activity_task(
        self, ns: str, req: wire.CompleteActivityTaskRequest
    ) -> wire.Empty:
        token = _decode_token(req.task_token)
        _check_payloads("result", req.result)
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
        token = _decode_token(req.task_token)
        _check_payloads("last_heartbeat_details", req.last_heartbeat_details)
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
        token = _decode_token(req.task_token)
        _check_payloads("details", req.details)
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
        token = _decode_token(req.task_token)
        _check_payloads("details", req.details)
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
        return await self.shard(ns, token.workflow_id).run_op(ns, token.workflow_id, op)

    # --- timers ------------------------------------------------------------------------

    async def fire_timer(self, shard_id: int, task: records.TimerTask) -> None:
        """Apply a due timer task through its shard's mailbox and delete its row.

        A shard this node no longer leads drops it: its new leader armed it at takeover."""
        if not self.view.serving(shard_id):
            return
        engine = self.engine
        shard = self.shards[shard_id]

        def op(b: Batch) -> None:
            st = shard._state(task.namespace, task.workflow_id, task.run_id)
            tr = engine.on_timer(st, task, b.now) if st is not None else None
            if tr is None or not (tr.events or tr.transfer_tasks or tr.timer_tasks or tr.closed):
                b.defer_timer_delete(task)  # stale: nothing to write but the row's delete
                return
            b.record(st, tr)
            b.delete_timer_task(task)

        await shard.run_op(task.namespace, task.workflow_id, op)


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
