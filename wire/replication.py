"""Replication peer messages (DESIGN §6): prepare/promise, append, catch-up, snapshots.

Part of ``shoal.wire``: imports nothing of shoal outside ``wire/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Union

import cbor2

from shoal.wire.codec import from_plain, loads_plain, tagged, to_plain
from shoal.wire.errors import FRAME_BYTES_MAX


class ReplKind(IntEnum):
    """Tags of the replication peer messages inside :data:`ReplMessage` (300-399)."""

    PREPARE = 301
    PROMISE = 302
    APPEND = 303
    APPEND_ACK = 304
    CATCH_UP = 305
    CATCH_UP_REPLY = 306
    INSTALL_SNAPSHOT = 307
    SNAPSHOT_CHUNK = 308
    REMOVED = 309


@dataclass(frozen=True, slots=True, order=True)
class Epoch:
    """A shard's ballot (DESIGN §4): ordered by counter, then node id. Only ``node`` ever
    leads epoch ``(counter, node)``, so two leaders can never share an epoch."""

    counter: int = 0
    node: str = ""


EPOCH_ZERO = Epoch(0, "")


class EntryKind(IntEnum):
    """What a shard log entry carries."""

    NORMAL = 1  # an opaque payload from the state machine (a batch of LMDB mutations)
    NOOP = 2  # appended by a new leader at its epoch before it serves (DESIGN §4)
    CONFIG = 3  # a new membership, effective as soon as it is appended


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardConfig:
    """A shard's membership: voters form quorums, learners only receive the log."""

    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplEntry:
    """One shard log entry. ``(epoch, index)`` names it uniquely across the group."""

    epoch: Epoch
    index: int
    kind: EntryKind = EntryKind.NORMAL
    payload: Any = None  # opaque to replication; plain CBOR values (bytes in a node)
    config: ShardConfig | None = None  # set iff kind == CONFIG


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare:
    """Candidate -> config members: promise to ignore every epoch below ``epoch``.
    ``pre``: only ask whether you would (the pre-vote); answering changes nothing, so a
    member that can never win (e.g. listed only in a config the others do not have) does
    not raise everyone's epoch and abort the campaigns that could."""

    KIND: ClassVar[ReplKind] = ReplKind.PREPARE
    shard: int
    epoch: Epoch
    pre: bool = False
    # The candidate's last entry: a member whose config does not list the candidate
    # promises only a log at least this advanced as its own (Raft's vote restriction).
    last_epoch: Epoch = EPOCH_ZERO
    last_index: int = 0


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class Promise:
    """Answer to :class:`Prepare`. ``ok`` carries the member's last entry and commit index;
    a refusal carries the higher epoch already ``promised``."""

    KIND: ClassVar[ReplKind] = ReplKind.PROMISE
    shard: int
    epoch: Epoch  # the epoch being answered
    ok: bool
    promised: Epoch
    last_epoch: Epoch = EPOCH_ZERO
    last_index: int = 0
    commit: int = 0
    pre: bool = False  # the answer to a pre-vote: ``ok`` means "would promise"


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class Append:
    """Leader -> member: entries after ``(prev_epoch, prev_index)``; empty = heartbeat."""

    KIND: ClassVar[ReplKind] = ReplKind.APPEND
    shard: int
    epoch: Epoch
    prev_epoch: Epoch
    prev_index: int
    entries: list[ReplEntry] = field(default_factory=list)
    commit: int = 0
    compact: int = 0  # every voter has applied up to here: the log below may go
    read_seq: int = 0  # quorum-read round this message confirms (echoed in the ack)


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class AppendAck:
    """Member -> leader. ``epoch`` is the member's promise: above the leader's, it is a
    rejection that makes the leader step down. ``ok=False`` at the same epoch is a log
    mismatch at ``reject_index``; ``hint_index`` says where to probe next."""

    KIND: ClassVar[ReplKind] = ReplKind.APPEND_ACK
    shard: int
    epoch: Epoch
    ok: bool
    match: int = 0  # durable prefix known to equal the leader's log
    reject_index: int = 0
    hint_index: int = 0
    applied: int = 0
    read_seq: int = 0


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class CatchUp:
    """Candidate -> most advanced promiser: send your entries from ``from_index``."""

    KIND: ClassVar[ReplKind] = ReplKind.CATCH_UP
    shard: int
    epoch: Epoch
    from_index: int


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class CatchUpReply:
    """Answer to :class:`CatchUp`: a page of entries and where the sender's log ends.
    ``snapshot`` (with ``ok`` false): the sender compacted past ``from_index``, so it sends
    an :class:`InstallSnapshot` of its applied state instead; ask again once it is in."""

    KIND: ClassVar[ReplKind] = ReplKind.CATCH_UP_REPLY
    shard: int
    epoch: Epoch
    ok: bool
    promised: Epoch
    entries: list[ReplEntry] = field(default_factory=list)
    last_index: int = 0
    snapshot: bool = False


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot:
    """The shard's state as of ``index``: leader -> member too far behind (``epoch`` is
    the leader's), or the most advanced promiser -> a candidate whose catch-up point it
    compacted past (``epoch`` is the candidate's)."""

    KIND: ClassVar[ReplKind] = ReplKind.INSTALL_SNAPSHOT
    shard: int
    epoch: Epoch
    index: int
    snap_epoch: Epoch
    config: ShardConfig
    data: Any = None  # opaque to replication: the shard's tables


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotChunk:
    """Leader -> member, ahead of :class:`InstallSnapshot`: one bounded piece of the shard's
    state as of ``index``. The node's driver streams these (the core never sees them) and
    hands the assembled rows to the core with the ``InstallSnapshot`` that names ``chunks``.
    ``rows`` is a log-entry payload of puts (``store.tables.encode_mutations``)."""

    KIND: ClassVar[ReplKind] = ReplKind.SNAPSHOT_CHUNK
    shard: int
    epoch: Epoch
    index: int
    seq: int  # 0, 1, ... in order
    rows: bytes


@tagged
@dataclass(frozen=True, slots=True, kw_only=True)
class Removed:
    """Member -> a node outside the shard's configuration: the committed config at
    ``config_index`` does not list the receiver. Unless the receiver's own log holds a
    later config that lists it (it was added back), its replica stops taking part and is
    dropped with its data: a removed member never gets the entry that removes it (the
    leader stops sending to it), so without this it would keep a stale copy and campaign
    in vain. ``epoch`` is the sender's promise (informative)."""

    KIND: ClassVar[ReplKind] = ReplKind.REMOVED
    shard: int
    epoch: Epoch
    config_index: int


ReplMessage = Union[Prepare, Promise, Append, AppendAck, CatchUp, CatchUpReply, InstallSnapshot,
                    SnapshotChunk, Removed]


def encode_repl(msg: ReplMessage) -> bytes:
    """CBOR frame of one replication message (tagged, so :func:`decode_repl` can type it)."""
    return cbor2.dumps(to_plain(msg))  # a @tagged class encodes as {k, v} by itself


def decode_repl(data: bytes, limit: int = FRAME_BYTES_MAX) -> ReplMessage:
    """Decode and check one replication message; raises ``WireError`` on anything else."""
    return from_plain(ReplMessage, loads_plain(data, limit))
