"""Replication messages on the wire: every kind round-trips; hostile bytes are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal import wire

E = wire.Epoch(3, "n1")
ENTRY = wire.ReplEntry(epoch=E, index=4, payload=b"\x01\x02")
CFG = wire.ShardConfig(voters=("n1", "n2"), learners=("n3",))

MESSAGES = [
    wire.Prepare(shard=1, epoch=E),
    wire.Promise(shard=1, epoch=E, ok=True, promised=E, last_epoch=E, last_index=9, commit=7),
    wire.Append(shard=1, epoch=E, prev_epoch=wire.EPOCH_ZERO, prev_index=3, entries=[
        ENTRY, wire.ReplEntry(epoch=E, index=5, kind=wire.EntryKind.CONFIG, config=CFG)],
        commit=4, compact=2, read_seq=8),
    wire.AppendAck(shard=1, epoch=E, ok=False, reject_index=3, hint_index=1, applied=2),
    wire.CatchUp(shard=1, epoch=E, from_index=5),
    wire.CatchUpReply(shard=1, epoch=E, ok=True, promised=E, entries=[ENTRY], last_index=4),
    wire.InstallSnapshot(shard=1, epoch=E, index=9, snap_epoch=E, config=CFG, data=b"state"),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_replication_message_round_trips(msg) -> None:
    assert wire.decode_repl(wire.encode_repl(msg)) == msg


def test_epochs_order_by_counter_then_node() -> None:
    assert wire.Epoch(1, "z") < wire.Epoch(2, "a") and wire.Epoch(2, "a") < wire.Epoch(2, "b")


def test_a_gossip_or_client_frame_is_not_a_replication_message() -> None:
    with pytest.raises(wire.WireError):
        wire.decode_repl(wire.dumps({"k": 1, "v": {}}))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_wire_error(data: bytes) -> None:
    try:
        wire.decode_repl(data)
    except wire.WireError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(MESSAGES), st.integers(0, 200), st.integers(0, 255))
def test_corrupted_frames_decode_or_raise_wire_error(msg, pos: int, byte: int) -> None:
    frame = bytearray(wire.encode_repl(msg))
    frame[pos % len(frame)] = byte
    try:
        wire.decode_repl(bytes(frame))
    except wire.WireError:
        pass
