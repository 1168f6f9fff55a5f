"""The partition drill's cut (node/cluster/netfault.py) and every path between nodes that obeys it:
replication going out, forwarded requests and task hand-offs going out, peer connections
coming in. Gossip's side is in test_membership.py."""

from __future__ import annotations

import pytest
import trio

from shoal import wire
from shoal.node.cluster.router import PeerCalls
from shoal.node.cluster.netfault import NetworkFaults, parse_blocked_addrs
from shoal.node.replication.transport import PeerReplicaTransport
from shoal.node.api.server import Dispatcher, NodeIdentity, serve
from shoal.sdk.connection import ConnectionLost, ServiceConnection

OWN, B, C = "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"
MEMBERS = [("node-a", OWN, f"ws://{OWN}"), ("node-b", B, "ws://10.0.0.2:9002"),
           ("node-c", C, f"ws://{C}")]


def cut_off_from_b() -> NetworkFaults:
    faults = NetworkFaults()
    faults.set([B], OWN, MEMBERS)
    return faults


# --- the cut itself ------------------------------------------------------------------------


def test_a_blocked_gossip_address_names_its_node_and_api_address() -> None:
    faults = cut_off_from_b()
    assert faults.active and faults.blocked_addrs == [B]
    assert faults.blocks_node("node-b") and not faults.blocks_node("node-c")
    assert faults.blocks_addr(B) and faults.blocks_addr("ws://10.0.0.2:9002")
    assert faults.blocks_addr("10.0.0.2:9002") and not faults.blocks_addr(C)


def test_a_blocked_member_stays_cut_off_after_gossip_forgets_it() -> None:
    faults = NetworkFaults()
    faults.set([B], OWN, [])  # not known yet: only its address is cut
    assert not faults.blocks_node("node-b") and faults.blocks_addr(B)
    faults.learn(MEMBERS)  # gossip hears of it
    faults.learn(MEMBERS[:1])  # ... and later reclaims it as dead
    assert faults.blocks_node("node-b")


def test_clearing_the_drill_unblocks_everything() -> None:
    faults = cut_off_from_b()
    faults.set([], OWN, MEMBERS)
    assert not faults.active and faults.blocked_addrs == []
    assert not faults.blocks_node("node-b") and not faults.blocks_addr(B)
    assert not faults.refuses_peer("peer:node-b")


def test_a_bad_drill_changes_nothing() -> None:
    faults = cut_off_from_b()
    with pytest.raises(wire.ShoalError, match="is this node's own"):
        faults.set([C, OWN], OWN, MEMBERS)
    assert faults.blocked_addrs == [B] and faults.blocks_node("node-b")


def test_only_a_blocked_peers_identity_is_refused_and_each_refusal_counts() -> None:
    faults = cut_off_from_b()
    assert faults.refuses_peer("peer:node-b")
    assert not faults.refuses_peer("peer:node-c")
    assert not faults.refuses_peer("node-b")  # a client that merely calls itself that
    assert faults.stats.fault_peer_refused_in == 1


def test_blocked_addresses_match_without_brackets_or_case() -> None:
    assert parse_blocked_addrs(["[::1]:7002", "Node-A:7003"], "[::1]:7001") == {
        ("::1", 7002): "[::1]:7002", ("node-a", 7003): "Node-A:7003"}
    with pytest.raises(wire.ShoalError, match="the limit is 1024"):
        parse_blocked_addrs([f"h:{p}" for p in range(1, 1026)], "h:9999")


# --- replication going out -----------------------------------------------------------------


