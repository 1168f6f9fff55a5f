"""Invariant bookkeeping of the cluster simulator (DESIGN §4 invariants 1-5).

Owns: what the whole run has seen, per shard: the leader of every epoch (invariant 1:
one leader per epoch, and it is the epoch's own node), the committed log as a digest chain
that every member's applies and snapshot installs are compared against (invariant 2: a
committed entry never changes and every member applies the same prefix, in order, once),
who serves each shard now and the longest stretch without anyone serving (availability,
reported), and at the end every acknowledged write on every member of its shard (3) and
the histories of every member (4 and 5, ``cluster_history.history_violations``).

Must not: drive the simulation or touch cores; it only records and judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal import wire
from shoal.node.replication import Role, RoleChanged
from shoal.sim.cluster_history import EMPTY_CHAIN, Command, ShardState, history_violations
from shoal.sim.replication_node import SimDisk

VIOLATIONS_KEPT = 50  # the report lists this many; the count is exact


@dataclass(slots=True)
class ShardRecord:
    """The run's knowledge of one shard."""

    chain: list[str] = field(default_factory=lambda: [EMPTY_CHAIN])  # committed log digests
    entries: list[wire.ReplEntry | None] = field(default_factory=lambda: [None])  # the log
    voters: tuple[str, ...] = ()  # of the latest committed config
    acked_max: int = 0  # highest log index of a write acknowledged to a client
    leaders: dict[wire.Epoch, str] = field(default_factory=dict)
    spoke: dict[wire.Epoch, tuple[str, int]] = field(default_factory=dict)  # (node, boot)
    last_leader: str | None = None
    serving: list[str] = field(default_factory=list)  # nodes serving now (normally one)
    leaderless_since: float | None = None
    max_leaderless_s: float = 0.0
    elections: int = 0
    failovers: int = 0  # elections won by another node than the previous leader


