"""The task router: hands committed workflow and activity tasks to their partition owner's
matching (DESIGN §3, step 4).

Owns: delivering each dispatched task to the node whose matching holds its task queue
partition (at once when that is this node, in ``ADD_TASKS`` batches otherwise), retrying
undelivered batches, and the wire form of a dispatched task. Must not: start tasks (the
shard's leader records a start) or decide who owns a partition (the view does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from shoal import wire
from shoal.node.cluster.peer_link import PeerLink, PeerUnavailable
from shoal.node.cluster.views import ClusterView
from shoal.node.matching.matching import DispatchTask, Matching
from shoal.node.history.records import TransferKind

log = logging.getLogger(__name__)

TASK_SEND_BATCH_MAX = 256
TASK_RESEND_S = 0.25  # an undelivered task batch is retried (re-resolving its owner) this often


def to_wire(task: DispatchTask) -> wire.TaskDispatch:
    return wire.TaskDispatch(
        shard=task.shard, task_id=task.task_id, kind=int(task.kind), namespace=task.namespace,
        workflow_id=task.workflow_id, run_id=task.run_id, task_queue=task.task_queue,
        scheduled_event_id=task.scheduled_event_id, attempt=task.attempt, query_id=task.query_id)


def from_wire(task: wire.TaskDispatch) -> DispatchTask:
    """Raises ShoalError(INVALID_ARGUMENT) for a kind matching does not hold."""
    try:
        kind = TransferKind(task.kind)
    except ValueError:
        kind = None
    if kind not in (TransferKind.WORKFLOW_TASK, TransferKind.ACTIVITY_TASK):
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"task kind {task.kind} is not matched")
    return DispatchTask(
        shard=task.shard, task_id=task.task_id, kind=kind, namespace=task.namespace,
        workflow_id=task.workflow_id, run_id=task.run_id, task_queue=task.task_queue,
        scheduled_event_id=task.scheduled_event_id, attempt=task.attempt, query_id=task.query_id)


class TaskRouter:
    """Hands each dispatched task to its partition owner's matching (a ``TaskSink``).

    Local owners get it at once; remote ones in ``ADD_TASKS`` batches from one sender task
    per owner. A batch that cannot be delivered is retried (its owner re-resolved, so a
    dead owner's tasks go to its successor); tasks of a shard this node no longer leads are
    dropped, since the new leader re-dispatches them from its outbox.
    """

    def __init__(self, view: ClusterView, matching: Matching, peers: PeerLink | None,
                 still_mine: Callable[[DispatchTask], bool] = lambda t: True) -> None:
        self.view, self.matching, self.peers, self.still_mine = view, matching, peers, still_mine
        self._pending: list[DispatchTask] = []
        self._wake = trio.Event()
        self.sent = 0
        self.resent = 0

    def add(self, task: DispatchTask) -> bool:
        owner = self.view.partition_owner(task.namespace, task.task_queue)
        if owner == self.view.me:
            return self.matching.add(task)
        self._pending.append(task)
        self._wake.set()
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver remote tasks until cancelled."""
        task_status.started()
        while True:
            if not self._pending:
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            pending, self._pending = self._pending, []
            by_owner: dict[str, list[DispatchTask]] = {}
            for task in pending:
                if not self.still_mine(task):
                    continue
                owner = self.view.partition_owner(task.namespace, task.task_queue)
                if owner == self.view.me:
                    self.matching.add(task)
                else:
                    by_owner.setdefault(owner, []).append(task)
            failed: list[DispatchTask] = []
            async with trio.open_nursery() as nursery:
                for owner, tasks in by_owner.items():
                    nursery.start_soon(self._send, owner, tasks, failed)
            if failed:
                self.resent += len(failed)
                self._pending = failed + self._pending
                await trio.sleep(TASK_RESEND_S)

    async def _send(self, owner: str, tasks: list[DispatchTask], failed: list[DispatchTask]) -> None:
        addr = self.view.api_addr(owner)
        for i in range(0, len(tasks), TASK_SEND_BATCH_MAX):
            chunk = tasks[i:i + TASK_SEND_BATCH_MAX]
            try:
                if addr is None or self.peers is None:
                    raise PeerUnavailable(f"no address for {owner}")
                with trio.fail_after(5.0):
                    await self.peers.call(addr, wire.Op.ADD_TASKS,
                                          wire.AddTasksRequest(tasks=[to_wire(t) for t in chunk]),
                                          chunk[0].namespace)
                self.sent += len(chunk)
            except (wire.ShoalError, PeerUnavailable, trio.TooSlowError) as exc:
                log.debug("tasks to %s not delivered, will retry: %s", owner, exc)
                failed.extend(chunk)

    async def on_add_tasks(self, namespace: str, req: wire.AddTasksRequest) -> wire.Empty:
        """``ADD_TASKS``: tasks for this node's matching. Bad entries are refused whole."""
        tasks = [from_wire(t) for t in req.tasks]
        for task in tasks:
            self.matching.add(task)
        return wire.Empty()
