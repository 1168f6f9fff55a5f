"""In-memory view of one shard replica's log (DESIGN §4).

Owns: the entries after the last snapshot point, the snapshot point itself (index, epoch,
config), conflict detection on append (the Raft log-matching rule), compaction and the
membership history (a config takes effect as soon as its entry is appended, and reverts
if that entry is truncated). Must not: decide what is committed, talk to storage, or
know about roles; it mirrors what the driver is told to persist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shoal import wire
from shoal.node.replication.types import SnapshotMeta

EMPTY_CONFIG = wire.ShardConfig(voters=())


class LogView:
    """Entries ``first_index .. last_index`` plus the snapshot point before them.

    Index 0 with epoch ``EPOCH_ZERO`` is the empty prefix every log shares.
    """

    def __init__(self, snapshot: SnapshotMeta | None = None,
                 entries: Iterable[wire.ReplEntry] = ()) -> None:
        self.snap_index = snapshot.index if snapshot else 0
        self.snap_epoch = snapshot.epoch if snapshot else wire.EPOCH_ZERO
        self._entries: list[wire.ReplEntry] = []
        # (index, config) for the snapshot config and every config entry, ascending.
        self._configs: list[tuple[int, wire.ShardConfig]] = []
        if snapshot is not None:
            self._configs.append((snapshot.index, snapshot.config))
        self.append(list(entries), floor=self.snap_index)

    # --- reading -----------------------------------------------------------------------

    @property
    def first_index(self) -> int:
        return self.snap_index + 1

    @property
    def last_index(self) -> int:
        return self.snap_index + len(self._entries)

    @property
    def last_epoch(self) -> wire.Epoch:
        return self._entries[-1].epoch if self._entries else self.snap_epoch

    def epoch_at(self, index: int) -> wire.Epoch | None:
        """Epoch of the entry at ``index``; None when compacted away or beyond the end."""
        if index == self.snap_index:
            return self.snap_epoch
        if index == 0:
            return wire.EPOCH_ZERO
        if self.snap_index < index <= self.last_index:
            return self._entries[index - self.snap_index - 1].epoch
        return None

    def entry(self, index: int) -> wire.ReplEntry:
        assert self.snap_index < index <= self.last_index, (index, self.snap_index)
        return self._entries[index - self.snap_index - 1]

    def slice(self, lo: int, hi: int) -> list[wire.ReplEntry]:
        """Entries ``lo .. hi`` inclusive (clipped to what is held)."""
        lo = max(lo, self.first_index)
        hi = min(hi, self.last_index)
        if hi < lo:
            return []
        return self._entries[lo - self.snap_index - 1: hi - self.snap_index]

    def matches(self, index: int, epoch: wire.Epoch) -> bool:
        """Whether this log holds entry ``(epoch, index)`` (so agrees on the whole prefix)."""
        return self.epoch_at(index) == epoch

    @property
    def config(self) -> wire.ShardConfig:
        """The latest membership in the log, committed or not (empty when unknown)."""
        return self._configs[-1][1] if self._configs else EMPTY_CONFIG

    @property
    def config_index(self) -> int:
        """Index of the entry (or snapshot) that set :attr:`config`; 0 when none."""
        return self._configs[-1][0] if self._configs else 0

    def config_at(self, index: int) -> wire.ShardConfig:
        """The membership in effect once entries up to ``index`` are appended."""
        found = EMPTY_CONFIG
        for at, cfg in self._configs:
            if at > index:
                break
            found = cfg
        return found

    def first_index_of_epoch_run(self, index: int) -> int:
        """Smallest ``i <= index`` held such that entries ``i .. index`` share one epoch
        (used to skip a whole conflicting epoch when a follower rejects an append)."""
        epoch = self.epoch_at(index)
        i = index
        while i - 1 > self.snap_index and self.epoch_at(i - 1) == epoch:
            i -= 1
        return i

    # --- changing ----------------------------------------------------------------------

    def append(self, entries: Sequence[wire.ReplEntry], floor: int) -> list[wire.ReplEntry]:
        """Merge ``entries`` (contiguous, ascending) into the log.

        Entries already held with the same epoch are skipped (a duplicate or reordered
        message changes nothing). At the first conflict the log is cut there and the rest
        appended. Entries at or below the snapshot point are ignored: they are committed
        and so equal to ours.

        Args:
            entries: contiguous entries; the first must be at most ``last_index + 1``.
            floor: no entry at or below this index may be cut (the commit index);
                cutting one would lose a committed entry, a bug.

        Returns:
            The entries that are new to this log and must be persisted, in order.
        """
        new: list[wire.ReplEntry] = []
        for e in entries:
            if e.index <= self.snap_index:
                continue
            held = self.epoch_at(e.index)
            if held == e.epoch:
                continue
            if held is not None:
                assert e.index > floor, f"would cut committed entry {e.index} (floor {floor})"
                self._truncate_from(e.index)
            assert e.index == self.last_index + 1, (e.index, self.last_index)
            self._entries.append(e)
            if e.kind == wire.EntryKind.CONFIG:
                assert e.config is not None
                self._configs.append((e.index, e.config))
            new.append(e)
        return new

    def _truncate_from(self, index: int) -> None:
        del self._entries[index - self.snap_index - 1:]
        while self._configs and self._configs[-1][0] >= index:
            self._configs.pop()

    def compact(self, index: int) -> None:
        """Forget entries up to ``index`` (they are applied everywhere or snapshotted)."""
        assert self.snap_index <= index <= self.last_index
        if index == self.snap_index:
            return
        epoch = self.epoch_at(index)
        assert epoch is not None
        cfg = self.config_at(index)
        del self._entries[: index - self.snap_index]
        self.snap_index, self.snap_epoch = index, epoch
        # Keep the config in effect at the new snapshot point as the base of the history.
        later = [(i, c) for i, c in self._configs if i > index]
        self._configs = ([(index, cfg)] if cfg.voters or cfg.learners else []) + later

    def reset(self, meta: SnapshotMeta) -> None:
        """Drop everything and restart the log at a snapshot point."""
        self._entries = []
        self.snap_index, self.snap_epoch = meta.index, meta.epoch
        self._configs = [(meta.index, meta.config)]
