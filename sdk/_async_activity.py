"""Completing an activity from outside its worker: temporalio's ``AsyncActivityHandle``.

Owns: the four calls an activity that called ``activity.raise_complete_async()`` is finished
with (complete, fail, heartbeat, report cancellation), by its task token. Must not: run
activity code or import ``shoal.node``. Re-exported by ``shoal.sdk.client``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shoal import wire
from shoal.sdk import exceptions as _exc
from shoal.sdk._client_parts import ClientParts


class AsyncActivityHandle:
    """Completes an activity from outside its worker (temporalio's ``AsyncActivityHandle``).

    Each call raises ``RPCError`` with TASK_NOT_FOUND once the attempt is over (it timed
    out, or was completed already) and WORKFLOW_NOT_RUNNING once the workflow closed.
    """

    def __init__(self, client: ClientParts, task_token: bytes) -> None:
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

