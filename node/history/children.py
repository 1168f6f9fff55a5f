"""Child workflows and requests to other workflows, as the initiating run's history sees them.

Owns: the StartChildWorkflowExecution, RequestCancelExternalWorkflowExecution and
SignalExternalWorkflowExecution commands (validation, Initiated events, the state that
remembers them, the transfer task that carries each out), and the engine entry points that
record how they went (child started / failed to start / closed; cancel request or signal
delivered / failed), as Temporal's history service does (``handleCommandStartChildWorkflow``,
``RecordChildExecutionCompleted`` ...). Must not: touch another run's state or do I/O: the
node's transfer processor carries the effect to the other workflow's shard and calls back.
The callbacks are :class:`CrossWorkflowEvents`, an object the engine owns and forwards to.

Every callback is idempotent: a retried one (after a crash, or a duplicate) finds its
entry gone and records nothing.
"""

from __future__ import annotations

from shoal import wire
from shoal.node.history import start, workflow_task
from shoal.node.history.config import HistoryConfig
from shoal.node.history.transition import BUFFERED_STARTED_ID, Transition, Txn
from shoal.node.history import records
from shoal.node.history.records import TransferKind

Status = wire.WorkflowExecutionStatus


def child_start_request(parent: records.ExecutionState, cmd: wire.StartChildWorkflowExecutionCommand,
                        *, request_id: str) -> wire.StartWorkflowRequest:
    """The start request a child command makes (also used to validate the command)."""
    return wire.StartWorkflowRequest(
        workflow_id=cmd.workflow_id, workflow_type=cmd.workflow_type,
        task_queue=cmd.task_queue or parent.task_queue, request_id=request_id,
        input=list(cmd.input), id_reuse_policy=cmd.workflow_id_reuse_policy,
        workflow_execution_timeout_s=cmd.workflow_execution_timeout_s,
        workflow_run_timeout_s=cmd.workflow_run_timeout_s,
        workflow_task_timeout_s=cmd.workflow_task_timeout_s, retry_policy=cmd.retry_policy,
        memo=dict(cmd.memo), search_attributes=dict(cmd.search_attributes),
    )


def check_start_child(state: records.ExecutionState, cmd: wire.StartChildWorkflowExecutionCommand,
                      cfg: HistoryConfig) -> str | None:
    """Why a StartChildWorkflowExecution command is invalid, or None."""
    try:
        start.check_request(child_start_request(state, cmd, request_id="check"), cfg)
    except wire.ShoalError as exc:
        return exc.message
    if cmd.workflow_id == state.workflow_id:
        return "a child workflow may not have its parent's workflow id"
    return None


def check_external(cmd: wire.RequestCancelExternalWorkflowExecutionCommand
                   | wire.SignalExternalWorkflowExecutionCommand, cfg: HistoryConfig) -> str | None:
    """Why a request to another workflow is invalid, or None."""
    if not cmd.workflow_id or len(cmd.workflow_id) > wire.ID_CHARS_MAX:
        return f"workflow_id must be 1 to {wire.ID_CHARS_MAX} characters"
    if isinstance(cmd, wire.SignalExternalWorkflowExecutionCommand):
        if not cmd.signal_name or len(cmd.signal_name) > wire.ID_CHARS_MAX:
            return f"signal_name must be 1 to {wire.ID_CHARS_MAX} characters"
        if wire.payloads_size(cmd.input) > cfg.payload_bytes_max:
            return f"signal input is over the {cfg.payload_bytes_max}-byte limit"
    return None


