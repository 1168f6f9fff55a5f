"""The group-commit writer (DESIGN §6): one thread, one transaction and one fsync per group.

Owns: the queue of pending batches and the writer thread. Batches that arrive while a commit
is in flight wait in the queue; the next transaction takes all of them, commits with one
fsync, then wakes every waiter on the trio loop. Nothing is acknowledged before its fsync
returns, and the event loop never touches the disk for writes.

A batch that cannot be written (say, a full disk) must not fail the good batches it shares
a transaction with: when a group's transaction fails, each batch is retried in its own
transaction, so only the bad one fails, and it leaves nothing behind (its transaction
aborts). Must not: interpret mutations.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from shoal.store import tables
from shoal.store.env import MapFull, Store

log = logging.getLogger(__name__)

GROUP_BATCHES_MAX = 4096  # batches in one transaction; bounds a transaction's size


@dataclass(eq=False, slots=True)
class _Pending:
    mutations: list[tables.Mutation]
    token: trio.lowlevel.TrioToken
    done: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None


@dataclass(slots=True)
class WriterStats:
    transactions: int = 0
    batches: int = 0
    map_grows: int = 0


class GroupCommitWriter:
    """Commits batches of mutations durably, many batches per fsync."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stats = WriterStats()
        self._queue: collections.deque[_Pending] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="shoal-writer", daemon=True)

    @classmethod
    @asynccontextmanager
    async def open(cls, store: Store) -> AsyncIterator[GroupCommitWriter]:
        """Start the writer thread; on exit, flush what is queued and stop it."""
        writer = cls(store)
        writer._thread.start()
        try:
            yield writer
        finally:
            with writer._cond:
                writer._stopping = True
                writer._cond.notify()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(writer._thread.join)

    async def commit(self, mutations: list[tables.Mutation]) -> None:
        """Write ``mutations`` atomically; return once they are fsynced.

        Raises:
            ShoalError(STORAGE_FULL): the disk refused them; nothing of them was written.
        """
        pending = _Pending(mutations, trio.lowlevel.current_trio_token())
        with self._cond:
            if self._stopping:
                raise RuntimeError("the writer is stopped")
            self._queue.append(pending)
            self._cond.notify()
        # The commit goes on in the thread whatever happens here; waiting is all we do.
        with trio.CancelScope(shield=True):
            await pending.done.wait()
        if pending.error is not None:
            raise pending.error

    # --- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue and self._stopping:
                    return
                group = []
                while self._queue and len(group) < GROUP_BATCHES_MAX:
                    group.append(self._queue.popleft())
            self._commit_group(group)

    def _commit_group(self, group: list[_Pending]) -> None:
        muts = [m for p in group for m in p.mutations]
        try:
            self._apply(muts)
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
            else:
                log.warning("group commit failed, retrying batches one by one: %r", exc)
                for p in group:
                    try:
                        self._apply(p.mutations)
                    except Exception as one_exc:
                        p.error = one_exc
        self.stats.batches += len(group)
        for p in group:
            try:
                p.token.run_sync_soon(p.done.set)
            except trio.RunFinishedError:
                pass  # the caller's loop is gone; nobody is waiting

    def _apply(self, muts: list[tables.Mutation]) -> None:
        while True:
            try:
                self.store.apply(muts)
                self.stats.transactions += 1
                return
            except MapFull:
                self.store.grow()
                self.stats.map_grows += 1
