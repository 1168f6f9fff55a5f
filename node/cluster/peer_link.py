"""The node's one peer client: requests from this node to another node's API.

Owns: one cached WebSocket per (peer address, namespace), its handshake as a ``peer``, many
requests in flight on it at once (answers matched by request id), telling the peer when a
caller abandons a request (``CANCEL_REQUEST``, so a parked long poll is not handed a task
nobody takes), and the partition drill's cuts on the calling side. A connection that fails
is dropped and re-opened by the next call. Must not: know what the requests mean (the
router forwards ops, the membership shell sends gossip stream frames, the replication
transport sends batches) or retry (each caller decides).

The peer link is the node's ordinary WebSocket API (DESIGN §1: one address per node); a
peer is just a client that handshakes with ``peer`` and may send peer ops. Each user keeps
its own ``PeerLink`` (its own connections), so a burst of replication appends never queues
in front of a gossip probe.

Readers run as trio system tasks, so a link needs no nursery: a caller's cancellation
cannot tear a connection that other calls share. They catch everything: an exception
escaping a system task would end the whole ``trio.run``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from shoal import wire
from shoal.node.cluster.netfault import NetworkFaults

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


class PeerUnavailable(Exception):
    """The peer could not be reached, closed the connection, sent garbage, or the
    partition drill cuts it off."""


@dataclass(eq=False, slots=True)
class _Call:
    done: trio.Event = field(default_factory=trio.Event)
    answer: wire.Response | None = None


class _Conn:
    """One open WebSocket to a peer and its waiting calls; its reader is a system task."""

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.ws: Any = None
        self.calls: dict[int, _Call] = {}
        self.opened = trio.Event()
        self.closed = trio.Event()
        self.error = ""
        self.cancel_scope = trio.CancelScope()

    def fail_all(self) -> None:
        for call in self.calls.values():
            call.done.set()
        self.calls.clear()


class PeerLink:
    """Connections from this node to its peers, opened on demand and cached.

    Args:
        me: this node's id (the handshake identity is ``peer:<me>``).
        cluster_key: proves we belong to the cluster (``wire.peer_credentials``).
        faults: the node's partition drill; calls to a peer it cuts off fail with
            ``PeerUnavailable`` (None: nothing is ever cut here; the caller may check).
    """

    def __init__(self, me: str, cluster_key: bytes | None = None,
                 faults: NetworkFaults | None = None) -> None:
        self.me = me
        self._identity = f"peer:{me}"
        self._credentials = wire.peer_credentials(cluster_key, self._identity)
        self._conns: dict[tuple[str, str], _Conn] = {}
        self._ids = itertools.count(1)
        self._lock = trio.Lock()  # one connect per key at a time
        self.faults = faults
        self._in_flight: dict[str, set[trio.CancelScope]] = {}  # by peer address
        if faults is not None:
            faults.on_change.append(self._cut)

    async def call(self, addr: str, op: wire.Op, body: Any,
                   namespace: str = wire.DEFAULT_NAMESPACE) -> Any:
        """Send one request to the peer at ``addr`` (``HOST:PORT``); return its answer body.

        The caller bounds the time (``trio.fail_after``); an abandoned call tells the peer.

        Raises:
            PeerUnavailable: no connection, a closed one, an undecodable answer, or a peer
                the partition drill cuts off (before or during the call).
            wire.ShoalError: the peer answered with an error (its code, message, details).
        """
        faults = self.faults
        if faults is not None and faults.blocks_addr(addr):
            faults.stats.fault_calls_failed_out += 1
            raise PeerUnavailable(f"{addr} is cut off by this node's partition drill")
        scope = trio.CancelScope()
        in_flight = self._in_flight.setdefault(addr, set())
        in_flight.add(scope)
        try:
            with scope:
                conn = await self._connection(addr, namespace)
                answer = await self._exchange(conn, op, body)
                return wire.from_plain(wire.OP_TYPES[op][1], answer)
        finally:
            in_flight.discard(scope)
        # Only ``_cut`` cancels this scope: the answer is lost in the partition.
        assert faults is not None
        faults.stats.fault_calls_lost_out += 1
        raise PeerUnavailable(f"{addr} was cut off by this node's partition drill mid-call")

    async def aclose(self) -> None:
        """Close every connection (calls waiting on them fail with ``PeerUnavailable``)."""
        conns, self._conns = self._conns, {}
        for conn in conns.values():
            conn.cancel_scope.cancel()
        for conn in conns.values():
            await conn.closed.wait()

    def _cut(self) -> None:
        """The drill changed: calls in flight to a peer it now blocks end at once, as on a
        cut connection, rather than when the peer answers (a parked long poll: 30 s)."""
        assert self.faults is not None
        for addr, scopes in self._in_flight.items():
            if scopes and self.faults.blocks_addr(addr):
                for scope in scopes:
                    scope.cancel()

    async def _connection(self, addr: str, namespace: str) -> _Conn:
        key = (addr, namespace)
        async with self._lock:
            conn = self._conns.get(key)
            if conn is not None and not conn.closed.is_set():
                return conn
            conn = self._conns[key] = _Conn(addr)
            trio.lowlevel.spawn_system_task(self._run, conn, namespace)
        await conn.opened.wait()
        if conn.ws is None:
            raise PeerUnavailable(f"{addr}: {conn.error or 'connection failed'}")
        return conn

    async def _run(self, conn: _Conn, namespace: str) -> None:
        try:
            with conn.cancel_scope:
                async with open_websocket_url(
                    f"ws://{conn.addr}", max_message_size=wire.FRAME_BYTES_MAX,
                    message_queue_size=64, receive_buffer_size=65536,
                    connect_timeout=CONNECT_TIMEOUT_S, disconnect_timeout=2,
                ) as ws:
                    await self._handshake(conn, ws, namespace)
                    await self._read(conn)
        except BaseException as exc:  # noqa: BLE001 - a system task must never raise
            conn.error = conn.error or _reason(exc)
            if not isinstance(exc, (OSError, ConnectionClosed, HandshakeError,
                                    trio.TooSlowError, trio.Cancelled, PeerUnavailable)):
                log.warning("peer connection to %s failed: %r", conn.addr, exc)
        finally:
            conn.ws = None
            conn.opened.set()
            conn.closed.set()
            conn.fail_all()

    async def _handshake(self, conn: _Conn, ws: Any, namespace: str) -> None:
        req_id = next(self._ids)
        await ws.send_message(wire.encode_request(req_id, wire.Op.HANDSHAKE, wire.HandshakeRequest(
            protocol_version=wire.PROTOCOL_VERSION, identity=self._identity, peer=True,
            namespace=namespace, credentials=self._credentials)))
        with trio.fail_after(CONNECT_TIMEOUT_S):
            answer = wire.decode_response(await ws.get_message())
        if answer.id != req_id or answer.err is not None:
            conn.error = answer.err.message if answer.err is not None else "bad handshake"
            raise PeerUnavailable(conn.error)
        conn.ws = ws
        conn.opened.set()

    async def _read(self, conn: _Conn) -> None:
        while True:
            try:
                frame = await conn.ws.get_message()
            except ConnectionClosed:
                return
            try:
                answer = wire.decode_response(frame)
            except wire.WireError as exc:
                conn.error = f"undecodable answer: {exc.message}"
                return  # a peer that sends garbage gets a fresh connection next time
            call = conn.calls.pop(answer.id, None)
            if call is not None:
                call.answer = answer
                call.done.set()

    async def _exchange(self, conn: _Conn, op: wire.Op, body: Any) -> Any:
        req_id = next(self._ids)
        call = _Call()
        conn.calls[req_id] = call
        try:
            await conn.ws.send_message(wire.encode_request(req_id, op, body))
            await call.done.wait()
        except (ConnectionClosed, AttributeError, trio.BrokenResourceError):
            raise PeerUnavailable(f"connection to {conn.addr} closed") from None
        except trio.Cancelled:
            if call.answer is None and not conn.closed.is_set():
                await self._cancel_remote(conn, req_id)
            raise
        finally:
            conn.calls.pop(req_id, None)
        if call.answer is None:
            raise PeerUnavailable(f"{conn.addr}: {conn.error or 'connection closed'}")
        if call.answer.err is not None:
            err = call.answer.err
            raise wire.ShoalError(_code(err.code), err.message, **err.details)
        return call.answer.ok or {}

    async def _cancel_remote(self, conn: _Conn, req_id: int) -> None:
        """Tell the peer we left, so a long poll we abandon is not handed a task."""
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            try:
                await conn.ws.send_message(wire.encode_request(
                    next(self._ids), wire.Op.CANCEL_REQUEST,
                    wire.CancelRequestRequest(request_id=req_id)))
            except (ConnectionClosed, AttributeError, trio.BrokenResourceError):
                pass


def _code(name: str) -> wire.Code:
    try:
        return wire.Code(name)
    except ValueError:  # a newer peer's code we do not know
        return wire.Code.INTERNAL


def _reason(exc: BaseException | None) -> str:
    """The innermost error of a failed connection, readable (trio groups and wraps them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    while exc is not None and not str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    if exc is None:
        return "no answer"
    return str(exc) or type(exc).__name__
