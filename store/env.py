"""The node's LMDB environment: opening it, read views, applying mutations, growing the map.

Owns: ``<data-dir>/lmdb`` with one named sub-database per table of ``store/tables.py``, the
read transactions the event loop uses (LMDB reads are memory-mapped and cheap, so they run
on the loop thread), and ``apply`` -- the one place rows are written, called from the
group-commit writer's thread (or ``write_sync`` at start-up, before serving).

Map growth (DESIGN §6): a full map is never a failed write. ``apply`` raises ``MapFull``;
the writer then calls ``grow()``, which doubles the map size while no transaction of this
process is open (LMDB's rule for ``mdb_env_set_mapsize``), and retries. A full disk is
``ShoalError(STORAGE_FULL)`` with the transaction aborted, so nothing is half-written.
Must not: know what rows mean.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lmdb

from shoal import wire
from shoal.store import tables

log = logging.getLogger(__name__)

INITIAL_MAP_BYTES = 256 * 1024 * 1024


class MapFull(Exception):
    """The map is full; grow it and retry the transaction."""


def _storage_error(exc: BaseException) -> wire.ShoalError:
    return wire.ShoalError(
        wire.Code.STORAGE_FULL,
        f"the node's disk refused a write ({exc}); free space on the data dir's disk and retry",
    )


class _Read:
    """A read view over one LMDB read transaction (``tables.ReadTxn``)."""

    __slots__ = ("_txn", "_dbs")

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any]) -> None:
        self._txn, self._dbs = txn, dbs

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._txn.get(key, db=self._dbs[table])

    def scan(self, table: str, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        cur = self._txn.cursor(db=self._dbs[table])
        if not cur.set_range(start if start is not None else prefix):
            return
        for key, value in cur:
            if not key.startswith(prefix):
                return
            yield key, value

    def last_before(self, table: str, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        """The last row with ``prefix`` whose key is <= ``key``, if any."""
        cur = self._txn.cursor(db=self._dbs[table])
        if cur.set_range(key):
            if cur.key() == key:
                return cur.item()
            if not cur.prev():
                return None
        elif not cur.last():
            return None
        k = cur.key()
        return (k, cur.value()) if k.startswith(prefix) and k <= key else None

    def count(self, table: str, prefix: bytes) -> int:
        return sum(1 for _ in self.scan(table, prefix))


class _SharedLock:
    """Many holders at once (transactions), or one exclusive holder (a map resize).

    Reads on the event loop and the writer's commit share it, so a read never waits for an
    fsync; only ``grow`` waits for everyone to leave, as LMDB requires.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                if self._shared == 0:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._shared:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class Store:
    """One LMDB environment with a sub-database per table."""

    def __init__(self, env: lmdb.Environment, dbs: dict[str, Any], path: Path) -> None:
        self.env, self._dbs, self.path = env, dbs, path
        self._lock = _SharedLock()
        self.map_size = env.info()["map_size"]

    @classmethod
    def open(cls, path: Path, *, map_size: int = INITIAL_MAP_BYTES) -> Store:
        """Open (creating if needed) the environment at ``path``.

        Raises:
            ShoalError(STORAGE_FULL): the disk has no room to create it.
        """
        path.mkdir(parents=True, exist_ok=True)
        try:
            env = lmdb.open(
                str(path), map_size=map_size, max_dbs=len(tables.ALL_TABLES) + 4,
                sync=True, metasync=True, readahead=False, max_readers=256, lock=True,
            )
            dbs = {name: env.open_db(name.encode()) for name in tables.ALL_TABLES}
        except lmdb.DiskError as exc:
            raise _storage_error(exc) from None
        # A map set bigger than the file by an earlier run is kept by LMDB; use it.
        return cls(env, dbs, path)

    def close(self) -> None:
        with self._lock.exclusive():
            self.env.close()

    @contextmanager
    def read(self) -> Iterator[_Read]:
        """A consistent read view of everything committed so far."""
        with self._lock.shared():
            with self.env.begin(buffers=False) as txn:
                yield _Read(txn, self._dbs)

    def apply(self, mutations: list[tables.Mutation]) -> None:
        """Write ``mutations`` in one transaction, fsynced on commit.

        Raises:
            MapFull: the map is full (nothing written); ``grow()`` and retry.
            ShoalError(STORAGE_FULL): the disk is full (nothing written).
        """
        with self._lock.shared():
            txn = self.env.begin(write=True)
            try:
                for m in mutations:
                    db = self._dbs[m.table]
                    if m.value is None:
                        txn.delete(m.key, db=db)
                    else:
                        txn.put(m.key, m.value, db=db)
                txn.commit()
            except lmdb.MapFullError:
                txn.abort()
                raise MapFull() from None
            except lmdb.Error as exc:
                txn.abort()
                if isinstance(exc, lmdb.DiskError) or getattr(exc, "errno", None) == errno.ENOSPC \
                        or "No space" in str(exc):
                    raise _storage_error(exc) from None
                raise
            except BaseException:
                txn.abort()
                raise

    def grow(self) -> None:
        """Double the map size (waits until no transaction of this process is open)."""
        with self._lock.exclusive():
            new_size = self.env.info()["map_size"] * 2
            self.env.set_mapsize(new_size)
            self.map_size = new_size
        log.info("store map grown map_bytes=%d path=%s", new_size, self.path)

    def write_sync(self, mutations: list[tables.Mutation]) -> None:
        """Apply mutations now, growing the map as needed. For start-up, not the event loop."""
        while True:
            try:
                self.apply(mutations)
                return
            except MapFull:
                self.grow()
