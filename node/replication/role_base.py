"""What a role object may see and do of the replica it acts for (DESIGN §4).

Owns: :class:`ReplicaCore`, the narrow face :class:`shoal.node.replication.core.Replica`
shows to its role objects (``candidate.Candidate`` for one campaign, ``leader.Leader``
for one term as leader), in the manner of etcd/raft's ``stepCandidate``/``stepLeader``
acting on the shared ``raft`` struct. It names the fields every role reads and changes
(promise, log, commit and apply indexes) and the few moves that keep the replica's
invariants (the one role change, the one promise write, sending into the current output).

Must not: import ``core``, ``candidate`` or ``leader`` (this is the bottom the three stand
on, so they never import each other in a circle), or hold behaviour.
"""

from __future__ import annotations

from typing import Any, Protocol

from shoal import wire
from shoal.node.replication.log import LogView
from shoal.node.replication.types import NodeId, Output, ReplicaConfig, Role


class ReplicaCore(Protocol):
    """The replica as its candidate and leader role objects use it."""

    me: NodeId
    shard: int
    cfg: ReplicaConfig
    log: LogView
    promised: wire.Epoch  # change it only through set_promised
    role: Role  # change it only through become
    persisted: int
    applied: int
    applied_emitted: int
    commit: int
    compact_hint: int
    last_heard: float | None
    target: tuple[NodeId, ...] | None  # the ring's voters (reconfigure)
    # The Output of the input being handled; None between calls.
    out: Output | None

    @property
    def serving(self) -> bool:
        """Leader whose own-epoch no-op has committed."""
        ...

    def send(self, to: NodeId, msg: Any) -> None:
        """Queue ``msg`` for ``to`` in the current output."""
        ...

    def set_promised(self, epoch: wire.Epoch) -> None:
        """Raise the promise; durable before anything this call sends."""
        ...

    def become(self, role: Role, leader: NodeId | None) -> None:
        """The one legal role change (ends the current candidate or leader role)."""
        ...

    def become_leader(self, now: float) -> None:
        """The campaign won: start a leader term at the promised epoch."""
        ...

    def emit(self) -> None:
        """Report the current role, epoch, leader and serving flag."""
        ...

    def observe_higher(self, epoch: wire.Epoch, now: float) -> None:
        """Adopt a higher epoch seen in a message and follow (nobody yet)."""
        ...

    def store(self, entries: list[wire.ReplEntry]) -> None:
        """Merge entries into the log and have the new ones persisted."""
        ...

    def set_removed(self) -> None:
        """A committed config no longer lists this node: stop taking part."""
        ...
