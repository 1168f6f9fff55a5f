"""Gossip (SWIM) messages and their authenticated frames (DESIGN §5).

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Union, get_args
import hashlib
import hmac

import cbor2

from shoal.wire.codec import from_plain, loads_plain, tagged, to_plain
from shoal.wire.errors import Code, PROTOCOL_VERSION, WireError


# Gossip frames (DESIGN §5). A frame is one header byte, then (when a cluster key is set)
# a 32-byte HMAC-SHA256 over header + body, then the CBOR body. The header names the
# frame's kind so a shell can tell UDP packets from push-pull stream messages, and whether
# it is authenticated, so a keyed node never accepts an unkeyed frame and vice versa.
GOSSIP_MAC_BYTES = 32
GOSSIP_PACKET_PLAIN = 0x10
GOSSIP_PACKET_MAC = 0x11
GOSSIP_STREAM_PLAIN = 0x20
GOSSIP_STREAM_MAC = 0x21
UDP_PACKET_BYTES_MAX = 65_507  # the largest UDP payload over IPv4
# Frame bytes besides the messages themselves: header, MAC, and a CBOR array header for up
# to 65 535 items. Used to fit piggybacked broadcasts under the configured packet size.
GOSSIP_PACKET_OVERHEAD_BYTES = 1 + GOSSIP_MAC_BYTES + 3
_U64 = 1 << 64


class GossipKind(IntEnum):
    """Tag numbers of gossip messages (200-299). Append, never renumber."""

    PING = 200
    INDIRECT_PING = 201
    ACK = 202
    NACK = 203
    ALIVE = 204
    SUSPECT = 205
    DEAD = 206
    PUSH_PULL_REQUEST = 207
    PUSH_PULL_RESPONSE = 208


class MemberState(IntEnum):
    """A member's state as SWIM sees it (memberlist's numbering)."""

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


def _check_u64(name: str, value: int) -> None:
    if not 0 <= value < _U64:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberMeta:
    """What a member tells the cluster about itself: where clients reach it, and the
    cluster identity a joiner must match (DESIGN §3: NUM_SHARDS is checked on join)."""

    api_addr: str
    cluster_name: str
    num_shards: int
    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """Direct probe. ``target`` names the member meant, so a node now living at a dead
    member's address does not answer for it."""

    KIND: ClassVar[int] = GossipKind.PING
    seq: int
    target: str

    def __post_init__(self) -> None:
        _check_u64("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class IndirectPing:
    """Ask the receiver to probe ``target`` for us and forward its ack (SWIM's ping-req).
    With ``nack`` set the receiver answers :class:`Nack` if the target stays silent, which
    tells the requester that the path to the helper works (Lifeguard)."""

    KIND: ClassVar[int] = GossipKind.INDIRECT_PING
    seq: int
    target: str
    target_addr: str
    nack: bool = True

    def __post_init__(self) -> None:
        _check_u64("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    KIND: ClassVar[int] = GossipKind.ACK
    seq: int

    def __post_init__(self) -> None:
        _check_u64("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Nack:
    KIND: ClassVar[int] = GossipKind.NACK
    seq: int

    def __post_init__(self) -> None:
        _check_u64("seq", self.seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Alive:
    """``node`` is alive at ``incarnation``; also how a node announces itself and its meta."""

    KIND: ClassVar[int] = GossipKind.ALIVE
    node: str
    incarnation: int
    addr: str
    meta: MemberMeta

    def __post_init__(self) -> None:
        _check_u64("incarnation", self.incarnation)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspect:
    """``source`` suspects ``node`` at ``incarnation``."""

    KIND: ClassVar[int] = GossipKind.SUSPECT
    node: str
    incarnation: int
    source: str

    def __post_init__(self) -> None:
        _check_u64("incarnation", self.incarnation)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dead:
    """``source`` declares ``node`` dead at ``incarnation``; ``source == node`` means a
    graceful leave."""

    KIND: ClassVar[int] = GossipKind.DEAD
    node: str
    incarnation: int
    source: str

    def __post_init__(self) -> None:
        _check_u64("incarnation", self.incarnation)


GossipMessage = Union[Ping, IndirectPing, Ack, Nack, Alive, Suspect, Dead]


@dataclass(frozen=True, slots=True, kw_only=True)
class GossipPacket:
    """One UDP datagram: a compound of messages (a probe plus piggybacked broadcasts).
    Encoded as a bare CBOR array of tagged messages to save bytes."""

    messages: list[GossipMessage]


@dataclass(frozen=True, slots=True, kw_only=True)
class PushNodeState:
    """One member's full state in a push-pull exchange."""

    node: str
    addr: str
    incarnation: int
    state: MemberState
    meta: MemberMeta

    def __post_init__(self) -> None:
        _check_u64("incarnation", self.incarnation)


@dataclass(frozen=True, slots=True, kw_only=True)
class PushPullRequest:
    """Full-state sync, sent over the reliable peer link (not UDP): for a join
    (``join=True``) and periodic anti-entropy. Answered by :class:`PushPullResponse`."""

    KIND: ClassVar[int] = GossipKind.PUSH_PULL_REQUEST
    source: str
    join: bool
    members: list[PushNodeState]


@dataclass(frozen=True, slots=True, kw_only=True)
class PushPullResponse:
    KIND: ClassVar[int] = GossipKind.PUSH_PULL_RESPONSE
    source: str
    members: list[PushNodeState]


PushPullMessage = Union[PushPullRequest, PushPullResponse]

for _cls in (*get_args(GossipMessage), *get_args(PushPullMessage)):
    tagged(_cls)


def gossip_message_size(msg: GossipMessage) -> int:
    """Encoded size in bytes of one message inside a :class:`GossipPacket`."""
    return len(cbor2.dumps(to_plain(msg)))


def _mac(key: bytes, header: int, body: bytes) -> bytes:
    return hmac.new(key, bytes((header,)) + body, hashlib.sha256).digest()


def encode_gossip(msg: GossipPacket | PushPullRequest | PushPullResponse,
                  key: bytes | None = None) -> bytes:
    """Frame a UDP packet or a push-pull stream message, authenticated when ``key`` is set."""
    if isinstance(msg, GossipPacket):
        body = cbor2.dumps([to_plain(m) for m in msg.messages])
        header = GOSSIP_PACKET_MAC if key else GOSSIP_PACKET_PLAIN
    else:
        body = cbor2.dumps(to_plain(msg))
        header = GOSSIP_STREAM_MAC if key else GOSSIP_STREAM_PLAIN
    if key:
        return bytes((header,)) + _mac(key, header, body) + body
    return bytes((header,)) + body


def decode_gossip(
    data: bytes, key: bytes | None = None
) -> GossipPacket | PushPullRequest | PushPullResponse:
    """Check and decode a gossip frame.

    Args:
        data: the frame as received.
        key: the cluster key; when set, only frames with a valid MAC are accepted, and
            when unset, authenticated frames are refused (we cannot check them).

    Raises:
        WireError: ``MALFORMED`` for a bad header, MAC or shape (``details["reason"]`` is
            ``"auth"`` for a MAC problem); ``FRAME_TOO_LARGE``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 2:
        raise WireError(Code.MALFORMED, "a gossip frame must be at least 2 bytes")
    data = bytes(data)
    header = data[0]
    plain, mac = (GOSSIP_PACKET_PLAIN, GOSSIP_PACKET_MAC) if header >> 4 == 1 else (
        GOSSIP_STREAM_PLAIN, GOSSIP_STREAM_MAC)
    if header not in (plain, mac):
        raise WireError(Code.MALFORMED, f"unknown gossip frame header 0x{header:02x}")
    if key:
        if header != mac:
            raise WireError(Code.MALFORMED, "frame is not authenticated; this cluster has a key",
                            reason="auth")
        tag, body = data[1:1 + GOSSIP_MAC_BYTES], data[1 + GOSSIP_MAC_BYTES:]
        if not hmac.compare_digest(tag, _mac(key, header, body)):
            raise WireError(Code.MALFORMED, "frame MAC does not match the cluster key",
                            reason="auth")
    elif header == mac:
        raise WireError(Code.MALFORMED, "frame is authenticated but no cluster key is set",
                        reason="auth")
    else:
        body = data[1:]
    if header >> 4 == 1:  # a UDP packet
        msgs = from_plain(list[GossipMessage], loads_plain(body, UDP_PACKET_BYTES_MAX), "$")
        return GossipPacket(messages=msgs)
    return from_plain(PushPullMessage, loads_plain(body), "$")  # type: ignore[arg-type]
