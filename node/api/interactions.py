"""Request handlers for what clients do to running workflows: signals, signal-with-start,
cancel requests, terminate, queries and updates.

Owns: validating those requests and running their engine calls in the workflow's mailbox;
queries go to ``node/shard/queries.py`` instead (nothing is written). Must not: make bytes or
change state other than through ``Shard.run_op``.
"""

from __future__ import annotations

import uuid

import trio

from shoal import wire
from shoal.node.api.checks import POLL_WAIT_MAX_S, check_id, check_payloads
from shoal.node.history.engine import HistoryEngine
from shoal.node.history import records
from shoal.node.shard.queries import Queries, TaskKey
from shoal.node.shard.shard import Batch, Shard
from shoal.node.shard.shards import ShardSet
from shoal.node.shard.updates import Updates

_RUNNING = wire.WorkflowExecutionStatus.RUNNING


class InteractionOps:
    """Signals, signal-with-start, cancel requests, terminate, queries and updates."""

    def __init__(self, shards: ShardSet, engine: HistoryEngine, queries: Queries,
                 updates: Updates) -> None:
        self.shards, self.engine, self.queries, self.updates = shards, engine, queries, updates

    async def _run_op_on(self, ns: str, execution: wire.WorkflowExecution, change) -> None:
        """Apply ``change(engine, state, now) -> Transition`` to a run ('' = current run)."""
        wf_id = execution.workflow_id
        check_id("workflow_id", wf_id)
        check_id("run_id", execution.run_id, required=False)

        def op(b: Batch) -> None:
            st = b.load(execution.run_id)
            b.record(st, change(st, b.now))

        await self.shards.for_workflow(ns, wf_id).run_op(ns, wf_id, op)

    async def signal_workflow(self, ns: str, req: wire.SignalWorkflowRequest) -> wire.Empty:
        check_id("request_id", req.request_id, required=False)
        check_payloads("signal input", req.input)
        engine = self.engine
        await self._run_op_on(ns, req.execution, lambda st, now: engine.signal(
            st, signal_name=req.signal_name, input=req.input, identity=req.identity,
            request_id=req.request_id, now=now,
        ))
        return wire.Empty()

    async def request_cancel_workflow(
        self, ns: str, req: wire.RequestCancelWorkflowRequest
    ) -> wire.Empty:
        check_id("request_id", req.request_id, required=False)
        engine = self.engine
        await self._run_op_on(ns, req.execution, lambda st, now: engine.request_cancel(
            st, reason=req.reason, identity=req.identity, request_id=req.request_id, now=now,
        ))
        return wire.Empty()

    async def terminate_workflow(self, ns: str, req: wire.TerminateWorkflowRequest) -> wire.Empty:
        check_payloads("details", req.details)
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
            check_id(name, getattr(start, name))
        check_payloads("input", start.input)
        check_payloads("signal input", req.signal_input)
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

        return await self.shards.for_workflow(ns, start.workflow_id).run_op(ns, start.workflow_id, op)

    async def query_workflow(
        self, ns: str, req: wire.QueryWorkflowRequest
    ) -> wire.QueryWorkflowResponse:
        """Run a query handler on a worker against a state that holds every event in the
        run's history when the query arrived (Temporal's consistent query).

        A read that must be current (DESIGN §4): a quorum confirms this node still leads
        the shard first, so a leader cut off and replaced cannot answer from its stale
        copy. Then, as Temporal decides it: while a workflow task is scheduled or running
        (events no worker has seen, or the first task not yet done) the query is buffered
        and answered with the next workflow task a worker starts; otherwise, and for a
        closed run, it goes to a worker directly as a query task (the worker replays the
        committed history).

        Raises:
            ShoalError: NOT_LEADER / UNAVAILABLE when leadership is not confirmed (the
                router sends the query to the new leader); WORKFLOW_NOT_READY while the
                run's workflow task keeps failing; QUERY_FAILED, DEADLINE_EXCEEDED as
                ``Queries.ask`` says.
        """
        wf_id = req.execution.workflow_id
        check_id("workflow_id", wf_id)
        check_id("query_type", req.query.query_type)
        check_payloads("query_args", req.query.query_args)
        if not 0 < req.timeout_s <= POLL_WAIT_MAX_S:
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"timeout_s must be in (0, {POLL_WAIT_MAX_S:g}]")
        shard = self.shards.for_workflow(ns, wf_id)
        await shard.confirm_leader()
        st = self.shards.read_state(shard, ns, wf_id, req.execution.run_id)
        if _rejects(req.reject_condition, st.status):
            return wire.QueryWorkflowResponse(rejected_status=st.status)
        _check_answerable(st)
        deadline = trio.current_time() + req.timeout_s
        if _must_buffer(st):
            answer = await self._buffered_query(shard, ns, st, req.query, deadline)
            if answer is not None:
                return wire.QueryWorkflowResponse(result=answer)
            st = self.shards.read_state(shard, ns, wf_id, st.run_id)
        result = await self.queries.ask(
            shard=shard.shard_id, namespace=ns, workflow_id=wf_id, run_id=st.run_id,
            task_queue=st.task_queue, query=req.query,
            timeout_s=max(deadline - trio.current_time(), 0.001),
        )
        return wire.QueryWorkflowResponse(result=result)

    async def _buffered_query(self, shard: Shard, ns: str, st: records.ExecutionState,
                              query: wire.WorkflowQuery, deadline: float) -> wire.Payloads | None:
        """Hold the query for the run's next workflow task; its answer, or None once the
        query may go to a worker directly (no workflow task is waiting any more)."""
        key = (ns, st.workflow_id, st.run_id)
        query_id, pending = self.queries.buffer(key, query)
        try:
            while not pending.done.is_set():
                committed = shard.committed_event(ns, st.workflow_id)
                with trio.move_on_at(deadline):
                    await _first_of(pending.done, committed)
                if pending.done.is_set():
                    break
                if trio.current_time() >= deadline:
                    raise wire.ShoalError(
                        wire.Code.DEADLINE_EXCEEDED,
                        f"no worker answered query {query.query_type!r} of workflow "
                        f"{st.workflow_id!r} in time: is a worker polling task queue "
                        f"{st.task_queue!r}?")
                self.shards.served(shard.shard_id)  # moved away: the router goes on
                st = self.shards.read_state(shard, ns, st.workflow_id, st.run_id)
                self.queries.detach_unless(key, started_task(st.workflow_task))
                if pending.attached_to is None and not _must_buffer(st):
                    return None
                _check_answerable(st)
        finally:
            self.queries.unbuffer(key, query_id)
        if pending.error is not None:
            raise wire.ShoalError(wire.Code.QUERY_FAILED, pending.error)
        return pending.result or []

    async def respond_query_task(self, ns: str, req: wire.RespondQueryTaskRequest) -> wire.Empty:
        check_payloads("result", req.result)
        self.queries.answer(req)
        return wire.Empty()

    async def update_workflow(self, ns: str, req: wire.UpdateWorkflowRequest) -> wire.UpdateWorkflowResponse:
        """Deliver an update to the run's workflow and wait until it reaches
        ``req.wait_for_stage``: ACCEPTED answers once a worker accepted it (no outcome yet,
        unless it already settled), COMPLETED once its outcome is known.

        Rejected or failed updates are an outcome with a failure, not an error.
        """
        wf_id, request = req.execution.workflow_id, req.request
        check_id("workflow_id", wf_id)
        check_id("update_id", request.update_id)
        check_id("update name", request.name)
        check_payloads("update input", request.input)
        _check_wait(req.wait_s)
        if req.wait_for_stage == wire.UpdateStage.ADMITTED:
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT,
                                  "wait_for_stage ADMITTED is not supported: wait for ACCEPTED or COMPLETED")
        shard = self.shards.for_workflow(ns, wf_id)
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
        target = found.done if req.wait_for_stage == wire.UpdateStage.COMPLETED else found.reached_accepted
        await self._await_update(shard, ns, wf_id, run_id, found, target, req.wait_s)
        if found.outcome is None:
            return wire.UpdateWorkflowResponse(run_id=run_id, stage=wire.UpdateStage.ACCEPTED)
        return wire.UpdateWorkflowResponse(run_id=run_id, outcome=found.outcome)

    async def _await_update(self, shard, ns: str, wf_id: str, run_id: str, pending,
                            target: trio.Event, wait_s: float) -> None:
        """Wait for ``target`` (the update accepted, or settled); raise if the run closes
        first or ``wait_s`` passes."""
        with trio.move_on_after(wait_s):
            while not target.is_set():
                changed = shard.changed_event(ns, wf_id)
                st = self.shards.read_state(shard, ns, wf_id, run_id)
                if st.status != _RUNNING and not target.is_set():
                    self.updates.forget((ns, wf_id, run_id), pending)
                    raise wire.ShoalError(
                        wire.Code.WORKFLOW_NOT_RUNNING,
                        f"workflow {wf_id!r} run {run_id} closed ({st.status.name}) before update "
                        f"{pending.request.update_id!r} completed")
                await _first_of(target, changed)
        if not target.is_set():
            self.updates.forget((ns, wf_id, run_id), pending)
            raise wire.ShoalError(
                wire.Code.DEADLINE_EXCEEDED,
                f"update {pending.request.update_id!r} of workflow {wf_id!r} did not "
                f"{'complete' if target is pending.done else 'get accepted'} within {wait_s:g}s"
                f"{'' if pending.accepted else ': no worker accepted it (is one polling?)'}")

    async def poll_workflow_update(
        self, ns: str, req: wire.PollWorkflowUpdateRequest
    ) -> wire.PollWorkflowUpdateResponse:
        """Wait up to ``req.wait_s`` for the outcome of update ``req.update_id`` (a long
        poll, as Temporal's PollWorkflowExecutionUpdate): no outcome in the answer means it
        is still running, ask again.

        A completed update's outcome is kept in the run's state (``completed_updates``);
        one accepted and running, or one this node holds for a worker, is waited for.

        Raises:
            ShoalError: NOT_FOUND for an update the run does not know (never sent, rejected,
                or completed so long ago its outcome was forgotten); WORKFLOW_NOT_RUNNING
                if the run closed before the update completed.
        """
        wf_id, uid = req.execution.workflow_id, req.update_id
        check_id("workflow_id", wf_id)
        check_id("run_id", req.execution.run_id, required=False)
        check_id("update_id", uid)
        _check_wait(req.wait_s)
        shard = self.shards.for_workflow(ns, wf_id)
        await shard.confirm_leader()  # NOT_FOUND from a stale copy would be a wrong answer
        deadline = trio.current_time() + req.wait_s
        run_id, pending = req.execution.run_id, None
        while True:
            self.shards.served(shard.shard_id)  # moved away while we waited: the router goes on
            committed = shard.committed_event(ns, wf_id)
            st = self.shards.read_state(shard, ns, wf_id, run_id)
            run_id = st.run_id  # stay on the run the update was found in
            # Keep the waiter seen before: settling removes it from ``updates``.
            pending = self.updates.find((ns, wf_id, run_id), uid) or pending
            outcome = _update_outcome(st, uid, pending)
            if outcome is not None:
                return wire.PollWorkflowUpdateResponse(run_id=run_id, outcome=outcome)
            if trio.current_time() >= deadline:
                return wire.PollWorkflowUpdateResponse(run_id=run_id)
            with trio.move_on_at(deadline):
                await _first_of(committed, *([pending.done] if pending is not None else []))


