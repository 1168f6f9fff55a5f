"""A query confirms leadership with a quorum before it reads the run's state (DESIGN §4), so
a leader that was cut off and replaced cannot answer from its stale copy."""

from __future__ import annotations

import pytest

from helpers.inproc import inproc_node
from shoal import wire


def _query(wf_id: str, timeout_s: float) -> wire.QueryWorkflowRequest:
    return wire.QueryWorkflowRequest(execution=wire.WorkflowExecution(workflow_id=wf_id),
                                     query=wire.WorkflowQuery(query_type="state"),
                                     timeout_s=timeout_s)


async def test_a_query_is_refused_when_the_quorum_does_not_confirm_this_leader(tmp_path) -> None:
    async with inproc_node(tmp_path / "data", num_shards=1) as node:
        svc = node.service
        await svc.start_workflow("default", wire.StartWorkflowRequest(
            workflow_id="a", workflow_type="T", task_queue="q", request_id="a"))
        barriers: list[str] = []

        async def deposed() -> None:  # what a leader cut off from its quorum gets
            barriers.append("a")
            raise wire.ShoalError(wire.Code.NOT_LEADER, "shard 0 is not led here")

        svc.shards[0].log.read_barrier = deposed
        with pytest.raises(wire.ShoalError) as info:
            await svc.query_workflow("default", _query("a", timeout_s=0.5))
        assert info.value.code == wire.Code.NOT_LEADER and barriers == ["a"]


async def test_a_confirmed_query_goes_on_to_a_worker(tmp_path) -> None:
    async with inproc_node(tmp_path / "data", num_shards=1) as node:
        svc = node.service
        await svc.start_workflow("default", wire.StartWorkflowRequest(
            workflow_id="a", workflow_type="T", task_queue="q", request_id="a"))
        confirmed: list[str] = []
        barrier = svc.shards[0].log.read_barrier

        async def counted() -> None:
            confirmed.append("a")
            await barrier()

        svc.shards[0].log.read_barrier = counted
        with pytest.raises(wire.ShoalError) as info:  # no worker polls "q" here
            await svc.query_workflow("default", _query("a", timeout_s=0.2))
        assert info.value.code == wire.Code.DEADLINE_EXCEEDED and confirmed == ["a"]
