"""Review finding (fixed): an install builds its deletes from the disk, so it must not share
a write with earlier outputs whose puts are not on disk yet. The driver now carries an
install out in a write of its own; these tests drive ReplicaDriver._carry_out with a batch
[earlier output, install] and check the replica's state is exactly the snapshot's."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from shoal import wire
from shoal.node.replication.driver import InProcessTransport, ReplicaDriver
from shoal.node.replication import Replica, ReplicaConfig
from shoal.node.replication.types import Output, SnapshotInstall, SnapshotMeta
from shoal.store import tables
from shoal.store.env import Store
from shoal.node.replication.storage import ReplicaStorage
from shoal.store.writer import GroupCommitWriter

pytestmark = pytest.mark.timeout(30)
SHARD = 7
E1 = wire.Epoch(1, "a")
CFG = wire.ShardConfig(voters=("a", "b", "c"))


def _put(name: bytes) -> tables.Mutation:
    return tables.Mutation(table=tables.HISTORY, key=tables.enc_shard(SHARD) + name, value=b"v")


def _entry(index: int, *muts: tables.Mutation) -> wire.ReplEntry:
    return wire.ReplEntry(epoch=E1, index=index, payload=tables.encode_mutations(list(muts)))


async def test_an_install_after_an_apply_in_one_batch_leaves_only_the_snapshot(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "n")
    try:
        async with GroupCommitWriter.open(store) as writer:
            storage = ReplicaStorage(store, SHARD)
            driver = ReplicaDriver(Replica("b", SHARD, ReplicaConfig(), random.Random(1)),
                                   storage, writer, InProcessTransport())
            e1 = wire.ReplEntry(epoch=wire.EPOCH_ZERO, index=1, kind=wire.EntryKind.CONFIG,
                                config=CFG)
            stale = [_entry(2, _put(b"K2")), _entry(3, _put(b"S3"))]
            await writer.commit(storage.durable_mutations(
                hard_state=E1, install=None, persist=[e1, *stale], compact=None, apply=[]))
            snapshot = [_put(b"K1"), _put(b"K3")]
            before = driver.stats.writes
            await driver._carry_out([
                Output(persist=[_entry(4, _put(b"S4"))]),  # a stale tail, same batch
                Output(install=SnapshotInstall(SnapshotMeta(6, E1, CFG), snapshot)),
            ])
            assert driver.stats.writes - before == 2  # the install went in its own write
        with store.read() as txn:
            rows = {k: v for _, k, v in tables.scan_shard_state_machine(txn, SHARD)}
            left = list(tables.scan_repl_log(txn, SHARD))
        assert rows == {m.key: m.value for m in snapshot}
        assert left == []  # the install dropped the whole log, the stale tail included
        reopened = ReplicaStorage(store, SHARD).persisted_state()
        assert reopened.snapshot is not None and reopened.snapshot.index == 6
        assert reopened.entries == () and reopened.applied == 6
    finally:
        store.close()