def initiate_child(txn: Txn, cmd: wire.StartChildWorkflowExecutionCommand, completed_event_id: int) -> None:
    st = txn.state
    task_queue = cmd.task_queue or st.task_queue
    eid = txn.append(wire.StartChildWorkflowExecutionInitiatedAttributes(
        namespace=st.namespace, workflow_id=cmd.workflow_id, workflow_type=cmd.workflow_type,
        task_queue=task_queue, input=list(cmd.input),
        workflow_execution_timeout_s=cmd.workflow_execution_timeout_s,
        workflow_run_timeout_s=cmd.workflow_run_timeout_s,
        workflow_task_timeout_s=cmd.workflow_task_timeout_s,
        parent_close_policy=cmd.parent_close_policy,
        workflow_task_completed_event_id=completed_event_id,
        workflow_id_reuse_policy=cmd.workflow_id_reuse_policy, retry_policy=cmd.retry_policy,
        memo=dict(cmd.memo), search_attributes=dict(cmd.search_attributes),
    ))
    st.children[eid] = records.ChildInfo(
        initiated_event_id=eid, namespace=st.namespace, workflow_id=cmd.workflow_id,
        workflow_type=cmd.workflow_type, parent_close_policy=cmd.parent_close_policy,
    )
    txn.transfer(TransferKind.START_CHILD, "", eid, 1)


def initiate_external(txn: Txn, cmd: wire.RequestCancelExternalWorkflowExecutionCommand
                      | wire.SignalExternalWorkflowExecutionCommand, completed_event_id: int) -> None:
    st = txn.state
    target = wire.WorkflowExecution(workflow_id=cmd.workflow_id, run_id=cmd.run_id)
    if isinstance(cmd, wire.SignalExternalWorkflowExecutionCommand):
        eid = txn.append(wire.SignalExternalWorkflowExecutionInitiatedAttributes(
            workflow_task_completed_event_id=completed_event_id, namespace=st.namespace,
            workflow_execution=target, signal_name=cmd.signal_name, input=list(cmd.input),
            child_workflow_only=cmd.child_workflow_only,
        ))
        kind = TransferKind.SIGNAL_EXTERNAL
        request = records.ExternalRequest(
            initiated_event_id=eid, namespace=st.namespace, workflow_id=cmd.workflow_id,
            run_id=cmd.run_id, child_workflow_only=cmd.child_workflow_only,
            signal_name=cmd.signal_name, input=list(cmd.input),
        )
    else:
        eid = txn.append(wire.RequestCancelExternalWorkflowExecutionInitiatedAttributes(
            workflow_task_completed_event_id=completed_event_id, namespace=st.namespace,
            workflow_execution=target, child_workflow_only=cmd.child_workflow_only,
            reason=cmd.reason,
        ))
        kind = TransferKind.CANCEL_EXTERNAL
        request = records.ExternalRequest(
            initiated_event_id=eid, namespace=st.namespace, workflow_id=cmd.workflow_id,
            run_id=cmd.run_id, child_workflow_only=cmd.child_workflow_only, reason=cmd.reason,
        )
    st.external_requests[eid] = request
    txn.transfer(kind, "", eid, 1)


def _child_close_event(child: records.ChildInfo, closed: wire.ChildClose) -> object:
    common = dict(
        namespace=child.namespace, workflow_type=child.workflow_type,
        workflow_execution=wire.WorkflowExecution(workflow_id=child.workflow_id, run_id=closed.run_id),
        initiated_event_id=child.initiated_event_id, started_event_id=child.started_event_id,
    )
    if closed.status == Status.COMPLETED:
        return wire.ChildWorkflowExecutionCompletedAttributes(result=list(closed.result or []), **common)
    if closed.status == Status.FAILED:
        assert closed.failure is not None
        return wire.ChildWorkflowExecutionFailedAttributes(failure=closed.failure, **common)
    if closed.status == Status.CANCELED:
        details = list(closed.failure.details) if closed.failure is not None else []
        return wire.ChildWorkflowExecutionCanceledAttributes(details=details, **common)
    if closed.status == Status.TIMED_OUT:
        return wire.ChildWorkflowExecutionTimedOutAttributes(**common)
    return wire.ChildWorkflowExecutionTerminatedAttributes(**common)


