"""The WebSocket API endpoint: connections, the handshake, and the request dispatcher.

Owns: accepting connections (trio-websocket), decoding ``{id, op, body}`` frames, checking the
handshake, running every request as its own task (many in flight per connection), and turning
any error into an ``{id, err}`` answer. Must not: hold workflow logic (``Service`` does).

A hostile or broken client can only get error answers or a closed connection: every decode
error is a ``WireError``, every handler error a ``ShoalError``, and anything else is logged as
our bug and answered ``INTERNAL`` -- the node keeps serving (DESIGN §7).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from shoal import wire
from shoal.node.api.service import Service

if TYPE_CHECKING:
    from shoal.node.cluster.router import Router

log = logging.getLogger(__name__)

IN_FLIGHT_MAX = 1024  # requests one connection may have running at once
# A peer node multiplexes every request it forwards (all its workers' long polls among
# them) over one connection: a client's limit would stall its reader.
IN_FLIGHT_MAX_PEER = 65536


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: str
    cluster_name: str
    num_shards: int


Handler = Callable[[str, Any], Awaitable[Any]]


class Dispatcher:
    """Maps each op to its ``Service`` method; decodes bodies and encodes answers."""

    def __init__(self, service: Service | None, identity: NodeIdentity) -> None:
        """``service`` None serves only the ops added with :meth:`add_handler` (a process
        that hosts replicas but no history service, such as the log bench's)."""
        self.identity = identity
        self._handlers: dict[wire.Op, Handler] = {} if service is None else {
            wire.Op.START_WORKFLOW: service.start_workflow,
            wire.Op.GET_RESULT: service.get_result,
            wire.Op.DESCRIBE_WORKFLOW: service.describe_workflow,
            wire.Op.GET_HISTORY: service.get_history,
            wire.Op.LIST_WORKFLOWS: service.list_workflows,
            wire.Op.COUNT_WORKFLOWS: service.count_workflows,
            wire.Op.POLL_WORKFLOW_TASK: service.poll_workflow_task,
            wire.Op.COMPLETE_WORKFLOW_TASK: service.complete_workflow_task,
            wire.Op.FAIL_WORKFLOW_TASK: service.fail_workflow_task,
            wire.Op.POLL_ACTIVITY_TASK: service.poll_activity_task,
            wire.Op.COMPLETE_ACTIVITY_TASK: service.complete_activity_task,
            wire.Op.FAIL_ACTIVITY_TASK: service.fail_activity_task,
            wire.Op.SIGNAL_WORKFLOW: service.signal_workflow,
            wire.Op.SIGNAL_WITH_START_WORKFLOW: service.signal_with_start_workflow,
            wire.Op.REQUEST_CANCEL_WORKFLOW: service.request_cancel_workflow,
            wire.Op.TERMINATE_WORKFLOW: service.terminate_workflow,
            wire.Op.QUERY_WORKFLOW: service.query_workflow,
            wire.Op.RESPOND_QUERY_TASK: service.respond_query_task,
            wire.Op.UPDATE_WORKFLOW: service.update_workflow,
            wire.Op.RECORD_ACTIVITY_HEARTBEAT: service.record_activity_heartbeat,
            wire.Op.RESPOND_ACTIVITY_TASK_CANCELED: service.respond_activity_task_canceled,
            # peer ops: another node (or this one's router) asks the shard's leader
            wire.Op.START_TASK: service.start_task,
            wire.Op.START_CHILD_RUN: service.start_child_run,
            wire.Op.RECORD_CHILD_CLOSED: service.record_child_closed,
            wire.Op.CHANGE_RUN: service.change_run,
            wire.Op.SCAN_VISIBILITY: service.scan_visibility,
        }
        self.errors: dict[str, int] = {}  # answers by error code, for status output
        # Where each op is served (node/cluster/router.py); None serves everything here.
        self.router: Router | None = None
        # The cluster key: a peer connection must prove it (``wire.peer_credentials``).
        self.peer_key: bytes | None = None
        # The partition drill (node/cluster/netfault.py): True for a peer's handshake identity the
        # node is cut off from. Its connection is closed, as a cut network would end it.
        self.peer_cut_off: Callable[[str], bool] | None = None

    def add_handler(self, op: wire.Op, handler: Handler) -> None:
        """Serve ``op`` with ``handler(namespace, body)`` (a subsystem outside ``Service``,
        such as cluster membership, registers its ops once it runs)."""
        assert op not in self._handlers, f"{op} is served already"
        self._handlers[op] = handler

    def handshake(self, body: Any) -> tuple[str, wire.HandshakeResponse, bool, str]:
        """Check a handshake body; return the session namespace, the answer body,
        whether the caller is a peer node (one that proved the cluster key, if there is
        one: a peer that did not is served as a client, so its peer ops are refused), and
        the identity it gave."""
        hs = wire.decode_body(wire.Op.HANDSHAKE, body)
        if hs.protocol_version != wire.PROTOCOL_VERSION:
            raise wire.ShoalError(
                wire.Code.UNSUPPORTED_VERSION,
                f"client speaks protocol {hs.protocol_version}; this node speaks "
                f"{wire.PROTOCOL_VERSION}: upgrade the older side",
            )
        if hs.namespace != wire.DEFAULT_NAMESPACE:
            raise wire.ShoalError(
                wire.Code.NAMESPACE_NOT_FOUND,
                f"namespace {hs.namespace!r} does not exist; use {wire.DEFAULT_NAMESPACE!r}",
            )
        peer = hs.peer
        if peer and self.peer_key is not None:
            import hmac
            expected = wire.peer_credentials(self.peer_key, hs.identity) or b""
            peer = hs.credentials is not None and hmac.compare_digest(hs.credentials, expected)
            if not peer:
                log.warning("a peer's credentials do not match the cluster key identity=%s "
                            "(its peer ops are refused; give every node the same "
                            "--cluster-key-file)", hs.identity[:80])
        return hs.namespace, wire.HandshakeResponse(
            protocol_version=wire.PROTOCOL_VERSION, node_id=self.identity.node_id,
            cluster_name=self.identity.cluster_name, num_shards=self.identity.num_shards,
        ), peer, hs.identity

    async def dispatch(self, namespace: str, op_name: str, body: Any, *,
                       forwarded: bool = False) -> Any:
        """Run one request here or on the node that serves it; returns the answer body or
        raises ``ShoalError``. ``forwarded``: a peer sent it (serve here or NOT_LEADER)."""
        try:
            op = wire.Op(op_name)
        except ValueError:
            raise wire.ShoalError(wire.Code.UNKNOWN_OP, f"unknown op {op_name!r}") from None
        handler = self._handlers.get(op)
        if handler is None:
            raise wire.ShoalError(wire.Code.UNKNOWN_OP, f"op {op_name!r} is not served here")
        if op in wire.PEER_OPS and not forwarded:
            raise wire.ShoalError(wire.Code.UNAUTHENTICATED,
                                  f"op {op_name!r} is for other nodes of the cluster only (a "
                                  "peer handshake, with credentials from the cluster key)")
        req = wire.decode_body(op, body)
        if self.router is None:
            return await handler(namespace, req)
        return await self.router.call(namespace, op, req, forwarded=forwarded)

    async def serve_local(self, namespace: str, op: wire.Op, req: Any) -> Any:
        """Serve a decoded request on this node (the router's ``local``)."""
        return await self._handlers[op](namespace, req)

    def count(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


class Connection:
    """One client connection: reads frames, runs each request as a task, writes answers."""

    def __init__(self, ws: WebSocketConnection, dispatcher: Dispatcher) -> None:
        self.ws, self.dispatcher = ws, dispatcher
        self.namespace: str | None = None
        self.peer = False  # the other end is a node forwarding requests
        self.identity = ""  # what the handshake called the other end
        self._limit = trio.Semaphore(IN_FLIGHT_MAX)
        self._running: dict[int, trio.CancelScope] = {}  # request id -> its scope

    async def serve(self) -> None:
        async with trio.open_nursery() as nursery:
            try:
                while True:
                    frame = await self.ws.get_message()
                    await self._on_frame(frame, nursery)
            except ConnectionClosed:
                pass
            finally:
                nursery.cancel_scope.cancel()  # the answers have nowhere to go

    async def _on_frame(self, frame: str | bytes, nursery: trio.Nursery) -> None:
        if isinstance(frame, str):
            await self.ws.aclose(code=1003, reason="shoal frames are binary CBOR")
            return
        try:
            req = wire.decode_request(frame)
        except wire.WireError as exc:
            # No id to answer to: answer id 0 so the client can log it, then go on.
            self.dispatcher.count(exc.code)
            await self._send(wire.encode_err(0, exc))
            return
        if self.namespace is None:
            await self._handshake(req)
            return
        if self._cut_off():
            await self._hang_up()
            return
        if req.op == wire.Op.CANCEL_REQUEST:
            await self._cancel(req)
            return
        await self._limit.acquire()
        scope = trio.CancelScope()
        self._running[req.id] = scope
        nursery.start_soon(self._run, req, scope)

    async def _cancel(self, req: wire.Request) -> None:
        try:
            body = wire.decode_body(wire.Op.CANCEL_REQUEST, req.body)
        except wire.WireError as exc:
            await self._send(wire.encode_err(req.id, exc))
            return
        scope = self._running.get(body.request_id)
        if scope is not None:
            scope.cancel()
        await self._send(wire.encode_ok(req.id, wire.Empty()))

    async def _handshake(self, req: wire.Request) -> None:
        if req.op != wire.Op.HANDSHAKE:
            err = wire.ShoalError(
                wire.Code.HANDSHAKE_REQUIRED, "send a handshake before any other request"
            )
            await self._send(wire.encode_err(req.id, err))
            return
        try:
            self.namespace, answer, self.peer, self.identity = self.dispatcher.handshake(req.body)
            if self.peer:
                self._limit = trio.Semaphore(IN_FLIGHT_MAX_PEER)
        except wire.ShoalError as exc:
            await self._send(wire.encode_err(req.id, exc))
            return
        if self._cut_off():
            await self._hang_up()
            return
        await self._send(wire.encode_ok(req.id, answer))

    def _cut_off(self) -> bool:
        """The partition drill cuts this peer off (a client never is)."""
        check = self.dispatcher.peer_cut_off
        return self.peer and check is not None and check(self.identity)

    async def _hang_up(self) -> None:
        # Closing ends the reader, which cancels every request of this connection (this
        # one's task too): shield the close so it completes.
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            await self.ws.aclose()

    async def _run(self, req: wire.Request, scope: trio.CancelScope) -> None:
        try:
            assert self.namespace is not None
            try:
                with scope:
                    body = await self.dispatcher.dispatch(self.namespace, req.op, req.body,
                                                          forwarded=self.peer)
                if scope.cancelled_caught:
                    return  # the caller gave up on it: nobody reads an answer
                frame = wire.encode_ok(req.id, body)
            except wire.ShoalError as exc:
                self.dispatcher.count(exc.code)
                frame = wire.encode_err(req.id, exc)
            except Exception:
                log.exception("request failed op=%s", req.op)
                self.dispatcher.count(wire.Code.INTERNAL)
                frame = wire.encode_err(
                    req.id, wire.ShoalError(wire.Code.INTERNAL, "internal error; see the node log")
                )
            if self._cut_off():  # cut off while it ran: the answer is lost
                await self._hang_up()
                return
            await self._send(frame)
        finally:
            self._running.pop(req.id, None)
            self._limit.release()

    async def _send(self, frame: bytes) -> None:
        try:
            await self.ws.send_message(frame)
        except ConnectionClosed:
            pass


async def serve(
    dispatcher: Dispatcher,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the WebSocket API on ``host:port`` until cancelled; reports the bound port."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await Connection(ws, dispatcher).serve()

    from trio_websocket import serve_websocket

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: serve_websocket(
                handler, host, port, None, max_message_size=wire.FRAME_BYTES_MAX,
                receive_buffer_size=65536, message_queue_size=64, task_status=task_status,
            )
        )
        task_status.started(server.port)
