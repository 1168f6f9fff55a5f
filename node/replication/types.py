"""Values the replication core hands to its driver (the etcd ``Ready`` of shoal).

Owns: :class:`Output` (what the driver must do after each input, and in which order),
the role/event values, the persisted state the core is rebuilt from after a restart, and
:class:`ReplicaConfig`. Must not: hold behaviour beyond small helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from shoal import wire

NodeId = str


class Role(Enum):
    """A replica's role in its shard group."""

    FOLLOWER = "follower"
    CANDIDATE = "candidate"  # preparing an epoch and catching up from the most advanced
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Where a snapshot sits in the log: it replaces every entry up to ``index``."""

    index: int
    epoch: wire.Epoch
    config: wire.ShardConfig


@dataclass(frozen=True, slots=True)
class SnapshotInstall:
    """Replace the shard's state with ``data`` (as of ``meta.index``) and drop its log."""

    meta: SnapshotMeta
    data: Any


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """The replica's role, epoch, known leader or serving flag changed.

    ``serving`` is True only for a leader whose own-epoch no-op has committed: before that
    it must not answer reads or accept proposals (DESIGN §4). Leaving the leader role
    means every proposal not yet applied has an unknown outcome and caches must go.
    """

    role: Role
    epoch: wire.Epoch
    leader: NodeId | None
    serving: bool


@dataclass(frozen=True, slots=True)
class ReadReady:
    """A quorum-confirmed read (:meth:`Replica.read`) may now be served from local state:
    everything up to ``index`` has been handed out in ``Output.apply``."""

    ctx: Any
    index: int


@dataclass(slots=True)
class Output:
    """What the driver must do after one call into the core, in this order:

    1. Make durable, in one atomic write if it can: ``hard_state``, then ``install``
       (replace the shard's state and drop the whole log), then ``persist`` (for each
       entry: delete stored entries at index >= entry.index, then store it), then
       ``compact`` (delete stored entries <= ``compact.index``; keep ``compact`` as the
       log's base, handed back as ``PersistedState.snapshot`` on restart; compaction may
       be lazy but never ahead of the durable applied state). When the write is durable call
       ``on_persisted(last.epoch, last.index)`` for the last entry of ``persist``.
    2. Only then send ``send`` (so no promise or ack outruns the disk).
    3. Apply ``apply`` in order to the shard's state; when that is durable call
       ``on_applied(index)``. Serve ``reads`` after ``apply``; fail ``read_failures``.
    4. For each node in ``snapshot_to``, take a snapshot of the applied state and call
       ``send_snapshot(node, applied_index, data)``.
    5. React to ``events`` (fail pending proposals when leadership is lost).
    """

    hard_state: wire.Epoch | None = None  # the promised epoch
    install: SnapshotInstall | None = None
    persist: list[wire.ReplEntry] = field(default_factory=list)
    compact: SnapshotMeta | None = None
    send: list[tuple[NodeId, Any]] = field(default_factory=list)
    apply: list[wire.ReplEntry] = field(default_factory=list)
    reads: list[ReadReady] = field(default_factory=list)
    read_failures: list[Any] = field(default_factory=list)
    snapshot_to: list[NodeId] = field(default_factory=list)
    events: list[RoleChanged] = field(default_factory=list)

    def empty(self) -> bool:
        """True when the driver has nothing to do."""
        return not (self.hard_state or self.install or self.persist or self.compact
                    or self.send or self.apply or self.reads or self.read_failures
                    or self.snapshot_to or self.events)


@dataclass(frozen=True, slots=True)
class PersistedState:
    """What a replica is rebuilt from after a restart: everything the driver made durable.

    ``applied`` is the index the shard's durable state reflects (>= ``snapshot.index``).
    """

    promised: wire.Epoch = wire.EPOCH_ZERO
    snapshot: SnapshotMeta | None = None
    entries: tuple[wire.ReplEntry, ...] = ()
    applied: int = 0


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """Timing and batching of one replica. Times are seconds on the injected clock."""

    heartbeat_interval_s: float = 0.05
    """Leader heartbeat period; also how often a stuck probe is retried. Default 50 ms."""
    leader_timeout_s: float = 0.5
    """A leader that has not heard from a majority for this long steps down (check
    quorum), and a follower that has not heard a leader for ``(1 + rank)`` times this
    (plus jitter) campaigns by itself: the fallback when the ring's choice never shows up.
    Default 500 ms."""
    fallback: bool = True
    """Enable the follower fallback campaign. Default on."""
    prepare_timeout_s: float = 0.5
    """A candidate that has made no progress (a new promise, a page of catch-up entries,
    a snapshot) for this long gives up. Default 500 ms."""
    max_inflight: int = 8
    """Appends in flight per follower before the leader waits for acks (pipelining);
    entries proposed meanwhile are batched into the next message. Default 8."""
    append_entries_max: int = 64
    append_bytes_max: int = 1 << 20
    """Payload bytes per Append / CatchUpReply (at least one entry always goes): keeps a
    message far below the wire's frame limit however large entries are. Default 1 MiB."""
    """Entries per Append / CatchUpReply message. Default 64."""
    snapshot_timeout_s: float = 2.0
    """Ask the driver again for a snapshot the follower has not acknowledged. Default 2 s."""
    compact_lag_entries: int = 32
    """Compact only when at least this many applied entries can go (fewer, larger
    deletes). Default 32."""
    compact_silent_s: float = 10.0
    """A voter the leader has not heard from for this long holds compaction back by at
    most ``compact_retain_entries``: beyond that the log is compacted past it and it gets
    a snapshot when it returns. Without this, a dead voter that nobody replaces (no spare
    member) would make every member's log grow forever. Default 10 s."""
    compact_retain_entries: int = 1024
    """Applied entries kept for a silent voter, so one back after a short absence (a
    restart) catches up from the log rather than by snapshot. Default 1024."""
    learner_lag_entries: int = 16
    """A learner within this many entries of the commit index is promoted. Default 16."""


def cap_bytes(entries: list[wire.ReplEntry], max_bytes: int) -> list[wire.ReplEntry]:
    """The longest prefix of ``entries`` (at least one) whose payloads fit ``max_bytes``."""
    total = 0
    for i, e in enumerate(entries):
        total += len(e.payload) if isinstance(e.payload, (bytes, bytearray)) else 0
        if total > max_bytes and i:
            return entries[:i]
    return entries
