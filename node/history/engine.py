"""The history engine's entry points: one method per request or timer kind.

Owns: ``HistoryEngine``, the sans-IO facade the shard shell calls. Every method validates
fully first and raises ``wire.ShoalError`` with the state untouched (TASK_NOT_FOUND for a
stale or unknown token or attempt, WORKFLOW_NOT_RUNNING, INVALID_ARGUMENT,
PAYLOAD_TOO_LARGE, WORKFLOW_ALREADY_STARTED); only then does it mutate the given
``ExecutionState`` in place and return a ``Transition`` (events appended, tasks created,
the answer). The shell commits that as one log entry, or drops its cached state if the
commit fails. Must not: do I/O, read clocks, or make ids (the caller passes ``now`` and run
ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shoal import wire
from shoal.node.history import activities, interactions, start, timeouts, updates, workflow_task
from shoal.node.history import commands as command_rules
from shoal.node.history.children import CrossWorkflowEvents
from shoal.node.history.config import HistoryConfig
from shoal.node.history.transition import Transition, Txn
from shoal.node.history import records

__all__ = ["HistoryConfig", "HistoryEngine", "StartResult", "Transition"]

_RUNNING = wire.WorkflowExecutionStatus.RUNNING


def _not_found(message: str) -> wire.ShoalError:
    return wire.ShoalError(wire.Code.TASK_NOT_FOUND, message)


def _check_running(state: records.ExecutionState) -> None:
    if state.status != _RUNNING:
        raise wire.ShoalError(
            wire.Code.WORKFLOW_NOT_RUNNING,
            f"workflow {state.workflow_id!r} run {state.run_id} is {state.status.name}",
        )


@dataclass(slots=True)
class StartResult:
    """What a start request produced.

    ``state`` is None when the request was a retry of the start that made the current run
    (same request id): write nothing and answer ``response`` (``started=False``).
    ``previous`` is the transition that terminated the running current run, under
    TERMINATE_IF_RUNNING; it applies to the ``previous`` state passed in.
    """

    response: wire.StartWorkflowResponse
    state: records.ExecutionState | None = None
    transition: Transition | None = None
    previous: Transition | None = None


class StartBatch(Protocol):
    """The part of the shell's per-workflow-id batch that ``start_in_batch`` uses."""

    now: float

    def current(self) -> records.CurrentRun | None: ...
    def load(self, run_id: str) -> records.ExecutionState: ...
    def record(self, state: records.ExecutionState, tr: Transition) -> None: ...
    def set_current(self, current: records.CurrentRun) -> None: ...
    def add_run(self, state: records.ExecutionState) -> None: ...


