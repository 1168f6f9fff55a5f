"""Queries: ask a worker to run a query handler on a run's state; nothing is recorded.

Owns: the queries waiting for an answer on this node, in one of two ways, as Temporal
dispatches them. A *direct* query travels through matching as a query task (any poller of
the run's queue takes it and replays the run's history) when no event is waiting for a
worker. A *buffered* query waits on its run while events are (a workflow task is scheduled
or running): it is attached to the next workflow task a worker starts and answered in that
task's completion, on the state after those events, so a query always sees every event
that was in history when it arrived. Both are soft state: if no worker answers within the
asker's timeout the query fails with DEADLINE_EXCEEDED, and a lost node simply loses its
queries (the client asks again). Must not: write to the store or the history engine.
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


RunKey = tuple[str, str, str]  # (namespace, workflow id, run id)
TaskKey = tuple[int, int]  # (started event id, attempt) of one workflow task


@dataclass(eq=False, slots=True)
class PendingQuery:
    """A query waiting for its answer; ``dispatch`` says which run a direct one asks;
    ``attached_to`` which started workflow task carries a buffered one (None: none yet)."""

    dispatch: DispatchTask | None
    query: wire.WorkflowQuery
    done: trio.Event = field(default_factory=trio.Event)
    result: wire.Payloads | None = None
    error: str | None = None
    attached_to: TaskKey | None = None


class Queries:
    """The queries this node is waiting on. One per node."""

    def __init__(self, matching: TaskSink, me: str = "local") -> None:
        """``matching``: where query tasks go; ``me``: this node's id, in every query id
        (a worker's answer is routed by it to the node that waits)."""
        self.matching, self.me = matching, me
        self._pending: dict[str, PendingQuery] = {}
        self._buffered: dict[RunKey, dict[str, PendingQuery]] = {}
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

    # --- buffered queries (answered with a workflow task) --------------------------------

    def buffer(self, key: RunKey, query: wire.WorkflowQuery) -> tuple[str, PendingQuery]:
        """Hold ``query`` for the next workflow task of run ``key``."""
        query_id = new_query_id(self.me)
        pending = PendingQuery(dispatch=None, query=query)
        self._buffered.setdefault(key, {})[query_id] = pending
        return query_id, pending

    def unbuffer(self, key: RunKey, query_id: str) -> None:
        """The asker is done (answered, gave up, or goes direct)."""
        run = self._buffered.get(key)
        if run is not None:
            run.pop(query_id, None)
            if not run:
                del self._buffered[key]

    def attach(self, key: RunKey, task: TaskKey) -> dict[str, wire.WorkflowQuery]:
        """The buffered queries a workflow task of run ``key`` that just started carries."""
        carried: dict[str, wire.WorkflowQuery] = {}
        for query_id, pending in self._buffered.get(key, {}).items():
            if pending.attached_to is None and not pending.done.is_set():
                pending.attached_to = task
                carried[query_id] = pending.query
        return carried

    def settle(self, key: RunKey, task: TaskKey, answers: dict[str, wire.QueryAnswer]) -> None:
        """Workflow task ``task`` completed with ``answers``; a query it carried but did
        not answer waits for the next task (or goes direct)."""
        for query_id, pending in self._buffered.get(key, {}).items():
            if pending.attached_to != task:
                continue
            answer = answers.get(query_id)
            if answer is None:
                pending.attached_to = None
                continue
            pending.result, pending.error = list(answer.result), answer.error
            pending.done.set()

    def detach_unless(self, key: RunKey, current: TaskKey | None) -> None:
        """Queries carried by a workflow task that is no longer the run's started one (it
        failed or timed out) wait for the next."""
        for pending in self._buffered.get(key, {}).values():
            if pending.attached_to is not None and pending.attached_to != current:
                pending.attached_to = None
