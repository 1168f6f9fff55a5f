"""What the gossip core hands back to its shell: membership events, timers, sends, stats.

Owns: the membership event types (past tense: a member joined, recovered, was suspected,
died, left, changed its metadata), :class:`Output`, timer keys and :class:`SwimStats`.
Must not: contain protocol logic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal import wire
from shoal.gossip.members import MemberInfo

TimerKey = tuple[str | int, ...]
"""Timer keys: ``("probe",)``, ``("gossip",)``, ``("push_pull",)``, ``("join",)``,
``("probe_timeout", seq)``, ``("probe_deadline", seq)``, ``("relay", seq)``,
``("suspicion", member)``. Arming a key again replaces its earlier deadline; the core
also ignores a firing that is no longer current, so a shell that cannot cancel is safe."""


@dataclass(frozen=True, slots=True)
class MemberJoined:
    """A member we did not know, or knew as dead/left, is alive."""

    member: MemberInfo


@dataclass(frozen=True, slots=True)
class MemberRecovered:
    """A suspected member refuted the suspicion and is alive again."""

    member: MemberInfo


@dataclass(frozen=True, slots=True)
class MemberSuspected:
    member: MemberInfo


@dataclass(frozen=True, slots=True)
class MemberDied:
    """A member was declared dead (failed, not left)."""

    member: MemberInfo


@dataclass(frozen=True, slots=True)
class MemberLeft:
    """A member left gracefully."""

    member: MemberInfo


@dataclass(frozen=True, slots=True)
class MemberUpdated:
    """A live member's metadata changed."""

    member: MemberInfo


MemberEvent = (
    MemberJoined | MemberRecovered | MemberSuspected | MemberDied | MemberLeft | MemberUpdated
)

StreamMessage = wire.PushPullRequest | wire.PushPullResponse | wire.GossipPacket


@dataclass(slots=True)
class Output:
    """What the shell must do after one call into the core.

    ``send`` are UDP datagrams (encode with ``wire.encode_gossip`` and the cluster key);
    ``stream`` are messages for the reliable peer link (TCP/WebSocket): push-pull
    exchanges, and fallback pings/acks (a ``GossipPacket``); the shell delivers them to the
    peer's ``on_message(..., stream=True)`` and feeds its answers back to ours;
    ``timers`` are (key, fire-at); ``events`` are membership changes, in order.
    """

    send: list[tuple[str, wire.GossipPacket]] = field(default_factory=list)
    stream: list[tuple[str, StreamMessage]] = field(default_factory=list)
    timers: list[tuple[TimerKey, float]] = field(default_factory=list)
    events: list[MemberEvent] = field(default_factory=list)


@dataclass(slots=True)
class SwimStats:
    """Counters for operators; malformed or unauthenticated input is counted, not raised."""

    packets_received: int = 0
    packets_sent: int = 0
    dropped_malformed: int = 0  # bad header, CBOR or shape
    dropped_auth: int = 0  # bad or missing MAC
    dropped_misdirected: int = 0  # a ping meant for another member
    dropped_foreign: int = 0  # a member of another cluster (name or NUM_SHARDS differ)
    dropped_unexpected: int = 0  # e.g. a push-pull request sent over UDP
    probes: int = 0
    probes_failed: int = 0  # neither a direct nor an indirect ack in time
    fallback_acks: int = 0  # probes answered only over the reliable link (UDP trouble)
    indirect_probes: int = 0  # ping-reqs we sent
    relays: int = 0  # ping-reqs we served for others
    refutations: int = 0
    push_pulls: int = 0
    broadcasts_piggybacked: int = 0
    verdicts_answered: int = 0  # accusations of a member we hold dead, answered with that
