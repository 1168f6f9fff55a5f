"""The LMDB side of one shard replica: what the consensus core asks to make durable.

Owns: rebuilding a replica's ``PersistedState`` from LMDB after a restart; turning the
durable parts of a core ``Output`` (promise, snapshot install, entries to persist or
truncate, compaction) and the entries to apply into ONE list of mutations, so the
group-commit writer makes them durable in one transaction with one fsync shared with every
other shard's writes; and reading a snapshot of the shard's state machine as bounded chunks.
Must not: decide anything (the core does) or await (the driver commits what it builds).

Entries are applied to the shard's tables in the same transaction that records the applied
index (DESIGN §4), so after a crash the tables and ``applied`` always agree.
Tables used: ``repl_log`` (entries), ``repl_state`` (hard state; applied index).
"""

from __future__ import annotations

from dataclasses import replace

from shoal import wire
from shoal.node.replication.types import PersistedState, SnapshotInstall, SnapshotMeta
from shoal.store import tables
from shoal.store.env import Store

SNAPSHOT_CHUNK_BYTES = 256 * 1024  # rows per SnapshotChunk, well under a wire frame


class ReplicaStorage:
    """Durable state of one shard's replica on this node.

    Tracks what is stored (the last entry index, the hard state) so it can build the
    deletes that truncation and compaction need without reading the disk.
    """

    def __init__(self, store: Store, shard: int) -> None:
        self.store, self.shard = store, shard
        with store.read() as txn:
            self.hard = tables.get_replica_hard_state(txn, shard) or tables.ReplicaHardState()
            applied = tables.get_replica_applied(txn, shard)
            self._entries = tuple(tables.scan_repl_log(txn, shard, self.hard.base_index + 1))
        self.applied = applied
        self.last_stored = self._entries[-1].index if self._entries else self.hard.base_index

    def persisted_state(self) -> PersistedState:
        """What the core is rebuilt from (read once, at open)."""
        snapshot = None
        if self.hard.base_index:
            assert self.hard.base_config is not None
            snapshot = SnapshotMeta(self.hard.base_index, self.hard.base_epoch,
                                    self.hard.base_config)
        return PersistedState(promised=self.hard.promised, snapshot=snapshot,
                              entries=self._entries, applied=max(self.applied,
                                                                 self.hard.base_index))

    def durable_mutations(
        self, *, hard_state: wire.Epoch | None, install: SnapshotInstall | None,
        persist: list[wire.ReplEntry], compact: SnapshotMeta | None,
        apply: list[wire.ReplEntry],
        proposed: dict[int, tuple[wire.Epoch, list[tables.Mutation]]] | None = None,
        alone: wire.ShardConfig | None = None,
    ) -> list[tables.Mutation]:
        """Mutations for one atomic write: the Output's durable parts, in its order, then
        the applied entries' own mutations and the new applied index. ``proposed`` maps
        an index to (epoch, mutations) this node proposed: those skip decoding the payload.

        ``alone`` (the config) says this replica is a sole voter without learners whose
        persisted entries are all applied in this same write: nobody will ever ask for
        them, so they are not stored at all; the log base moves to the applied entry
        instead (compaction in the same transaction), as LocalShardLog does without its
        entry row. This halves the bytes a single node writes per entry.

        The tracked state moves on as if the write succeeded; a failed write is fatal for
        the replica (its driver stops), so there is nothing to roll back.

        Raises:
            ShoalError: an entry payload or snapshot is not valid mutations.
        """
        out: list[tables.Mutation] = []
        hard = self.hard
        if hard_state is not None:
            hard = replace(hard, promised=hard_state)
        hard = self._log_mutations(out, hard, install, persist, compact, alone)
        hard = self._apply_mutations(out, hard, apply, proposed, alone)
        if hard != self.hard:
            out.append(tables.put_replica_hard_state(self.shard, hard))
            self.hard = hard
        if apply:
            out.append(tables.put_replica_applied(self.shard, self.applied))
        return out

    def _log_mutations(self, out: list[tables.Mutation], hard: tables.ReplicaHardState,
                       install: SnapshotInstall | None, persist: list[wire.ReplEntry],
                       compact: SnapshotMeta | None, alone: wire.ShardConfig | None
                       ) -> tables.ReplicaHardState:
        """The log's part of the write (install, stored entries, compaction) into ``out``;
        returns the hard state it leaves."""
        sid = self.shard
        if install is not None:
            out.extend(self._install_mutations(install))
            hard = replace(hard, base_index=install.meta.index, base_epoch=install.meta.epoch,
                           base_config=install.meta.config)
            self.applied = install.meta.index
            self.last_stored = install.meta.index
        for e in persist:
            # Storing entry i replaces whatever was stored at i and after it.
            out.extend(tables.delete_repl_entry(sid, i) for i in range(e.index, self.last_stored + 1))
            if alone is None:
                out.append(tables.put_repl_entry(sid, e))
            self.last_stored = e.index
        if compact is not None and compact.index > hard.base_index:
            out.extend(tables.delete_repl_entry(sid, i)
                       for i in range(hard.base_index + 1, compact.index + 1))
            hard = replace(hard, base_index=compact.index, base_epoch=compact.epoch,
                           base_config=compact.config)
            self.last_stored = max(self.last_stored, compact.index)
        return hard

    def _apply_mutations(self, out: list[tables.Mutation], hard: tables.ReplicaHardState,
                         apply: list[wire.ReplEntry],
                         proposed: dict[int, tuple[wire.Epoch, list[tables.Mutation]]] | None,
                         alone: wire.ShardConfig | None) -> tables.ReplicaHardState:
        """The applied entries' own mutations into ``out`` (and, alone, the log base moved
        past them); returns the hard state it leaves."""
        applied_entry: wire.ReplEntry | None = None
        for e in apply:
            mine = proposed.pop(e.index, None) if proposed else None
            if mine is not None and mine[0] == e.epoch:
                out.extend(mine[1])  # our own proposal: its mutations, not a decode of them
            elif e.kind == wire.EntryKind.NORMAL and e.payload is not None:
                out.extend(tables.decode_mutations(e.payload))
            self.applied = e.index
            applied_entry = e
        if (alone is not None and applied_entry is not None and self.applied > hard.base_index
                and self.applied >= self.last_stored):
            # (An earlier output of the same write may apply less than is persisted; the
            # write's last output applies the rest, and the driver checks that it did.)
            # Rows stored before this replica was alone (ahead of a restart, say) go too;
            # for the entries of this write the deletes find nothing, cheaply.
            out.extend(tables.delete_repl_entry(self.shard, i)
                       for i in range(hard.base_index + 1, self.applied + 1))
            hard = replace(hard, base_index=self.applied, base_epoch=applied_entry.epoch,
                           base_config=alone)
        return hard

    def _install_mutations(self, install: SnapshotInstall) -> list[tables.Mutation]:
        """Replace the shard's state machine with the snapshot's rows and drop its log."""
        rows = install.data if isinstance(install.data, list) else []
        out: list[tables.Mutation] = []
        with self.store.read() as txn:
            for table, key, _ in tables.scan_shard_state_machine(txn, self.shard):
                out.append(tables.Mutation(table=table, key=key))
            out.extend(tables.delete_repl_entry(self.shard, e.index)
                       for e in tables.scan_repl_log(txn, self.shard))
        out.extend(rows)
        out.append(tables.put_replica_applied(self.shard, install.meta.index))
        return out

    def snapshot_chunks(self, chunk_bytes: int = SNAPSHOT_CHUNK_BYTES) -> list[bytes]:
        """The applied state as payloads of puts, each about ``chunk_bytes`` at most.

        Read in one LMDB read transaction, so it is a consistent view as of
        ``self.applied`` (the driver calls this only once the applied entries' write is
        durable). At least one chunk (an empty shard is one empty chunk).
        """
        chunks: list[bytes] = []
        batch: list[tables.Mutation] = []
        size = 0
        with self.store.read() as txn:
            for table, key, value in tables.scan_shard_state_machine(txn, self.shard):
                batch.append(tables.Mutation(table=table, key=key, value=value))
                size += len(key) + len(value) + 16
                if size >= chunk_bytes:
                    chunks.append(tables.encode_mutations(batch))
                    batch, size = [], 0
        if batch or not chunks:
            chunks.append(tables.encode_mutations(batch))
        return chunks


def drop_replica_mutations(store: Store, shard: int) -> list[tables.Mutation]:
    """Deletes of everything this node keeps of ``shard``'s replica: its tables, its log,
    its promise and applied index. Only for a replica whose removal from the group is
    committed (its promise then protects nothing) and that is no longer running."""
    out: list[tables.Mutation] = []
    with store.read() as txn:
        for table, key, _ in tables.scan_shard_state_machine(txn, shard):
            out.append(tables.Mutation(table=table, key=key))
        out.extend(tables.delete_repl_entry(shard, e.index)
                   for e in tables.scan_repl_log(txn, shard))
    out.extend(tables.delete_replica_state(shard))
    return out
