"""Queries: ask a worker to run a query handler on a run's state; nothing is recorded.

Owns: the queries waiting for an answer on this node, each with the dispatch that offers it
to the workflow's task queue, and matching answers to askers. A query task travels through
matching like a workflow task (any poller of the run's queue takes it) but is soft state
only: if no worker answers within the asker's timeout the query fails with
DEADLINE_EXCEEDED, and a lost node simply loses its in-flight queries (the client asks
again). Must not: write to the store or the history engine (queries change nothing).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING
from dataclasses import dataclass, field

import trio

from shoal import wire
from shoal.node.cluster.router import new_query_id
from shoal.node.matching.matching import DispatchTask

if TYPE_CHECKING:
    from shoal.node.shard.shard import TaskSink
from shoal.node.history.records import TransferKind


@dataclass(eq=False, slots=True)
class PendingQuery:
    """A query waiting for its answer; ``dispatch`` says which run it asks."""

    dispatch: DispatchTask
    query: wire.WorkflowQuery
    done: trio.Event = field(default_factory=trio.Event)
    result: wire.Payloads | None = None
    error: str | None = None


class Queries:
    """The queries this node is waiting on. One per node."""

    def __init__(self, matching: TaskSink, me: str = "local") -> None:
        """``matching``: where query tasks go; ``me``: this node's id, in every query id
        (a worker's answer is routed by it to the node that waits)."""
        self.matching, self.me = matching, me
        self._pending: dict[str, PendingQuery] = {}
        # Query dispatches take negative task ids, so they never collide with a shard's.
        self._ids = itertools.count(-1, -1)

    async def ask(
        self, *, shard: int, namespace: str, workflow_id: str, run_id: str, task_queue: str,
        query: wire.WorkflowQuery, timeout_s: float,
    ) -> wire.Payloads:
        """Offer the query to the run's task queue and wait for a worker's answer.

        Raises:
            ShoalError: QUERY_FAILED with the worker's message if the handler failed or
                does not exist; DEADLINE_EXCEEDED if no worker answered in ``timeout_s``.
        """
        query_id = new_query_id(self.me)
        dispatch = DispatchTask(
            shard=shard, task_id=next(self._ids), kind=TransferKind.WORKFLOW_TASK,
            namespace=namespace, workflow_id=workflow_id, run_id=run_id, task_queue=task_queue,
            scheduled_event_id=0, attempt=0, query_id=query_id,
        )
        pending = self._pending[query_id] = PendingQuery(dispatch=dispatch, query=query)
        try:
            self.matching.add(dispatch)
            with trio.move_on_after(timeout_s):
                await pending.done.wait()
        finally:
            del self._pending[query_id]
        if not pending.done.is_set():
            raise wire.ShoalError(
                wire.Code.DEADLINE_EXCEEDED,
                f"no worker answered query {query.query_type!r} of workflow {workflow_id!r} "
                f"within {timeout_s:g}s: is a worker polling task queue {task_queue!r}?",
            )
        if pending.error is not None:
            raise wire.ShoalError(wire.Code.QUERY_FAILED, pending.error)
        return pending.result or []

    def waiting(self, query_id: str) -> PendingQuery | None:
        """The query still waiting under ``query_id`` (None: its asker gave up)."""
        return self._pending.get(query_id)

    def answer(self, req: wire.RespondQueryTaskRequest) -> None:
        """A worker's answer. An answer nobody waits for any more is dropped."""
        pending = self._pending.get(req.query_id)
        if pending is None or pending.done.is_set():
            return
        pending.result, pending.error = list(req.result), req.error
        pending.done.set()
