"""Every LMDB table and key encoding (DESIGN §6). No other module builds a key or a value.

Owns: table names, the byte layout of every key, and the typed put/get/scan helpers the node
uses. Values are records encoded with ``wire``'s codec (``wire.dumps`` / ``wire.loads``).

Key layout: every per-shard key starts with the shard id as 2 big-endian bytes, so a shard's
rows are one contiguous range in every table (snapshots and handoff are range scans).
Integers are 8 big-endian bytes (so they sort numerically); strings are a 2-byte big-endian
length followed by their UTF-8 bytes, which makes composite keys unambiguous for any
string (NUL included) and keeps all rows of one (namespace, workflow id, run id) together.
Must not: do I/O beyond the read transaction it is handed, or hold state.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from shoal import wire
from shoal.store import records

# Table names. Append, never rename: they are the names of LMDB sub-databases on disk.
META = "meta"
SHARD_META = "shard_meta"
EXECUTIONS = "executions"
CURRENT_RUNS = "current_runs"
HISTORY = "history"
TRANSFER_TASKS = "transfer_tasks"
TIMER_TASKS = "timer_tasks"
VISIBILITY = "visibility"
SHARD_LOG = "shard_log"
SHARD_STATE = "shard_state"

ALL_TABLES = (
    META, SHARD_META, EXECUTIONS, CURRENT_RUNS, HISTORY, TRANSFER_TASKS, TIMER_TASKS,
    VISIBILITY, SHARD_LOG, SHARD_STATE,
)

_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_CLUSTER_KEY = b"cluster"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mutation:
    """One row change; ``value`` None deletes. A log entry carries a list of these."""

    table: str
    key: bytes
    value: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One entry of a shard's log: the mutations it applies, at (epoch, index)."""

    epoch: int
    index: int
    mutations: list[Mutation]


@dataclass(slots=True, kw_only=True)
class ShardLogState:
    """What a shard's log keeps besides entries: how far this node has applied it."""

    applied_index: int = 0
    applied_epoch: int = 0


