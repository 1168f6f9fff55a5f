"""The LMDB environment: scans, map growth, a full disk, and reads during a resize."""

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from shoal import wire
from shoal.store import tables
from shoal.store.env import Store


def _put(key: bytes, value: bytes = b"v") -> tables.Mutation:
    return tables.Mutation(table=tables.HISTORY, key=key, value=value)


def test_scans_stay_inside_their_prefix_both_ways(store: Store) -> None:
    keys = [b"\x00\x01a", b"\x00\x01b", b"\x00\x01c", b"\x00\x02a", b"\x00\x00z", b"\x00\x01\xff\xff"]
    store.write_sync([_put(k) for k in keys])
    with store.read() as txn:
        fwd = [k for k, _ in txn.scan(tables.HISTORY, b"\x00\x01")]
        rev = [k for k, _ in txn.scan(tables.HISTORY, b"\x00\x01", reverse=True)]
        from_b = [k for k, _ in txn.scan(tables.HISTORY, b"\x00\x01", b"\x00\x01b")]
        down_from_b = [k for k, _ in txn.scan(tables.HISTORY, b"\x00\x01", b"\x00\x01bb", reverse=True)]
        last_shard = [k for k, _ in txn.scan(tables.HISTORY, b"\x00\x02", reverse=True)]
        assert txn.count(tables.HISTORY) == 6
        assert txn.count(tables.HISTORY, b"\x00\x01") == 4
        assert txn.last_before(tables.HISTORY, b"\x00\x01", b"\x00\x01") is None
        assert txn.last_before(tables.HISTORY, b"\x00\x01", b"\x00\x01c") == (b"\x00\x01c", b"v")
    assert fwd == [b"\x00\x01a", b"\x00\x01b", b"\x00\x01c", b"\x00\x01\xff\xff"]
    assert rev == fwd[::-1]
    assert from_b == fwd[1:]
    assert down_from_b == [b"\x00\x01b", b"\x00\x01a"]
    assert last_shard == [b"\x00\x02a"]


def test_a_tiny_map_grows_instead_of_failing(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "lmdb", map_size=64 * 1024)
    try:
        first = store.map_size
        for i in range(40):  # ~4 MiB in all, far past 64 KiB
            store.write_sync([_put(b"k%04d" % i, bytes([i]) * 100_000)])
        assert store.grows >= 3 and store.map_size >= first * 8
        with store.read() as txn:
            assert txn.count(tables.HISTORY) == 40
            assert txn.get(tables.HISTORY, b"k0039") == bytes([39]) * 100_000
    finally:
        store.close()
    reopened = Store.open(tmp_path / "lmdb", map_size=64 * 1024)
    try:  # LMDB keeps the grown size; everything is still there
        with reopened.read() as txn:
            assert txn.count(tables.HISTORY) == 40
    finally:
        reopened.close()


def test_a_nested_read_on_the_loop_thread_does_not_deadlock_a_waiting_resize(store: Store) -> None:
    store.write_sync([_put(b"a")])
    grown = threading.Event()
    with store.read() as outer:
        resizer = threading.Thread(target=lambda: (store.grow(), grown.set()))
        resizer.start()
        resizer.join(0.05)  # the resize is waiting for this view to close
        assert not grown.is_set()
        with store.read() as inner:  # would hang if it queued behind the resize
            assert inner.get(tables.HISTORY, b"a") == outer.get(tables.HISTORY, b"a") == b"v"
    resizer.join(10)
    assert grown.is_set()


_FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    from shoal import wire
    from shoal.store import tables
    from shoal.store.env import Store

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    store = Store.open(Path(sys.argv[1]), map_size=1 << 26)
    limit = 2 << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    i = 0
    while True:
        try:
            store.write_sync([tables.Mutation(table=tables.HISTORY, key=b"b%05d-%d" % (i, j),
                                              value=bytes(20_000)) for j in range(5)])
        except wire.ShoalError as exc:
            print(exc.code.value, i, exc.message, flush=True)
            break
        i += 1
""")


def test_a_full_disk_is_storage_full_with_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / "lmdb"
    out = subprocess.run([sys.executable, "-c", _FULL_DISK, str(path)], capture_output=True,
                         text=True, timeout=60)
    code, failed_at, message = out.stdout.split(" ", 2)
    assert code == "STORAGE_FULL", out
    assert "free space" in message
    failed = int(failed_at)
    assert failed > 10
    store = Store.open(path)
    try:
        with store.read() as txn:
            # Every acknowledged batch is whole; the refused one left no row at all.
            assert txn.count(tables.HISTORY) == 5 * failed
            assert txn.count(tables.HISTORY, b"b%05d" % failed) == 0
        store.write_sync([_put(b"after")])  # the environment is still usable
    finally:
        store.close()
    assert wire.Code.STORAGE_FULL.value == code
