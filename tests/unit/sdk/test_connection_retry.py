"""ServiceConnection.call's retry budget (sdk/connection.py), against a real server."""

from __future__ import annotations

import trio

from shoal import wire
from shoal.node.api.server import Dispatcher, NodeIdentity, serve
from shoal.sdk.connection import ServiceConnection


async def test_a_call_retries_for_its_whole_budget_after_a_long_wait_ends_in_failure() -> None:
    """A long poll that waits, then fails with a retryable code (the shard's leader moved
    during the wait) is retried for ``retry_for_s`` from that failure: the wait is not time
    spent retrying. (Found reviewing a `make chaos` run where a result call gave up.)"""
    calls: list[float] = []

    async def status(namespace: str, req: wire.ClusterStatusRequest) -> wire.ClusterStatusResponse:
        calls.append(trio.current_time())
        if len(calls) == 1:
            await trio.sleep(1.0)  # longer than the whole retry budget below
        if len(calls) < 3:
            raise wire.ShoalError(wire.Code.UNAVAILABLE, "leadership moved")
        return wire.ClusterStatusResponse(node="node-a", cluster_name="shoal", num_shards=4)

    async with trio.open_nursery() as nursery:
        dispatcher = Dispatcher(None, NodeIdentity("node-a", "shoal", 4))
        dispatcher.add_handler(wire.Op.CLUSTER_STATUS, status)
        port = await nursery.start(serve, dispatcher, "127.0.0.1", 0)
        conn = ServiceConnection(f"127.0.0.1:{port}", wire.DEFAULT_NAMESPACE, identity="client")
        try:
            resp = await conn.call(wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest(),
                                   retry_for_s=0.5)
        finally:
            await conn.close()
        assert resp.node == "node-a" and len(calls) == 3
        nursery.cancel_scope.cancel()
