"""A workflow seen from a client: temporalio's ``WorkflowHandle`` and the errors it raises.

Owns: waiting for a run's outcome, signals, queries, updates (their handles are in
``_update_handle.py``), cancel, terminate, describe and
history reads for one workflow id (and run), turning values into payloads with the client's
data converter and failures back into exceptions. Must not: start workflows (``client.py``
does), run workflow code, or import ``shoal.node``. Re-exported by ``shoal.sdk.client``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Any

from shoal import wire
from shoal.sdk import exceptions as _exc
from shoal.sdk._client_parts import ClientParts
from shoal.sdk._definition import _QUERY_ATTR, _SIGNAL_ATTR, _UPDATE_ATTR
from shoal.sdk._execution import (
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
)
from shoal.sdk.common import QueryRejectCondition
from shoal.sdk.connection import RPCError
from shoal.sdk._update_handle import (
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
    start_update,
)
from shoal.sdk.history import HistoryEvent, WorkflowHistory

_NO_ARG = object()


class WorkflowFailureError(_exc.FailureError):
    """The workflow closed unsuccessfully; ``cause`` says how (as temporalio's)."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow execution failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        assert self.__cause__ is not None
        return self.__cause__


class WorkflowQueryFailedError(_exc.TemporalError):
    """The query handler raised, or the workflow has no handler of that name."""


class WorkflowQueryRejectedError(_exc.TemporalError):
    """The query's ``reject_condition`` refused it: the run is closed (see ``status``)."""

    def __init__(self, status: WorkflowExecutionStatus) -> None:
        super().__init__(f"Query rejected, status: {status.name}")
        self._status = status

    @property
    def status(self) -> WorkflowExecutionStatus:
        """The status of the run the query was refused on."""
        return self._status


class WorkflowContinuedAsNewError(_exc.TemporalError):
    """The run continued as new and ``follow_runs`` was off."""

    def __init__(self, new_execution_run_id: str) -> None:
        super().__init__("Workflow continued as new")
        self.new_execution_run_id = new_execution_run_id


class WorkflowHandle:
    """A workflow run (or the current run of a workflow id) seen from a client."""

    def __init__(
        self,
        client: ClientParts,
        id: str,
        *,
        run_id: str | None,
        result_run_id: str | None,
        first_execution_run_id: str | None,
        result_type: type | None,
    ) -> None:
        self._client = client
        self.id = id
        self.run_id = run_id
        self.result_run_id = result_run_id
        self.first_execution_run_id = first_execution_run_id
        self._result_type = result_type

    def _execution(self, run_id: str | None) -> wire.WorkflowExecution:
        return wire.WorkflowExecution(workflow_id=self.id, run_id=run_id or "")

    async def outcome(self, *, follow_runs: bool = True) -> wire.GetResultResponse:
        """Wait for the run to close and return the node's answer as it is, undecoded.

        For tools that show an outcome rather than act on it (``shoal workflow result``):
        nothing is raised for a run that failed, and payloads stay bytes.

        Args:
            follow_runs: follow continue-as-new (and retries) to the run that ends the chain;
                when off, a run that continued as new is its own outcome.

        Returns:
            The closed run's status, run id, result payloads or failure.

        Raises:
            RPCError: NOT_FOUND if the workflow does not exist.
        """
        while True:  # each long poll waits up to 30 s; a run still open is asked again
            resp = await self._client.service.call(wire.Op.GET_RESULT, wire.GetResultRequest(
                execution=self._execution(self.result_run_id), wait_s=30.0,
                follow_runs=follow_runs,
            ))
            if resp.status != WorkflowExecutionStatus.RUNNING:
                return resp

    async def result(self, *, follow_runs: bool = True) -> Any:
        """Wait for the run to close and return its result.

        Raises:
            WorkflowFailureError: the run failed, timed out, was cancelled or terminated;
                ``cause`` holds the reason (ApplicationError, TimeoutError, ...).
        """
        resp = await self.outcome(follow_runs=follow_runs)
        if resp.status == WorkflowExecutionStatus.COMPLETED:
            hints = [self._result_type] if self._result_type is not None else None
            values = self._client.data_converter.from_payloads(resp.result or [], hints)
            return values[0] if values else None
        if resp.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            raise WorkflowContinuedAsNewError(resp.new_execution_run_id or "")
        raise WorkflowFailureError(cause=self._close_cause(resp))

    def _close_cause(self, resp: wire.GetResultResponse) -> BaseException:
        S = WorkflowExecutionStatus
        conv = self._client.data_converter
        if resp.failure is not None:
            return _exc.failure_to_error(resp.failure, conv)
        if resp.status == S.TIMED_OUT:
            return _exc.TimeoutError(
                "Workflow execution timed out", type=_exc.TimeoutType.START_TO_CLOSE,
                last_heartbeat_details=[],
            )
        if resp.status == S.TERMINATED:
            return _exc.TerminatedError("Workflow execution terminated")
        if resp.status == S.CANCELED:
            return _exc.CancelledError("Workflow execution cancelled")
        return _exc.ApplicationError(f"Workflow closed with status {resp.status.name}")

    async def signal(
        self, signal: str | Callable[..., Any], arg: Any = _NO_ARG, *, args: Sequence[Any] = ()
    ) -> None:
        """Send a signal to the run (the current run when the handle has no run id).

        ``signal`` is the signal's name or its ``@workflow.signal`` method. The signal is
        recorded in history before this returns; a retry after a lost answer records it once.

        Raises:
            RPCError: WORKFLOW_NOT_RUNNING if the run is closed (the signal is not delivered);
                NOT_FOUND if the workflow does not exist.
        """
        name = _signal_name(signal)
        values = list(args) if arg is _NO_ARG else [arg]
        await self._client.service.call(wire.Op.SIGNAL_WORKFLOW, wire.SignalWorkflowRequest(
            execution=self._execution(self.run_id), signal_name=name,
            input=self._client.data_converter.to_payloads(values),
            request_id=str(uuid.uuid4()), identity=self._client.identity,
        ))

    async def query(
        self, query: str | Callable[..., Any], arg: Any = _NO_ARG, *, args: Sequence[Any] = (),
        result_type: type | None = None, timeout: timedelta = timedelta(seconds=10),
        reject_condition: QueryRejectCondition | None = None,
    ) -> Any:
        """Run a ``@workflow.query`` handler on the run's current state (open or closed).

        Nothing is recorded. The answer sees every event in the run's history when the
        query arrived, as on Temporal: a query sent right after start, or right after a
        signal was acknowledged, waits for the workflow task that delivers those events.

        Args:
            reject_condition: refuse (rather than answer) a query of a closed run.

        Raises:
            WorkflowQueryFailedError: the handler raised, or the workflow has no such query.
            WorkflowQueryRejectedError: ``reject_condition`` refused it.
            RPCError: DEADLINE_EXCEEDED if no worker answered within ``timeout``;
                NOT_FOUND if the workflow does not exist; WORKFLOW_NOT_READY while its
                workflow task keeps failing.
        """
        name, ret_type = _handler_name_and_result(query, _QUERY_ATTR)
        values = list(args) if arg is _NO_ARG else [arg]
        conv = self._client.data_converter
        try:
            resp = await self._client.service.call(wire.Op.QUERY_WORKFLOW, wire.QueryWorkflowRequest(
                execution=self._execution(self.run_id),
                query=wire.WorkflowQuery(query_type=name, query_args=conv.to_payloads(values)),
                timeout_s=timeout.total_seconds(),
                reject_condition=(reject_condition or QueryRejectCondition.NONE).to_wire(),
            ))
        except RPCError as exc:
            if exc.code == wire.Code.QUERY_FAILED:
                raise WorkflowQueryFailedError(exc.message) from None
            raise
        if resp.rejected_status is not None:
            raise WorkflowQueryRejectedError(WorkflowExecutionStatus(int(resp.rejected_status)))
        hint = result_type or ret_type
        values = conv.from_payloads(resp.result, [hint] if hint is not None else None)
        return values[0] if values else None

    async def execute_update(
        self, update: str | Callable[..., Any], arg: Any = _NO_ARG, *, args: Sequence[Any] = (),
        id: str | None = None, result_type: type | None = None,
        timeout: timedelta = timedelta(seconds=60),
    ) -> Any:
        """Run a ``@workflow.update`` handler in the running workflow and return its result.

        The validator (if any) runs first; a rejected update records nothing in history.
        ``id`` makes a retry idempotent: the same id gets the same outcome.

        Raises:
            WorkflowUpdateFailedError: the validator rejected it or the handler raised;
                ``cause`` is the error.
            RPCError: WORKFLOW_NOT_RUNNING; DEADLINE_EXCEEDED if it did not complete in time.
        """
        name, ret_type = _handler_name_and_result(update, _UPDATE_ATTR)
        request = self._update_request(name, arg, args, id)
        resp = await self._client.service.call(wire.Op.UPDATE_WORKFLOW, wire.UpdateWorkflowRequest(
            execution=self._execution(self.run_id), request=request, wait_s=timeout.total_seconds(),
        ))
        assert resp.outcome is not None, "an update waited on to COMPLETED has its outcome"
        handle: WorkflowUpdateHandle[Any] = WorkflowUpdateHandle(
            self._client, request.update_id, self.id, workflow_run_id=resp.run_id,
            result_type=result_type or ret_type, known_outcome=resp.outcome)
        return await handle.result()

    async def start_update(
        self, update: str | Callable[..., Any], arg: Any = _NO_ARG, *,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        args: Sequence[Any] = (), id: str | None = None, result_type: type | None = None,
        rpc_timeout: timedelta | None = None,
    ) -> WorkflowUpdateHandle[Any]:
        """Send an update and return its handle once a worker accepted it (its handler is
        then running; ``result()`` waits for it), or once it completed.

        A rejected update is complete at once: its handle's ``result()`` raises
        ``WorkflowUpdateFailedError`` without another call, as temporalio's does.

        Args:
            wait_for_stage: ACCEPTED or COMPLETED (ADMITTED is refused, as by temporalio).
            id: the update's id (a new uuid if None); the same id is the same update.
            rpc_timeout: how long to wait for the stage; None waits until it is reached.

        Raises:
            ValueError: ``wait_for_stage`` is ADMITTED.
            WorkflowUpdateRPCTimeoutOrCancelledError: ``rpc_timeout`` passed first.
            RPCError: WORKFLOW_NOT_RUNNING; NOT_FOUND if the workflow does not exist.
        """
        name, ret_type = _handler_name_and_result(update, _UPDATE_ATTR)
        return await start_update(
            self._client, self._execution(self.run_id), self._update_request(name, arg, args, id),
            wait_for_stage=wait_for_stage, result_type=result_type or ret_type,
            rpc_timeout=rpc_timeout,
        )

    def get_update_handle(
        self, id: str, *, workflow_run_id: str | None = None, result_type: type | None = None,
    ) -> WorkflowUpdateHandle[Any]:
        """A handle to an update sent earlier (by any client) with id ``id``; no call is made.

        Args:
            workflow_run_id: the run it was sent to (default: this handle's run id, or the
                workflow's current run).
            result_type: what to decode the result into.
        """
        return WorkflowUpdateHandle(self._client, id, self.id,
                                    workflow_run_id=workflow_run_id or self.run_id,
                                    result_type=result_type)

    def get_update_handle_for(
        self, update: Callable[..., Any], id: str, *, workflow_run_id: str | None = None,
    ) -> WorkflowUpdateHandle[Any]:
        """``get_update_handle`` typed by the ``@workflow.update`` method's return type."""
        _, ret_type = _handler_name_and_result(update, _UPDATE_ATTR)
        return self.get_update_handle(id, workflow_run_id=workflow_run_id, result_type=ret_type)

    def _update_request(self, name: str, arg: Any, args: Sequence[Any], id: str | None) -> wire.UpdateRequest:
        values = list(args) if arg is _NO_ARG else [arg]
        return wire.UpdateRequest(update_id=id or str(uuid.uuid4()), name=name,
                                  input=self._client.data_converter.to_payloads(values),
                                  identity=self._client.identity)

    async def cancel(self) -> None:
        """Ask the run to cancel: the workflow sees ``asyncio.CancelledError`` and decides.

        Returns once the request is recorded, not when the run closes (await ``result()``).
        """
        await self._client.service.call(
            wire.Op.REQUEST_CANCEL_WORKFLOW, wire.RequestCancelWorkflowRequest(
                execution=self._execution(self.run_id), request_id=str(uuid.uuid4()),
                identity=self._client.identity,
            ))

    async def terminate(self, *args: Any, reason: str | None = None) -> None:
        """Close the run at once with TERMINATED; no workflow code runs."""
        await self._client.service.call(
            wire.Op.TERMINATE_WORKFLOW, wire.TerminateWorkflowRequest(
                execution=self._execution(self.run_id), reason=reason or "",
                details=self._client.data_converter.to_payloads(list(args)),
                identity=self._client.identity,
            ))

    async def describe(self) -> WorkflowExecutionDescription:
        """The run's summary, pending activities and workflow task, as the node has it now."""
        resp = await self._client.service.call(
            wire.Op.DESCRIBE_WORKFLOW,
            wire.DescribeWorkflowRequest(execution=self._execution(self.run_id)),
        )
        base = WorkflowExecution._from_info(
            resp.info, self._client.namespace, self._client.data_converter
        )
        return WorkflowExecutionDescription(
            **{f: getattr(base, f) for f in base.__dataclass_fields__}, raw_description=resp
        )

    async def fetch_history_events(self, *, page_size: int | None = None) -> AsyncIterator[HistoryEvent]:
        """Iterate over the run's history events in order, a page at a time."""
        token: bytes | None = None
        while True:
            resp = await self._client.service.call(wire.Op.GET_HISTORY, wire.GetHistoryRequest(
                execution=self._execution(self.run_id), next_page_token=token,
                page_size=page_size or 1000,
            ))
            for ev in resp.events:
                yield HistoryEvent(ev)
            token = resp.next_page_token
            if not token:
                return

    async def fetch_history(self) -> WorkflowHistory:
        """The whole history of the run."""
        events = [ev async for ev in self.fetch_history_events()]
        return WorkflowHistory(workflow_id=self.id, events=events)


def _handler_name_and_result(handler: str | Callable[..., Any], attr: str) -> tuple[str, Any]:
    """Name and result type of a signal/query/update given as a string or its method."""
    if isinstance(handler, str):
        return handler, None
    defn = getattr(handler, attr, None)
    if defn is None or defn.name is None:
        raise TypeError(f"{handler!r} is not a named @workflow.signal/query/update method")
    return defn.name, defn.ret_type


def _signal_name(signal: str | Callable[..., Any]) -> str:
    return _handler_name_and_result(signal, _SIGNAL_ATTR)[0]
