"""The shard state machine of the cluster simulator and the history checks on it.

Owns: :class:`ShardState`, a simple model of the history engine (DESIGN §3.2) that every
member of a shard's replica group applies its committed log to: each entry is one client
command on one workflow (start it, record activity completion ``k``, complete it), and
applying it appends events to that workflow's history the way the real engine validates
requests (a second start, an activity completion recorded before, or anything after the
close are refused, so a client retrying a command whose answer it lost changes nothing).
It also keeps a digest chain of every entry applied, so two members that applied
different entries at one index are told apart (DESIGN §4 invariant 2).

:func:`history_violations` checks invariants 4 and 5 on one member's applied state,
independently of how it was built: event ids dense from 1, exactly one start (the first
event), at most one close and nothing after it, each activity completion recorded at most
once. Must not: know about replication, the network or clients.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from shoal import wire

EMPTY_CHAIN = "0" * 16

STARTED = "started"
ACTIVITY_COMPLETED = "activity_completed"
COMPLETED = "completed"

Command = tuple[str, str, int]  # (kind, workflow id, activity number or 0)
HistoryEvent = tuple[int, str, int]  # (event id, kind, activity number or 0)


def chain_step(prev: str, entry: wire.ReplEntry) -> str:
    """Digest of the applied log after ``entry`` when it was ``prev`` before."""
    return hashlib.blake2b(bytes.fromhex(prev) + repr(entry).encode(),
                           digest_size=8).hexdigest()


@dataclass(slots=True)
class ShardState:
    """A shard's applied state: the histories of its workflows, up to log ``index``.

    Mutated in place by :meth:`apply`; :meth:`copy` is what snapshots and the durable
    copy hold (the histories are tuples, so a copy shares them safely).
    """

    index: int = 0
    chain: str = EMPTY_CHAIN
    histories: dict[str, tuple[HistoryEvent, ...]] = field(default_factory=dict)
    commands: int = 0  # client commands that changed a history

    def copy(self) -> ShardState:
        return ShardState(self.index, self.chain, dict(self.histories), self.commands)

    def apply(self, entry: wire.ReplEntry, *, dedupe: bool = True) -> None:
        """Apply one committed entry (``dedupe=False`` plants a bug for the tests: the
        engine's validation of repeated commands is skipped)."""
        self.index = entry.index
        self.chain = chain_step(self.chain, entry)
        if entry.kind != wire.EntryKind.NORMAL:
            return
        kind, wf, k = entry.payload
        hist = self.histories.get(wf)
        if kind == STARTED:
            if hist is None or not dedupe:
                self._append(wf, hist or (), STARTED, 0)
            return
        if hist is None:
            return  # the engine answers "workflow not found"
        closed = any(e[1] == COMPLETED for e in hist)
        if closed and dedupe:
            return
        if kind == ACTIVITY_COMPLETED:
            if dedupe and any(e[1] == ACTIVITY_COMPLETED and e[2] == k for e in hist):
                return
            self._append(wf, hist, ACTIVITY_COMPLETED, k)
        elif kind == COMPLETED:
            self._append(wf, hist, COMPLETED, 0)
        else:
            raise AssertionError(f"unknown command {entry.payload!r}")

    def _append(self, wf: str, hist: tuple[HistoryEvent, ...], kind: str, k: int) -> None:
        self.histories[wf] = hist + ((len(hist) + 1, kind, k),)
        self.commands += 1

    def holds(self, command: Command) -> bool:
        """Whether the effect of ``command`` is in this state (an acknowledged write)."""
        kind, wf, k = command
        hist = self.histories.get(wf, ())
        return any(e[1] == kind and e[2] == k for e in hist)


def history_violations(state: ShardState) -> list[str]:
    """DESIGN §4 invariants 4 and 5 on every workflow history in ``state``."""
    bad: list[str] = []
    for wf in sorted(state.histories):
        hist = state.histories[wf]
        ids = [e[0] for e in hist]
        if ids != list(range(1, len(hist) + 1)):
            bad.append(f"{wf}: event ids {ids} are not dense from 1")
        kinds = [e[1] for e in hist]
        if kinds.count(STARTED) != 1 or kinds[0] != STARTED:
            bad.append(f"{wf}: {kinds.count(STARTED)} start events (need one, first)")
        closes = kinds.count(COMPLETED)
        if closes > 1:
            bad.append(f"{wf}: completed {closes} times")
        if closes and kinds[-1] != COMPLETED:
            bad.append(f"{wf}: events after the close")
        acts = [e[2] for e in hist if e[1] == ACTIVITY_COMPLETED]
        if len(acts) != len(set(acts)):
            bad.append(f"{wf}: an activity completion recorded twice: {acts}")
    return bad


def summarise(state: ShardState) -> dict[str, Any]:
    """Counts for the report."""
    done = sum(1 for h in state.histories.values() if h and h[-1][1] == COMPLETED)
    return {"workflows": len(state.histories), "completed": done}
