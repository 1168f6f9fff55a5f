"""The client: start workflows, wait for results, describe, read history, list.

Owns: temporalio's ``Client`` surface over ``ServiceConnection`` (start, list, count,
handles) and the operator calls a tool needs (cluster status, the partition drill), turning
Python values into payloads with the data converter. The handle lives in ``_handle.py``,
the reported run types in ``_execution.py``, async activity completion in
``_async_activity.py``; every public name is re-exported here, so ``from
shoal.sdk.client import X`` keeps working. Must not: run workflow or activity code (the
worker does) or import ``shoal.node`` or ``shoal.cli``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from shoal import wire
# Some names below are only re-exported (``from shoal.sdk.client import X`` from before the
# handle and the run types moved to ``_handle.py`` / ``_execution.py``): keep them.
from shoal.sdk import converter as _converter
from shoal.sdk import exceptions as _exc
from shoal.sdk._async_activity import AsyncActivityHandle
from shoal.sdk._execution import (
    WorkflowExecution,
    WorkflowExecutionCount,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
)
from shoal.sdk._handle import (
    _NO_ARG,
    WorkflowContinuedAsNewError,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from shoal.sdk._update_handle import (
    RPCTimeoutOrCancelledError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from shoal.sdk.common import RetryPolicy, WorkflowIDReusePolicy
from shoal.sdk.connection import RETRY_FOR_S, ConnectionLost, RPCError, ServiceConnection
from shoal.sdk.converter import decode_search_attributes, encode_search_attributes
from shoal.sdk.history import HistoryEvent, WorkflowHistory
from shoal.sdk.workflow import _resolve_workflow_ref



def _seconds(td: timedelta | None) -> float | None:
    return None if td is None else td.total_seconds()


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
        run_id = await self._send_start(req, start_signal, start_signal_args)
        return WorkflowHandle(
            self, id, run_id=None, result_run_id=run_id,
            first_execution_run_id=run_id, result_type=result_type or ret_type,
        )

    async def _send_start(
        self, req: wire.StartWorkflowRequest, signal: str | None, signal_args: Sequence[Any]
    ) -> str:
        """Start (or signal-with-start) and return the run id that answered."""
        try:
            if signal is not None:
                resp = await self.service.call(
                    wire.Op.SIGNAL_WITH_START_WORKFLOW, wire.SignalWithStartWorkflowRequest(
                        start=req, signal_name=signal,
                        signal_input=self.data_converter.to_payloads(list(signal_args)),
                    ))
            else:
                resp = await self.service.call(wire.Op.START_WORKFLOW, req)
        except RPCError as exc:
            if exc.code == wire.Code.WORKFLOW_ALREADY_STARTED:
                raise _exc.WorkflowAlreadyStartedError(
                    req.workflow_id, req.workflow_type, run_id=str(exc.details.get("run_id", ""))
                ) from None
            raise
        return resp.run_id

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
                yield WorkflowExecution._from_info(info, self.namespace, self.data_converter)
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

    async def cluster_status(self, *, retry_for_s: float = RETRY_FOR_S) -> wire.ClusterStatusResponse:
        """The cluster as the connected node sees it (``shoal cluster status``).

        Args:
            retry_for_s: how long to keep retrying while the node cannot be reached; 0 asks
                once (for a tool polling many nodes, where one silent node must not stall).

        Returns:
            Every member with its state and addresses, and what this node owns (shards it
            leads and replicates, task queues) and its gossip health.

        Raises:
            ConnectionLost: the node could not be reached within ``retry_for_s``.
        """
        return await self.service.call(
            wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest(), retry_for_s=retry_for_s)

    async def set_partition_drill(self, blocked_addrs: Sequence[str]) -> None:
        """FAULT-INJECTION DRILL, not for normal operation: make the connected node act as
        if the network to the peers at ``blocked_addrs`` were cut (``wire.NetworkFaultsRequest``
        says what is dropped). Each call replaces the node's last drill.

        Args:
            blocked_addrs: the peers' gossip addresses (``HOST:PORT``); empty ends the drill.

        Raises:
            RPCError: the node refused the request (the message says why).
        """
        await self.service.call(
            wire.Op.NETWORK_FAULTS, wire.NetworkFaultsRequest(blocked_addrs=list(blocked_addrs)))

    async def close(self) -> None:
        """Close the connection to the node (workers sharing it lose it too)."""
        await self.service.close()
