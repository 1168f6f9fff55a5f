"""The group-commit writer (DESIGN §6): one thread, one transaction and one fsync per group.

Owns: the only thread that writes LMDB while the node serves. ``await commit(mutations)``
queues a batch and returns once the transaction holding it has committed and fsynced. The
batches that arrive while a commit is in flight wait together and share the next
transaction, so N concurrent writers cost far fewer than N fsyncs. The event loop never
touches the disk: it only appends to a queue and sleeps on a ``trio.Event`` that the writer
thread sets through the loop's ``TrioToken``.

Isolation: each batch is checked (``tables.check_mutation``) before it is queued, and if a
shared transaction still fails, every batch of the group is retried in a transaction of its
own, so a bad batch fails only its own waiter and good batches still commit. A full map is
grown and the transaction retried (never an error); a full disk is ``STORAGE_FULL`` with
that transaction aborted.

Must not: run on the event loop, reorder batches (a later batch is never committed before an
earlier one, so a shard's log entries land in the order they were proposed), or
acknowledge anything before its fsync returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from shoal import wire
from shoal.store import tables
from shoal.store.env import MapFull, Store

log = logging.getLogger(__name__)


GROUP_BATCHES_MAX = 4096  # batches in one transaction: bounds a transaction's size and time


@dataclass(slots=True, eq=False)
class _Batch:
    mutations: list[tables.Mutation]
    token: trio.lowlevel.TrioToken  # the waiter's loop, woken from the writer thread
    done: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None


@dataclass(slots=True)
class WriterStats:
    """Counters for tests, benchmarks and metrics."""

    batches: int = 0  # batches committed
    transactions: int = 0  # transactions committed, each one fsync
    failed_batches: int = 0
    isolation_retries: int = 0  # groups that failed together and were retried one by one
    largest_group: int = 0


class GroupCommitWriter:
    """The node's single writer. Use ``async with GroupCommitWriter.open(store) as w``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stats = WriterStats()
        self._cond = threading.Condition()
        self._queue: list[_Batch] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="shoal-store-writer", daemon=True)

    @classmethod
    @asynccontextmanager
    async def open(cls, store: Store) -> AsyncIterator[GroupCommitWriter]:
        """Start the writer thread; on exit, commit everything queued, then stop it."""
        writer = cls(store)
        writer._thread.start()
        try:
            yield writer
        finally:
            with trio.CancelScope(shield=True):
                await writer._stop()

    async def commit(self, mutations: list[tables.Mutation]) -> None:
        """Write ``mutations`` atomically; return once they are committed and fsynced.

        The wait is shielded from cancellation: once queued, the batch commits anyway, and a
        caller that returned early could not tell whether it had.

        Raises:
            ShoalError(INVALID_ARGUMENT): a mutation LMDB would refuse (nothing queued).
            ShoalError(STORAGE_FULL): the disk is full; nothing of this batch was written.
            ShoalError(SHUTTING_DOWN): the writer is stopping.
        """
        for m in mutations:
            tables.check_mutation(m)
        batch = _Batch(list(mutations), trio.lowlevel.current_trio_token())
        with self._cond:
            if self._closing:
                raise wire.ShoalError(wire.Code.SHUTTING_DOWN, "the node is shutting down")
            self._queue.append(batch)
            self._cond.notify()
        with trio.CancelScope(shield=True):
            await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    async def _stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        # The thread drains the queue before it exits, so shutdown flushes pending writes.
        await trio.to_thread.run_sync(self._thread.join)

    # --- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return  # closing and drained
                group = self._queue[:GROUP_BATCHES_MAX]
                del self._queue[:GROUP_BATCHES_MAX]
            try:
                self._commit_group(group)
            except BaseException as exc:  # a bug: fail the waiters rather than hang them
                log.exception("store writer failed")
                for b in group:
                    if b.error is None:
                        b.error = exc
                self._wake(group)

    def _commit_group(self, group: list[_Batch]) -> None:
        self.stats.largest_group = max(self.stats.largest_group, len(group))
        try:
            self._apply([m for b in group for m in b.mutations])
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
            else:
                # Someone's batch spoiled the shared transaction (nothing of it was written):
                # retry each alone, in order, so only the culprit's waiter sees the error.
                self.stats.isolation_retries += 1
                log.warning("store group commit failed, retrying batches alone error=%s", exc)
                for b in group:
                    try:
                        self._apply(b.mutations)
                    except Exception as one:
                        b.error = one
        for b in group:
            if b.error is None:
                self.stats.batches += 1
            else:
                self.stats.failed_batches += 1
        self._wake(group)

    def _apply(self, mutations: list[tables.Mutation]) -> None:
        while True:
            try:
                self.store.apply(mutations)
                self.stats.transactions += 1
                return
            except MapFull:
                self.store.grow()  # DESIGN §6: a full map is resized, never a failed write

    @staticmethod
    def _wake(group: list[_Batch]) -> None:
        # One callback per loop rather than per batch: fewer cross-thread wakeups.
        by_token: dict[trio.lowlevel.TrioToken, list[_Batch]] = {}
        for b in group:
            by_token.setdefault(b.token, []).append(b)
        for token, batches in by_token.items():
            try:
                token.run_sync_soon(_set_all, batches)
            except trio.RunFinishedError:
                pass  # that loop is gone; nobody is waiting any more


def _set_all(batches: list[_Batch]) -> None:
    for b in batches:
        b.done.set()
