"""The per-shard log interface the history shell writes through, and its R = 1 form.

Owns: ``ShardLog`` (propose a batch of mutations; return once it is committed and applied
here) and ``LocalShardLog``, the single-member log where commit = local fsync (DESIGN §4: a
one-node cluster runs the same path with R = 1). Replication replaces ``LocalShardLog`` with
a multi-member log without touching callers. Must not: interpret mutations.

``LocalShardLog`` keeps at most one entry of a shard in flight. Proposals that arrive while
it commits are merged, in arrival order, into the next entry, so:

* log indexes have no gaps even when a commit fails (a failed entry takes its index with
  it: nothing was written, and the next entry reuses the index);
* concurrent proposals of one shard cost one entry, and the entries of all shards in flight
  share one group commit (one transaction, one fsync) in the writer.

Each entry is written in ONE transaction with its ``LogEntry`` row, its mutations applied to
the tables, and the new applied index (DESIGN §4: entries are applied in the same
transaction that records the applied index). With one member every entry is applied on
every member as soon as it commits, so the previous entry is truncated in that same
transaction: a shard's log holds just its latest entry (the tail a follower would be
compared against). ``write_entries=False`` skips the entry row altogether; see the report /
``bench/store_bench.py`` for what the row costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import trio

from shoal.store import tables
from shoal.store.env import Store
from shoal.store.writer import GroupCommitWriter

LOCAL_EPOCH = 1  # R = 1 never elects: one epoch forever


class ShardLog(Protocol):
    """One shard's log as its leader's shell sees it."""

    shard: int

    @property
    def applied_index(self) -> int:
        """The highest index committed and applied to this node's tables."""
        ...

    async def propose(self, mutations: list[tables.Mutation]) -> int:
        """Append an entry holding ``mutations``; return its index once committed and applied.

        Raises:
            ShoalError: NOT_LEADER (replicated form), STORAGE_FULL; nothing applied then.
        """
        ...


@dataclass(eq=False, slots=True)
class _Entry:
    """Proposals gathered for the next entry, and how their commit ended."""

    mutations: list[tables.Mutation] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)
    index: int = 0
    error: BaseException | None = None


class LocalShardLog:
    """R = 1: committed when the local fsync returns (see the module docstring)."""

    def __init__(
        self, shard: int, store: Store, writer: GroupCommitWriter, *, write_entries: bool = True
    ) -> None:
        self.shard = shard
        self._writer = writer
        self._write_entries = write_entries
        with store.read() as txn:
            state = tables.get_shard_log_state(txn, shard)
            bounds = tables.log_bounds(txn, shard)
        self._state = state or tables.ShardLogState()
        # Entries still stored at or below the applied index are truncated with the next one.
        self._first_kept = bounds[0] if bounds else self._state.applied_index + 1
        assert bounds is None or bounds[1] <= self._state.applied_index, (bounds, self._state)
        self._open: _Entry | None = None  # gathering proposals
        self._in_flight: _Entry | None = None  # being committed
        self.entries = 0  # entries committed by this object (tests, metrics)

    @property
    def applied_index(self) -> int:
        """The highest index committed and applied to this node's tables."""
        return self._state.applied_index

    async def propose(self, mutations: list[tables.Mutation]) -> int:
        """Append ``mutations`` to the next entry; return its index once committed and applied.

        Proposals that wait together share an entry (and so return the same index). The
        wait is shielded from cancellation: once proposed, the entry commits regardless.

        Raises:
            ShoalError(INVALID_ARGUMENT): a malformed mutation (refused alone, up front).
            ShoalError(STORAGE_FULL): the disk is full; nothing of the entry was applied.
        """
        for m in mutations:
            tables.check_mutation(m)  # a bad proposal must not spoil the entry it joins
        if self._open is None:
            self._open = _Entry()
        entry = self._open
        entry.mutations.extend(mutations)
        # Shielded like the writer's own wait (bounded by a commit or two): a cancelled
        # proposer must not leave its mutations in ``_open`` for a stranger to commit later.
        with trio.CancelScope(shield=True):
            while not entry.done.is_set():
                if self._in_flight is None:
                    await self._flush()
                else:
                    await self._in_flight.done.wait()
        if entry.error is not None:
            raise entry.error
        return entry.index

    async def _flush(self) -> None:
        entry, self._open = self._open, None
        assert entry is not None and self._in_flight is None
        self._in_flight = entry
        index = self._state.applied_index + 1
        state = tables.ShardLogState(applied_index=index, applied_epoch=LOCAL_EPOCH)
        batch = self._entry_mutations(entry.mutations, index, state)
        try:
            await self._writer.commit(batch)
        except Exception as exc:
            entry.error = exc
        else:
            entry.index = index
            self._state = state
            self.entries += 1
            # Rows below this are gone now (truncated in this very transaction).
            self._first_kept = index if self._write_entries else index + 1
        finally:
            self._in_flight = None
            entry.done.set()

    def _entry_mutations(
        self, mutations: list[tables.Mutation], index: int, state: tables.ShardLogState
    ) -> list[tables.Mutation]:
        out: list[tables.Mutation] = []
        # Truncate what every member (just us) has applied: in practice the previous entry.
        out.extend(tables.delete_log_entry(self.shard, i) for i in range(self._first_kept, index))
        if self._write_entries:
            entry = tables.LogEntry(epoch=LOCAL_EPOCH, index=index, mutations=mutations)
            out.append(tables.put_log_entry(self.shard, entry))
        out.extend(mutations)
        out.append(tables.put_shard_log_state(self.shard, state))
        return out
