"""The client side of the peer link: requests from this node to another node's API.

Owns: one cached WebSocket per peer address (``HOST:PORT``, the peer's advertised
address), its handshake, and one request/answer exchange at a time on it. A connection
that fails or times out is dropped and re-opened on the next request. Must not: know what
the requests mean (the membership shell sends gossip stream frames through it) or retry.

The peer link is the node's ordinary WebSocket API (DESIGN §1: one address per node);
a peer is just a client that handshakes and sends peer ops such as ``GOSSIP_STREAM``.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection
from trio_websocket import connect_websocket_url

from shoal import wire

log = logging.getLogger(__name__)


class PeerUnavailable(Exception):
    """The peer could not be reached, closed the connection, or sent garbage."""


@dataclass(eq=False, slots=True)
class _Peer:
    lock: trio.Lock = field(default_factory=trio.Lock)  # one exchange at a time
    ws: WebSocketConnection | None = None


class PeerLinks:
    """Connections from this node to its peers, opened on demand and cached.

    Args:
        nursery: where each connection's reader task runs (the membership shell's).
        identity: how we introduce ourselves in the handshake (the node id).
        cluster_key: proves we belong to the cluster (``wire.peer_credentials``).
    """

    def __init__(self, nursery: trio.Nursery, identity: str,
                 cluster_key: bytes | None = None) -> None:
        self._nursery = nursery
        self._identity = f"peer:{identity}"
        self._credentials = wire.peer_credentials(cluster_key, self._identity)
        self._peers: dict[str, _Peer] = {}
        self._ids = itertools.count(1)

    async def request(self, addr: str, op: wire.Op, body: Any) -> Any:
        """Send one request to the peer at ``addr`` and return its decoded answer body.

        The caller bounds the time (``trio.fail_after``); a cancelled exchange closes the
        connection, so a late answer can never be taken for the next request's.

        Raises:
            PeerUnavailable: no connection, a closed one, or an undecodable answer.
            wire.ShoalError: the peer answered with an error (its code and message).
        """
        peer = self._peers.setdefault(addr, _Peer())
        async with peer.lock:
            ok = False
            try:
                if peer.ws is None or peer.ws.closed is not None:
                    peer.ws = await self._connect(addr)
                answer = await self._exchange(peer.ws, op, body)
                ok = True
            except wire.ShoalError:
                ok = True  # an error answer: the connection itself is fine
                raise
            except (OSError, ConnectionClosed, HandshakeError, trio.BrokenResourceError) as exc:
                raise PeerUnavailable(f"{addr}: {exc or type(exc).__name__}") from None
            finally:
                if not ok:
                    await self._drop(peer)
        return wire.from_plain(wire.OP_TYPES[op][1], answer)

    async def _connect(self, addr: str) -> WebSocketConnection:
        ws = await connect_websocket_url(
            self._nursery, f"ws://{addr}", max_message_size=wire.FRAME_BYTES_MAX,
            message_queue_size=4, receive_buffer_size=65536)
        await self._exchange(ws, wire.Op.HANDSHAKE, wire.HandshakeRequest(
            protocol_version=wire.PROTOCOL_VERSION, identity=self._identity, peer=True,
            credentials=self._credentials))
        return ws

    async def _exchange(self, ws: WebSocketConnection, op: wire.Op, body: Any) -> Any:
        req_id = next(self._ids)
        await ws.send_message(wire.encode_request(req_id, op, body))
        while True:
            frame = await ws.get_message()
            try:
                answer = wire.decode_response(frame)
            except wire.WireError as exc:
                raise PeerUnavailable(f"undecodable answer: {exc.message}") from None
            if answer.id != req_id:
                continue  # not ours (an error about a frame it could not read, id 0)
            if answer.err is not None:
                raise wire.ShoalError(_code(answer.err.code), answer.err.message)
            return answer.ok or {}

    async def _drop(self, peer: _Peer) -> None:
        ws, peer.ws = peer.ws, None
        if ws is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(0.5):
                await ws.aclose()


def _code(name: str) -> wire.Code:
    try:
        return wire.Code(name)
    except ValueError:  # a newer peer's code we do not know
        return wire.Code.INTERNAL