class CrossWorkflowEvents:
    """What the initiating run records when the transfer processor reports back on a
    child or an external request; the history engine owns one and forwards to it.

    Args:
        cfg: the engine's limits (every transition ends with the history size check).
    """

    def __init__(self, cfg: HistoryConfig) -> None:
        self.cfg = cfg

    def record_child_started(self, state: records.ExecutionState, *, initiated_event_id: int,
                             child_run_id: str, now: float) -> Transition:
        """The child's first run started: ChildWorkflowExecutionStarted (once)."""
        txn = Txn(state, now, self.cfg)
        child = state.children.get(initiated_event_id)
        if state.status == Status.RUNNING and child is not None and not child.run_id:
            child.run_id = child_run_id
            buffered = state.workflow_task is not None and bool(state.workflow_task.started_event_id)
            child.started_event_id = BUFFERED_STARTED_ID if buffered else state.next_event_id
            workflow_task.add_workflow_event(txn, wire.ChildWorkflowExecutionStartedAttributes(
                namespace=child.namespace, initiated_event_id=initiated_event_id,
                workflow_execution=wire.WorkflowExecution(workflow_id=child.workflow_id, run_id=child_run_id),
                workflow_type=child.workflow_type,
            ))
        return txn.finish()

    def record_child_start_failed(self, state: records.ExecutionState, *, initiated_event_id: int,
                                  cause: str, now: float) -> Transition:
        """The child could not start (its id is taken): StartChildWorkflowExecutionFailed."""
        txn = Txn(state, now, self.cfg)
        child = state.children.get(initiated_event_id)
        if state.status == Status.RUNNING and child is not None and not child.run_id:
            del state.children[initiated_event_id]
            workflow_task.add_workflow_event(txn, wire.StartChildWorkflowExecutionFailedAttributes(
                namespace=child.namespace, workflow_id=child.workflow_id,
                workflow_type=child.workflow_type, cause=cause,
                initiated_event_id=initiated_event_id,
            ))
        return txn.finish()

    def record_child_closed(self, state: records.ExecutionState, *, initiated_event_id: int,
                            closed: wire.ChildClose, now: float) -> Transition:
        """The child's chain ended with run ``closed``: ChildWorkflowExecution<Outcome>.

        Raises:
            ShoalError(UNAVAILABLE): the child's start is not recorded here yet (the two
                transfers raced); the caller retries later.
        """
        txn = Txn(state, now, self.cfg)
        child = state.children.get(initiated_event_id)
        if state.status != Status.RUNNING or child is None:
            return txn.finish()  # the parent moved on, or this was recorded already
        if not child.run_id:
            raise wire.ShoalError(wire.Code.UNAVAILABLE, "the child's start is not recorded yet")
        del state.children[initiated_event_id]
        workflow_task.add_workflow_event(txn, _child_close_event(child, closed))
        return txn.finish()

    def record_external_result(self, state: records.ExecutionState, *, initiated_event_id: int,
                               failed_cause: str | None, now: float) -> Transition:
        """A cancel request or signal to another workflow was delivered (or could not be)."""
        txn = Txn(state, now, self.cfg)
        request = state.external_requests.pop(initiated_event_id, None)
        if state.status != Status.RUNNING or request is None:
            return txn.finish()
        target = wire.WorkflowExecution(workflow_id=request.workflow_id, run_id=request.run_id)
        common = dict(namespace=request.namespace, workflow_execution=target,
                      initiated_event_id=initiated_event_id)
        if request.signal_name:
            attrs: object = (
                wire.ExternalWorkflowExecutionSignaledAttributes(**common) if failed_cause is None
                else wire.SignalExternalWorkflowExecutionFailedAttributes(cause=failed_cause, **common))
        else:
            attrs = (
                wire.ExternalWorkflowExecutionCancelRequestedAttributes(**common) if failed_cause is None
                else wire.RequestCancelExternalWorkflowExecutionFailedAttributes(cause=failed_cause, **common))
        workflow_task.add_workflow_event(txn, attrs)
        return txn.finish()
