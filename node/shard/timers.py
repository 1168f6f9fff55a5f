"""The timer processor: fires every shard's durable timer tasks on time.

Owns: one in-memory heap of (fire time, shard, task) for this node, filled from LMDB when a
shard loads and from each committed outbox; a loop that sleeps until the earliest deadline
and hands due tasks to a ``fire`` callback; ``timer_firer`` is that callback: it applies a
due task through its shard's mailbox and deletes the row in the same entry. Must not: decide
what a timer means (the history engine's ``on_timer`` does) or touch the store directly.

Times are epoch seconds (``TimerTask.fire_time``) so they survive restarts; the loop maps
them onto trio's clock at each wait, so the wall clock is read in one place.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

import trio

from shoal import wire
from shoal.node.history.engine import HistoryEngine
from shoal.node.shard.shard import Batch
from shoal.node.shard.shards import ShardSet
from shoal.node.history.records import TimerTask

log = logging.getLogger(__name__)

RETRY_DELAY_S = 1.0  # a fire that failed (storage trouble) is retried this much later
CONCURRENT_FIRES_MAX = 256  # due timers fired in parallel; group commit batches them


class TimerProcessor:
    """Fires timer tasks at their ``fire_time``; a failed fire is retried."""

    def __init__(
        self,
        fire: Callable[[int, TimerTask], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fire = fire
        self._clock = clock
        self._heap: list[tuple[float, int, int, TimerTask]] = []
        self._seq = itertools.count()
        self._wakeup = trio.Event()
        self._limit = trio.Semaphore(CONCURRENT_FIRES_MAX)
        self.fired = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, shard: int, task: TimerTask) -> None:
        """Arm a timer task (called after its entry committed, or at shard load)."""
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (task.fire_time, next(self._seq), shard, task))
        if earliest is None or task.fire_time < earliest:
            self._wakeup.set()

    def drop_shard(self, shard: int) -> None:
        """Forget a shard's timers: another node leads it now and fires them."""
        kept = [entry for entry in self._heap if entry[2] != shard]
        if len(kept) != len(self._heap):
            heapq.heapify(kept)
            self._heap = kept
            self._wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Fire due timers until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                now = self._clock()
                while self._heap and self._heap[0][0] <= now:
                    _, _, shard, task = heapq.heappop(self._heap)
                    await self._limit.acquire()
                    nursery.start_soon(self._fire_one, shard, task)
                self._wakeup = trio.Event()
                delay = self._heap[0][0] - now if self._heap else 3600.0
                with trio.move_on_after(max(delay, 0.0)):
                    await self._wakeup.wait()

    async def _fire_one(self, shard: int, task: TimerTask) -> None:
        try:
            await self._fire(shard, task)
            self.fired += 1
        except wire.ShoalError as exc:
            # Leadership moving mid-fire is routine in a cluster: one line, no traceback.
            quiet = exc.code in (wire.Code.NOT_LEADER, wire.Code.UNAVAILABLE)
            log.log(logging.DEBUG if quiet else logging.WARNING,
                    "timer fire failed, will retry shard=%d kind=%s: %s", shard,
                    task.kind.name, exc.message)
            self._retry(shard, task)
        except Exception:
            log.warning("timer fire failed, will retry shard=%d kind=%s", shard, task.kind.name,
                        exc_info=True)
            self._retry(shard, task)
        finally:
            self._limit.release()

    def _retry(self, shard: int, task: TimerTask) -> None:
        # Keep the task itself: its row key includes the original fire time.
        heapq.heappush(self._heap, (self._clock() + RETRY_DELAY_S, next(self._seq), shard, task))
        self._wakeup.set()


def timer_firer(shards: ShardSet, engine: HistoryEngine
                ) -> Callable[[int, TimerTask], Awaitable[None]]:
    """The ``fire`` callback of a ``TimerProcessor`` for this node's shards."""

    async def fire_timer(shard_id: int, task: TimerTask) -> None:
        """Apply a due timer task through its shard's mailbox and delete its row.

        A shard this node no longer leads drops it: its new leader armed it at takeover."""
        if not shards.view.serving(shard_id):
            return
        shard = shards[shard_id]

        def op(b: Batch) -> None:
            st = b.find(task.run_id)
            tr = engine.on_timer(st, task, b.now) if st is not None else None
            if tr is None or not (tr.events or tr.transfer_tasks or tr.timer_tasks or tr.closed):
                b.defer_timer_delete(task)  # stale: nothing to write but the row's delete
                return
            b.record(st, tr)
            b.delete_timer_task(task)

        await shard.run_op(task.namespace, task.workflow_id, op)

    return fire_timer
