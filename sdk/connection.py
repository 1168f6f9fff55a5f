"""The SDK's connection to a node: one WebSocket, many requests in flight, reconnects.

Owns: the handshake, request ids, matching answers to waiting callers, reconnecting after the
node goes away, and retrying calls that are safe to retry (all of ours are: reads, polls, and
writes that carry a request id or a task token the server fences). Must not: know what an op
means beyond its request/response types (``wire.OP_TYPES``).

``Client.connect`` returns a plain object (no ``async with``), as temporalio's does, so the
reader loop runs as a trio system task; it catches everything, because an exception escaping
a system task would crash the whole ``trio.run``.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from shoal import wire

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
RETRY_FOR_S = 60.0  # how long a call keeps retrying while the node is unreachable
_RETRYABLE = frozenset({wire.Code.UNAVAILABLE, wire.Code.SHUTTING_DOWN, wire.Code.NOT_LEADER})


class RPCError(Exception):
    """A node answered a call with an error (as ``temporalio.service.RPCError``).

    Attributes:
        code: the ``wire.Code`` the node named.
        message: what a person can act on.
        details: extra fields the node attached.
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.details = code, message, details or {}


class ConnectionLost(Exception):
    """The WebSocket closed (or never opened) while a call was in flight."""


@dataclass(eq=False, slots=True)
class _Call:
    done: trio.Event = field(default_factory=trio.Event)
    answer: wire.Response | None = None


class _Link:
    """One open WebSocket and its reader, living in a system task."""

    def __init__(self) -> None:
        self.ws: Any = None
        self.calls: dict[int, _Call] = {}
        self.closed = trio.Event()
        self.error: BaseException | None = None
        self.cancel_scope = trio.CancelScope()

    def fail_all(self) -> None:
        for call in self.calls.values():
            call.done.set()
        self.calls.clear()


