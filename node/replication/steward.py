"""What this node's replica of each shard should do as members come and go (sans-IO).

Owns: turning the ring's placement over the live members (plus members dead for less than
``replace_after_s``) and what the node knows of its local replica into actions: host a
replica here (an empty one: the leader fills it by snapshot and tail), campaign (the ring
names this node the shard's leader), move the shard's configuration towards the ring's
replica set (the leader does this, one member at a time, in the core), and release a
replica that is no longer in the configuration or the ring's set. Must not: do I/O, read
clocks or touch replicas (the node's shell carries the actions out).

Why members dead for a while still count: replacing a member means a snapshot to a new
one; a node that restarts within ``replace_after_s`` (kill -9, a deploy) keeps its place
and catches up from its own disk instead (DESIGN §4, issue 7's ``replace_after``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shoal.node.replication.types import NodeId, Role
from shoal.ring.placement import REPLICATION_FACTOR, placement

CAMPAIGN_RETRY_S = 2.0  # a campaign that did not make us leader is tried again after this
# A replica outside the ring's set whose own config does not list it as a voter (it holds
# the entry that removes it, or was hosted and never added) is released once it has heard
# no leader for this long; its data stays on disk. A replica that is a voter in its own
# config is never released for silence: it may be a voter cut off by a partition, and
# releasing enough of those leaves the group without a majority (seen in `make chaos`). A
# removed member never receives the entry that removes it; it learns of its removal with
# ``wire.Removed`` (from the leader when the removal commits, or from any member when it
# next campaigns) and is then released with its data (``ReplicaView.removed``).
RELEASE_SILENT_S = 10.0


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """What the node knows of its local replica of a shard."""

    role: Role
    serving: bool
    leader: NodeId | None
    voters: tuple[NodeId, ...]
    learners: tuple[NodeId, ...] = ()
    silent_s: float = 0.0
    """How long this (non-leader) replica has heard no leader."""
    removed: bool = False
    """A committed config without this node replaced one with it (``wire.Removed``)."""


@dataclass(frozen=True, slots=True)
class Host:
    """Start an empty replica of ``shard`` here (no bootstrap: the leader adds it)."""

    shard: int


@dataclass(frozen=True, slots=True)
class Campaign:
    """This node is the first ALIVE voter in the ring's order for ``shard``: take over.
    (Not always the ring's first member: that one may not be a voter yet, e.g. a new node
    still a learner, or may be leaving, or dead but still holding its place for
    ``replace_after_s``: then the next live voter leads meanwhile.)"""

    shard: int


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """This node leads ``shard``: move its configuration towards ``voters``."""

    shard: int
    voters: tuple[NodeId, ...]


@dataclass(frozen=True, slots=True)
class Release:
    """Stop this node's replica of ``shard``: it left the configuration and the ring's set.
    ``drop_data``: its removal is committed, so delete its log and tables too (otherwise
    they stay: a replica that only went silent may still be a voter)."""

    shard: int
    drop_data: bool = False


Action = Host | Campaign | Reconfigure | Release


class ShardSteward:
    """Decides per shard; call :meth:`set_members` on every membership change.

    Args:
        me: this node's id.
        num_shards: NUM_SHARDS of the cluster.
        replication_factor: wanted R (fewer when fewer members count).
        replace_after_s: how long a dead member keeps its place in the ring.
    """

    def __init__(self, me: NodeId, num_shards: int, *,
                 replication_factor: int = REPLICATION_FACTOR,
                 replace_after_s: float = 30.0) -> None:
        self.me, self.num_shards = me, num_shards
        self.rf, self.replace_after_s = replication_factor, replace_after_s
        self.alive: frozenset[NodeId] = frozenset({me})
        self._dead_since: dict[NodeId, float] = {}
        self._left: set[NodeId] = set()
        self._last_campaign: dict[int, float] = {}
        # This node is leaving the cluster (SIGTERM): it hosts, campaigns and reconfigures
        # nothing any more, so the ring's next members take its shards over.
        self.leaving = False

    def set_members(self, alive: Iterable[NodeId], now: float,
                    left: Iterable[NodeId] = ()) -> None:
        """The members gossip says are alive (we always count ourselves), and those that
        left gracefully: a member that left is replaced at once, not after
        ``replace_after_s`` (it handed its shards off and is not coming back soon)."""
        new = frozenset(alive) | {self.me}
        self._left = set(left) - new
        for gone in self.alive - new:
            self._dead_since.setdefault(gone, now)
        for back in new | self._left:
            self._dead_since.pop(back, None)
        self.alive = new

    def counted(self, now: float) -> tuple[NodeId, ...]:
        """Members the ring places shards on: the alive, and the recently dead."""
        recent = {m for m, t in self._dead_since.items() if now - t < self.replace_after_s}
        return tuple(sorted(self.alive | recent))

    def target(self, shard: int, now: float) -> tuple[NodeId, ...]:
        """The ring's ordered replica set of ``shard`` (leader hint first)."""
        members = self.counted(now)
        return placement(members, self.num_shards, min(self.rf, len(members))).replica_set(shard)

    def decide(self, shard: int, view: ReplicaView | None, now: float) -> list[Action]:
        """What to do about ``shard``; ``view`` is None when no replica of it is here."""
        if self.leaving:
            return []
        target = self.target(shard, now)
        if view is None:
            return [Host(shard)] if self.me in target else []
        if view.removed:
            # Gone for good from the group; if the ring still names us, the next decision
            # hosts an empty replica for the leader to add back by snapshot.
            return [Release(shard, drop_data=True)]
        # A voter gossip has told us nothing about (we restarted and have not heard from it
        # yet) counts as dead from now: it keeps its place for replace_after_s. Otherwise
        # a restarted leader, its view still {me}, would shrink its shard to itself and,
        # with a member really down, leave a config nobody can ever commit in again.
        unheard = [m for m in view.voters
                   if m not in self.alive and m not in self._dead_since and m not in self._left]
        if unheard:
            for m in unheard:
                self._dead_since[m] = now
            target = self.target(shard, now)
        actions: list[Action] = []
        members = set(view.voters) | set(view.learners)
        if view.role is Role.LEADER and view.serving:
            wanted = [m for m in target if m in self.alive or m in members]
            floor = max(len(target), min(self.rf, len(view.voters)))
            if len(wanted) < floor:
                # Never shrink a shard's group (below R) for want of members: a member the
                # ring names may be down and not in the config yet, or our gossip view may
                # be stale (a partition) while replication still reaches every voter.
                # Removing a voter with nobody added gains no availability, and the smaller
                # group can be left needing a member that never returns. Dead voters are
                # replaced (add, then remove) once the ring names a live member instead.
                spare = [m for m in view.voters if m not in wanted]
                spare.sort(key=lambda m: m not in self.alive)  # live ones first (stable)
                wanted += spare[:floor - len(wanted)]
            if wanted and (set(view.voters) != set(wanted) or view.learners):
                actions.append(Reconfigure(shard, tuple(wanted)))
        elif (next((m for m in target if m in view.voters and m in self.alive), None) == self.me
              and view.leader != self.me
              and now - self._last_campaign.get(shard, -CAMPAIGN_RETRY_S) >= CAMPAIGN_RETRY_S):
            self._last_campaign[shard] = now
            actions.append(Campaign(shard))
        elif (view.role is not Role.LEADER and self.me not in target
              and (not members or (self.me not in view.voters
                                   and view.silent_s >= RELEASE_SILENT_S))):
            # An empty replica, hosted while the ring named us and never added by the
            # leader, has no members at all: nothing to keep. One whose config no longer
            # lists us as a voter waits for the leader's wire.Removed a while first (only
            # then may its data go).
            actions.append(Release(shard))
        return actions
