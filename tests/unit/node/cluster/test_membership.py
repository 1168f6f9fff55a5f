"""node/cluster/membership.py: the stream handler, refusals, status, key files; no sockets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal import wire
from shoal.gossip.config import SwimConfig
from shoal.gossip.events import Output
from shoal.node.cluster.membership import (
    ClusterMembership, read_cluster_key, split_hostport, stream_source_meta,
)
from shoal.node.node import NodeConfig, advertised_address, gossip_config

KEY = b"k" * 32


def meta(addr: str, **changes: object) -> wire.MemberMeta:
    fields = dict(api_addr=f"ws://{addr}", cluster_name="c", num_shards=16) | changes
    return wire.MemberMeta(**fields)  # type: ignore[arg-type]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def shell(addr: str = "127.0.0.1:7001", key: bytes | None = None,
          clock: FakeClock | None = None) -> ClusterMembership:
    return ClusterMembership(f"node-{addr}", SwimConfig.small(cluster_key=key), meta(addr), addr,
                             [], clock=clock or FakeClock(), rng=random.Random(1))


def push_pull(name: str, addr: str, **meta_changes: object) -> wire.PushPullRequest:
    me = wire.PushNodeState(node=name, addr=addr, incarnation=1, state=wire.MemberState.ALIVE,
                            meta=meta(addr, **meta_changes))
    return wire.PushPullRequest(source=name, join=True, members=[me])


async def serve(m: ClusterMembership, msg, key: bytes | None = None) -> wire.GossipStreamResponse:
    frame = wire.encode_gossip(msg, key)
    return await m.on_gossip_stream("default", wire.GossipStreamRequest(frame=frame))


async def test_join_push_pull_is_answered_on_the_same_link_with_our_state() -> None:
    m = shell(key=KEY)
    resp = await serve(m, push_pull("b", "127.0.0.1:7002"), KEY)
    answer = wire.decode_gossip(resp.frame, KEY)
    assert isinstance(answer, wire.PushPullResponse) and answer.source == m.name
    assert {s.node for s in answer.members} == {m.name, "b"}
    assert [x.name for x in m.swim.members()] == sorted([m.name, "b"])
    assert m.link_stats.stream_served == 1


async def test_fallback_ping_for_us_gets_an_ack_frame() -> None:
    m = shell()
    ping = wire.GossipPacket(messages=[wire.Ping(seq=9, target=m.name)])
    resp = await serve(m, ping)
    assert wire.decode_gossip(resp.frame) == wire.GossipPacket(messages=[wire.Ack(seq=9)])


async def test_member_of_another_cluster_is_refused_with_the_reason_and_not_added() -> None:
    m = shell()
    with pytest.raises(wire.ShoalError) as info:
        await serve(m, push_pull("b", "127.0.0.1:7002", num_shards=8))
    assert info.value.code == wire.Code.CLUSTER_MISMATCH
    assert "NUM_SHARDS 8 differs from ours (16)" in info.value.message
    assert [x.name for x in m.swim.members()] == [m.name]
    assert m.link_stats.refused_foreign == 1


async def test_unauthenticated_frame_is_dropped_counted_and_answered_empty() -> None:
    m = shell(key=KEY)
    resp = await serve(m, push_pull("b", "127.0.0.1:7002"))  # no key
    assert resp.frame == b"" and m.swim.stats.dropped_auth == 1
    assert [x.name for x in m.swim.members()] == [m.name]


@settings(max_examples=200, deadline=None)
@given(frame=st.binary(max_size=200))
async def test_any_stream_frame_is_answered_or_dropped_never_raised(frame: bytes) -> None:
    m = shell()
    try:
        await m.on_gossip_stream("default", wire.GossipStreamRequest(frame=frame))
    except wire.ShoalError as exc:
        assert exc.code == wire.Code.CLUSTER_MISMATCH


async def test_status_lists_members_with_the_age_of_last_contact() -> None:
    clock = FakeClock()
    m = shell(clock=clock)
    await serve(m, wire.PushPullRequest(source="b", join=False,
                                        members=push_pull("b", "127.0.0.1:7002").members))
    clock.now += 2.5
    status = m.status()
    me, b = sorted(status.members, key=lambda x: x.name != m.name)
    assert me.is_self and me.last_contact_age_s is None and me.state == "alive"
    assert (b.name, b.state, b.gossip_addr, b.api_addr) == (
        "b", "alive", "127.0.0.1:7002", "ws://127.0.0.1:7002")
    assert b.last_contact_age_s == 2.5
    assert status.num_shards == 16 and status.stats["push_pulls"] == 1


def test_stream_source_meta_is_the_senders_own_entry() -> None:
    req = push_pull("b", "127.0.0.1:7002", num_shards=3)
    assert stream_source_meta(req).num_shards == 3
    assert stream_source_meta(wire.PushPullResponse(source="x", members=req.members)) is None
    assert stream_source_meta(wire.GossipPacket(messages=[])) is None


def test_cluster_key_file_needs_32_bytes_and_ignores_one_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"x" * 32 + b"\n")
    assert read_cluster_key(path) == b"x" * 32
    path.write_bytes(b"x" * 31 + b"\n")
    with pytest.raises(ValueError, match="holds 31 bytes; it needs at least 32"):
        read_cluster_key(path)
    with pytest.raises(ValueError, match="cannot read the cluster key file"):
        read_cluster_key(tmp_path / "missing")


@pytest.mark.parametrize("host, advertise, bound, want", [
    ("127.0.0.1", None, 7350, "127.0.0.1:7350"),
    ("127.0.0.1", None, 41234, "127.0.0.1:41234"),  # --listen ...:0
    ("0.0.0.0", "10.0.0.2:7350", 7350, "10.0.0.2:7350"),
    ("0.0.0.0", "10.0.0.2:0", 5555, "10.0.0.2:5555"),
    ("::1", None, 7350, "[::1]:7350"),
])
def test_advertised_address(host: str, advertise: str | None, bound: int, want: str) -> None:
    cfg = NodeConfig(data_dir=Path("."), host=host, advertise=advertise)
    assert advertised_address(cfg, bound) == want
    assert split_hostport(want)[1] == bound


def test_wildcard_listen_without_advertise_is_a_clear_error() -> None:
    with pytest.raises(wire.ShoalError, match="needs --advertise"):
        advertised_address(NodeConfig(data_dir=Path("."), host="0.0.0.0"), 7350)


def test_gossip_preset_and_key_reach_the_swim_config() -> None:
    cfg = gossip_config(NodeConfig(data_dir=Path("."), gossip_preset="small", cluster_key=KEY))
    assert cfg == SwimConfig.small(cluster_key=KEY)
    assert gossip_config(NodeConfig(data_dir=Path("."))) == SwimConfig.lan()


# --- the fault drill (Op.NETWORK_FAULTS), gossip's side ----------------------------------

BLOCKED, OTHER = "127.0.0.1:7002", "127.0.0.1:7003"


async def drill(m: ClusterMembership, *addrs: str) -> None:
    await m.on_network_faults("default", wire.NetworkFaultsRequest(blocked_addrs=list(addrs)))


def udp_ping(target: str) -> bytes:
    return wire.encode_gossip(wire.GossipPacket(messages=[wire.Ping(seq=1, target=target)]))


def outbox(m: ClusterMembership) -> list[str]:
    sent = []
    while True:
        try:
            sent.append(m._outbox_out.receive_nowait()[0])
        except trio.WouldBlock:
            return sent


async def test_drill_drops_datagrams_to_and_from_blocked_peers_and_counts_them() -> None:
    m = shell()
    await drill(m, BLOCKED)
    m.on_datagram(udp_ping(m.name), ("127.0.0.1", 7002))  # its ack would go to 7002
    m.on_datagram(udp_ping(m.name), ("127.0.0.1", 7003))
    assert outbox(m) == [OTHER]
    pkt = wire.GossipPacket(messages=[wire.Ack(seq=1)])
    m._apply(Output(send=[(BLOCKED, pkt), (OTHER, pkt)]))
    assert outbox(m) == [OTHER]
    assert (m.link_stats.fault_dropped_in, m.link_stats.fault_dropped_out) == (1, 1)
    assert m.status().blocked_addrs == [BLOCKED]


async def test_drill_refuses_a_blocked_peers_push_pull_and_fallback_ping() -> None:
    m = shell()
    await drill(m, BLOCKED)
    with pytest.raises(wire.ShoalError) as info:
        await serve(m, push_pull("b", BLOCKED))
    assert info.value.code == wire.Code.UNAVAILABLE and "fault drill" in info.value.message
    ping = wire.encode_gossip(wire.GossipPacket(messages=[wire.Ping(seq=9, target=m.name)]))
    with pytest.raises(wire.ShoalError):
        await m.on_gossip_stream("default", wire.GossipStreamRequest(frame=ping,
                                                                     source_addr=BLOCKED))
    assert [x.name for x in m.swim.members()] == [m.name]
    assert m.link_stats.fault_refused_streams == 2 and m.link_stats.stream_served == 0
    resp = await serve(m, push_pull("c", OTHER))  # an unblocked peer is served
    assert resp.frame and m.link_stats.stream_served == 1


async def test_drill_sends_no_stream_message_to_a_blocked_peer() -> None:
    m = shell()
    await drill(m, BLOCKED)
    msg = push_pull(m.name, "127.0.0.1:7001")
    m._apply(Output(stream=[(BLOCKED, msg)]))  # no nursery needed: nothing is started
    assert m.link_stats.fault_skipped_streams == 1


async def test_empty_drill_clears_and_gossip_flows_again() -> None:
    m = shell()
    await drill(m, BLOCKED, OTHER)
    await drill(m)
    m.on_datagram(udp_ping(m.name), ("127.0.0.1", 7002))
    assert outbox(m) == [BLOCKED] and m.link_stats.fault_dropped_in == 0
    await serve(m, push_pull("b", BLOCKED))
    assert m.status().blocked_addrs == [] and m.link_stats.stream_served == 1


@pytest.mark.parametrize("addr, why", [
    ("nohost", "is not HOST:PORT"),
    (":7002", "is not HOST:PORT"),
    ("127.0.0.1:0", "is not HOST:PORT"),
    ("127.0.0.1:65536", "is not HOST:PORT"),
    ("127.0.0.1:x", "is not HOST:PORT"),
    ("127.0.0.1:7001", "is this node's own"),
])
async def test_drill_with_a_bad_address_is_invalid_argument_and_changes_nothing(
        addr: str, why: str) -> None:
    m = shell()
    await drill(m, OTHER)
    with pytest.raises(wire.ShoalError, match=why) as info:
        await drill(m, BLOCKED, addr)
    assert info.value.code == wire.Code.INVALID_ARGUMENT
    assert m.status().blocked_addrs == [OTHER]
