"""Review finding (fixed): Appends and catch-up pages had no byte bound, so 64 entries of a
few hundred KB made a message over the wire's frame limit that could never be delivered
(and was resent forever). They now stop at ``append_bytes_max`` (always at least one)."""

from __future__ import annotations

from helpers.replication_harness import Harness

from shoal import wire
from shoal.node.replication import ReplicaConfig
from shoal.node.replication.types import cap_bytes


def test_cap_bytes_keeps_at_least_one_entry_and_stops_at_the_bound() -> None:
    e = [wire.ReplEntry(epoch=wire.EPOCH_ZERO, index=i + 1, payload=b"x" * 400) for i in range(5)]
    assert cap_bytes(e, 1000) == e[:2]
    assert cap_bytes(e, 10) == e[:1]
    assert cap_bytes(e, 10_000) == e


def test_a_lagging_follower_gets_appends_that_fit_a_frame() -> None:
    h = Harness(["a", "b", "c"], cfg=ReplicaConfig(fallback=False))
    h.campaign("a")
    h.drop = lambda src, dst, msg: "c" in (src, dst)  # c falls behind
    for i in range(64):
        h.propose("a", b"%02d" % i + b"x" * 200_000)
        h.run()
    h.drop = lambda src, dst, msg: False
    largest = 0
    for _ in range(40):
        h.tick(0.06)
        for _, dst, msg in list(h.queue):
            if dst == "c" and isinstance(msg, wire.Append) and msg.entries:
                largest = max(largest, len(wire.encode_repl(msg)))
        h.run()
    assert 0 < largest < wire.FRAME_BYTES_MAX
    assert len([e for e in h.applied["c"] if e.kind == wire.EntryKind.NORMAL]) == 64