def _update_outcome(st: records.ExecutionState, uid: str, pending) -> wire.UpdateOutcome | None:
    """The outcome of update ``uid`` if known now; None while it runs (or waits for a worker).

    Raises:
        ShoalError: NOT_FOUND (the run does not know it), WORKFLOW_NOT_RUNNING (the run
            closed before it completed).
    """
    done = st.completed_updates.get(uid)
    if done is not None:
        return done
    if pending is not None and pending.done.is_set():
        return pending.outcome  # settled: a rejection is answered only to those waiting
    if pending is None and uid not in st.accepted_updates:
        raise wire.ShoalError(wire.Code.NOT_FOUND,
                              f"workflow {st.workflow_id!r} run {st.run_id} has no update {uid!r} "
                              f"(never sent, rejected, or completed long ago)")
    if st.status != _RUNNING:
        raise wire.ShoalError(wire.Code.WORKFLOW_NOT_RUNNING,
                              f"workflow {st.workflow_id!r} run {st.run_id} closed ({st.status.name}) "
                              f"before update {uid!r} completed")
    return None


def _check_wait(wait_s: float) -> None:
    if not 0 < wait_s <= POLL_WAIT_MAX_S:
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"wait_s must be in (0, {POLL_WAIT_MAX_S:g}]")


