"""The per-shard log interface the history shell writes through, and its R = 1 form.

Owns: ``ShardLog`` (propose a batch of mutations; return once it is committed and applied
here) and ``LocalShardLog``, the single-member log where commit = local fsync (DESIGN §4: a
one-node cluster runs the same path with R = 1). Replication replaces ``LocalShardLog`` with
a multi-member log without touching callers.

R = 1 needs no log body on disk: with one member, an entry is appended, committed (its
fsync), applied and -- since every member has applied it -- truncatable, all in one
transaction. So ``LocalShardLog`` writes the entry's mutations and the new applied index
together in one group-commit transaction and keeps no entry row, which halves the bytes
written per request. The index still advances per entry, so the applied index a follower
would compare against means the same thing in both forms. Must not: interpret mutations.
"""

from __future__ import annotations

from typing import Protocol

from shoal.store import tables
from shoal.store.env import Store
from shoal.store.writer import GroupCommitWriter


class ShardLog(Protocol):
    """One shard's log as its leader's shell sees it."""

    shard: int

    @property
    def applied_index(self) -> int: ...

    async def propose(self, mutations: list[tables.Mutation]) -> int:
        """Append an entry of ``mutations``; return its index once committed and applied.

        Raises:
            ShoalError: NOT_LEADER (replicated form), STORAGE_FULL; nothing applied then.
        """
        ...


class LocalShardLog:
    """R = 1: committed when the local fsync returns (see the module docstring)."""

    def __init__(self, shard: int, store: Store, writer: GroupCommitWriter) -> None:
        self.shard = shard
        self._writer = writer
        with store.read() as txn:
            state = tables.get_shard_log_state(txn, shard)
        self._state = state or tables.ShardLogState()
        self._next_index = self._state.applied_index + 1

    @property
    def applied_index(self) -> int:
        return self._state.applied_index

    async def propose(self, mutations: list[tables.Mutation]) -> int:
        index = self._next_index
        self._next_index += 1
        state = tables.ShardLogState(applied_index=index, applied_epoch=1)
        await self._writer.commit([*mutations, tables.put_shard_log_state(self.shard, state)])
        # Entries of one shard may commit in one group in any order; keep the highest.
        if index > self._state.applied_index:
            self._state = state
        return index
