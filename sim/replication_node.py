"""One simulated replica host for ``sim/replication_sim.py``: its disk and state machine.

Owns: :class:`SimDisk` (what survives a crash: promise, log base, log entries, applied
state — written only when a simulated fsync completes), :class:`SmState` (the shard state
the log is applied to: a digest chain of every entry plus the client-visible log length and
digest) and :class:`SimNode` (the core, up/down, incarnation). Must not: make decisions;
the simulator drives everything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from shoal import wire
from shoal.node.replication import PersistedState, Replica, SnapshotInstall, SnapshotMeta
from shoal.sim.replication_check import EMPTY, digest_step


@dataclass(frozen=True, slots=True)
class SmState:
    """The shard's state after applying entries up to ``index`` (immutable: snapshots and
    durable copies share it)."""

    index: int = 0
    chain: str = EMPTY  # digest of every entry applied, in order
    count: int = 0  # client writes applied
    client_digest: str = EMPTY  # digest of the client values, in order

    def then(self, e: wire.ReplEntry, value: int | None) -> SmState:
        h = hashlib.blake2b(bytes.fromhex(self.chain) + repr(e).encode(), digest_size=8)
        if value is None:
            return SmState(e.index, h.hexdigest(), self.count, self.client_digest)
        return SmState(e.index, h.hexdigest(), self.count + 1,
                       digest_step(self.client_digest, value))


@dataclass(slots=True)
class SimDisk:
    """Durable state of one host. Changed only by completed writes."""

    promised: wire.Epoch = wire.EPOCH_ZERO
    base: SnapshotMeta | None = None
    entries: dict[int, wire.ReplEntry] = field(default_factory=dict)
    applied_state: SmState = field(default_factory=SmState)
    last: int = 0  # highest entry index stored

    @property
    def snap_index(self) -> int:
        return self.base.index if self.base else 0

    def write(self, hard: wire.Epoch | None, install: SnapshotInstall | None,
              persist: list[wire.ReplEntry], compact: SnapshotMeta | None) -> None:
        """One atomic write, in the order ``Output`` prescribes."""
        if hard is not None:
            assert hard >= self.promised, "promise went backwards on disk"
            self.promised = hard
        if install is not None:
            self.base = install.meta
            self.entries.clear()
            self.last = install.meta.index
            self.applied_state = install.data
        for e in persist:
            if e.index <= self.last:
                for k in range(e.index, self.last + 1):
                    self.entries.pop(k, None)
            assert e.index > self.snap_index
            self.entries[e.index] = e
            self.last = e.index
        if compact is not None and compact.index > self.snap_index:
            assert compact.index <= self.applied_state.index, "compacted past the applied state"
            for k in range(self.snap_index + 1, compact.index + 1):
                self.entries.pop(k, None)
            self.base = compact
            self.last = max(self.last, compact.index)

    def persisted_state(self) -> PersistedState:
        """What a restarted core is built from."""
        lo = self.snap_index + 1
        entries = tuple(self.entries[i] for i in range(lo, self.last + 1))
        return PersistedState(self.promised, self.base, entries, self.applied_state.index)


@dataclass(slots=True)
class SimNode:
    """A host: its core (None while down), disk and in-memory state machine."""

    name: str
    core: Replica | None = None
    up: bool = False
    inc: int = 0  # bumped by each crash; writes of an older incarnation are lost
    disk: SimDisk = field(default_factory=SimDisk)
    sm: SmState = field(default_factory=SmState)
    disk_busy: float = 0.0
    dmatch: int = 0  # cache: longest committed prefix held durably
    next_campaign: float = 0.0

    def crash(self) -> None:
        self.up = False
        self.inc += 1
        self.core = None
