"""The shards of this node as the handlers see them: which one a workflow id lives on,
whether it is served here, and reads of committed run state.

Owns: the shard lookup every handler group shares (``for_workflow``, ``served``), reading a
run's committed state from LMDB (``read_state``) and running an op where it is served
(``call``, through the router). Must not: change state (``Shard.run_op`` does) or decide
where a shard is served (the cluster view does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shoal import wire
from shoal.node.cluster.routing import shard_for
from shoal.node.cluster.views import ClusterView, not_leader
from shoal.node.shard.shard import Shard
from shoal.node.history import records
from shoal.store import tables
from shoal.store.env import Store

if TYPE_CHECKING:
    from shoal.node.cluster.router import Router


class ShardSet:
    """Every history shard of the cluster, as this node holds them (served here or not)."""

    def __init__(self, store: Store, shards: list[Shard], view: ClusterView) -> None:
        self.store, self.shards, self.view = store, shards, view
        # Runs ops on the node that serves them; the node sets it once the dispatcher exists.
        self.router: Router | None = None

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, shard_id: int) -> Shard:
        return self.shards[shard_id]

    def for_workflow(self, namespace: str, workflow_id: str) -> Shard:
        """The shard of a workflow id, which this node must be serving.

        Raises:
            ShoalError(NOT_LEADER): another node serves it (the router sends the request on).
        """
        return self.served(shard_for(namespace, workflow_id, len(self.shards)))

    def served(self, shard_id: int) -> Shard:
        """Shard ``shard_id`` if this node serves it; else ``NOT_LEADER``
        (``INVALID_ARGUMENT`` for an id outside 0..NUM_SHARDS-1, as a peer op may carry)."""
        if not 0 <= shard_id < len(self.shards):
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT,
                                  f"shard {shard_id} does not exist (0..{len(self.shards) - 1})")
        if not self.view.serving(shard_id):
            raise not_leader(f"shard {shard_id}", self.view.leader(shard_id), self.view)
        return self.shards[shard_id]

    async def call(self, ns: str, op: wire.Op, body: object) -> object:
        """Run ``op`` where it is served (another shard's leader, maybe on another node)."""
        assert self.router is not None, "the node sets ShardSet.router before serving"
        return await self.router.call(ns, op, body)

    def read_state(self, shard: Shard, ns: str, wf_id: str, run_id: str) -> records.ExecutionState:
        """The committed state of a run ('' = the current run) of a workflow on ``shard``.

        Raises:
            ShoalError(NOT_FOUND): no such workflow or run.
        """
        with self.store.read() as txn:
            if not run_id:
                cur = tables.get_current_run(txn, records.CurrentRun, shard.shard_id, ns, wf_id)
                if cur is None:
                    raise wire.ShoalError(
                        wire.Code.NOT_FOUND, f"workflow {wf_id!r} does not exist"
                    )
                run_id = cur.run_id
            st = tables.get_execution(txn, records.ExecutionState, shard.shard_id, ns, wf_id, run_id)
        if st is None:
            raise wire.ShoalError(
                wire.Code.NOT_FOUND, f"workflow {wf_id!r} run {run_id!r} does not exist"
            )
        return st
