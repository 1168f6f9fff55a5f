"""The transfer processor: carries out a shard's cross-workflow outbox tasks.

Owns: running each START_CHILD / CANCEL_EXTERNAL / SIGNAL_EXTERNAL / CHILD_CLOSED /
PARENT_CLOSE_POLICY task (see ``records.TransferKind``) through a ``process`` callback,
retrying with backoff while it fails (the other workflow's shard is busy, or the two
halves of a child's life raced). The callback deletes the task's row when it is done, so a
task left after a crash runs again; every step is idempotent. Must not: decide what a task
means (``node/shard/cross_workflow.py`` does) or touch the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from shoal import wire
from shoal.node.history.records import TransferTask

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.05
RETRY_MAX_S = 10.0
CONCURRENT_MAX = 256


class TransferProcessor:
    """Runs transfer tasks as they are committed (and at shard load), retrying failures."""

    def __init__(self, process: Callable[[int, TransferTask], Awaitable[None]]) -> None:
        self._process = process
        self._send, self._recv = trio.open_memory_channel[tuple[int, TransferTask]](float("inf"))
        self._limit = trio.Semaphore(CONCURRENT_MAX)
        self.done = 0

    def add(self, shard: int, task: TransferTask) -> None:
        """Queue a task (after its entry committed, or at shard load)."""
        self._send.send_nowait((shard, task))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Process queued tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for shard, task in self._recv:
                await self._limit.acquire()
                nursery.start_soon(self._run_one, shard, task)

    async def _run_one(self, shard: int, task: TransferTask) -> None:
        delay = RETRY_FIRST_S
        try:
            while True:
                try:
                    await self._process(shard, task)
                    self.done += 1
                    return
                except wire.ShoalError as exc:
                    level = logging.DEBUG if exc.code == wire.Code.UNAVAILABLE else logging.WARNING
                    log.log(level, "transfer task will retry shard=%d kind=%s wf=%s: %s",
                            shard, task.kind.name, task.workflow_id, exc.message)
                except Exception:
                    log.warning("transfer task failed, will retry shard=%d kind=%s wf=%s",
                                shard, task.kind.name, task.workflow_id, exc_info=True)
                await trio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        finally:
            self._limit.release()