class ServiceConnection:
    """A reconnecting connection to a cluster, shared by a client and its workers.

    It talks to one node at a time. When that node cannot be reached, the next connect
    tries the next address (round robin), so a call in flight when a node dies is retried
    on another one (DESIGN §7: calls are idempotent by request id).
    """

    def __init__(self, address: str | Sequence[str], namespace: str,
                 identity: str | None = None, *, peer: bool = False,
                 credentials: bytes | None = None) -> None:
        addresses = [address] if isinstance(address, str) else list(address)
        if not addresses:
            raise ValueError("give at least one node address")
        self.addresses = [a if "://" in a else f"ws://{a}" for a in addresses]
        self._current = 0
        self.namespace = namespace
        self.identity = identity or f"{os.getpid()}@{socket.gethostname()}"
        self.peer = peer  # a node forwarding to another (see wire.HandshakeRequest.peer)
        self.credentials = credentials
        self._ids = itertools.count(1)
        self._link: _Link | None = None
        self._connect_lock = trio.Lock()
        self.server_info: wire.HandshakeResponse | None = None

    @property
    def address(self) -> str:
        """The node this connection talks to (or will try next)."""
        return self.addresses[self._current]

    async def connect(self) -> None:
        """Open the WebSocket and handshake; raises ``RPCError``/``ConnectionLost``."""
        async with self._connect_lock:
            if self._link is not None and not self._link.closed.is_set():
                return
            link = _Link()
            opened = trio.Event()
            trio.lowlevel.spawn_system_task(self._run_link, link, opened)
            await opened.wait()
            if link.ws is None:
                failed = self.address
                self._current = (self._current + 1) % len(self.addresses)  # next try: next node
                raise ConnectionLost(f"cannot connect to {failed}: {_reason(link.error)}")
            self._link = link
            answer = await self._call_on(link, wire.Op.HANDSHAKE, wire.HandshakeRequest(
                protocol_version=wire.PROTOCOL_VERSION, namespace=self.namespace,
                identity=self.identity, peer=self.peer, credentials=self.credentials,
            ))
            self.server_info = wire.from_plain(wire.HandshakeResponse, answer)

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.cancel_scope.cancel()
            await link.closed.wait()

    async def _run_link(self, link: _Link, opened: trio.Event) -> None:
        try:
            with link.cancel_scope:
                async with open_websocket_url(
                    self.address, max_message_size=wire.FRAME_BYTES_MAX,
                    message_queue_size=64, receive_buffer_size=65536,
                    connect_timeout=CONNECT_TIMEOUT_S, disconnect_timeout=2,
                ) as ws:
                    link.ws = ws
                    opened.set()
                    await self._read(link)
        except BaseException as exc:  # noqa: BLE001 - a system task must never raise
            link.error = exc
            if not isinstance(exc, (OSError, ConnectionClosed, HandshakeError, trio.TooSlowError,
                                    trio.Cancelled)):
                log.warning("connection to %s failed: %r", self.address, exc)
        finally:
            link.ws = None if not opened.is_set() else link.ws
            opened.set()
            link.closed.set()
            link.fail_all()

    async def _read(self, link: _Link) -> None:
        while True:
            try:
                frame = await link.ws.get_message()
            except ConnectionClosed:
                return
            try:
                answer = wire.decode_response(frame)
            except wire.WireError:
                log.warning("dropped an undecodable answer from %s", self.address)
                continue
            call = link.calls.pop(answer.id, None)
            if call is not None:
                call.answer = answer
                call.done.set()

    async def _call_on(self, link: _Link, op: wire.Op, body: Any) -> Any:
        req_id = next(self._ids)
        call = _Call()
        link.calls[req_id] = call
        try:
            await link.ws.send_message(wire.encode_request(req_id, op, body))
        except (ConnectionClosed, AttributeError, trio.BrokenResourceError):
            link.calls.pop(req_id, None)
            raise ConnectionLost(f"connection to {self.address} closed") from None
        try:
            await call.done.wait()
        except trio.Cancelled:
            # Tell the node, so a long poll we abandon cannot be handed a task nobody takes.
            if call.answer is None and not link.closed.is_set():
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    try:
                        await link.ws.send_message(wire.encode_request(
                            next(self._ids), wire.Op.CANCEL_REQUEST,
                            wire.CancelRequestRequest(request_id=req_id)))
                    except (ConnectionClosed, trio.BrokenResourceError):
                        pass
            raise
        finally:
            link.calls.pop(req_id, None)
        if call.answer is None:
            raise ConnectionLost(f"connection to {self.address} closed")
        if call.answer.err is not None:
            e = call.answer.err
            raise RPCError(e.code, e.message, e.details)
        return call.answer.ok or {}

    async def call(self, op: wire.Op, body: Any, *, retry_for_s: float = RETRY_FOR_S) -> Any:
        """Send one request and return its decoded answer body.

        Retries (reconnecting) while the node is unreachable or answers a retryable code,
        for up to ``retry_for_s`` from the first failure (a long poll's wait before it fails
        is not time spent retrying). Raises ``RPCError`` for the node's error answers.
        """
        resp_type = wire.OP_TYPES[op][1]
        delay = 0.05
        deadline: float | None = None
        while True:
            try:
                if self._link is None or self._link.closed.is_set():
                    await self.connect()
                assert self._link is not None
                ok = await self._call_on(self._link, op, body)
                return wire.from_plain(resp_type, ok)
            except (ConnectionLost, OSError) as exc:
                err: Exception = exc
            except RPCError as exc:
                if exc.code not in _RETRYABLE:
                    raise
                err = exc
            now = trio.current_time()
            if deadline is None:
                deadline = now + retry_for_s
            if now + delay > deadline:
                raise err
            await trio.sleep(delay)
            delay = min(delay * 2, 1.0)


def _reason(exc: BaseException | None) -> str:
    """The innermost error of a failed connect, readable (trio groups and wraps them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    while exc is not None and not str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    if exc is None:
        return "no answer"
    return str(exc) or type(exc).__name__
