"""Child workflows and handles to other workflows, inside a running workflow.

Owns (as ``ChildWorkflows``, a part the ``WorkflowRuntime`` composes and reaches through
``RuntimeCore``): the StartChildWorkflowExecution, SignalExternalWorkflowExecution and
RequestCancelExternalWorkflowExecution commands, and resolving what workflow code awaits
from the events that record how they went. Mirrors temporalio: ``start_child_workflow``
returns once the child started (or raises ``WorkflowAlreadyStartedError``); the handle is
an ``asyncio.Task`` for the child's result, which raises ``ChildWorkflowError`` (cause: the
child's failure, ``CancelledError``, ``TimeoutError`` or ``TerminatedError``). Cancelling
the handle asks the child to cancel, then follows ``ChildWorkflowCancellationType``. Must
not: do I/O, walk history, or import ``_runtime`` or ``workflow`` (they import this).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from typing import Any, Optional

from shoal import wire
from shoal.sdk import exceptions
from shoal.sdk._workflow_types import HistoryMismatch, RuntimeCore
from shoal.sdk.converter import encode_search_attributes


class ChildWorkflowCancellationType(IntEnum):
    """What cancelling a child handle waits for (temporalio's names and numbers)."""

    ABANDON = 0
    TRY_CANCEL = 1
    WAIT_CANCELLATION_COMPLETED = 2
    WAIT_CANCELLATION_REQUESTED = 3


ParentClosePolicy = wire.ParentClosePolicy

_CHILD_CLOSE = (
    wire.ChildWorkflowExecutionCompletedAttributes, wire.ChildWorkflowExecutionFailedAttributes,
    wire.ChildWorkflowExecutionCanceledAttributes, wire.ChildWorkflowExecutionTimedOutAttributes,
    wire.ChildWorkflowExecutionTerminatedAttributes,
)
_EXTERNAL_DONE = (
    wire.ExternalWorkflowExecutionSignaledAttributes, wire.SignalExternalWorkflowExecutionFailedAttributes,
    wire.ExternalWorkflowExecutionCancelRequestedAttributes,
    wire.RequestCancelExternalWorkflowExecutionFailedAttributes,
)


@dataclass(slots=True)
class _Child:
    seq: int
    workflow_id: str
    workflow_type: str
    result_type: Any
    cancellation_type: ChildWorkflowCancellationType
    started: asyncio.Future[str]  # the child's first run id
    result: asyncio.Future[Any]
    initiated_event_id: int = 0
    run_id: str = ""
    cancel_requested: Optional[asyncio.Future[None]] = None


@dataclass(slots=True)
class _External:
    future: asyncio.Future[None]
    description: str
    initiated_event_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class ChildWorkflows:
    """Children and external workflows of one run; the ``WorkflowRuntime`` owns one.

    Args:
        core: The run's runtime (sequence numbers, commands, the converter, the loop).
    """

    def __init__(self, core: RuntimeCore) -> None:
        self._core = core
        self._children: dict[int, _Child] = {}  # by seq
        self._child_by_event: dict[int, _Child] = {}  # by initiated event id
        self._externals: dict[int, _External] = {}  # by seq
        self._external_by_event: dict[int, _External] = {}

    # --- commands ------------------------------------------------------------------------

    async def start_child(
        self, *, workflow_type: str, args: list[Any], workflow_id: str,
        task_queue: Optional[str], result_type: Any, execution_timeout: Optional[timedelta],
        run_timeout: Optional[timedelta], task_timeout: Optional[timedelta],
        id_reuse_policy: int, retry_policy: Any, parent_close_policy: ParentClosePolicy,
        cancellation_type: ChildWorkflowCancellationType, memo: Optional[dict[str, Any]],
        search_attributes: Optional[dict[str, Any]],
    ) -> _Child:
        """Issue StartChildWorkflowExecution and wait until the child started."""
        seq = self._core.next_seq()
        conv = self._core.converter
        child = _Child(seq=seq, workflow_id=workflow_id, workflow_type=workflow_type,
                       result_type=result_type, cancellation_type=cancellation_type,
                       started=self._core.loop.create_future(), result=self._core.loop.create_future())
        self._children[seq] = child
        self._core.add_command(wire.StartChildWorkflowExecutionCommand(
            workflow_id=workflow_id, workflow_type=workflow_type, task_queue=task_queue or "",
            input=conv.to_payloads(args),
            workflow_execution_timeout_s=_secs(execution_timeout),
            workflow_run_timeout_s=_secs(run_timeout), workflow_task_timeout_s=_secs(task_timeout),
            parent_close_policy=parent_close_policy,
            workflow_id_reuse_policy=wire.IdReusePolicy(int(id_reuse_policy)),
            retry_policy=None if retry_policy is None else retry_policy.to_wire(),
            memo={k: conv.to_payloads([v])[0] for k, v in (memo or {}).items()},
            search_attributes=encode_search_attributes(search_attributes or {}),
        ), seq)
        try:
            child.run_id = await asyncio.shield(child.started)
        except asyncio.CancelledError:
            if not self._core.drop_unsent(seq, wire.StartChildWorkflowExecutionCommand):
                # Sent already: once it starts, ask it to cancel (as temporalio).
                child.started.add_done_callback(
                    lambda f: None if f.exception() is not None else self._cancel_child(child))
            raise
        return child

    async def child_result(self, child: _Child) -> Any:
        """The child's result; cancelling the awaiting task cancels the child."""
        while True:
            try:
                return await asyncio.shield(child.result)
            except asyncio.CancelledError:
                if child.result.done():
                    return child.result.result()
                self._cancel_child(child)
                kind = child.cancellation_type
                if kind == ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED:
                    continue  # the child's close (Canceled, or whatever it decides) settles it
                if kind == ChildWorkflowCancellationType.WAIT_CANCELLATION_REQUESTED:
                    assert child.cancel_requested is not None
                    await asyncio.shield(child.cancel_requested)
                child.result.cancel()  # its later close is ignored
                raise self._child_error(child.workflow_id, child.run_id, child.workflow_type,
                                        child.initiated_event_id, 0, exceptions.CancelledError("Cancelled"),
                                        exceptions.RetryState.CANCEL_REQUESTED)

    def _cancel_child(self, child: _Child) -> None:
        if child.cancel_requested is not None or child.cancellation_type == ChildWorkflowCancellationType.ABANDON:
            return
        child.cancel_requested = self.external_command(
            wire.RequestCancelExternalWorkflowExecutionCommand(
                workflow_id=child.workflow_id, run_id=child.run_id, child_workflow_only=True),
            f"cancel child {child.workflow_id!r}")

    def external_command(self, command: wire.Command, description: str) -> asyncio.Future[None]:
        """Signal or cancel another workflow; the future resolves when it was delivered."""
        seq = self._core.next_seq()
        ext = _External(future=self._core.loop.create_future(), description=description)
        self._externals[seq] = ext
        self._core.add_command(command, seq)
        return ext.future

    # --- history -------------------------------------------------------------------------

    def on_recorded(self, seq: int, event: wire.HistoryEvent) -> None:
        et = event.event_type
        if et == wire.EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            child = self._children.get(seq)
            if child is not None:
                child.initiated_event_id = event.event_id
                self._child_by_event[event.event_id] = child
        elif et in (wire.EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
                    wire.EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED):
            ext = self._externals.get(seq)
            if ext is not None:
                ext.initiated_event_id = event.event_id
                self._external_by_event[event.event_id] = ext

    def apply(self, event: wire.HistoryEvent) -> bool:
        """Resolve what an outcome event settles; False if the event is not one of these."""
        a = event.attributes
        if isinstance(a, wire.ChildWorkflowExecutionStartedAttributes):
            child = self._child_for(a.initiated_event_id, event)
            if not child.started.done():
                child.started.set_result(a.workflow_execution.run_id)
        elif isinstance(a, wire.StartChildWorkflowExecutionFailedAttributes):
            child = self._child_for(a.initiated_event_id, event)
            if not child.started.done():
                child.started.set_exception(exceptions.WorkflowAlreadyStartedError(
                    a.workflow_id, a.workflow_type))
        elif isinstance(a, _CHILD_CLOSE):
            child = self._child_for(a.initiated_event_id, event)
            if not child.result.done():
                self._settle_child(child, a)
        elif isinstance(a, _EXTERNAL_DONE):
            ext = self._external_by_event.pop(a.initiated_event_id, None)
            if ext is None:
                raise HistoryMismatch(f"event {event.event_id} refers to a request this run never made")
            if not ext.future.done():
                if isinstance(a, (wire.SignalExternalWorkflowExecutionFailedAttributes,
                                  wire.RequestCancelExternalWorkflowExecutionFailedAttributes)):
                    ext.future.set_exception(exceptions.ApplicationError(
                        f"Unable to {ext.description}: the workflow was not found or is closed",
                        type="ExternalWorkflowExecutionNotFound"))
                else:
                    ext.future.set_result(None)
        else:
            return False
        return True

    def _child_for(self, initiated_event_id: int, event: wire.HistoryEvent) -> _Child:
        child = self._child_by_event.get(initiated_event_id)
        if child is None:
            raise HistoryMismatch(f"event {event.event_id} ({event.event_type.name}) refers to "
                                  f"child {initiated_event_id}, which this run never started")
        return child

    def _settle_child(self, child: _Child, a: Any) -> None:
        if isinstance(a, wire.ChildWorkflowExecutionCompletedAttributes):
            try:
                hints = [child.result_type] if child.result_type is not None else None
                values = self._core.converter.from_payloads(a.result[:1], hints)
            except Exception as exc:
                child.result.set_exception(exc)
            else:
                child.result.set_result(values[0] if values else None)
            return
        if isinstance(a, wire.ChildWorkflowExecutionFailedAttributes):
            cause: BaseException = exceptions.failure_to_error(a.failure, self._core.converter)
            retry_state = exceptions.RetryState(int(a.retry_state))
        elif isinstance(a, wire.ChildWorkflowExecutionCanceledAttributes):
            cause, retry_state = exceptions.CancelledError("Cancelled"), exceptions.RetryState.CANCEL_REQUESTED
        elif isinstance(a, wire.ChildWorkflowExecutionTimedOutAttributes):
            cause = exceptions.TimeoutError("Child workflow timed out", type=exceptions.TimeoutType.START_TO_CLOSE)
            retry_state = exceptions.RetryState.TIMEOUT
        else:
            cause, retry_state = exceptions.TerminatedError("Terminated"), None
        child.result.set_exception(self._child_error(
            a.workflow_execution.workflow_id, a.workflow_execution.run_id, a.workflow_type,
            a.initiated_event_id, a.started_event_id, cause, retry_state))

    def _child_error(self, workflow_id: str, run_id: str, workflow_type: str,
                     initiated_event_id: int, started_event_id: int, cause: BaseException,
                     retry_state: Optional[exceptions.RetryState]) -> exceptions.ChildWorkflowError:
        err = exceptions.ChildWorkflowError(
            "Child Workflow execution failed", namespace=self._core.namespace, workflow_id=workflow_id,
            run_id=run_id, workflow_type=workflow_type, initiated_event_id=initiated_event_id,
            started_event_id=started_event_id, retry_state=retry_state)
        err.__cause__ = cause
        return err


def _secs(value: Optional[timedelta]) -> Optional[float]:
    return None if value is None else value.total_seconds()
