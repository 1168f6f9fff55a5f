"""The client: start workflows, wait for results, describe, read history, list.

Owns: temporalio's ``Client`` / ``WorkflowHandle`` surface over ``ServiceConnection``, turning
Python values into payloads with the data converter and failures back into exceptions. Must
not: run workflow or activity code (the worker does) or import ``shoal.node``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shoal import wire
from shoal.sdk import converter as _converter
from shoal.sdk.converter import decode_search_attributes, encode_search_attributes
from shoal.sdk import exceptions as _exc
from shoal.sdk.common import RetryPolicy, WorkflowIDReusePolicy
from shoal.sdk.connection import ConnectionLost, RPCError, ServiceConnection
from shoal.sdk.history import HistoryEvent, WorkflowHistory
from shoal.sdk._definition import _QUERY_ATTR, _SIGNAL_ATTR, _UPDATE_ATTR
from shoal.sdk.workflow import _resolve_workflow_ref

WorkflowExecutionStatus = wire.WorkflowExecutionStatus

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


class WorkflowUpdateFailedError(_exc.TemporalError):
    """The update was rejected by its validator or its handler raised; see ``cause``."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow update failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        return self.__cause__  # type: ignore[return-value]


class WorkflowContinuedAsNewError(_exc.TemporalError):
    """The run continued as new and ``follow_runs`` was off."""

    def __init__(self, new_execution_run_id: str) -> None:
        super().__init__("Workflow continued as new")
        self.new_execution_run_id = new_execution_run_id


def _seconds(td: timedelta | None) -> float | None:
    return None if td is None else td.total_seconds()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass(frozen=True)