# Temporal fails queries fast while the workflow task keeps failing: it will not answer.
QUERY_FAILING_TASK_ATTEMPTS = 3


def started_task(wt: records.WorkflowTaskInfo | None) -> TaskKey | None:
    """Which started workflow task a buffered query rides on (None: none is running)."""
    return (wt.started_event_id, wt.attempt) if wt is not None and wt.started_event_id else None


def _must_buffer(st: records.ExecutionState) -> bool:
    """Events wait for a worker (a workflow task is scheduled or running, or the first one
    has not completed): a direct query could miss them."""
    return st.status == _RUNNING and (st.workflow_task is not None or not st.last_started_event_id)


def _rejects(condition: wire.QueryRejectCondition, status: wire.WorkflowExecutionStatus) -> bool:
    if status == _RUNNING or condition == wire.QueryRejectCondition.NONE:
        return False
    return (condition == wire.QueryRejectCondition.NOT_OPEN
            or status != wire.WorkflowExecutionStatus.COMPLETED)


def _check_answerable(st: records.ExecutionState) -> None:
    """Refuse a query no worker could answer, with what to do about it."""
    wt = st.workflow_task
    if st.status != _RUNNING and not st.last_started_event_id:
        raise wire.ShoalError(wire.Code.QUERY_FAILED,
                              f"workflow {st.workflow_id!r} closed ({st.status.name}) before any "
                              f"workflow task ran: there is no state to query")
    if st.status == _RUNNING and wt is None and not st.last_started_event_id:
        raise wire.ShoalError(wire.Code.WORKFLOW_NOT_READY,
                              f"workflow {st.workflow_id!r} has no workflow task scheduled yet")
    if wt is not None and wt.attempt >= QUERY_FAILING_TASK_ATTEMPTS:
        raise wire.ShoalError(wire.Code.WORKFLOW_NOT_READY,
                              f"workflow {st.workflow_id!r}'s workflow task is failing (attempt "
                              f"{wt.attempt}); queries fail until it succeeds: see describe")


async def _first_of(*events: trio.Event) -> None:
    """Wait until any of ``events`` is set."""
    async with trio.open_nursery() as nursery:
        async def wait(ev: trio.Event) -> None:
            await ev.wait()
            nursery.cancel_scope.cancel()
        for ev in events:
            nursery.start_soon(wait, ev)
