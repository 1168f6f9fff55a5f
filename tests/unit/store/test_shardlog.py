"""LocalShardLog: entries commit, apply and truncate in one transaction; indexes never gap."""

import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from shoal import wire
from shoal.store import tables
from shoal.store.env import Store
from shoal.store.shardlog import LocalShardLog, ShardLog
from shoal.store.writer import GroupCommitWriter


def _row(shard: int, name: bytes) -> tables.Mutation:
    return tables.Mutation(table=tables.EXECUTIONS, key=tables.enc_shard(shard) + name, value=name)


def _log_rows(store: Store, shard: int) -> list[tables.LogEntry]:
    with store.read() as txn:
        return list(tables.scan_log(txn, shard))


async def test_propose_applies_records_the_index_and_truncates_the_previous_entry(store: Store) -> None:
    async with GroupCommitWriter.open(store) as writer:
        log: ShardLog = LocalShardLog(5, store, writer)
        assert log.applied_index == 0
        assert await log.propose([_row(5, b"a")]) == 1
        assert _log_rows(store, 5) == [tables.LogEntry(epoch=1, index=1, mutations=[_row(5, b"a")])]
        assert await log.propose([_row(5, b"b"), tables.Mutation(table=tables.EXECUTIONS,
                                                                key=tables.enc_shard(5) + b"a")]) == 2
        assert log.applied_index == 2
    with store.read() as txn:
        assert txn.get(tables.EXECUTIONS, tables.enc_shard(5) + b"a") is None
        assert txn.get(tables.EXECUTIONS, tables.enc_shard(5) + b"b") == b"b"
        assert tables.get_shard_log_state(txn, 5) == tables.ShardLogState(applied_index=2, applied_epoch=1)
    assert [e.index for e in _log_rows(store, 5)] == [2]  # entry 1 was truncated with entry 2


async def test_a_restarted_log_continues_after_the_applied_index(tmp_path: Path) -> None:
    path = tmp_path / "lmdb"
    for expected in (1, 2, 3):
        store = Store.open(path, map_size=1 << 22)
        try:
            async with GroupCommitWriter.open(store) as writer:
                log = LocalShardLog(0, store, writer)
                assert log.applied_index == expected - 1
                assert await log.propose([_row(0, b"%d" % expected)]) == expected
        finally:
            store.close()
    store = Store.open(path, map_size=1 << 22)
    try:
        assert [e.index for e in _log_rows(store, 0)] == [3]
    finally:
        store.close()


async def test_concurrent_proposals_merge_per_shard_and_shards_share_commits(store: Store) -> None:
    indexes: dict[tuple[int, int], int] = {}

    async def propose(log: LocalShardLog, i: int) -> None:
        indexes[(log.shard, i)] = await log.propose([_row(log.shard, b"r%02d" % i)])

    async with GroupCommitWriter.open(store) as writer:
        logs = [LocalShardLog(s, store, writer) for s in range(4)]
        async with trio.open_nursery() as nursery:
            for i in range(20):
                for log in logs:
                    nursery.start_soon(propose, log, i)
    for log in logs:
        got = sorted({indexes[(log.shard, i)] for i in range(20)})
        assert got == list(range(1, log.applied_index + 1))  # no gaps, no repeats
        assert log.entries == log.applied_index < 20  # proposals shared entries
    assert writer.stats.transactions < sum(log.entries for log in logs)  # shards shared fsyncs
    with store.read() as txn:
        assert txn.count(tables.EXECUTIONS) == 80
        for log in logs:
            assert [e.index for e in tables.scan_log(txn, log.shard)] == [log.applied_index]


class _FullOnce(Store):
    """Refuses the next transaction as a full disk would; can hold commits at a gate."""

    fail_next = False
    gate: threading.Event | None = None

    def apply(self, mutations: list[tables.Mutation]) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_next:
            self.fail_next = False
            raise wire.ShoalError(wire.Code.STORAGE_FULL, "injected")
        super().apply(mutations)


async def test_a_failed_entry_leaves_no_gap_and_fails_only_its_proposals(tmp_path: Path) -> None:
    store = _FullOnce.open(tmp_path / "lmdb", map_size=1 << 22)
    try:
        async with GroupCommitWriter.open(store) as writer:
            log = LocalShardLog(1, store, writer)
            assert await log.propose([_row(1, b"a")]) == 1
            store.fail_next = True
            with pytest.raises(wire.ShoalError) as err:
                await log.propose([_row(1, b"lost")])
            assert err.value.code == wire.Code.STORAGE_FULL
            assert log.applied_index == 1
            assert await log.propose([_row(1, b"b")]) == 2
        with store.read() as txn:
            assert txn.get(tables.EXECUTIONS, tables.enc_shard(1) + b"lost") is None
            assert [e.index for e in tables.scan_log(txn, 1)] == [2]
            assert tables.get_shard_log_state(txn, 1).applied_index == 2
    finally:
        store.close()


async def test_an_invalid_proposal_is_refused_without_spoiling_the_entry_it_would_join(
    tmp_path: Path,
) -> None:
    store = _FullOnce.open(tmp_path / "lmdb", map_size=1 << 22)
    store.gate = threading.Event()
    got: dict[str, object] = {}

    async def propose(name: str, muts: list[tables.Mutation]) -> None:
        try:
            got[name] = await log.propose(muts)
        except wire.ShoalError as exc:
            got[name] = exc.code

    try:
        async with GroupCommitWriter.open(store) as writer:
            log = LocalShardLog(2, store, writer)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(propose, "first", [_row(2, b"1")])
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(propose, "good", [_row(2, b"2")])
                nursery.start_soon(propose, "bad", [tables.Mutation(table="nope", key=b"k")])
                nursery.start_soon(propose, "good2", [_row(2, b"3")])
                await trio.testing.wait_all_tasks_blocked()
                store.gate.set()
        assert got == {"first": 1, "good": 2, "good2": 2, "bad": wire.Code.INVALID_ARGUMENT}
    finally:
        store.close()


async def test_without_entry_rows_the_log_table_stays_empty(store: Store) -> None:
    async with GroupCommitWriter.open(store) as writer:
        log = LocalShardLog(3, store, writer, write_entries=False)
        for i in range(5):
            assert await log.propose([_row(3, b"%d" % i)]) == i + 1
    assert _log_rows(store, 3) == []
    with store.read() as txn:
        assert txn.count(tables.EXECUTIONS) == 5
        assert tables.get_shard_log_state(txn, 3).applied_index == 5


async def test_a_cancelled_proposal_still_commits_in_its_own_entry(tmp_path: Path) -> None:
    store = _FullOnce.open(tmp_path / "lmdb", map_size=1 << 22)
    store.gate = threading.Event()
    try:
        async with GroupCommitWriter.open(store) as writer:
            log = LocalShardLog(4, store, writer)

            async def release_when_all_wait() -> None:
                await trio.testing.wait_all_tasks_blocked()
                store.gate.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(log.propose, [_row(4, b"held")])
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(release_when_all_wait)
                with trio.CancelScope() as scope:
                    scope.cancel()
                    index = await log.propose([_row(4, b"cancelled")])  # waits for its commit
            assert index == 2 and log.applied_index == 2
        with store.read() as txn:
            assert txn.get(tables.EXECUTIONS, tables.enc_shard(4) + b"cancelled") == b"cancelled"
    finally:
        store.close()
