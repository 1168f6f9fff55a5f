"""temporalio's update handles against a real node: ``start_update`` returns once a worker
accepted the update (its handler still running), ``WorkflowUpdateHandle.result()`` waits for
the outcome, and ``get_update_handle`` reaches an update by id from any client.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import trio

from shoal import wire, workflow
from shoal.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from shoal.sdk.connection import RPCError
from shoal.worker import Worker

from shoal.node.history.invariants import check_history

pytestmark = pytest.mark.timeout(60)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


@workflow.defn
class Approval:
    """An update whose handler waits for a signal: it stays accepted and running until then."""

    def __init__(self) -> None:
        self.approved = False
        self.finished = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.finished)
        return "finished"

    @workflow.update
    async def request(self, what: str) -> str:
        await workflow.wait_condition(lambda: self.approved)
        return f"approved {what}"

    @request.validator
    def check_request(self, what: str) -> None:
        if not what:
            raise ValueError("nothing to approve")

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.signal
    def finish(self) -> None:
        self.finished = True


async def _event_types(handle) -> list[wire.EventType]:
    return [e.raw.event_type for e in (await handle.fetch_history()).events]


async def test_start_update_returns_at_acceptance_and_result_waits_for_the_handler(
    client: Client,
) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Approval]):
        handle = await client.start_workflow(Approval.run, id=_id("upd"), task_queue=tq)
        upd = await handle.start_update(Approval.request, "leave", id="leave-1",
                                        wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        assert isinstance(upd, WorkflowUpdateHandle)
        assert (upd.id, upd.workflow_id) == ("leave-1", handle.id)
        assert upd.workflow_run_id == handle.result_run_id
        types = await _event_types(handle)
        assert wire.EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED in types
        assert wire.EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED not in types
        # The handler waits for the signal: a short wait for the result times out.
        with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError):
            await upd.result(rpc_timeout=timedelta(seconds=0.3))
        await handle.signal(Approval.approve)
        assert await upd.result() == "approved leave"
        assert await upd.result() == "approved leave"  # known now: no call
        await handle.signal(Approval.finish)
        assert await handle.result() == "finished"
    assert check_history([e.raw for e in (await handle.fetch_history()).events]) == []


async def test_an_update_handle_by_id_from_a_second_client_gets_the_outcome(
    client: Client, node,
) -> None:
    tq = _id("tq")
    other = await Client.connect(node.address)
    try:
        async with Worker(client, task_queue=tq, workflows=[Approval]):
            handle = await client.start_workflow(Approval.run, id=_id("upd2"), task_queue=tq)
            await handle.start_update(Approval.request, "laptop", id="laptop-1",
                                      wait_for_stage=WorkflowUpdateStage.ACCEPTED)
            theirs = other.get_workflow_handle(handle.id).get_update_handle_for(
                Approval.request, "laptop-1")
            got: list[str] = []

            async def wait_for_it() -> None:
                got.append(await theirs.result())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_for_it)  # long-polls on the second connection
                await handle.signal(Approval.approve)
            assert got == ["approved laptop"]
            # Completed: its outcome is kept in the run, so a late handle still gets it.
            late = other.get_workflow_handle(handle.id).get_update_handle("laptop-1", result_type=str)
            assert await late.result() == "approved laptop"
            await handle.signal(Approval.finish)
            await handle.result()
    finally:
        await other.service.close()


async def test_start_update_waiting_for_completed_returns_a_known_outcome(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Approval]):
        handle = await client.start_workflow(Approval.run, id=_id("upd3"), task_queue=tq)
        await handle.signal(Approval.approve)
        upd = await handle.start_update(Approval.request, "desk",
                                        wait_for_stage=WorkflowUpdateStage.COMPLETED)
        assert upd._known_outcome is not None
        assert await upd.result() == "approved desk"
        with pytest.raises(ValueError, match="ADMITTED"):
            await handle.start_update(Approval.request, "x", wait_for_stage=WorkflowUpdateStage.ADMITTED)
        await handle.signal(Approval.finish)
        await handle.result()


async def test_a_rejected_update_fails_its_handle_and_is_not_found_by_id(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Approval]):
        handle = await client.start_workflow(Approval.run, id=_id("upd4"), task_queue=tq)
        # As temporalio: start_update returns the settled handle; result() raises.
        upd = await handle.start_update(Approval.request, "", id="empty-1",
                                        wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await upd.result()
        assert "nothing to approve" in str(exc.value.cause)
        assert wire.EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in await _event_types(handle)
        # A rejection is not recorded: asked for by id later, the run does not know it.
        with pytest.raises(RPCError) as err:
            await handle.get_update_handle("empty-1").result()
        assert err.value.code == wire.Code.NOT_FOUND
        await handle.signal(Approval.finish)
        await handle.result()


async def test_result_of_an_unknown_update_id_raises_not_found(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Approval]):
        handle = await client.start_workflow(Approval.run, id=_id("upd5"), task_queue=tq)
        with pytest.raises(RPCError) as err:
            await handle.get_update_handle("never-sent").result()
        assert err.value.code == wire.Code.NOT_FOUND
        assert "never-sent" in err.value.message
        await handle.signal(Approval.finish)
        await handle.result()
    with pytest.raises(RPCError) as err:
        await client.get_workflow_handle(_id("no-such-wf")).get_update_handle("u").result()
    assert err.value.code == wire.Code.NOT_FOUND


async def test_result_of_an_accepted_update_raises_when_the_run_closes_first(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Approval]):
        handle = await client.start_workflow(Approval.run, id=_id("upd6"), task_queue=tq)
        upd = await handle.start_update(Approval.request, "car",
                                        wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        await handle.terminate(reason="test")
        with pytest.raises(RPCError) as err:
            await upd.result()
        assert err.value.code == wire.Code.WORKFLOW_NOT_RUNNING
