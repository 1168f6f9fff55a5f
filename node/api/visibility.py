"""Handlers for listing, counting and scanning workflows (visibility).

Owns: checking list and count requests, sorting and paging what the reader finds, grouping
counts, and the ``SCAN_VISIBILITY`` peer op (the rows of the shards this node leads). Must
not: write anything.
"""

from __future__ import annotations

import collections

from shoal import wire
from shoal.node.api.checks import check_page_size, page_token
from shoal.node.shard.shards import ShardSet
from shoal.node.visibility import list_filter
from shoal.node.visibility.scan import VisibilityReader

class VisibilityOps:
    """``LIST_WORKFLOWS``, ``COUNT_WORKFLOWS`` and ``SCAN_VISIBILITY``."""

    def __init__(self, shards: ShardSet) -> None:
        self.shards = shards
        self.reader = VisibilityReader(shards)

    async def list_workflows(
        self, ns: str, req: wire.ListWorkflowsRequest
    ) -> wire.ListWorkflowsResponse:
        check_page_size(req.page_size)
        query = list_filter.parse(req.query)
        if query.group_by_status:
            raise wire.ShoalError(
                wire.Code.INVALID_ARGUMENT,
                "GROUP BY is for counting; use count_workflows, or drop GROUP BY to list",
            )
        offset = page_token(req.next_page_token, default=0)
        found = await self.reader.matching_runs(ns, req, query)
        query.sort(found)
        page = found[offset : offset + req.page_size]
        more = offset + req.page_size < len(found)
        return wire.ListWorkflowsResponse(
            executions=page, next_page_token=wire.dumps(offset + req.page_size) if more else None
        )

    async def count_workflows(
        self, ns: str, req: wire.CountWorkflowsRequest
    ) -> wire.CountWorkflowsResponse:
        query = list_filter.parse(req.query)
        found = await self.reader.matching_runs(ns, wire.ListWorkflowsRequest(query=req.query), query)
        groups: list[wire.CountWorkflowsGroup] = []
        if query.group_by_status:
            by_status = collections.Counter(info.status for info in found)
            groups = [
                wire.CountWorkflowsGroup(status=status, count=n)
                for status, n in sorted(by_status.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
        return wire.CountWorkflowsResponse(count=len(found), groups=groups)

    async def scan_visibility(self, ns: str, req: wire.ScanVisibilityRequest
                              ) -> wire.ScanVisibilityResponse:
        """``SCAN_VISIBILITY``: the rows of the asked shards this node leads."""
        query = list_filter.parse(req.request.query)
        if len(req.shards) == 1:
            self.shards.served(req.shards[0])  # routed to us as its leader: NOT_LEADER with a hint
        for sid in req.shards:
            if not 0 <= sid < len(self.shards):
                raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"shard {sid} does not exist")
        mine = [s for s in req.shards if self.shards.view.serving(s)]
        missing = sorted(set(req.shards) - set(mine))
        return wire.ScanVisibilityResponse(
            executions=self.reader.scan_local(ns, req.request, query, mine),
            missing_shards=missing)
