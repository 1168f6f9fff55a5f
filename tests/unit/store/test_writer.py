"""The group-commit writer: batching, isolation of a bad batch, shutdown, and crash safety."""

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from shoal import wire
from shoal.store import tables
from shoal.store.env import Store
from shoal.store.writer import GroupCommitWriter

POISON = b"poison"
HERE = Path(__file__).resolve().parent


class _Poisoned(list):
    """Mutations that fail (as a full disk would) once the poison row has been put."""

    def __iter__(self) -> Iterator[tables.Mutation]:
        for m in list.__iter__(self):
            yield m
            if m.key == POISON:
                raise wire.ShoalError(wire.Code.STORAGE_FULL, "injected")


class FaultyStore(Store):
    """A real store whose transactions fail after writing a poison row; can hold commits."""

    gate: threading.Event | None = None
    applied: list[int]

    def apply(self, mutations: list[tables.Mutation]) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        self.applied.append(len(mutations))
        super().apply(_Poisoned(mutations))


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[FaultyStore]:
    s = FaultyStore.open(tmp_path / "lmdb", map_size=1 << 22)
    s.applied = []
    try:
        yield s
    finally:
        s.close()


def _rows(tag: bytes, n: int = 3) -> list[tables.Mutation]:
    return [tables.Mutation(table=tables.HISTORY, key=tag + b"-%d" % i, value=tag) for i in range(n)]


async def test_commits_that_arrive_during_a_commit_share_one_transaction(faulty: FaultyStore) -> None:
    faulty.gate = threading.Event()
    async with GroupCommitWriter.open(faulty) as writer:
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(writer.commit, _rows(b"b%03d" % i))
            await trio.testing.wait_all_tasks_blocked()
            faulty.gate.set()  # the first commit was held; the other 99 queued behind it
    assert writer.stats.batches == 100
    assert writer.stats.transactions <= 3
    assert writer.stats.largest_group >= 90
    with faulty.read() as txn:
        assert txn.count(tables.HISTORY) == 300


async def test_concurrent_commits_on_a_real_disk_need_far_fewer_fsyncs(store: Store) -> None:
    async with GroupCommitWriter.open(store) as writer:
        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(writer.commit, _rows(b"c%03d" % i))
    assert writer.stats.batches == 100
    assert writer.stats.transactions < 50
    assert store.transactions == writer.stats.transactions


async def test_a_bad_batch_fails_alone_and_leaves_nothing_half_written(faulty: FaultyStore) -> None:
    faulty.gate = threading.Event()
    results: dict[str, object] = {}

    async def commit(name: str, muts: list[tables.Mutation]) -> None:
        try:
            await writer.commit(muts)
            results[name] = "ok"
        except wire.ShoalError as exc:
            results[name] = exc.code

    bad = _rows(b"bad")[:2] + [tables.Mutation(table=tables.HISTORY, key=POISON, value=b"x")] + _rows(b"bad2")
    async with GroupCommitWriter.open(faulty) as writer:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(commit, "first", _rows(b"first"))
            await trio.testing.wait_all_tasks_blocked()
            for name in ("good1", "bad", "good2"):
                nursery.start_soon(commit, name, bad if name == "bad" else _rows(name.encode()))
                await trio.testing.wait_all_tasks_blocked()
            faulty.gate.set()
    assert results == {"first": "ok", "good1": "ok", "good2": "ok", "bad": wire.Code.STORAGE_FULL}
    assert writer.stats.isolation_retries == 1 and writer.stats.failed_batches == 1
    with faulty.read() as txn:
        keys = [k for k, _ in txn.scan(tables.HISTORY, b"")]
    assert keys == sorted(k.key for name in (b"first", b"good1", b"good2") for k in _rows(name))


async def test_an_invalid_mutation_is_refused_before_it_is_queued(store: Store) -> None:
    async with GroupCommitWriter.open(store) as writer:
        with pytest.raises(wire.ShoalError) as err:
            await writer.commit([tables.Mutation(table=tables.HISTORY, key=b"k" * 600, value=b"")])
        await writer.commit(_rows(b"fine"))
    assert err.value.code == wire.Code.INVALID_ARGUMENT
    assert writer.stats.transactions == 1


async def test_shutdown_flushes_queued_writes_and_then_refuses_new_ones(faulty: FaultyStore) -> None:
    faulty.gate = threading.Event()
    done: list[int] = []

    async def commit(i: int) -> None:
        await writer.commit(_rows(b"s%02d" % i))
        done.append(i)

    async with trio.open_nursery() as nursery:
        async with GroupCommitWriter.open(faulty) as writer:
            for i in range(10):
                nursery.start_soon(commit, i)
            await trio.testing.wait_all_tasks_blocked()
            threading.Timer(0.01, faulty.gate.set).start()  # the disk answers after we leave
    assert sorted(done) == list(range(10))
    with faulty.read() as txn:
        assert txn.count(tables.HISTORY) == 30
    with pytest.raises(wire.ShoalError) as err:
        await writer.commit(_rows(b"late"))
    assert err.value.code == wire.Code.SHUTTING_DOWN


async def test_the_map_grows_under_the_writer_while_the_loop_reads(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "lmdb", map_size=64 * 1024)
    try:
        async with GroupCommitWriter.open(store) as writer:
            async def write(i: int) -> None:
                await writer.commit([tables.Mutation(table=tables.HISTORY, key=b"g%03d" % i,
                                                     value=bytes(50_000))])

            async with trio.open_nursery() as nursery:
                for i in range(60):
                    nursery.start_soon(write, i)
                for _ in range(20):  # reads keep working on the loop meanwhile
                    with store.read() as txn:
                        txn.count(tables.HISTORY)
                    await trio.sleep(0)
        assert store.grows >= 5
        with store.read() as txn:
            assert txn.count(tables.HISTORY) == 60
    finally:
        store.close()


def test_every_acknowledged_batch_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "lmdb"
    proc = subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(path)],
                            stdout=subprocess.PIPE, text=True)
    acked: list[tuple[int, int]] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            w, n = map(int, line.split())
            acked.append((w, n))
            if len(acked) >= 400:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert len(acked) >= 400, "the writer subprocess died early"
    sys.path.insert(0, str(HERE))
    try:
        import crash_writer
    finally:
        sys.path.remove(str(HERE))
    store = Store.open(path)
    try:
        with store.read() as txn:
            for w, n in acked:
                for m in crash_writer.rows(w % crash_writer.SHARDS, w, n):
                    assert txn.get(m.table, m.key) == m.value, (w, n)
            for shard in range(crash_writer.SHARDS):
                # Whatever committed is whole: the applied index and the log tail agree,
                # and every row of the tail entry is in the tables.
                state = tables.get_shard_log_state(txn, shard)
                assert state is not None
                (entry,) = list(tables.scan_log(txn, shard))
                assert entry.index == state.applied_index
                for m in entry.mutations:
                    assert txn.get(m.table, m.key) == m.value
                rows = txn.count(tables.HISTORY, tables.enc_shard(shard))
                assert rows % 3 == 0
    finally:
        store.close()
