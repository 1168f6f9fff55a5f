"""wire/gossip.py: framing, HMAC, shape checks, fuzzing."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal import wire

META = wire.MemberMeta(api_addr="ws://10.0.0.1:7350", cluster_name="prod", num_shards=64)
PACKET = wire.GossipPacket(messages=[
    wire.Ping(seq=7, target="b"),
    wire.IndirectPing(seq=8, target="c", target_addr="10.0.0.3:7350"),
    wire.Ack(seq=9), wire.Nack(seq=10),
    wire.Alive(node="a", incarnation=3, addr="10.0.0.1:7350", meta=META),
    wire.Suspect(node="c", incarnation=2, source="a"),
    wire.Dead(node="d", incarnation=1, source="d"),
])
PUSH = wire.PushPullRequest(source="a", join=True, members=[wire.PushNodeState(
    node="a", addr="10.0.0.1:7350", incarnation=3, state=wire.MemberState.SUSPECT, meta=META)])


@pytest.mark.parametrize("key", [None, b"cluster-secret"])
def test_packets_and_push_pull_round_trip_with_and_without_a_key(key: bytes | None) -> None:
    assert wire.decode_gossip(wire.encode_gossip(PACKET, key), key) == PACKET
    assert wire.decode_gossip(wire.encode_gossip(PUSH, key), key) == PUSH
    resp = wire.PushPullResponse(source="b", members=[])
    assert wire.decode_gossip(wire.encode_gossip(resp, key), key) == resp


def test_header_tells_packets_from_stream_messages() -> None:
    assert wire.encode_gossip(PACKET)[0] == wire.GOSSIP_PACKET_PLAIN
    assert wire.encode_gossip(PUSH, b"k")[0] == wire.GOSSIP_STREAM_MAC


def _reason(data: bytes, key: bytes | None) -> str | None:
    with pytest.raises(wire.WireError) as info:
        wire.decode_gossip(data, key)
    assert info.value.code in (wire.Code.MALFORMED, wire.Code.FRAME_TOO_LARGE)
    return info.value.details.get("reason")


def test_wrong_key_missing_mac_and_unexpected_mac_are_auth_failures() -> None:
    signed = wire.encode_gossip(PACKET, b"right")
    assert _reason(signed, b"wrong") == "auth"
    assert _reason(wire.encode_gossip(PACKET), b"right") == "auth"
    assert _reason(signed, None) == "auth"
    tampered = bytearray(signed)
    tampered[-1] ^= 1
    assert _reason(bytes(tampered), b"right") == "auth"


def test_bad_header_truncation_and_wrong_shapes_are_malformed() -> None:
    good = wire.encode_gossip(PACKET)
    assert _reason(b"\x7f" + good[1:], None) is None
    assert _reason(good[:1], None) is None
    assert _reason(good[:-3], None) is None
    bad_kind = bytes([wire.GOSSIP_PACKET_PLAIN]) + cbor2.dumps([{"k": 999, "v": {}}])
    assert _reason(bad_kind, None) is None
    neg_seq = bytes([wire.GOSSIP_PACKET_PLAIN]) + cbor2.dumps([{"k": 200, "v": {"seq": -1, "target": "x"}}])
    assert _reason(neg_seq, None) is None
    push_as_packet = bytes([wire.GOSSIP_PACKET_PLAIN]) + cbor2.dumps(wire.to_plain(PUSH))
    assert _reason(push_as_packet, None) is None


def test_oversize_udp_packet_is_refused() -> None:
    big = bytes([wire.GOSSIP_PACKET_PLAIN]) + b"\x00" * (wire.UDP_PACKET_BYTES_MAX + 1)
    _reason(big, None)


def test_message_size_matches_its_encoding_inside_a_packet() -> None:
    body = wire.encode_gossip(PACKET)[1:]
    assert len(body) == 1 + sum(wire.gossip_message_size(m) for m in PACKET.messages)


plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["k", "v", "seq", "node", "target", "meta", "incarnation", "x"]), inner,
        max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(header=st.sampled_from([0x10, 0x20, 0x11, 0x00]), value=plain)
def test_decoding_hostile_frames_raises_only_wire_errors(header: int, value: object) -> None:
    data = bytes([header]) + cbor2.dumps(value)
    try:
        wire.decode_gossip(data, None)
    except wire.WireError:
        pass


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64))
def test_decoding_random_bytes_raises_only_wire_errors(data: bytes) -> None:
    for key in (None, b"k"):
        try:
            wire.decode_gossip(data, key)
        except wire.WireError:
            pass
