"""Starting a run: request validation, the workflow id reuse policy, the first events.

Owns: deciding whether a StartWorkflow request may create a run given the workflow id's
current run (Temporal's ``WorkflowIdReusePolicy`` and request-id dedupe), and building the
new run's state, WorkflowExecutionStarted + WorkflowTaskScheduled events and timeout
timers. Must not: terminate the previous run itself (``engine.py`` composes that) or do I/O.
"""

from __future__ import annotations

from typing import NamedTuple

import math

from shoal import wire
from shoal.node.history import workflow_task
from shoal.node.history.config import HistoryConfig
from shoal.node.history.transition import Transition, Txn
from shoal.node.history import records
from shoal.node.history.records import TimerKind

Status = wire.WorkflowExecutionStatus
Policy = wire.IdReusePolicy

# Closed statuses that ALLOW_DUPLICATE_FAILED_ONLY lets a new run follow.
_FAILED_LIKE = frozenset({Status.FAILED, Status.CANCELED, Status.TERMINATED, Status.TIMED_OUT})


def _invalid(message: str) -> wire.ShoalError:
    return wire.ShoalError(wire.Code.INVALID_ARGUMENT, message)


def _timeout(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if math.isnan(value) or value < 0:
        raise _invalid(f"{name} is {value}; it must be >= 0 seconds")
    return None if value == 0 or math.isinf(value) else value


def check_request(req: wire.StartWorkflowRequest, cfg: HistoryConfig) -> None:
    """Raise INVALID_ARGUMENT / PAYLOAD_TOO_LARGE for a request no run can be made from."""
    for name in ("workflow_id", "workflow_type", "task_queue", "request_id"):
        value = getattr(req, name)
        if not value:
            raise _invalid(f"{name} must not be empty")
        if len(value) > wire.ID_CHARS_MAX:
            raise _invalid(f"{name} is {len(value)} characters; the limit is {wire.ID_CHARS_MAX}")
    size = wire.payloads_size(req.input)
    if size > cfg.payload_bytes_max:
        raise wire.ShoalError(
            wire.Code.PAYLOAD_TOO_LARGE,
            f"input is {size} bytes; the limit is {cfg.payload_bytes_max} bytes",
        )
    memo_size = sum(len(k) + len(v) for k, v in req.memo.items())
    memo_size += sum(len(k) + len(v) for k, v in req.search_attributes.items())
    if memo_size > cfg.payload_bytes_max:
        raise wire.ShoalError(
            wire.Code.PAYLOAD_TOO_LARGE,
            f"memo and search attributes are {memo_size} bytes; the limit is "
            f"{cfg.payload_bytes_max} bytes",
        )
    _timeout("workflow_execution_timeout_s", req.workflow_execution_timeout_s)
    _timeout("workflow_run_timeout_s", req.workflow_run_timeout_s)
    _timeout("workflow_task_timeout_s", req.workflow_task_timeout_s)


def is_duplicate(req: wire.StartWorkflowRequest, current: records.CurrentRun | None) -> bool:
    """A retried start: the current run was started by this very request id."""
    return current is not None and bool(req.request_id) and current.start_request_id == req.request_id


def check_reuse(
    req: wire.StartWorkflowRequest, current: records.CurrentRun | None, status: Status | None
) -> bool:
    """Apply the id reuse policy. Returns True if the current run must be terminated first.

    Args:
        status: the current run's actual status (its state's, which is authoritative over
            the possibly stale ``current.status``); None if there is no current run.
    Raises:
        ShoalError(WORKFLOW_ALREADY_STARTED, run_id=...) when the policy forbids the start.
    """
    if current is None or status is None:
        return False

    def refuse(why: str) -> wire.ShoalError:
        return wire.ShoalError(
            wire.Code.WORKFLOW_ALREADY_STARTED,
            f"workflow {req.workflow_id!r} {why} (run {current.run_id}); id_reuse_policy is "
            f"{req.id_reuse_policy.name}",
            run_id=current.run_id,
        )

    policy = req.id_reuse_policy
    if status == Status.RUNNING:
        if policy == Policy.TERMINATE_IF_RUNNING:
            return True
        raise refuse("is already running")
    if policy == Policy.REJECT_DUPLICATE:
        raise refuse(f"already ran and {status.name}")
    if policy == Policy.ALLOW_DUPLICATE_FAILED_ONLY and status not in _FAILED_LIKE:
        raise refuse(f"already ran and {status.name}")
    return False


class ParentRef(NamedTuple):
    """The run that started a child, the event that initiated it, and the parent's root
    (the top of its chain, which the child inherits; None when the parent's is unknown)."""

    namespace: str
    execution: wire.WorkflowExecution
    initiated_event_id: int
    root: wire.WorkflowExecution | None = None


class _RunTimeouts(NamedTuple):
    """A new run's timeouts (seconds; None = unbounded) and its chain's deadline."""

    run_s: float | None
    execution_s: float | None
    workflow_task_s: float
    execution_expiration: float | None  # absolute time; inherited along a chain


def _run_timeouts(req: wire.StartWorkflowRequest, now: float, cfg: HistoryConfig,
                  continued_from: records.ExecutionState | None) -> _RunTimeouts:
    """The request's timeouts, checked and clamped as Temporal does.

    Raises:
        ShoalError(INVALID_ARGUMENT): a timeout is negative or NaN.
    """
    run_timeout = _timeout("workflow_run_timeout_s", req.workflow_run_timeout_s)
    exec_timeout = _timeout("workflow_execution_timeout_s", req.workflow_execution_timeout_s)
    # As Temporal: a run may not outlive its execution; an unset run timeout is the execution's.
    if exec_timeout is not None and (run_timeout is None or run_timeout > exec_timeout):
        run_timeout = exec_timeout
    wt_timeout = _timeout("workflow_task_timeout_s", req.workflow_task_timeout_s)
    wt_timeout = min(wt_timeout or cfg.workflow_task_timeout_s, cfg.workflow_task_timeout_max_s)
    if run_timeout is not None:
        wt_timeout = min(wt_timeout, run_timeout)
    exec_expiration = now + exec_timeout if exec_timeout is not None else None
    if continued_from is not None:
        # The chain keeps its execution deadline: what is left of it bounds this run.
        exec_expiration = continued_from.execution_expiration_time
        if exec_expiration is not None:
            exec_timeout = max(exec_expiration - now, 0.0)
            if run_timeout is None or run_timeout > exec_timeout:
                run_timeout = exec_timeout
    return _RunTimeouts(run_timeout, exec_timeout, wt_timeout, exec_expiration)


def _started_attrs(req: wire.StartWorkflowRequest, state: records.ExecutionState,
                   t: _RunTimeouts, continued_run_id: str | None,
                   parent: ParentRef | None) -> wire.WorkflowExecutionStartedAttributes:
    return wire.WorkflowExecutionStartedAttributes(
        workflow_type=req.workflow_type, task_queue=req.task_queue, input=list(req.input),
        workflow_execution_timeout_s=t.execution_s, workflow_run_timeout_s=t.run_s,
        workflow_task_timeout_s=t.workflow_task_s, attempt=1,
        first_execution_run_id=state.first_execution_run_id,
        continued_execution_run_id=continued_run_id, original_execution_run_id=state.run_id,
        identity=req.identity, request_id=req.request_id,
        retry_policy=req.retry_policy, memo=dict(req.memo),
        search_attributes=dict(req.search_attributes),
        workflow_execution_expiration_time=t.execution_expiration,
        parent_workflow_id=parent.execution.workflow_id if parent else None,
        parent_run_id=parent.execution.run_id if parent else None,
        parent_initiated_event_id=parent.initiated_event_id if parent else None,
        root_workflow_id=state.root.workflow_id if state.root else None,
        root_run_id=state.root.run_id if state.root else None,
    )


def new_run(
    req: wire.StartWorkflowRequest,
    *,
    namespace: str,
    run_id: str,
    now: float,
    cfg: HistoryConfig,
    continued_from: records.ExecutionState | None = None,
    parent: ParentRef | None = None,
) -> tuple[records.ExecutionState, Transition]:
    """Build a run from a checked request: WorkflowExecutionStarted, a workflow task, timers.

    ``continued_from``: the run this one continues as new; the chain keeps its first run's
    id, its execution deadline and its parent. ``parent``: the run that started this one as
    its child.
    """
    if continued_from is not None and continued_from.parent is not None:
        # A continued child stays its parent's child, so it keeps the chain's root too (as
        # Temporal's continue-as-new copies the root only when there is a parent).
        parent = ParentRef(continued_from.parent_namespace, continued_from.parent,
                           continued_from.parent_initiated_event_id, continued_from.root)
    t = _run_timeouts(req, now, cfg, continued_from)
    first_run_id, continued_run_id = run_id, None
    if continued_from is not None:
        first_run_id = continued_from.first_execution_run_id or continued_from.run_id
        continued_run_id = continued_from.run_id
    state = records.ExecutionState(
        namespace=namespace, workflow_id=req.workflow_id, run_id=run_id,
        workflow_type=req.workflow_type, task_queue=req.task_queue, start_time=now,
        start_request_id=req.request_id, first_execution_run_id=first_run_id,
        workflow_task_timeout_s=t.workflow_task_s,
        run_expiration_time=now + t.run_s if t.run_s is not None else None,
        execution_expiration_time=t.execution_expiration,
        memo=dict(req.memo), search_attributes=dict(req.search_attributes),
    )
    if parent is not None:
        state.parent_namespace, state.parent = parent.namespace, parent.execution
        state.parent_initiated_event_id, state.root = parent.initiated_event_id, parent.root
    else:
        state.root = wire.WorkflowExecution(workflow_id=req.workflow_id, run_id=run_id)
    txn = Txn(state, now, cfg)
    txn.append(_started_attrs(req, state, t, continued_run_id, parent))
    workflow_task.schedule(txn, attempt=1)
    if state.run_expiration_time is not None:
        txn.timer(TimerKind.WORKFLOW_RUN_TIMEOUT, state.run_expiration_time)
    if t.execution_expiration is not None:
        txn.timer(TimerKind.WORKFLOW_EXECUTION_TIMEOUT, t.execution_expiration)
    txn.tr.response = wire.StartWorkflowResponse(run_id=run_id, started=True)
    return state, txn.finish()