class ReadTxn(Protocol):
    """The read view ``store/env.py`` hands out."""

    def get(self, table: str, key: bytes) -> bytes | None: ...
    def scan(self, table: str, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]: ...
    def last_before(self, table: str, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None: ...


# --- key pieces ---------------------------------------------------------------------------


def _shard(shard: int) -> bytes:
    assert 0 <= shard <= 0xFFFF, shard
    return _U16.pack(shard)


def _s(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, "an id is longer than 65535 bytes")
    return _U16.pack(len(raw)) + raw


def _u64(n: int) -> bytes:
    return _U64.pack(n)


def shard_prefix(shard: int) -> bytes:
    """The prefix of every row of ``shard`` in every per-shard table."""
    return _shard(shard)


def _run_key(shard: int, ns: str, wf: str, run: str) -> bytes:
    return _shard(shard) + _s(ns) + _s(wf) + _s(run)


# --- node-wide meta -----------------------------------------------------------------------


def put_cluster_meta(meta: records.ClusterMeta) -> Mutation:
    return Mutation(table=META, key=_CLUSTER_KEY, value=wire.dumps(meta))


def get_cluster_meta(txn: ReadTxn) -> records.ClusterMeta | None:
    raw = txn.get(META, _CLUSTER_KEY)
    return None if raw is None else wire.loads(records.ClusterMeta, raw)


# --- per-shard rows -----------------------------------------------------------------------


def put_shard_meta(shard: int, meta: records.ShardMeta) -> Mutation:
    return Mutation(table=SHARD_META, key=_shard(shard), value=wire.dumps(meta))


def get_shard_meta(txn: ReadTxn, shard: int) -> records.ShardMeta | None:
    raw = txn.get(SHARD_META, _shard(shard))
    return None if raw is None else wire.loads(records.ShardMeta, raw)


def execution_key(shard: int, ns: str, wf: str, run: str) -> bytes:
    return _run_key(shard, ns, wf, run)


def put_execution(shard: int, state: records.ExecutionState) -> Mutation:
    key = execution_key(shard, state.namespace, state.workflow_id, state.run_id)
    return Mutation(table=EXECUTIONS, key=key, value=wire.dumps(state))


def get_execution(txn: ReadTxn, shard: int, ns: str, wf: str, run: str) -> records.ExecutionState | None:
    raw = txn.get(EXECUTIONS, execution_key(shard, ns, wf, run))
    return None if raw is None else wire.loads(records.ExecutionState, raw)


def put_current_run(shard: int, ns: str, wf: str, cur: records.CurrentRun) -> Mutation:
    return Mutation(table=CURRENT_RUNS, key=_shard(shard) + _s(ns) + _s(wf), value=wire.dumps(cur))


def get_current_run(txn: ReadTxn, shard: int, ns: str, wf: str) -> records.CurrentRun | None:
    raw = txn.get(CURRENT_RUNS, _shard(shard) + _s(ns) + _s(wf))
    return None if raw is None else wire.loads(records.CurrentRun, raw)


# History: one row per log entry's batch of events, keyed by its first event id.


def put_history_batch(
    shard: int, ns: str, wf: str, run: str, first_event_id: int, events: list[wire.HistoryEvent]
) -> Mutation:
    assert events and events[0].event_id == first_event_id
    return Mutation(
        table=HISTORY, key=_run_key(shard, ns, wf, run) + _u64(first_event_id),
        value=wire.dumps(events),
    )


def read_history(
    txn: ReadTxn, shard: int, ns: str, wf: str, run: str, *, from_event_id: int = 1,
    limit: int | None = None,
) -> list[wire.HistoryEvent]:
    """Events of a run from ``from_event_id`` on, in order, at most ``limit`` of them."""
    prefix = _run_key(shard, ns, wf, run)
    start = prefix + _u64(from_event_id)
    # The batch holding ``from_event_id`` may start before it: begin at that batch.
    before = txn.last_before(HISTORY, prefix, start)
    first_key = before[0] if before is not None else start
    out: list[wire.HistoryEvent] = []
    for _, raw in txn.scan(HISTORY, prefix, first_key):
        for ev in wire.loads(list[wire.HistoryEvent], raw):  # type: ignore[arg-type]
            if ev.event_id < from_event_id:
                continue
            out.append(ev)
            if limit is not None and len(out) >= limit:
                return out
    return out


def put_transfer_task(shard: int, task: records.TransferTask) -> Mutation:
    assert task.task_id > 0
    return Mutation(table=TRANSFER_TASKS, key=_shard(shard) + _u64(task.task_id), value=wire.dumps(task))


def delete_transfer_task(shard: int, task_id: int) -> Mutation:
    return Mutation(table=TRANSFER_TASKS, key=_shard(shard) + _u64(task_id))


def scan_transfer_tasks(txn: ReadTxn, shard: int) -> Iterator[records.TransferTask]:
    for _, raw in txn.scan(TRANSFER_TASKS, _shard(shard)):
        yield wire.loads(records.TransferTask, raw)


def _timer_key(shard: int, task: records.TimerTask) -> bytes:
    micros = max(0, round(task.fire_time * 1_000_000))
    return _shard(shard) + _u64(micros) + _u64(task.task_id)


def put_timer_task(shard: int, task: records.TimerTask) -> Mutation:
    assert task.task_id > 0
    return Mutation(table=TIMER_TASKS, key=_timer_key(shard, task), value=wire.dumps(task))


def delete_timer_task(shard: int, task: records.TimerTask) -> Mutation:
    return Mutation(table=TIMER_TASKS, key=_timer_key(shard, task))


def scan_timer_tasks(txn: ReadTxn, shard: int) -> Iterator[records.TimerTask]:
    """A shard's timer tasks in fire-time order."""
    for _, raw in txn.scan(TIMER_TASKS, _shard(shard)):
        yield wire.loads(records.TimerTask, raw)


def put_visibility(shard: int, info: wire.WorkflowExecutionInfo, ns: str) -> Mutation:
    return Mutation(
        table=VISIBILITY, key=_run_key(shard, ns, info.workflow_id, info.run_id),
        value=wire.dumps(info),
    )


def scan_visibility(txn: ReadTxn, shard: int, ns: str) -> Iterator[wire.WorkflowExecutionInfo]:
    for _, raw in txn.scan(VISIBILITY, _shard(shard) + _s(ns)):
        yield wire.loads(wire.WorkflowExecutionInfo, raw)


# --- the shard log ------------------------------------------------------------------------


def put_log_entry(shard: int, entry: LogEntry) -> Mutation:
    return Mutation(table=SHARD_LOG, key=_shard(shard) + _u64(entry.index), value=wire.dumps(entry))


def delete_log_entry(shard: int, index: int) -> Mutation:
    return Mutation(table=SHARD_LOG, key=_shard(shard) + _u64(index))


def scan_log(txn: ReadTxn, shard: int, from_index: int = 0) -> Iterator[LogEntry]:
    prefix = _shard(shard)
    for _, raw in txn.scan(SHARD_LOG, prefix, prefix + _u64(from_index)):
        yield wire.loads(LogEntry, raw)


def put_shard_log_state(shard: int, state: ShardLogState) -> Mutation:
    return Mutation(table=SHARD_STATE, key=_shard(shard), value=wire.dumps(state))


def get_shard_log_state(txn: ReadTxn, shard: int) -> ShardLogState | None:
    raw = txn.get(SHARD_STATE, _shard(shard))
    return None if raw is None else wire.loads(ShardLogState, raw)