class _Links:
    """A peer link that records each batch it is asked to carry."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []  # (address, frames)

    async def request(self, addr: str, op: wire.Op, body: wire.ReplMessagesRequest) -> None:
        self.sent.append((addr, len(body.frames)))


def _prepare(shard: int) -> wire.ReplMessage:
    return wire.Prepare(shard=shard, epoch=wire.Epoch(1, "node-a"))


async def test_replication_to_a_blocked_peer_is_dropped_and_counted() -> None:
    faults, links = cut_off_from_b(), _Links()
    async with trio.open_nursery() as nursery:
        addresses = {"node-b": B, "node-c": C}
        transport = PeerReplicaTransport(links, addresses.get, nursery,  # type: ignore[arg-type]
                                         faults=faults)
        for shard in range(3):
            transport.send("node-a", "node-b", _prepare(shard))
            transport.send("node-a", "node-c", _prepare(shard))
        await trio.testing.wait_all_tasks_blocked()
        assert links.sent == [(C, 3)]
        assert faults.stats.fault_repl_dropped_out == 3 and transport.stats.dropped == 3
        nursery.cancel_scope.cancel()


async def test_replication_queued_before_the_cut_is_dropped_when_its_turn_comes() -> None:
    faults, links = NetworkFaults(), _Links()
    async with trio.open_nursery() as nursery:
        transport = PeerReplicaTransport(links, {"node-b": B}.get, nursery,  # type: ignore[arg-type]
                                         faults=faults)
        transport.send("node-a", "node-b", _prepare(1))  # queued; its sender has not run
        faults.set([B], OWN, MEMBERS)
        await trio.testing.wait_all_tasks_blocked()
        assert links.sent == [] and faults.stats.fault_repl_dropped_out == 1
        nursery.cancel_scope.cancel()


# --- requests between nodes ----------------------------------------------------------------


async def test_a_forwarded_call_to_a_blocked_peer_fails_as_a_lost_connection() -> None:
    faults = cut_off_from_b()
    peers = PeerCalls("node-a", faults=faults)
    with pytest.raises(ConnectionLost, match="partition drill"):
        await peers.call("10.0.0.2:9002", "default", wire.Op.CLUSTER_STATUS,
                         wire.ClusterStatusRequest())
    assert faults.stats.fault_calls_failed_out == 1


async def _serving(nursery: trio.Nursery, faults: NetworkFaults) -> str:
    dispatcher = Dispatcher(None, NodeIdentity("node-a", "shoal", 4))
    dispatcher.peer_cut_off = faults.refuses_peer

    async def status(namespace: str, req: wire.ClusterStatusRequest) -> wire.ClusterStatusResponse:
        return wire.ClusterStatusResponse(node="node-a", cluster_name="shoal", num_shards=4)

    dispatcher.add_handler(wire.Op.CLUSTER_STATUS, status)
    port = await nursery.start(serve, dispatcher, "127.0.0.1", 0)
    return f"127.0.0.1:{port}"


async def _ask(addr: str, identity: str, *, peer: bool = True,
               conn: ServiceConnection | None = None) -> str:
    conn = conn or ServiceConnection(addr, wire.DEFAULT_NAMESPACE, identity=identity, peer=peer)
    try:
        resp = await conn.call(wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest(), retry_for_s=0)
    finally:
        if conn.identity == identity:
            await conn.close()
    return resp.node


async def test_a_blocked_peer_cannot_connect_and_others_are_served() -> None:
    faults = cut_off_from_b()
    async with trio.open_nursery() as nursery:
        addr = await _serving(nursery, faults)
        with pytest.raises(ConnectionLost):
            await _ask(addr, "peer:node-b")
        assert await _ask(addr, "peer:node-c") == "node-a"
        assert await _ask(addr, "peer:node-b", peer=False) == "node-a"  # a client is no peer
        assert faults.stats.fault_peer_refused_in == 1
        nursery.cancel_scope.cancel()


async def test_a_peer_connected_before_the_cut_is_cut_at_its_next_request() -> None:
    faults = NetworkFaults()
    async with trio.open_nursery() as nursery:
        addr = await _serving(nursery, faults)
        conn = ServiceConnection(addr, wire.DEFAULT_NAMESPACE, identity="peer:node-b", peer=True)
        assert await _ask(addr, "", conn=conn) == "node-a"
        faults.set([B], OWN, MEMBERS)
        with pytest.raises(ConnectionLost):
            await _ask(addr, "", conn=conn)
        faults.set([], OWN)
        assert await _ask(addr, "", conn=conn) == "node-a"  # healed: it reconnects
        await conn.close()
        nursery.cancel_scope.cancel()


async def test_a_call_in_flight_when_the_drill_cuts_its_peer_ends_as_a_lost_connection() -> None:
    faults = NetworkFaults()
    parked = trio.Event()
    dispatcher = Dispatcher(None, NodeIdentity("node-b", "shoal", 4))

    async def long_poll(namespace: str, req: wire.ClusterStatusRequest) -> None:
        parked.set()
        await trio.sleep_forever()

    dispatcher.add_handler(wire.Op.CLUSTER_STATUS, long_poll)
    peers = PeerCalls("node-a", faults=faults)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve, dispatcher, "127.0.0.1", 0)
        addr = f"127.0.0.1:{port}"
        failed: list[str] = []

        async def call() -> None:
            with pytest.raises(ConnectionLost, match="mid-call") as info:
                await peers.call(addr, "default", wire.Op.CLUSTER_STATUS,
                                 wire.ClusterStatusRequest())
            failed.append(str(info.value))

        nursery.start_soon(call)
        await parked.wait()
        faults.set([addr], OWN, [])
        with trio.fail_after(2):
            while not failed:
                await trio.sleep(0.01)
        assert faults.stats.fault_calls_lost_out == 1
        await peers.aclose()
        nursery.cancel_scope.cancel()