class HistoryEngine:
    """Sans-IO state machine of workflow runs. Stateless itself: one per node is enough.

    Child and external-workflow callbacks are ``children.CrossWorkflowEvents`` (``cross``);
    the engine forwards them so the shell has one entry point.
    """

    def __init__(self, cfg: HistoryConfig | None = None) -> None:
        self.cfg = cfg or HistoryConfig()
        self.cross = CrossWorkflowEvents(self.cfg)

    def _txn(self, state: records.ExecutionState, now: float) -> Txn:
        return Txn(state, now, self.cfg)

    # --- children and external workflows (see children.CrossWorkflowEvents) -------------

    def record_child_started(self, state: records.ExecutionState, *, initiated_event_id: int,
                             child_run_id: str, now: float) -> Transition:
        """The child's first run started: ChildWorkflowExecutionStarted (once)."""
        return self.cross.record_child_started(
            state, initiated_event_id=initiated_event_id, child_run_id=child_run_id, now=now)

    def record_child_start_failed(self, state: records.ExecutionState, *, initiated_event_id: int,
                                  cause: str, now: float) -> Transition:
        """The child could not start (its id is taken): StartChildWorkflowExecutionFailed."""
        return self.cross.record_child_start_failed(
            state, initiated_event_id=initiated_event_id, cause=cause, now=now)

    def record_child_closed(self, state: records.ExecutionState, *, initiated_event_id: int,
                            closed: wire.ChildClose, now: float) -> Transition:
        """The child's chain ended with run ``closed`` (raises UNAVAILABLE if its start is
        not recorded yet; the caller retries)."""
        return self.cross.record_child_closed(
            state, initiated_event_id=initiated_event_id, closed=closed, now=now)

    def record_external_result(self, state: records.ExecutionState, *, initiated_event_id: int,
                               failed_cause: str | None, now: float) -> Transition:
        """A cancel request or signal to another workflow was delivered (or could not be)."""
        return self.cross.record_external_result(
            state, initiated_event_id=initiated_event_id, failed_cause=failed_cause, now=now)

    # --- start and terminate -----------------------------------------------------------

    def start_workflow(
        self,
        req: wire.StartWorkflowRequest,
        *,
        namespace: str,
        run_id: str,
        current: records.CurrentRun | None,
        previous: records.ExecutionState | None = None,
        now: float,
        parent: start.ParentRef | None = None,
    ) -> StartResult:
        """Start a run of ``req.workflow_id``, applying its id reuse policy.

        Args:
            run_id: the new run's id (made by the caller).
            current: the id's current-run record, if any.
            previous: the current run's state; needed to apply the policy to its actual
                status and to terminate it under TERMINATE_IF_RUNNING.
        Returns:
            A ``StartResult``; see there for the retried-request case.
        Raises:
            ShoalError: INVALID_ARGUMENT / PAYLOAD_TOO_LARGE for a bad request;
                WORKFLOW_ALREADY_STARTED (details ``run_id``) when the policy forbids it.
        """
        start.check_request(req, self.cfg)
        if start.is_duplicate(req, current):
            assert current is not None
            return StartResult(response=wire.StartWorkflowResponse(run_id=current.run_id, started=False))
        if previous is not None:
            assert current is not None and previous.run_id == current.run_id
        status = previous.status if previous is not None else (current.status if current else None)
        must_terminate = start.check_reuse(req, current, status)
        if must_terminate and previous is None:
            raise wire.ShoalError(
                wire.Code.INTERNAL, "TERMINATE_IF_RUNNING needs the running run's state"
            )
        prev_tr = None
        if must_terminate:
            assert previous is not None
            prev_tr = self.terminate(
                previous, reason="terminated by a start with TERMINATE_IF_RUNNING",
                identity=req.identity, now=now,
            )
        state, tr = start.new_run(req, namespace=namespace, run_id=run_id, now=now, cfg=self.cfg, parent=parent)
        return StartResult(response=tr.response, state=state, transition=tr, previous=prev_tr)

    def start_in_batch(
        self, b: StartBatch, req: wire.StartWorkflowRequest, *, namespace: str, run_id: str,
        parent: start.ParentRef | None = None,
    ) -> wire.StartWorkflowResponse:
        """Glue for the shard shell: run ``start_workflow`` against its batch and stage it."""
        current = b.current()
        previous = None
        if current is not None:
            try:
                previous = b.load(current.run_id)
            except wire.ShoalError as exc:
                if exc.code != wire.Code.NOT_FOUND:
                    raise
        res = self.start_workflow(
            req, namespace=namespace, run_id=run_id, current=current, previous=previous, now=b.now,
            parent=parent,
        )
        if res.state is None:
            return res.response
        assert res.transition is not None
        if res.previous is not None:
            assert previous is not None
            b.record(previous, res.previous)
        b.add_run(res.state)
        b.record(res.state, res.transition)
        b.set_current(
            records.CurrentRun(run_id=run_id, status=_RUNNING, start_request_id=req.request_id)
        )
        return res.response

    def terminate(
        self,
        state: records.ExecutionState,
        *,
        reason: str,
        identity: str,
        now: float,
        details: wire.Payloads | None = None,
    ) -> Transition:
        """Close the run with WorkflowExecutionTerminated.

        Raises:
            ShoalError(WORKFLOW_NOT_RUNNING) if the run is closed already.
        """
        _check_running(state)
        txn = self._txn(state, now)
        txn.close(
            wire.WorkflowExecutionTerminatedAttributes(
                reason=reason, details=list(details or []), identity=identity
            )
        )
        return txn.finish()

    # --- signals and cancel requests --------------------------------------------------

    def signal(
        self,
        state: records.ExecutionState,
        *,
        signal_name: str,
        input: wire.Payloads,
        identity: str,
        request_id: str,
        now: float,
    ) -> Transition:
        """Record WorkflowExecutionSignaled; a retry with the same ``request_id`` records nothing.

        Raises:
            ShoalError: WORKFLOW_NOT_RUNNING for a closed run (the signal is not delivered);
                INVALID_ARGUMENT for an empty or too long name; PAYLOAD_TOO_LARGE.
        """
        _check_running(state)
        if not signal_name or len(signal_name) > wire.ID_CHARS_MAX:
            raise wire.ShoalError(
                wire.Code.INVALID_ARGUMENT,
                f"signal_name must be 1 to {wire.ID_CHARS_MAX} characters (got {len(signal_name)})",
            )
        self._check_size("signal input", wire.payloads_size(input))
        txn = self._txn(state, now)
        interactions.signal(txn, signal_name=signal_name, input=input, identity=identity, request_id=request_id)
        return txn.finish()

    def request_cancel(
        self,
        state: records.ExecutionState,
        *,
        reason: str,
        identity: str,
        request_id: str,
        now: float,
    ) -> Transition:
        """Record WorkflowExecutionCancelRequested (once); the workflow decides what it means.

        Raises:
            ShoalError: WORKFLOW_NOT_RUNNING for a closed run.
        """
        _check_running(state)
        txn = self._txn(state, now)
        interactions.request_cancel(txn, reason=reason, identity=identity, request_id=request_id)
        return txn.finish()

    def schedule_update_task(self, state: records.ExecutionState, *, now: float) -> Transition:
        """Updates wait for this run: schedule a speculative workflow task unless one is
        pending (no events; nothing at all if the run is closed)."""
        txn = self._txn(state, now)
        updates.schedule_task(txn)
        return txn.finish()

    # --- workflow tasks ----------------------------------------------------------------

    def record_workflow_task_started(
        self,
        state: records.ExecutionState,
        *,
        scheduled_event_id: int,
        attempt: int,
        identity: str,
        request_id: str,
        now: float,
    ) -> Transition:
        """A worker polled the dispatched workflow task: mark it started.

        Returns a transition whose ``response`` is the ``wire.WorkflowTask``; its
        ``history`` holds only events not in the stored history (a transient attempt's
        Scheduled and Started): send stored events [1, next_event_id) followed by them.
        A retry with the same ``request_id`` gets the same task and writes nothing.

        Raises:
            ShoalError: TASK_NOT_FOUND if that task is not pending (stale dispatch, or
                started by another poll); WORKFLOW_NOT_RUNNING if the run is closed.
        """
        _check_running(state)
        wt = state.workflow_task
        if wt is None or wt.scheduled_event_id != scheduled_event_id or wt.attempt != attempt:
            raise _not_found(f"workflow task {scheduled_event_id}/{attempt} is not pending")
        if wt.started_event_id:
            if wt.request_id == request_id:
                tr = Transition()
                tr.response = workflow_task.build_task(state, workflow_task.transient_events(state))
                return tr
            raise _not_found(f"workflow task {scheduled_event_id}/{attempt} is already started")
        txn = self._txn(state, now)
        txn.tr.response = workflow_task.start(txn, identity=identity, request_id=request_id)
        return txn.finish()

    def _started_wt(self, state: records.ExecutionState, token: wire.TaskToken) -> records.WorkflowTaskInfo:
        _check_running(state)
        wt = state.workflow_task
        if (
            token.run_id != state.run_id
            or wt is None
            or not wt.started_event_id
            or wt.scheduled_event_id != token.scheduled_event_id
            or wt.attempt != token.attempt
            or wt.started_event_id != token.started_event_id
        ):
            raise _not_found("the workflow task of this token is no longer pending")
        return wt

    def complete_workflow_task(
        self,
        state: records.ExecutionState,
        *,
        token: wire.TaskToken,
        commands: list[wire.Command],
        identity: str,
        now: float,
        new_run_id: str = "",
        sticky_task_queue: str = "",
        sticky_schedule_to_start_timeout_s: float = 5.0,
    ) -> Transition:
        """The worker finished a workflow task with ``commands``.

        ``new_run_id`` is the id a ContinueAsNew command gives the next run (made by the
        caller, as every id); the transition's ``new_run`` then holds that run.
        ``sticky_task_queue``: the worker caches the run; its next task goes there (empty:
        the normal queue).

        Valid commands: WorkflowTaskCompleted, then one group of events per command in
        order, then the events that arrived meanwhile, then a new workflow task if there
        were any. Invalid commands (or a close while new events wait) fail the task with
        the matching cause instead; that is not an error to the caller.

        Raises:
            ShoalError: TASK_NOT_FOUND for a stale token; WORKFLOW_NOT_RUNNING.
        """
        self._started_wt(state, token)
        valid, problem = command_rules.validate(state, list(commands), self.cfg)
        txn = self._txn(state, now)
        if problem is not None:
            failure = wire.Failure(message=problem.message, kind=wire.FailureKind.SERVER, source="shoal")
            workflow_task.fail(txn, cause=problem.cause, failure=failure, identity=identity)
            return txn.finish()
        wt = state.workflow_task
        assert wt is not None
        if wt.speculative and not state.buffered_events and updates.only_rejections(valid):
            # Only rejected updates: the task leaves no trace (as Temporal's speculative task).
            for cmd in valid:
                updates.apply(txn, cmd)
            workflow_task.drop_speculative(txn)
            return txn.finish()
        state.sticky_task_queue = sticky_task_queue
        if sticky_task_queue:
            state.sticky_schedule_to_start_timeout_s = max(sticky_schedule_to_start_timeout_s, 0.1)
        completed_id = workflow_task.complete(txn, identity=identity)
        state.last_workflow_task_failure = None
        command_rules.apply(
            txn, valid, completed_event_id=completed_id, identity=identity, new_run_id=new_run_id
        )
        if state.status == _RUNNING and txn.flush_buffered():
            workflow_task.schedule(txn, attempt=1)
        return txn.finish()

    def fail_workflow_task(
        self,
        state: records.ExecutionState,
        *,
        token: wire.TaskToken,
        cause: wire.WorkflowTaskFailedCause,
        failure: wire.Failure,
        identity: str,
        now: float,
    ) -> Transition:
        """The worker could not run the task (e.g. non-determinism): fail and retry it.

        Raises:
            ShoalError: TASK_NOT_FOUND for a stale token; WORKFLOW_NOT_RUNNING;
                PAYLOAD_TOO_LARGE for an oversized failure.
        """
        self._started_wt(state, token)
        self._check_size("failure", len(wire.dumps(failure)))
        txn = self._txn(state, now)
        workflow_task.fail(txn, cause=cause, failure=failure, identity=identity)
        return txn.finish()

    def build_workflow_task(
        self, state: records.ExecutionState, stored_history: list[wire.HistoryEvent]
    ) -> wire.WorkflowTask:
        """The started workflow task with its full history (stored events + transient ones).

        ``stored_history`` is the run's stored history from event 1; events after the
        task's started event are left out.
        """
        wt = state.workflow_task
        assert wt is not None and wt.started_event_id
        history = [e for e in stored_history if e.event_id < wt.scheduled_event_id or not wt.transient]
        history += workflow_task.transient_events(state)
        return workflow_task.build_task(
            state, [e for e in history if e.event_id <= wt.started_event_id]
        )

    # --- activities --------------------------------------------------------------------

    def record_activity_task_started(
        self,
        state: records.ExecutionState,
        *,
        scheduled_event_id: int,
        attempt: int,
        identity: str,
        request_id: str,
        now: float,
    ) -> Transition:
        """A worker polled the dispatched activity attempt: mark it started (no event yet).

        ``response`` is the ``wire.ActivityTask``. A retry with the same ``request_id``
        gets the same task and writes nothing.

        Raises:
            ShoalError: TASK_NOT_FOUND if that attempt is not waiting to start;
                WORKFLOW_NOT_RUNNING if the run is closed.
        """
        _check_running(state)
        ai = state.activities.get(scheduled_event_id)
        if ai is None or ai.attempt != attempt or ai.backing_off:
            raise _not_found(f"activity task {scheduled_event_id}/{attempt} is not pending")
        if ai.started_time is not None:
            if ai.started_request_id == request_id:
                tr = Transition()
                tr.response = activities.build_task(state, ai)
                return tr
            raise _not_found(f"activity task {scheduled_event_id}/{attempt} is already started")
        txn = self._txn(state, now)
        txn.tr.response = activities.start(txn, ai, identity=identity, request_id=request_id)
        return txn.finish()

    def _started_activity(self, state: records.ExecutionState, token: wire.TaskToken) -> records.ActivityInfo:
        _check_running(state)
        ai = state.activities.get(token.scheduled_event_id)
        if (
            token.run_id != state.run_id
            or ai is None
            or ai.attempt != token.attempt
            or ai.started_time is None
            or (token.activity_id is not None and token.activity_id != ai.activity_id)
        ):
            # Also what a duplicate completion gets: the first one removed the activity
            # (DESIGN §4 invariant 5: recorded at most once).
            raise _not_found("the activity attempt of this token is no longer pending")
        return ai

    def _check_size(self, name: str, size: int) -> None:
        if size > self.cfg.payload_bytes_max:
            raise wire.ShoalError(
                wire.Code.PAYLOAD_TOO_LARGE,
                f"{name} is {size} bytes; the limit is {self.cfg.payload_bytes_max} bytes",
            )

    def complete_activity_task(
        self,
        state: records.ExecutionState,
        *,
        token: wire.TaskToken,
        result: wire.Payloads,
        identity: str,
        now: float,
    ) -> Transition:
        """The started attempt succeeded: ActivityTaskStarted + ActivityTaskCompleted.

        Raises:
            ShoalError: TASK_NOT_FOUND (stale attempt, or already completed);
                WORKFLOW_NOT_RUNNING; PAYLOAD_TOO_LARGE.
        """
        ai = self._started_activity(state, token)
        self._check_size("result", wire.payloads_size(result))
        txn = self._txn(state, now)
        activities.complete(txn, ai, result=result, identity=identity)
        return txn.finish()

    def fail_activity_task(
        self,
        state: records.ExecutionState,
        *,
        token: wire.TaskToken,
        failure: wire.Failure,
        last_heartbeat_details: wire.Payloads | None,
        identity: str,
        now: float,
    ) -> Transition:
        """The started attempt failed: retried after a backoff if the policy allows (no
        events), else ActivityTaskStarted + ActivityTaskFailed.

        Raises:
            ShoalError: TASK_NOT_FOUND; WORKFLOW_NOT_RUNNING; PAYLOAD_TOO_LARGE.
        """
        ai = self._started_activity(state, token)
        self._check_size("failure", len(wire.dumps(failure)))
        self._check_size("last_heartbeat_details", wire.payloads_size(last_heartbeat_details))
        txn = self._txn(state, now)
        activities.fail(
            txn, ai, failure=failure, last_heartbeat_details=last_heartbeat_details,
            identity=identity,
        )
        return txn.finish()

    def record_activity_heartbeat(
        self,
        state: records.ExecutionState,
        *,
        token: wire.TaskToken,
        details: wire.Payloads | None,
        now: float,
    ) -> Transition:
        """A heartbeat from the started attempt: keeps its heartbeat timeout from firing.

        Writes no events or tasks (the heartbeat timer re-arms itself when it fires).

        Raises:
            ShoalError: TASK_NOT_FOUND; WORKFLOW_NOT_RUNNING; PAYLOAD_TOO_LARGE.
        """
        ai = self._started_activity(state, token)
        self._check_size("details", wire.payloads_size(details))
        txn = self._txn(state, now)
        activities.heartbeat(txn, ai, details)
        txn.tr.response = wire.RecordActivityHeartbeatResponse(
            cancel_requested=bool(ai.cancel_requested_event_id)
        )
        return txn.finish()

    def cancel_activity_task(
        self,
        state: records.ExecutionState,
        *,
        token: wire.TaskToken,
        details: wire.Payloads,
        identity: str,
        now: float,
    ) -> Transition:
        """The started attempt stopped because the workflow asked it to: ActivityTaskCanceled.

        Raises:
            ShoalError: TASK_NOT_FOUND; WORKFLOW_NOT_RUNNING; PAYLOAD_TOO_LARGE;
                INVALID_ARGUMENT if no cancel was requested (fail the activity instead).
        """
        ai = self._started_activity(state, token)
        self._check_size("details", wire.payloads_size(details))
        if not ai.cancel_requested_event_id:
            raise wire.ShoalError(
                wire.Code.INVALID_ARGUMENT,
                f"activity {ai.activity_id!r} was not asked to cancel; report a failure instead",
            )
        txn = self._txn(state, now)
        activities.canceled(txn, ai, details=details, identity=identity)
        return txn.finish()

    # --- timers ------------------------------------------------------------------------

    def on_timer(self, state: records.ExecutionState, task: records.TimerTask, now: float) -> Transition:
        """A durable timer task is due. A stale one (its subject moved on) does nothing."""
        assert task.run_id == state.run_id
        txn = self._txn(state, now)
        if state.status == _RUNNING:
            timeouts.HANDLERS[task.kind](txn, task)
        return txn.finish()
