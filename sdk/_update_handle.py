"""An update seen from a client: temporalio's ``WorkflowUpdateHandle``, ``WorkflowUpdateStage``
and the errors an update call raises.

Owns: sending an update and waiting until it reaches a stage (``start_update``), and waiting
for an update's outcome by its id (``WorkflowUpdateHandle.result``, a long poll repeated until
the update completes), turning the outcome into a value or ``WorkflowUpdateFailedError``.
Must not: import ``_handle.py`` (which imports this) or ``shoal.node``. Re-exported by
``shoal.sdk.client``.
"""

from __future__ import annotations

from datetime import timedelta
from enum import IntEnum
from typing import Any, Generic, TypeVar

from shoal import wire
from shoal.sdk import exceptions as _exc
from shoal.sdk._client_parts import ClientParts
from shoal.sdk.connection import RPCError

# One long poll waits this long on the node before answering "still running" (the
# node's limit is 60 s); result() asks again until the update completes.
POLL_WAIT_S = 30.0

LocalReturnType = TypeVar("LocalReturnType")


class WorkflowUpdateStage(IntEnum):
    """How far an update must get before ``start_update`` returns (as temporalio's)."""

    ADMITTED = int(wire.UpdateStage.ADMITTED)
    ACCEPTED = int(wire.UpdateStage.ACCEPTED)
    COMPLETED = int(wire.UpdateStage.COMPLETED)


class WorkflowUpdateFailedError(_exc.TemporalError):
    """The update was rejected by its validator or its handler raised; see ``cause``."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow update failed")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException:
        return self.__cause__  # type: ignore[return-value]


class RPCTimeoutOrCancelledError(_exc.TemporalError):
    """A client call timed out (as temporalio's): the call, not necessarily the work."""


class WorkflowUpdateRPCTimeoutOrCancelledError(RPCTimeoutOrCancelledError):
    """Waiting for an update timed out; the update itself may still complete."""

    def __init__(self) -> None:
        super().__init__("Timeout or cancellation waiting for update")


class WorkflowUpdateHandle(Generic[LocalReturnType]):
    """An update sent to a workflow, by its id: wait for its result with ``result()``.

    Made by ``WorkflowHandle.start_update`` or ``WorkflowHandle.get_update_handle``.
    """

    def __init__(
        self,
        client: ClientParts,
        id: str,
        workflow_id: str,
        *,
        workflow_run_id: str | None = None,
        result_type: type | None = None,
        known_outcome: wire.UpdateOutcome | None = None,
    ) -> None:
        self._client = client
        self._id = id
        self._workflow_id = workflow_id
        self._workflow_run_id = workflow_run_id
        self._result_type = result_type
        self._known_outcome = known_outcome

    @property
    def id(self) -> str:
        """The update's id."""
        return self._id

    @property
    def workflow_id(self) -> str:
        """The id of the workflow the update was sent to."""
        return self._workflow_id

    @property
    def workflow_run_id(self) -> str | None:
        """The run the update was sent to, if known (None: the workflow's current run)."""
        return self._workflow_run_id

    async def result(self, *, rpc_timeout: timedelta | None = None) -> LocalReturnType:
        """Wait for the update to complete and return its result.

        Asks the node again and again (each ask a long poll) until the outcome is known; an
        outcome already known (from ``start_update``) costs no call.

        Args:
            rpc_timeout: how long one ask may wait; when it passes without an outcome,
                ``WorkflowUpdateRPCTimeoutOrCancelledError`` is raised. None: ask until done.

        Raises:
            WorkflowUpdateFailedError: the validator rejected it or the handler raised.
            WorkflowUpdateRPCTimeoutOrCancelledError: ``rpc_timeout`` passed first.
            RPCError: NOT_FOUND for an update id the run does not know (or a rejected
                update asked for by id); WORKFLOW_NOT_RUNNING if the run closed first.
        """
        outcome = await self._poll_until_outcome(rpc_timeout)
        conv = self._client.data_converter
        if outcome.failure is not None:
            raise WorkflowUpdateFailedError(cause=_exc.failure_to_error(outcome.failure, conv))
        hints = [self._result_type] if self._result_type is not None else None
        values = conv.from_payloads(outcome.result or [], hints)
        return values[0] if values else None  # type: ignore[return-value]

    async def _poll_until_outcome(self, rpc_timeout: timedelta | None) -> wire.UpdateOutcome:
        wait_s = POLL_WAIT_S if rpc_timeout is None else rpc_timeout.total_seconds()
        while self._known_outcome is None:
            try:
                resp = await self._client.service.call(
                    wire.Op.POLL_WORKFLOW_UPDATE, wire.PollWorkflowUpdateRequest(
                        execution=wire.WorkflowExecution(workflow_id=self._workflow_id,
                                                         run_id=self._workflow_run_id or ""),
                        update_id=self._id, wait_s=min(max(wait_s, 0.001), POLL_WAIT_S)))
            except RPCError as exc:
                if exc.code == wire.Code.DEADLINE_EXCEEDED:
                    raise WorkflowUpdateRPCTimeoutOrCancelledError() from exc
                raise
            self._known_outcome = resp.outcome
            if resp.outcome is None and rpc_timeout is not None:
                raise WorkflowUpdateRPCTimeoutOrCancelledError()
        return self._known_outcome


async def start_update(
    client: ClientParts, execution: wire.WorkflowExecution, request: wire.UpdateRequest, *,
    wait_for_stage: WorkflowUpdateStage, result_type: type | None,
    rpc_timeout: timedelta | None,
) -> WorkflowUpdateHandle[Any]:
    """Send ``request`` and return its handle once it reached ``wait_for_stage`` (ACCEPTED or
    COMPLETED; a settled update is COMPLETED at once).

    Without ``rpc_timeout`` the send is repeated (same id, so one update) until a worker
    accepts it, as temporalio does; with one, it is tried for that long.

    Raises:
        ValueError: ``wait_for_stage`` is ADMITTED (temporalio refuses it too).
        WorkflowUpdateRPCTimeoutOrCancelledError: ``rpc_timeout`` passed first.
        RPCError: WORKFLOW_NOT_RUNNING; NOT_FOUND if the workflow does not exist.
    """
    if wait_for_stage == WorkflowUpdateStage.ADMITTED:
        raise ValueError("ADMITTED wait stage not supported")
    wait_s = POLL_WAIT_S if rpc_timeout is None else min(rpc_timeout.total_seconds(), 60.0)
    while True:
        try:
            resp = await client.service.call(wire.Op.UPDATE_WORKFLOW, wire.UpdateWorkflowRequest(
                execution=execution, request=request, wait_s=max(wait_s, 0.001),
                wait_for_stage=wire.UpdateStage(int(wait_for_stage)),
            ))
            break
        except RPCError as exc:
            if exc.code != wire.Code.DEADLINE_EXCEEDED:
                raise
            if rpc_timeout is not None:
                raise WorkflowUpdateRPCTimeoutOrCancelledError() from exc
    handle: WorkflowUpdateHandle[Any] = WorkflowUpdateHandle(
        client, request.update_id, execution.workflow_id, workflow_run_id=resp.run_id,
        result_type=result_type, known_outcome=resp.outcome,
    )
    if wait_for_stage == WorkflowUpdateStage.COMPLETED:
        await handle._poll_until_outcome(rpc_timeout)
    return handle