class ClusterChecker:
    """Collects violations; ``clock`` gives the simulated time and step for messages."""

    def __init__(self, num_shards: int, clock: object) -> None:
        self.shards = [ShardRecord() for _ in range(num_shards)]
        self.clock = clock  # has .now and .step
        self.violation_count = 0
        self.violations: list[str] = []

    def violate(self, what: str) -> None:
        self.violation_count += 1
        if len(self.violations) < VIOLATIONS_KEPT:
            c = self.clock
            self.violations.append(f"t={c.now:.4f} step={c.step}: {what}")  # type: ignore[attr-defined]

    # --- after every step: invariants 1 and 2 ------------------------------------------------

    def on_apply(self, node: str, shard: int, entry: wire.ReplEntry, prev_index: int,
                 state: ShardState) -> None:
        """Invariant 2: applied in order, once, and equal to the committed log."""
        if entry.index != prev_index + 1:
            self.violate(f"{node} applied shard {shard} index {entry.index} after {prev_index}")
        chain = self.shards[shard].chain
        if entry.index < len(chain):
            if chain[entry.index] != state.chain:
                self.violate(f"{node} applied a different shard {shard} entry at index "
                             f"{entry.index}: {entry}")
        elif entry.index == len(chain):
            chain.append(state.chain)
            rec = self.shards[shard]
            rec.entries.append(entry)
            if entry.kind == wire.EntryKind.CONFIG and entry.config is not None:
                rec.voters = tuple(entry.config.voters)
        else:
            self.violate(f"{node} applied shard {shard} index {entry.index} beyond the "
                         f"committed log ({len(chain) - 1})")

    def on_install(self, node: str, shard: int, state: ShardState) -> None:
        chain = self.shards[shard].chain
        if state.index >= len(chain) or chain[state.index] != state.chain:
            self.violate(f"{node} installed a shard {shard} snapshot at {state.index} that "
                         "differs from the committed log")

    def on_role(self, node: str, shard: int, ev: RoleChanged, now: float) -> None:
        """Invariant 1, and who serves the shard."""
        rec = self.shards[shard]
        if ev.role is Role.LEADER and ev.leader == node and not ev.serving:
            rec.elections += 1
            if ev.epoch.node != node:
                self.violate(f"{node} leads shard {shard} epoch {ev.epoch} of another node")
            first = rec.leaders.setdefault(ev.epoch, node)
            if first != node:
                self.violate(f"{node} leads shard {shard} epoch {ev.epoch} after {first}")
            if rec.last_leader is not None and rec.last_leader != node:
                rec.failovers += 1
            rec.last_leader = node
        self.set_serving(node, shard, ev.role is Role.LEADER and ev.serving, now)

    def on_leader_send(self, node: str, boot: int, shard: int, epoch: wire.Epoch) -> None:
        """Invariant 1 across restarts: a leader that crashed before its promise was durable
        may lead the same epoch again after a restart, which is safe only if nothing it
        did in its first life left the node. So one life per epoch may speak as leader."""
        first = self.shards[shard].spoke.setdefault(epoch, (node, boot))
        if first != (node, boot):
            self.violate(f"{node} (boot {boot}) speaks as shard {shard}'s leader of epoch "
                         f"{epoch} after {first[0]} (boot {first[1]}) did")

    def set_serving(self, node: str, shard: int, serving: bool, now: float) -> None:
        rec = self.shards[shard]
        if serving and node not in rec.serving:
            rec.serving.append(node)
            if rec.leaderless_since is not None:
                rec.max_leaderless_s = max(rec.max_leaderless_s, now - rec.leaderless_since)
                rec.leaderless_since = None
        elif not serving and node in rec.serving:
            rec.serving.remove(node)
            if not rec.serving:
                rec.leaderless_since = now

    # --- invariant 3 while running -------------------------------------------------------

    def on_ack(self, shard: int, index: int) -> None:
        rec = self.shards[shard]
        rec.acked_max = max(rec.acked_max, index)

    def check_durability(self, disks: dict[str, dict[int, SimDisk]]) -> None:
        """Every acknowledged write is durable on a member of every majority of its
        shard's committed voters, so it survives the crash of any minority of them
        (invariant 3). Not "on a majority": while an even-sized group shrinks by one, the
        leader commits with a majority of the smaller config (in effect once appended),
        which meets every majority of the larger one without being a majority of it."""
        for shard, rec in enumerate(self.shards):
            if not rec.acked_max:
                continue
            holders = sum(1 for v in rec.voters if self._durable(disks.get(v, {}).get(shard),
                                                                  rec, rec.acked_max))
            if holders < len(rec.voters) - (len(rec.voters) // 2 + 1) + 1:
                self.violate(f"shard {shard}: acknowledged index {rec.acked_max} is durable "
                             f"on only {holders} of voters {rec.voters}: a majority "
                             "without any of them could lose it")

    @staticmethod
    def _durable(disk: SimDisk | None, rec: ShardRecord, index: int) -> bool:
        """Whether ``disk`` holds the committed log up to ``index``: the entry itself (log
        matching gives the prefix) or an applied state at or past it on the same log."""
        if disk is None or index >= len(rec.entries):
            return False  # no disk, or acknowledged before it was committed
        if disk.entries.get(index) == rec.entries[index]:
            return True
        applied = disk.applied_state
        return applied.index >= index and applied.index < len(rec.chain) and \
            rec.chain[applied.index] == applied.chain

    # --- at the end: invariants 3, 4, 5 ---------------------------------------------------------

    def check_final(self, acked: list[tuple[int, Command]],
                    members: dict[int, list[tuple[str, ShardState]]]) -> None:
        """``members[shard]``: every current member's applied state of the shard."""
        for shard, cmd in acked:
            for node, state in members[shard]:
                if not state.holds(cmd):
                    self.violate(f"acknowledged {cmd} (shard {shard}) is missing on {node}")
        for shard in sorted(members):
            for node, state in members[shard]:
                for bad in history_violations(state):
                    self.violate(f"{node} shard {shard} history: {bad}")