class WorkflowExecution:
    """A run as ``list_workflows`` and ``describe`` report it (temporalio's names)."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    execution_time: datetime | None
    history_length: int
    search_attributes: Mapping[str, Any]
    raw_info: wire.WorkflowExecutionInfo
    data_converter: _converter.DataConverter

    @classmethod
    def _from_info(
        cls, info: wire.WorkflowExecutionInfo, data_converter: _converter.DataConverter
    ) -> WorkflowExecution:
        return cls(
            id=info.workflow_id, run_id=info.run_id, workflow_type=info.workflow_type,
            task_queue=info.task_queue, status=info.status, start_time=_dt(info.start_time),  # type: ignore[arg-type]
            close_time=_dt(info.close_time), execution_time=_dt(info.execution_time),
            history_length=info.history_length,
            search_attributes=decode_search_attributes(info.search_attributes),
            raw_info=info, data_converter=data_converter,
        )

    async def memo(self) -> dict[str, Any]:
        """The memo the run was started with, decoded (``temporalio``'s ``memo()``)."""
        return {
            k: self.data_converter.from_payload(v) for k, v in self.raw_info.memo.items()
        }

    async def memo_value(self, key: str, default: Any = None, *, type_hint: Any = None) -> Any:
        """One memo value, rebuilt as ``type_hint``; ``default`` when the memo lacks ``key``."""
        raw = self.raw_info.memo.get(key)
        return default if raw is None else self.data_converter.from_payload(raw, type_hint)


@dataclass(frozen=True)
class WorkflowExecutionCount:
    """``count_workflows``: how many runs match, and per status with GROUP BY."""

    count: int
    groups: list[tuple[WorkflowExecutionStatus, int]]


@dataclass(frozen=True)
class WorkflowExecutionDescription(WorkflowExecution):
    """``describe()``: the summary plus pending work and the last workflow-task failure."""

    raw_description: wire.DescribeWorkflowResponse | None = None

    @property
    def pending_activities(self) -> list[wire.PendingActivityInfo]:
        return list(self.raw_description.pending_activities) if self.raw_description else []

    @property
    def last_workflow_task_failure(self) -> wire.Failure | None:
        return self.raw_description.last_workflow_task_failure if self.raw_description else None


class Client:
    """A connection to a shoal cluster, for starting and inspecting workflows."""

    def __init__(
        self,
        connection: ServiceConnection,
        *,
        data_converter: _converter.DataConverter | None = None,
    ) -> None:
        self.service = connection
        self.data_converter = data_converter or _converter.default()

    @classmethod
    async def connect(
        cls,
        target_host: str | Sequence[str],
        *,
        namespace: str = wire.DEFAULT_NAMESPACE,
        identity: str | None = None,
        data_converter: _converter.DataConverter | None = None,
    ) -> Client:
        """Connect to a node at ``target_host`` (``ws://host:port`` or ``host:port``), or to
        any of a list of nodes: when the one in use cannot be reached, calls fail over to
        the next (in-flight calls are retried there; they are idempotent by request id).

        Raises:
            RPCError: the node refused the handshake (e.g. unknown namespace).
            ConnectionLost: nothing answered at any of the addresses.
        """
        conn = ServiceConnection(target_host, namespace, identity)
        for attempt in range(len(conn.addresses)):  # each address once, in order
            try:
                await conn.connect()
                break
            except ConnectionLost:
                if attempt == len(conn.addresses) - 1:
                    raise
        return cls(conn, data_converter=data_converter)

    @property
    def namespace(self) -> str:
        return self.service.namespace

    @property
    def identity(self) -> str:
        return self.service.identity

    async def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = _NO_ARG,
        *,
        id: str,
        task_queue: str,
        args: Sequence[Any] = (),
        result_type: type | None = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
        search_attributes: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
    ) -> WorkflowHandle:
        """Start a workflow run and return a handle to it.

        With ``start_signal``, this is signal-with-start (as temporalio): if a run of ``id``
        is running it gets the signal (``start_signal_args``) and nothing starts; else a run
        starts and receives the signal in its first workflow task. Both happen atomically.

        Raises:
            WorkflowAlreadyStartedError: a run with this id is running (or the reuse policy
                forbids a new one).
            RPCError: the node refused the request (the message says why).
        """
        name, ret_type = _resolve_workflow_ref(workflow)
        values = list(args) if arg is _NO_ARG else [arg]
        conv = self.data_converter
        req = wire.StartWorkflowRequest(
            workflow_id=id, workflow_type=name, task_queue=task_queue,
            request_id=request_id or str(uuid.uuid4()), input=conv.to_payloads(values),
            id_reuse_policy=wire.IdReusePolicy(int(id_reuse_policy)),
            workflow_execution_timeout_s=_seconds(execution_timeout),
            workflow_run_timeout_s=_seconds(run_timeout),
            workflow_task_timeout_s=_seconds(task_timeout),
            retry_policy=retry_policy.to_wire() if retry_policy else None,
            memo={k: conv.to_payloads([v])[0] for k, v in (memo or {}).items()},
            search_attributes=encode_search_attributes(search_attributes or {}),
            identity=self.identity,
        )
        try:
            if start_signal is not None:
                resp = await self.service.call(
                    wire.Op.SIGNAL_WITH_START_WORKFLOW, wire.SignalWithStartWorkflowRequest(
                        start=req, signal_name=start_signal,
                        signal_input=conv.to_payloads(list(start_signal_args)),
                    ))
            else:
                resp = await self.service.call(wire.Op.START_WORKFLOW, req)
        except RPCError as exc:
            if exc.code == wire.Code.WORKFLOW_ALREADY_STARTED:
                raise _exc.WorkflowAlreadyStartedError(
                    id, name, run_id=str(exc.details.get("run_id", ""))
                ) from None
            raise
        return WorkflowHandle(
            self, id, run_id=None, result_run_id=resp.run_id,
            first_execution_run_id=resp.run_id, result_type=result_type or ret_type,
        )

    async def execute_workflow(
        self, workflow: str | Callable[..., Any], arg: Any = _NO_ARG, **kwargs: Any
    ) -> Any:
        """Start a workflow and wait for its result (``start_workflow`` + ``result``)."""
        handle = await self.start_workflow(workflow, arg, **kwargs)
        return await handle.result()

    def get_workflow_handle(
        self,
        workflow_id: str,
        *,
        run_id: str | None = None,
        first_execution_run_id: str | None = None,
        result_type: type | None = None,
    ) -> WorkflowHandle:
        """A handle to an existing workflow (the current run when ``run_id`` is None)."""
        return WorkflowHandle(
            self, workflow_id, run_id=run_id, result_run_id=run_id,
            first_execution_run_id=first_execution_run_id, result_type=result_type,
        )

    def get_workflow_handle_for(
        self, workflow: Callable[..., Any], workflow_id: str, *, run_id: str | None = None
    ) -> WorkflowHandle:
        """A handle whose ``result()`` is typed by the workflow's run method."""
        _, ret_type = _resolve_workflow_ref(workflow)
        return self.get_workflow_handle(workflow_id, run_id=run_id, result_type=ret_type)

    def get_async_activity_handle(self, *, task_token: bytes) -> AsyncActivityHandle:
        """A handle to complete, fail or heartbeat an activity that called
        ``activity.raise_complete_async()`` (by the task token it read from ``info()``)."""
        return AsyncActivityHandle(self, task_token)

    async def list_workflows(
        self,
        query: str | None = None,
        *,
        status: WorkflowExecutionStatus | None = None,
        workflow_type: str | None = None,
        task_queue: str | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[WorkflowExecution]:
        """Iterate over the runs a list filter accepts, newest first (or as ORDER BY says).

        ``query`` is Temporal's list filter, e.g. ``WorkflowType = 'Order' AND
        ExecutionStatus = 'Running' AND StartTime > '2026-11-01T00:00:00Z'``; custom search
        attributes are named as given at start. The keyword filters are ANDed with it.

        Raises:
            RPCError: INVALID_ARGUMENT for a query that does not parse (the message says where).
        """
        token: bytes | None = None
        while True:
            resp = await self.service.call(wire.Op.LIST_WORKFLOWS, wire.ListWorkflowsRequest(
                status=status, workflow_type=workflow_type, task_queue=task_queue,
                query=query or "", page_size=page_size, next_page_token=token,
            ))
            for info in resp.executions:
                yield WorkflowExecution._from_info(info, self.data_converter)
            token = resp.next_page_token
            if not token:
                return

    async def count_workflows(self, query: str | None = None) -> WorkflowExecutionCount:
        """How many runs the list filter accepts; ``GROUP BY ExecutionStatus`` adds groups.

        Raises:
            RPCError: INVALID_ARGUMENT for a query that does not parse.
        """
        resp = await self.service.call(
            wire.Op.COUNT_WORKFLOWS, wire.CountWorkflowsRequest(query=query or "")
        )
        return WorkflowExecutionCount(
            count=resp.count,
            groups=[(WorkflowExecutionStatus(g.status), g.count) for g in resp.groups],
        )


class AsyncActivityHandle:
    """Completes an activity from outside its worker (temporalio's ``AsyncActivityHandle``).

    Each call raises ``RPCError`` with TASK_NOT_FOUND once the attempt is over (it timed
    out, or was completed already) and WORKFLOW_NOT_RUNNING once the workflow closed.
    """

    def __init__(self, client: Client, task_token: bytes) -> None:
        self._client, self._token = client, task_token

    async def complete(self, result: Any = None) -> None:
        """Complete the activity with ``result``."""
        conv = self._client.data_converter
        await self._client.service.call(wire.Op.COMPLETE_ACTIVITY_TASK, wire.CompleteActivityTaskRequest(
            task_token=self._token, result=conv.to_payloads([result]), identity=self._client.identity))

    async def fail(self, error: BaseException, *, last_heartbeat_details: Sequence[Any] = ()) -> None:
        """Fail the attempt with ``error`` (retried per the activity's retry policy)."""
        conv = self._client.data_converter
        await self._client.service.call(wire.Op.FAIL_ACTIVITY_TASK, wire.FailActivityTaskRequest(
            task_token=self._token, failure=_exc.error_to_failure(error, conv),
            last_heartbeat_details=conv.to_payloads(list(last_heartbeat_details)) or None,
            identity=self._client.identity))

    async def heartbeat(self, *details: Any) -> bool:
        """Record a heartbeat; returns True if the workflow asked to cancel the activity."""
        conv = self._client.data_converter
        resp = await self._client.service.call(
            wire.Op.RECORD_ACTIVITY_HEARTBEAT, wire.RecordActivityHeartbeatRequest(
                task_token=self._token, details=conv.to_payloads(list(details)),
                identity=self._client.identity))
        return resp.cancel_requested

    async def report_cancellation(self, *details: Any) -> None:
        """Acknowledge a cancel request: the activity ends as cancelled."""
        conv = self._client.data_converter
        await self._client.service.call(
            wire.Op.RESPOND_ACTIVITY_TASK_CANCELED, wire.RespondActivityTaskCanceledRequest(
                task_token=self._token, details=conv.to_payloads(list(details)),
                identity=self._client.identity))


class WorkflowHandle:
    """A workflow run (or the current run of a workflow id) seen from a client."""

    def __init__(
        self,
        client: Client,
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

    async def result(self, *, follow_runs: bool = True) -> Any:
        """Wait for the run to close and return its result.

        Raises:
            WorkflowFailureError: the run failed, timed out, was cancelled or terminated;
                ``cause`` holds the reason (ApplicationError, TimeoutError, ...).
        """
        conv = self._client.data_converter
        run_id = self.result_run_id
        while True:
            resp = await self._client.service.call(wire.Op.GET_RESULT, wire.GetResultRequest(
                execution=self._execution(run_id), wait_s=30.0, follow_runs=follow_runs,
            ))
            S = WorkflowExecutionStatus
            if resp.status == S.RUNNING:
                continue
            if resp.status == S.COMPLETED:
                hints = [self._result_type] if self._result_type is not None else None
                values = conv.from_payloads(resp.result or [], hints)
                return values[0] if values else None
            if resp.status == S.CONTINUED_AS_NEW:
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
    ) -> Any:
        """Run a ``@workflow.query`` handler on the run's current state (open or closed).

        Nothing is recorded. A run no worker has cached is replayed by one first.

        Raises:
            WorkflowQueryFailedError: the handler raised, or the workflow has no such query.
            RPCError: DEADLINE_EXCEEDED if no worker answered within ``timeout``;
                NOT_FOUND if the workflow does not exist.
        """
        name, ret_type = _handler_name_and_result(query, _QUERY_ATTR)
        values = list(args) if arg is _NO_ARG else [arg]
        conv = self._client.data_converter
        try:
            resp = await self._client.service.call(wire.Op.QUERY_WORKFLOW, wire.QueryWorkflowRequest(
                execution=self._execution(self.run_id),
                query=wire.WorkflowQuery(query_type=name, query_args=conv.to_payloads(values)),
                timeout_s=timeout.total_seconds(),
            ))
        except RPCError as exc:
            if exc.code == wire.Code.QUERY_FAILED:
                raise WorkflowQueryFailedError(exc.message) from None
            raise
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
        values = list(args) if arg is _NO_ARG else [arg]
        conv = self._client.data_converter
        resp = await self._client.service.call(wire.Op.UPDATE_WORKFLOW, wire.UpdateWorkflowRequest(
            execution=self._execution(self.run_id),
            request=wire.UpdateRequest(update_id=id or str(uuid.uuid4()), name=name,
                                       input=conv.to_payloads(values), identity=self._client.identity),
            wait_s=timeout.total_seconds(),
        ))
        if resp.outcome.failure is not None:
            raise WorkflowUpdateFailedError(cause=_exc.failure_to_error(resp.outcome.failure, conv))
        hint = result_type or ret_type
        values = conv.from_payloads(resp.outcome.result or [], [hint] if hint is not None else None)
        return values[0] if values else None

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
        base = WorkflowExecution._from_info(resp.info, self._client.data_converter)
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
