"""One activity attempt's heartbeats: throttled sending, and cancel requests coming back.

Owns: ``Heartbeater``, which the worker starts beside each attempt. ``activity.heartbeat``
only records the latest details (thread-safe: plain-function activities call it from a
worker thread) and wakes the sender; the sender sends at most one heartbeat per throttle
interval, always with the latest details, as temporalio's worker does. When an answer says
the workflow asked to cancel the activity, or the node no longer knows the attempt, the
attempt's cancel scope is cancelled. Must not: decide how the attempt's end is reported
(the worker does).
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import trio

from shoal import wire
from shoal.sdk.connection import RPCError

log = logging.getLogger(__name__)

DEFAULT_THROTTLE_S = 30.0  # without a heartbeat timeout (temporalio's default)
THROTTLE_FRACTION = 0.8  # of the heartbeat timeout, so a heartbeat lands before it expires
_GONE = frozenset({wire.Code.TASK_NOT_FOUND, wire.Code.NOT_FOUND, wire.Code.WORKFLOW_NOT_RUNNING})


def throttle_interval(heartbeat_timeout_s: float | None) -> float:
    """Seconds between two heartbeats sent for one attempt."""
    if heartbeat_timeout_s is None or heartbeat_timeout_s <= 0:
        return DEFAULT_THROTTLE_S
    return min(heartbeat_timeout_s * THROTTLE_FRACTION, DEFAULT_THROTTLE_S * 2)


class Heartbeater:
    """Sends one attempt's heartbeats; cancels ``scope`` when the attempt must stop.

    Args:
        service: the worker's connection (``call(op, body)``).
        task: the attempt.
        converter: encodes heartbeat details.
        scope: the cancel scope the attempt runs in.
        identity: the worker's identity.
    """

    def __init__(self, service: Any, task: wire.ActivityTask, converter: Any,
                 scope: trio.CancelScope, identity: str) -> None:
        self.service, self.task, self.converter = service, task, converter
        self.scope, self.identity = scope, identity
        self.cancel_requested = False  # the workflow asked to cancel this activity
        self.gone = False  # the node no longer knows the attempt (timed out, closed)
        self.interval = throttle_interval(task.heartbeat_timeout_s)
        self._lock = threading.Lock()
        self._details: list[Any] | None = None
        self._closed = False
        self._wake = trio.Event()
        self._trio_token = trio.lowlevel.current_trio_token()

    # --- called from the activity (any thread) -----------------------------------------

    def heartbeat(self, details: list[Any]) -> None:
        with self._lock:
            if self._closed:
                return
            self._details = details
        try:
            self._trio_token.run_sync_soon(self._set_wake)
        except trio.RunFinishedError:
            pass

    def is_cancelled(self) -> bool:
        return self.cancel_requested

    def _set_wake(self) -> None:
        self._wake.set()

    # --- the sender (a trio task beside the attempt) ---------------------------------

    async def run(self) -> None:
        """Send heartbeats until cancelled (the worker cancels it when the attempt ends)."""
        last_sent = -math.inf
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await trio.sleep_until(last_sent + self.interval)
            with self._lock:
                details = self._details
            last_sent = trio.current_time()
            await self._send(details)

    async def _send(self, details: list[Any] | None) -> None:
        body = wire.RecordActivityHeartbeatRequest(
            task_token=self.task.task_token, identity=self.identity,
            details=None if details is None else self.converter.to_payloads(details),
        )
        try:
            resp = await self.service.call(wire.Op.RECORD_ACTIVITY_HEARTBEAT, body)
        except RPCError as exc:
            if exc.code in _GONE:
                log.info("activity attempt is gone; cancelling it id=%s: %s",
                         self.task.activity_id, exc.message)
                self.gone = True
                self.scope.cancel()
            else:
                log.warning("heartbeat refused id=%s code=%s: %s",
                            self.task.activity_id, exc.code, exc.message)
            return
        if resp.cancel_requested and not self.cancel_requested:
            self.cancel_requested = True
            self.scope.cancel()

    def close(self) -> None:
        """The attempt ended: later heartbeats (say from an abandoned thread) do nothing."""
        with self._lock:
            self._closed = True
