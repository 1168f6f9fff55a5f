"""Request handlers for what clients do to running workflows: signals, signal-with-start,
cancel requests, terminate, and queries (a mixin of ``Service``, sharing its fields).

Owns: validating those requests and running their engine calls in the workflow's mailbox;
queries go to ``node/shard/queries.py`` instead (nothing is written). Must not: make bytes or
change state other than through ``Shard.run_op``.
"""

from __future__ import annotations

import uuid

import trio
from typing import TYPE_CHECKING

from shoal import wire
from shoal.node.api.checks import POLL_WAIT_MAX_S, check_id as _check_id, check_payloads as _check_payloads
from shoal.node.matching.matching import DispatchTask
from shoal.node.shard.shard import Batch

if TYPE_CHECKING:
    from shoal.node.api.service import Service

_RUNNING = wire.WorkflowExecutionStatus.RUNNING


class InteractionsMixin:
    """Signals, cancel requests, terminate and queries for ``Service``."""

    # --- signals, cancel requests, terminate ---------------------------------------------

    async def _run_op_on(self: Service, ns: str, execution: wire.WorkflowExecution, change) -> None:
        """Apply ``change(engine, state, now) -> Transition`` to a run ('' = current run)."""
        wf_id = execution.workflow_id
        _check_id("workflow_id", wf_id)
        _check_id("run_id", execution.run_id, required=False)

        def op(b: Batch) -> None:
            st = b.load(execution.run_id)
            b.record(st, change(st, b.now))

        await self.shard(ns, wf_id).run_op(ns, wf_id, op)

    async def signal_workflow(self: Service, ns: str, req: wire.SignalWorkflowRequest) -> wire.Empty:
        _check_id("request_id", req.request_id, required=False)
        _check_payloads("signal input", req.input)
        engine = self.engine
        await self._run_op_on(ns, req.execution, lambda st, now: engine.signal(
            st, signal_name=req.signal_name, input=req.input, identity=req.identity,
            request_id=req.request_id, now=now,
        ))
        return wire.Empty()

    async def request_cancel_workflow(
        self, ns: str, req: wire.RequestCancelWorkflowRequest
    ) -> wire.Empty:
        _check_id("request_id", req.request_id, required=False)
        engine = self.engine
        await self._run_op_on(ns, req.execution, lambda st, now: engine.request_cancel(
            st, reason=req.reason, identity=req.identity, request_id=req.request_id, now=now,
        ))
        return wire.Empty()

    async def terminate_workflow(self: Service, ns: str, req: wire.TerminateWorkflowRequest) -> wire.Empty:
        _check_payloads("details", req.details)
        engine = self.engine
        await self._run_op_on(ns, req.execution, lambda st, now: engine.terminate(
            st, reason=req.reason or "terminated by a client", identity=req.identity,
            details=req.details, now=now,
        ))
        return wire.Empty()

    async def signal_with_start_workflow(
        self, ns: str, req: wire.SignalWithStartWorkflowRequest
    ) -> wire.StartWorkflowResponse:
        """Signal the running run of ``req.start.workflow_id``, or start one and signal it.

        Both happen in one log entry, so the new run's first workflow task sees the signal.
        The start's request id makes a retry idempotent: it signals nothing twice.
        """
        start = req.start
        for name in ("workflow_id", "workflow_type", "task_queue", "request_id"):
            _check_id(name, getattr(start, name))
        _check_payloads("input", start.input)
        _check_payloads("signal input", req.signal_input)
        run_id = str(uuid.uuid4())
        engine = self.engine

        def op(b: Batch) -> wire.StartWorkflowResponse:
            cur = b.current()
            if cur is not None and cur.status == _RUNNING:
                resp = wire.StartWorkflowResponse(run_id=cur.run_id, started=False)
            else:
                resp = engine.start_in_batch(b, start, namespace=ns, run_id=run_id)
            st = b.load(resp.run_id)
            b.record(st, engine.signal(
                st, signal_name=req.signal_name, input=req.signal_input,
                identity=start.identity, request_id=start.request_id, now=b.now,
            ))
            return resp

        return await self.shard(ns, start.workflow_id).run_op(ns, start.workflow_id, op)

    # --- queries -------------------------------------------------------------------------

    async def query_workflow(
        self, ns: str, req: wire.QueryWorkflowRequest
    ) -> wire.QueryWorkflowResponse:
        """Run a query handler on a worker against the run's committed state (open or closed).

        A read that must be current (DESIGN §4): a quorum confirms this node still leads
        the shard first, so a leader cut off and replaced cannot answer from its stale
        copy. The worker's task is built later from this node's tables, which by then hold
        at least everything committed when the quorum confirmed.

        Raises:
            ShoalError: NOT_LEADER / UNAVAILABLE when leadership is not confirmed (the
                router sends the query to the new leader); see also ``Queries.ask``.
        """
        wf_id = req.execution.workflow_id
        _check_id("workflow_id", wf_id)
        _check_id("query_type", req.query.query_type)
        _check_payloads("query_args", req.query.query_args)
        if not 0 < req.timeout_s <= POLL_WAIT_MAX_S:
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"timeout_s must be in (0, {POLL_WAIT_MAX_S:g}]")
        shard = self.shard(ns, wf_id)
        await shard.confirm_leader()
        st = self._read_state(shard, ns, wf_id, req.execution.run_id)
        result = await self.queries.ask(
            shard=shard.shard_id, namespace=ns, workflow_id=wf_id, run_id=st.run_id,
            task_queue=st.task_queue, query=req.query, timeout_s=req.timeout_s,
        )
        return wire.QueryWorkflowResponse(result=result)

    async def respond_query_task(self: Service, ns: str, req: wire.RespondQueryTaskRequest) -> wire.Empty:
        _check_payloads("result", req.result)
        self.queries.answer(req)
        return wire.Empty()

    def _query_task(self: Service, task: DispatchTask) -> wire.WorkflowTask | None:
        """The query task for a poller: the run's committed history and the query.

        None when the asker gave up or the run is gone. A workflow task in flight is left
        out (its Started event): the query sees the state as of the last completed task.
        """
        pending = self.queries.waiting(task.query_id)
        if pending is None:
            return None
        shard = self.shards[task.shard]
        try:
            st = self._read_state(shard, task.namespace, task.workflow_id, task.run_id)
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

    # --- updates ---------------------------------------------------------------------

    async def update_workflow(self: Service, ns: str, req: wire.UpdateWorkflowRequest) -> wire.UpdateWorkflowResponse:
        """Deliver an update to the run's workflow and wait for its outcome.

        Rejected or failed updates are an outcome with a failure, not an error.
        """
        wf_id, request = req.execution.workflow_id, req.request
        _check_id("workflow_id", wf_id)
        _check_id("update_id", request.update_id)
        _check_id("update name", request.name)
        _check_payloads("update input", request.input)
        if not 0 < req.wait_s <= POLL_WAIT_MAX_S:
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"wait_s must be in (0, {POLL_WAIT_MAX_S:g}]")
        shard = self.shard(ns, wf_id)
        engine, updates = self.engine, self.updates

        def op(b: Batch):
            st = b.load(req.execution.run_id)
            done = st.completed_updates.get(request.update_id)
            if done is not None:
                return st.run_id, done
            if st.status != _RUNNING:
                raise wire.ShoalError(wire.Code.WORKFLOW_NOT_RUNNING,
                                      f"workflow {wf_id!r} run {st.run_id} is {st.status.name}")
            pending = updates.register((ns, wf_id, st.run_id), request,
                                       accepted=request.update_id in st.accepted_updates)
            if st.workflow_task is None:
                b.record(st, engine.schedule_update_task(st, now=b.now))
            return st.run_id, pending

        run_id, found = await shard.run_op(ns, wf_id, op)
        if isinstance(found, wire.UpdateOutcome):
            return wire.UpdateWorkflowResponse(run_id=run_id, outcome=found)
        return await self._await_update(shard, ns, wf_id, run_id, found, req.wait_s)

    async def _await_update(self: Service, shard, ns: str, wf_id: str, run_id: str, pending,
                            wait_s: float) -> wire.UpdateWorkflowResponse:
        with trio.move_on_after(wait_s):
            while not pending.done.is_set():
                changed = shard.changed_event(ns, wf_id)
                st = self._read_state(shard, ns, wf_id, run_id)
                if st.status != _RUNNING and not pending.done.is_set():
                    self.updates.forget((ns, wf_id, run_id), pending)
                    raise wire.ShoalError(
                        wire.Code.WORKFLOW_NOT_RUNNING,
                        f"workflow {wf_id!r} run {run_id} closed ({st.status.name}) before update "
                        f"{pending.request.update_id!r} completed")
                async with trio.open_nursery() as nursery:
                    async def first(ev) -> None:
                        await ev.wait()
                        nursery.cancel_scope.cancel()
                    nursery.start_soon(first, pending.done)
                    nursery.start_soon(first, changed)
        if pending.outcome is None:
            self.updates.forget((ns, wf_id, run_id), pending)
            raise wire.ShoalError(
                wire.Code.DEADLINE_EXCEEDED,
                f"update {pending.request.update_id!r} of workflow {wf_id!r} did not complete within "
                f"{wait_s:g}s{'' if pending.accepted else ': no worker accepted it (is one polling?)'}")
        return wire.UpdateWorkflowResponse(run_id=run_id, outcome=pending.outcome)
