"""Matching: in-memory task queues that pair dispatched tasks with long-polling workers.

Owns: one queue per (namespace, task kind, task queue name): a backlog of dispatched tasks and
a line of parked pollers; sync match when a poller is waiting (DESIGN §3.4). Matching is soft
state: history is the authority and re-dispatches every scheduled-but-not-started task after a
restart, so nothing here is persisted. Duplicates (the same task id dispatched twice) are
dropped. Must not: touch the store or decide whether a task is still valid (the shard's
record-started call does that).
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field

import trio

from shoal.node.history.records import TransferKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DispatchTask:
    """A task handed to matching: enough to ask the shard to record it as started."""

    shard: int
    task_id: int
    kind: TransferKind
    namespace: str
    workflow_id: str
    run_id: str
    task_queue: str
    scheduled_event_id: int
    attempt: int
    query_id: str = ""  # a query task (see ``node/shard/queries.py``): nothing to record started


@dataclass(eq=False, slots=True)
class _Poller:
    """A parked long poll; ``task`` is set by the dispatcher before ``ready`` fires."""

    ready: trio.Event = field(default_factory=trio.Event)
    task: DispatchTask | None = None


class TaskQueue:
    """One partition's backlog and pollers. Not thread-safe: used from the trio loop only."""

    def __init__(self) -> None:
        self._backlog: collections.deque[DispatchTask] = collections.deque()
        self._queued_ids: set[tuple[int, int]] = set()  # (shard, task_id) in the backlog
        self._pollers: collections.deque[_Poller] = collections.deque()

    @property
    def backlog_size(self) -> int:
        return len(self._backlog)

    @property
    def poller_count(self) -> int:
        return len(self._pollers)

    def add(self, task: DispatchTask) -> bool:
        """Queue a task or hand it to a waiting poller. Returns False for a duplicate."""
        key = (task.shard, task.task_id)
        if key in self._queued_ids:
            return False
        while self._pollers:
            poller = self._pollers.popleft()
            if poller.task is None and not poller.ready.is_set():
                poller.task = task
                poller.ready.set()
                return True
        self._backlog.append(task)
        self._queued_ids.add(key)
        return True

    async def poll(self, wait_s: float) -> DispatchTask | None:
        """Take the oldest task, waiting up to ``wait_s`` for one; None when the wait ends."""
        if self._backlog:
            task = self._backlog.popleft()
            self._queued_ids.discard((task.shard, task.task_id))
            return task
        poller = _Poller()
        self._pollers.append(poller)
        try:
            with trio.move_on_after(wait_s):
                await poller.ready.wait()
        except BaseException:
            # Cancelled after a dispatcher picked us: the task must not be lost.
            if poller.task is not None:
                self.add(poller.task)
            raise
        finally:
            if poller.task is None:
                # Mark it done so a dispatcher that still finds it in the line skips it.
                poller.ready.set()
                try:
                    self._pollers.remove(poller)
                except ValueError:
                    pass
        return poller.task

    def give_back(self, task: DispatchTask) -> None:
        """Return a task taken by a poll that could not deliver it (its caller went away)."""
        self.add(task)


class Matching:
    """All task queues of this node, created on first use."""

    def __init__(self) -> None:
        self._queues: dict[tuple[str, TransferKind, str], TaskQueue] = {}

    def queue(self, namespace: str, kind: TransferKind, name: str) -> TaskQueue:
        key = (namespace, kind, name)
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = TaskQueue()
        return q

    def add(self, task: DispatchTask) -> bool:
        return self.queue(task.namespace, task.kind, task.task_queue).add(task)

    def stats(self) -> list[dict[str, object]]:
        """Backlog and pollers per queue, for status output."""
        return [
            {"namespace": ns, "kind": kind.name, "task_queue": name,
             "backlog": q.backlog_size, "pollers": q.poller_count}
            for (ns, kind, name), q in sorted(self._queues.items())
        ]
