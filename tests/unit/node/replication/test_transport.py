"""The REPL_MESSAGES handler: each decodable frame reaches its shard's driver, in order;
garbage and unknown shards are counted, never raised."""

from __future__ import annotations

from shoal import wire
from shoal.node.replication.transport import ReplicaHost


class _Driver:
    def __init__(self, shard: int) -> None:
        self.shard = shard
        self.got: list[tuple[str, object]] = []

    def deliver(self, src: str, msg: object) -> None:
        self.got.append((src, msg))


async def test_frames_reach_their_shard_in_order_and_garbage_is_counted() -> None:
    host = ReplicaHost()
    d1, d2 = _Driver(1), _Driver(2)
    host.register(d1)  # type: ignore[arg-type]
    host.register(d2)  # type: ignore[arg-type]
    e = wire.Epoch(3, "a")
    msgs = [wire.Prepare(shard=1, epoch=e), wire.Prepare(shard=2, epoch=e),
            wire.CatchUp(shard=1, epoch=e, from_index=4), wire.Prepare(shard=9, epoch=e)]
    frames = [wire.encode_repl(m) for m in msgs]
    frames.insert(1, b"\xff\x00garbage")
    await host.on_repl_messages("default", wire.ReplMessagesRequest(src="a", frames=frames))
    assert d1.got == [("a", msgs[0]), ("a", msgs[2])]
    assert d2.got == [("a", msgs[1])]
    assert host.stats.refused == 2  # the garbage frame and the unknown shard 9
