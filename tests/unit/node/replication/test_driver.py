"""Replica groups on real LMDB stores, one process: the driver, storage and group commit
carry out the core's outputs; writes survive restarts, leader loss and snapshots."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from pathlib import Path

import cbor2
import pytest
import trio

from shoal import wire
from shoal.node.replication.driver import InProcessTransport, ReplicaDriver, ReplicatedShardLog
from shoal.node.replication import Replica, ReplicaConfig
from shoal.store import tables
from shoal.store.env import Store
from shoal.node.replication.storage import ReplicaStorage
from shoal.store.writer import GroupCommitWriter

from helpers.node_proc import wait_until

pytestmark = pytest.mark.timeout(60)
SHARD = 7


class Host:
    """One node's store, writer and driver for shard ``SHARD``; stop and start at will."""

    def __init__(self, name: str, root: Path, net: InProcessTransport, cfg: ReplicaConfig,
                 chunk_bytes: int) -> None:
        self.name, self.path, self.net, self.cfg = name, root / name, net, cfg
        self.chunk_bytes = chunk_bytes
        self.driver: ReplicaDriver | None = None
        self._stack: AsyncExitStack | None = None

    async def start(self, nursery: trio.Nursery, bootstrap: tuple[str, ...] = ()) -> None:
        self._stack = AsyncExitStack()
        self.store = Store.open(self.path)
        self._stack.callback(self.store.close)
        writer = await self._stack.enter_async_context(GroupCommitWriter.open(self.store))
        storage = ReplicaStorage(self.store, SHARD)
        storage.snapshot_chunks = (  # type: ignore[method-assign]
            lambda f=storage.snapshot_chunks: f(self.chunk_bytes))
        core = Replica(self.name, SHARD, self.cfg, random.Random(self.name),
                       storage.persisted_state())
        self.driver = ReplicaDriver(core, storage, writer, self.net)
        self.net.register(self.driver)
        self.net.down.discard(self.name)
        self.scope = trio.CancelScope()

        async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:
            with self.scope:
                await self.driver.run(task_status=task_status)

        await nursery.start(run)
        if bootstrap:
            self.driver.feed(core.bootstrap(wire.ShardConfig(voters=bootstrap)))

    async def stop(self) -> None:
        """A crash as far as peers can tell; what the writer committed stays on disk."""
        self.net.down.add(self.name)
        self.scope.cancel()
        assert self._stack is not None
        await self._stack.aclose()

    def rows(self) -> dict[bytes, bytes]:
        with self.store.read() as txn:
            return {k: v for _, k, v in tables.scan_shard_state_machine(txn, SHARD)}


def _put(i: int) -> list[tables.Mutation]:
    key = tables.enc_shard(SHARD) + b"k%05d" % i
    return [tables.Mutation(table=tables.HISTORY, key=key, value=b"v%d" % i * 20)]


async def _leader(hosts: dict[str, Host]) -> Host:
    async def serving() -> bool:
        return any(h.driver and h.driver.serving and h.name not in h.net.down
                   for h in hosts.values())
    await wait_until(serving)
    return next(h for h in hosts.values()
                if h.driver and h.driver.serving and h.name not in h.net.down)


async def _start_abc(nursery: trio.Nursery, hosts: dict[str, Host]) -> Host:
    """Start a, b and c as one group, have a campaign, and return the leader."""
    for h in hosts.values():
        await h.start(nursery, bootstrap=("a", "b", "c"))
    hosts["a"].driver.feed(hosts["a"].driver.replica.campaign(trio.current_time()))
    return await _leader(hosts)


async def _write(host: Host, items: range, writers: int = 8) -> list[int]:
    log = ReplicatedShardLog(host.driver)
    indexes: list[int] = []

    async def one(i: int) -> None:
        indexes.append(await log.propose(_put(i)))

    limit = trio.Semaphore(writers)

    async def limited(i: int) -> None:
        async with limit:
            await one(i)

    async with trio.open_nursery() as n:
        for i in items:
            n.start_soon(limited, i)
    return indexes


def _group(tmp_path: Path, names: str, **cfg: object) -> tuple[InProcessTransport, dict[str, Host]]:
    net = InProcessTransport()
    config = ReplicaConfig(**cfg)  # type: ignore[arg-type]
    return net, {n: Host(n, tmp_path, net, config, chunk_bytes=512) for n in names}


async def test_three_replicas_commit_apply_and_agree(tmp_path: Path) -> None:
    net, hosts = _group(tmp_path, "abc")
    async with trio.open_nursery() as nursery:
        leader = await _start_abc(nursery, hosts)
        assert leader.name == "a"
        indexes = await _write(leader, range(60))
        assert len(set(indexes)) == 60  # one entry each, no index handed out twice
        expected = {tables.enc_shard(SHARD) + b"k%05d" % i: b"v%d" % i * 20 for i in range(60)}
        await wait_until(lambda: all(h.rows() == expected for h in hosts.values()))
        # Group commit: far fewer leader writes than entries.
        assert leader.driver.stats.writes < 60 + 10
        with hosts["b"].store.read() as txn:
            applied = tables.get_replica_applied(txn, SHARD)
        assert applied >= max(indexes)
        nursery.cancel_scope.cancel()


