"""List filters, counts, search attributes and memo against a real node (Temporal's
"search attributes" sample, ported: imports, trio and the address changed)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from shoal import workflow
from shoal.client import Client, WorkflowExecutionStatus
from shoal.sdk.connection import RPCError
from shoal.worker import Worker

from helpers.node_proc import wait_until

pytestmark = pytest.mark.timeout(60)


@dataclass
class Order:
    customer: str
    amount: int


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self.shipped = False

    @workflow.run
    async def run(self, order: Order) -> str:
        workflow.upsert_search_attributes({"Stage": "paid", "Amount": order.amount})
        await workflow.wait_condition(lambda: self.shipped)
        workflow.upsert_search_attributes({"Stage": "shipped"})
        return f"{order.customer}:{order.amount}"

    @workflow.signal
    def ship(self) -> None:
        self.shipped = True


async def test_list_and_count_by_query_follow_search_attributes(client: Client) -> None:
    tq = f"vis-{uuid.uuid4()}"
    batch = uuid.uuid4().hex[:8]  # every query names the batch so other tests' runs never match
    async with Worker(client, task_queue=tq, workflows=[OrderWorkflow]):
        handles = {}
        for i, (customer, amount) in enumerate([("ann", 10), ("bob", 25), ("ann", 40)]):
            handles[customer + str(i)] = await client.start_workflow(
                OrderWorkflow.run, Order(customer, amount), id=f"order-{batch}-{i}", task_queue=tq,
                search_attributes={"Batch": batch, "Customer": customer, "Tags": ["new", f"c{i}"]},
                memo={"note": f"order {i}", "placed": {"by": customer}},
            )

        async def ids(query: str, order: str = "") -> list[str]:
            return [w.id async for w in client.list_workflows(
                f"Batch = '{batch}' AND ({query}) {order}")]

        async def stage_is(stage: str, n: int) -> bool:
            return (await client.count_workflows(
                f"Batch = '{batch}' AND Stage = '{stage}'")).count == n

        # Upserts are visible to queries once the first workflow task has run.
        await wait_until(lambda: stage_is("paid", 3))

        await handles["bob1"].signal(OrderWorkflow.ship)
        assert await handles["bob1"].result() == "bob:25"

        assert await ids("Customer = 'ann'") == [f"order-{batch}-2", f"order-{batch}-0"]
        assert await ids("Customer = 'ann'", "ORDER BY StartTime ASC") == [
            f"order-{batch}-0", f"order-{batch}-2"]
        assert await ids("ExecutionStatus = 'Completed'") == [f"order-{batch}-1"]
        assert await ids("Amount >= 25 AND ExecutionStatus = 'Running'") == [f"order-{batch}-2"]
        assert await ids("Stage = 'shipped' OR Tags = 'c0'") == [
            f"order-{batch}-1", f"order-{batch}-0"]
        assert await ids(f"WorkflowType = 'OrderWorkflow' AND TaskQueue = '{tq}'") == [
            f"order-{batch}-{i}" for i in (2, 1, 0)]
        since = datetime.now(timezone.utc).isoformat()
        assert await ids(f"StartTime > '{since}'") == []

        count = await client.count_workflows(f"Batch = '{batch}' GROUP BY ExecutionStatus")
        assert count.count == 3
        assert count.groups == [(WorkflowExecutionStatus.RUNNING, 2),
                                (WorkflowExecutionStatus.COMPLETED, 1)]

        listed = [w async for w in client.list_workflows(f"WorkflowId = 'order-{batch}-0'")]
        assert listed[0].search_attributes == {
            "Batch": batch, "Customer": "ann", "Tags": ["new", "c0"], "Stage": "paid", "Amount": 10}
        assert await listed[0].memo() == {"note": "order 0", "placed": {"by": "ann"}}

        desc = await handles["ann0"].describe()
        assert await desc.memo() == {"note": "order 0", "placed": {"by": "ann"}}
        assert await desc.memo_value("note") == "order 0"
        assert await desc.memo_value("absent", "fallback") == "fallback"
        assert desc.search_attributes["Stage"] == "paid"

        for key in ("ann0", "ann2"):
            await handles[key].signal(OrderWorkflow.ship)
            await handles[key].result()
    assert (await client.count_workflows(
        f"Batch = '{batch}' AND ExecutionStatus = 'Running'")).count == 0


@pytest.mark.parametrize(("query", "fragment"), [
    ("WorkflowType = ", "position 15: expected a value"),
    ("ExecutionStatus = 'Sleeping'", "ExecutionStatus is one of"),
    ("StartTime > 'last week'", "ISO-8601"),
])
async def test_a_bad_query_is_a_clear_error(client: Client, query: str, fragment: str) -> None:
    with pytest.raises(RPCError) as err:
        [w async for w in client.list_workflows(query)]
    assert err.value.code == "INVALID_ARGUMENT" and fragment in str(err.value)
    with pytest.raises(RPCError) as err:
        await client.count_workflows(query)
    assert err.value.code == "INVALID_ARGUMENT"


async def test_group_by_is_refused_for_listing(client: Client) -> None:
    with pytest.raises(RPCError) as err:
        [w async for w in client.list_workflows("GROUP BY ExecutionStatus")]
    assert "count_workflows" in str(err.value)


async def test_a_value_that_cannot_be_searched_is_refused_before_sending(client: Client) -> None:
    with pytest.raises(TypeError, match="cannot be searched"):
        await client.start_workflow("Anything", id=f"x-{uuid.uuid4()}", task_queue="nowhere",
                                    search_attributes={"Blob": {"a": 1}})
