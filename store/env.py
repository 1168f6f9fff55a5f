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


# errno values meaning "the disk (or the quota / file-size limit) took no more bytes".
# LMDB turns a short write -- what a full disk usually gives it -- into EIO, so EIO counts.
_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO}
_FULL_TEXTS = ("No space left", "File too large", "quota exceeded", "Input/output error")


def _is_disk_full(exc: lmdb.Error) -> bool:
    # py-lmdb raises a bare lmdb.Error for OS errors; the errno is only in the text.
    text = str(exc)
    return getattr(exc, "errno", None) in _FULL_ERRNOS or any(t in text for t in _FULL_TEXTS)


def _storage_error(exc: BaseException, path: Path) -> wire.ShoalError:
    return wire.ShoalError(
        wire.Code.STORAGE_FULL,
        f"the disk holding {path} refused a write ({exc}); nothing was written. The disk is "
        "probably full (or failing): free space there, then retry",
    )


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None


def _seek_last_below(cur: lmdb.Cursor, bound: bytes, *, inclusive: bool) -> bool:
    """Put ``cur`` on the last key < ``bound`` (<= if ``inclusive``); False if there is none."""
    if cur.set_range(bound):
        if inclusive and cur.key() == bound:
            return True
        return cur.prev()
    return cur.last()


class _Read:
    """A read view over one LMDB read transaction (``tables.ReadTxn``).

    Values are copied out (``buffers=False``), so they stay valid after the view closes.
    """

    __slots__ = ("_txn", "_dbs")

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any]) -> None:
        self._txn, self._dbs = txn, dbs

    def get(self, table: str, key: bytes) -> bytes | None:
        """The value at ``key``, or None."""
        return self._txn.get(key, db=self._dbs[table])

    def scan(
        self, table: str, prefix: bytes, start: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Rows whose key starts with ``prefix``, in key order (``reverse``: descending).

        Args:
            start: forward, the first key to consider (>=); reverse, the last (<=).
        """
        cur = self._txn.cursor(db=self._dbs[table])
        if reverse:
            yield from self._scan_reverse(cur, prefix, start)
            return
        if not cur.set_range(start if start is not None else prefix):
            return
        for key, value in cur:
            if not key.startswith(prefix):
                return
            yield key, value

    @staticmethod
    def _scan_reverse(cur: lmdb.Cursor, prefix: bytes, start: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        if start is not None:
            positioned = _seek_last_below(cur, start, inclusive=True)
        else:
            end = _prefix_end(prefix)
            positioned = cur.last() if end is None else _seek_last_below(cur, end, inclusive=False)
        if not positioned:
            return
        for key, value in cur.iterprev():
            if not key.startswith(prefix):
                return
            yield key, value

    def last_before(self, table: str, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        """The last row with ``prefix`` whose key is <= ``key``, if any."""
        return next(self.scan(table, prefix, key, reverse=True), None)

    def count(self, table: str, prefix: bytes = b"") -> int:
        """How many rows start with ``prefix`` (a whole table's count is O(1))."""
        if not prefix:
            return self._txn.stat(self._dbs[table])["entries"]
        return sum(1 for _ in self.scan(table, prefix))


class _SharedLock:
    """Many holders at once (transactions), or one exclusive holder (a map resize).

    Reads on the event loop and the writer's commit share it, so a read never waits for an
    fsync; only ``grow`` waits for everyone to leave, as LMDB requires. A thread that
    already holds it shared may take it again even while a resize waits: otherwise a nested
    read (or a second trio task reading while another holds a view) would deadlock the loop.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._mine = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        held = getattr(self._mine, "n", 0)
        with self._cond:
            while self._exclusive and not held:
                self._cond.wait()
            self._shared += 1
        self._mine.n = held + 1
        try:
            yield
        finally:
            self._mine.n -= 1
            with self._cond:
                self._shared -= 1
                if self._shared == 0:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        assert not getattr(self._mine, "n", 0), "resize from inside a transaction"
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


def _abort(txn: lmdb.Transaction) -> None:
    # A failed commit has already freed the transaction; aborting it again is harmless.
    try:
        txn.abort()
    except lmdb.Error:
        pass


class Store:
    """One LMDB environment with a sub-database per table."""

    def __init__(self, env: lmdb.Environment, dbs: dict[str, Any], path: Path) -> None:
        self.env, self._dbs, self.path = env, dbs, path
        self._lock = _SharedLock()
        self.map_size = env.info()["map_size"]
        self.transactions = 0  # committed write transactions (each one fsync)
        self.grows = 0

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
        except lmdb.Error as exc:
            if isinstance(exc, lmdb.DiskError) or _is_disk_full(exc):
                raise _storage_error(exc, path) from None
            raise
        # A map set bigger than the file by an earlier run is kept by LMDB; use it.
        return cls(env, dbs, path)

    def close(self) -> None:
        """Close the environment (waits for open transactions of this process)."""
        with self._lock.exclusive():
            self.env.close()

    @contextmanager
    def read(self) -> Iterator[_Read]:
        """A consistent read view of everything committed so far.

        Cheap and non-blocking (a memory-mapped snapshot), so the event loop uses it
        directly. Do not await inside it: an open view holds up a map resize.
        """
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
                _abort(txn)
                raise MapFull() from None
            except lmdb.Error as exc:
                _abort(txn)
                if isinstance(exc, lmdb.DiskError) or _is_disk_full(exc):
                    raise _storage_error(exc, self.path) from None
                raise
            except BaseException:
                _abort(txn)
                raise
            self.transactions += 1

    def grow(self) -> None:
        """Double the map size (waits until no transaction of this process is open)."""
        with self._lock.exclusive():
            new_size = self.env.info()["map_size"] * 2
            self.env.set_mapsize(new_size)
            self.map_size = new_size
            self.grows += 1
        log.info("store map grown map_bytes=%d path=%s", new_size, self.path)

    def write_sync(self, mutations: list[tables.Mutation]) -> None:
        """Apply mutations now, growing the map as needed. For start-up, not the event loop."""
        while True:
            try:
                self.apply(mutations)
                return
            except MapFull:
                self.grow()