async def test_a_follower_that_restarts_catches_up_from_its_own_disk(tmp_path: Path) -> None:
    net, hosts = _group(tmp_path, "abc")
    async with trio.open_nursery() as nursery:
        leader = await _start_abc(nursery, hosts)
        await _write(leader, range(20))
        await hosts["c"].stop()
        await _write(leader, range(20, 40))  # a majority (a, b) still commits
        await hosts["c"].start(nursery)  # no bootstrap: everything comes from its LMDB
        assert hosts["c"].driver.storage.applied > 0
        await _write(leader, range(40, 45))
        await wait_until(lambda: hosts["c"].rows() == hosts["a"].rows() and
                         len(hosts["c"].rows()) == 45)
        nursery.cancel_scope.cancel()


async def test_leader_loss_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    net, hosts = _group(tmp_path, "abc", leader_timeout_s=0.2)
    async with trio.open_nursery() as nursery:
        old = await _start_abc(nursery, hosts)
        acked = await _write(old, range(30))
        assert len(acked) == 30
        await old.stop()
        new = await _leader({n: h for n, h in hosts.items() if n != old.name})
        assert new.name != old.name
        await _write(new, range(30, 40))
        survivors = [h for n, h in hosts.items() if n != old.name]
        await wait_until(lambda: all(len(h.rows()) == 40 for h in survivors))
        await old.start(nursery)
        await wait_until(lambda: hosts[old.name].rows() == new.rows())
        nursery.cancel_scope.cancel()


async def test_a_new_member_gets_a_chunked_snapshot_then_the_tail(tmp_path: Path) -> None:
    net, hosts = _group(tmp_path, "abcd", compact_lag_entries=4)
    async with trio.open_nursery() as nursery:
        for n in "abc":
            await hosts[n].start(nursery, bootstrap=("a", "b", "c"))
        await hosts["d"].start(nursery)  # brand new: no log, no bootstrap
        hosts["a"].driver.feed(hosts["a"].driver.replica.campaign(trio.current_time()))
        leader = await _leader(hosts)
        await _write(leader, range(50))
        await wait_until(lambda: leader.driver.replica.log.snap_index > 1)  # compacted
        leader.driver.feed(leader.driver.replica.reconfigure(("a", "b", "c", "d"),
                                                             trio.current_time()))
        await wait_until(lambda: leader.driver.replica.config.voters == ("a", "b", "c", "d"),
                         timeout_s=20)
        await _write(leader, range(50, 55))
        await wait_until(lambda: hosts["d"].rows() == leader.rows() and len(leader.rows()) == 55)
        assert leader.driver.stats.snapshots_sent >= 1
        assert hosts["d"].driver.stats.snapshots_installed >= 1
        # 50 rows of ~110 bytes in 512-byte chunks: the snapshot went in many pieces.
        assert net.sent > 20
        nursery.cancel_scope.cancel()


def test_an_entry_payload_must_be_valid_mutations() -> None:
    ok = _put(1)
    assert tables.decode_mutations(tables.encode_mutations(ok)) == ok
    for bad in (b"\xff", cbor2.dumps({"a": 1}), cbor2.dumps([["nope", b"k", b"v"]]),
                cbor2.dumps([["history", b"", b"v"]]), cbor2.dumps([[1, 2]])):
        with pytest.raises(wire.ShoalError):
            tables.decode_mutations(bad)


async def test_a_sole_voter_persists_and_applies_each_entry_in_one_write(tmp_path: Path) -> None:
    net, hosts = _group(tmp_path, "a")
    async with trio.open_nursery() as nursery:
        await hosts["a"].start(nursery, bootstrap=("a",))
        driver = hosts["a"].driver
        driver.feed(driver.replica.campaign(trio.current_time()))
        await driver.wait_serving()
        before = driver.stats.writes
        log = ReplicatedShardLog(driver)
        for i in range(20):  # one at a time: nothing to batch with
            await log.propose(_put(i))
        assert driver.stats.writes - before == 20
        assert len(hosts["a"].rows()) == 20 and log.applied_index == driver.storage.applied
        # Nobody will ever ask a lone voter for its entries: none are stored, the log base
        # follows the applied index instead.
        with hosts["a"].store.read() as txn:
            assert list(tables.scan_repl_log(txn, SHARD)) == []
            hard = tables.get_replica_hard_state(txn, SHARD)
        assert hard.base_index == driver.storage.applied and hard.base_config.voters == ("a",)
        # A restart rebuilds from that base, campaigns again and goes on writing.
        await hosts["a"].stop()
        await hosts["a"].start(nursery)
        driver = hosts["a"].driver
        driver.feed(driver.replica.campaign(trio.current_time()))
        await driver.wait_serving()
        await ReplicatedShardLog(driver).propose(_put(20))
        assert len(hosts["a"].rows()) == 21
        nursery.cancel_scope.cancel()


async def test_a_quorum_read_returns_after_the_leaders_writes_and_leaves_nothing_behind(
        tmp_path: Path) -> None:
    net, hosts = _group(tmp_path, "abc", leader_timeout_s=0.3)
    async with trio.open_nursery() as nursery:
        leader = await _start_abc(nursery, hosts)
        await _write(leader, range(5))
        for _ in range(3):
            with trio.fail_after(5):
                await leader.driver.read_barrier()
        assert leader.driver._reads == []  # finished waiters are not kept
        # Cut off from both followers, the leader cannot confirm a read: it steps down and
        # the read fails with UNAVAILABLE rather than answering from stale state.
        net.cut.update({frozenset("ab"), frozenset("ac")})
        with pytest.raises(wire.ShoalError) as err:
            with trio.fail_after(10):
                await leader.driver.read_barrier()
        assert err.value.code in (wire.Code.UNAVAILABLE, wire.Code.NOT_LEADER)
        nursery.cancel_scope.cancel()
