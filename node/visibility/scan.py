"""Listing and counting workflows across shards: this node's tables for the shards it leads,
a ``SCAN_VISIBILITY`` to each other leader for theirs.

Owns: finding every visibility row of a namespace that a list request accepts, wherever its
shard is led, and reading the local rows. Must not: write anything, or sort and page (the
list handler does).
"""

from __future__ import annotations

import trio

from shoal import wire
from shoal.node.cluster.peer_link import PeerUnavailable
from shoal.node.shard.shards import ShardSet
from shoal.node.visibility import list_filter
from shoal.store import tables

SCAN_TIMEOUT_S = 10.0


class VisibilityReader:
    """Reads visibility rows over every shard of the cluster."""

    def __init__(self, shards: ShardSet) -> None:
        self.shards = shards

    async def matching_runs(
        self, ns: str, req: wire.ListWorkflowsRequest, query: list_filter.ListFilter
    ) -> list[wire.WorkflowExecutionInfo]:
        """Every visibility row of ``ns`` that the request's fields and its query accept,
        read from each shard's leader (this node's tables for the shards it leads; a
        ``SCAN_VISIBILITY`` to each other leader for theirs).

        Raises:
            ShoalError(UNAVAILABLE): some shard had no reachable leader (the router gave up).
        """
        found: list[wire.WorkflowExecutionInfo] = []
        by_node: dict[str | None, list[int]] = {}
        for sid in range(len(self.shards)):
            node = self.shards.view.me if self.shards.view.serving(sid) else self.shards.view.leader(sid)
            by_node.setdefault(node, []).append(sid)
        todo = by_node.pop(None, [])
        found.extend(self.scan_local(ns, req, query, by_node.pop(self.shards.view.me, [])))
        for node, shards in by_node.items():  # one request per node that leads some
            assert node is not None
            try:
                resp = await self._scan_remote(ns, node, shards, req)
            except wire.ShoalError:
                todo.extend(shards)
                continue
            found.extend(resp.executions)
            todo.extend(resp.missing_shards)
        for sid in sorted(todo):
            # Our guess was stale: the router finds the leader (following its hints).
            resp = await self.shards.call(ns, wire.Op.SCAN_VISIBILITY, wire.ScanVisibilityRequest(
                shards=[sid], request=req))
            assert isinstance(resp, wire.ScanVisibilityResponse)
            found.extend(resp.executions)
        return found

    async def _scan_remote(self, ns: str, node: str, shards: list[int],
                           req: wire.ListWorkflowsRequest) -> wire.ScanVisibilityResponse:
        addr = self.shards.view.api_addr(node)
        router = self.shards.router
        peers = router.peers if router is not None else None
        if addr is None or peers is None:
            raise wire.ShoalError(wire.Code.UNAVAILABLE, f"node {node} cannot be reached")
        try:
            with trio.fail_after(SCAN_TIMEOUT_S):
                return await peers.call(addr, wire.Op.SCAN_VISIBILITY,
                                        wire.ScanVisibilityRequest(shards=shards, request=req), ns)
        except (wire.ShoalError, PeerUnavailable, trio.TooSlowError) as exc:
            raise wire.ShoalError(wire.Code.UNAVAILABLE, f"node {node}: {exc}") from None

    def scan_local(self, ns: str, req: wire.ListWorkflowsRequest,
                         query: list_filter.ListFilter, shards: list[int]
                         ) -> list[wire.WorkflowExecutionInfo]:
        found: list[wire.WorkflowExecutionInfo] = []
        with self.shards.store.read() as txn:
            for sid in shards:
                for info in tables.scan_visibility(txn, sid, ns):
                    if req.status is not None and info.status != req.status:
                        continue
                    if req.workflow_type is not None and info.workflow_type != req.workflow_type:
                        continue
                    if req.task_queue is not None and info.task_queue != req.task_queue:
                        continue
                    if query.matches(info):
                        found.append(info)
        return found
