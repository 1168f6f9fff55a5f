"""Every LMDB table and key encoding (DESIGN §6). No other module builds a key or a value.

Owns: table names, the byte layout of every key, the typed put/get/scan helpers the node
uses, and the records only the store needs (``Mutation``, ``LogEntry``, ``ShardLogState``).
Values are records encoded with ``wire``'s codec (``wire.dumps`` / ``wire.loads``).
Must not: do I/O beyond the read view it is handed, or hold state.

Key layout (all order-preserving, so ``bytes`` order of keys == order of the key tuples):

* Every per-shard key starts with the shard id as 2 big-endian bytes, so a shard's rows are
  one contiguous range in every table (snapshots and handoff are range scans).
* Integers are 8 big-endian bytes (unsigned), so they sort numerically.
* A string is its UTF-8 bytes with each 0x00 escaped as 0x00 0xFF, then the terminator
  0x00 0x01 (the FoundationDB tuple-layer trick). Any string is allowed (NUL included),
  composite keys are unambiguous, a (shard, namespace) prefix selects exactly that namespace,
  and strings sort as Python sorts them (code-point order).
* LMDB keys are at most 511 bytes, yet an id may be 1000 characters. A string whose escaped
  form is over ``_STR_INLINE_MAX`` bytes is written as its first ~96 escaped bytes, the
  marker 0x00 0x02 and a 16-byte BLAKE2b digest of the whole string: still unique and
  grouped, but such long strings sort exactly only by that prefix. Three strings + shard +
  two integers stay under 511 bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

import cbor2

from shoal import wire
from shoal.store.meta import ClusterMeta, ShardMeta

T = TypeVar("T")


class RunRecord(Protocol):
    """What the store reads of a run's state to key it (the model is ``node/history``'s)."""

    namespace: str
    workflow_id: str
    run_id: str


class OutboxTask(Protocol):
    """What the store reads of a transfer task to key it."""

    task_id: int


class TimedTask(Protocol):
    """What the store reads of a timer task to key it: fires in (fire time, id) order."""

    task_id: int
    fire_time: float

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
REPL_LOG = "repl_log"  # a replicated shard's log entries (wire.ReplEntry), by index
REPL_STATE = "repl_state"  # a replicated shard's promise and log base (ReplicaHardState)

ALL_TABLES = (
    META, SHARD_META, EXECUTIONS, CURRENT_RUNS, HISTORY, TRANSFER_TASKS, TIMER_TASKS,
    VISIBILITY, SHARD_LOG, SHARD_STATE, REPL_LOG, REPL_STATE,
)
# Tables whose keys start with the shard id (all but ``meta``): a shard's whole data.
SHARD_TABLES = tuple(t for t in ALL_TABLES if t != META)
# A shard's state machine: what its log entries change and a snapshot carries. The log and
# its bookkeeping (entries, promise, applied index) are not part of it.
SHARD_STATE_MACHINE_TABLES = tuple(
    t for t in SHARD_TABLES if t not in (SHARD_LOG, SHARD_STATE, REPL_LOG, REPL_STATE)
)

KEY_BYTES_MAX = 511  # LMDB's compiled-in limit (mdb_env_get_maxkeysize)
# Stored values may be far bigger than a wire frame (a whole log entry): decode them with a
# generous bound instead of wire's frame limit.
STORED_VALUE_BYTES_MAX = 1 << 31

_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_CLUSTER_KEY = b"cluster"
_STR_END = b"\x00\x01"
_STR_HASHED = b"\x00\x02"
_STR_INLINE_MAX = 128
_STR_PREFIX_MAX = 96


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


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaHardState:
    """What a replicated shard's log keeps besides entries: the promise and the log base.

    ``base_*`` name the last entry a snapshot or compaction replaced (index 0: none).
    """

    promised: wire.Epoch = wire.EPOCH_ZERO
    base_index: int = 0
    base_epoch: wire.Epoch = wire.EPOCH_ZERO
    base_config: wire.ShardConfig | None = None


@dataclass(slots=True, kw_only=True)
class ShardLogState:
    """What a shard's log keeps besides entries: how far this node has applied it.

    Written in the same transaction as the entry it describes (DESIGN §4), so after a crash
    the tables and ``applied_index`` always agree.
    """

    applied_index: int = 0
    applied_epoch: int = 0


class ReadTxn(Protocol):
    """The read view ``store/env.py`` hands out (see ``env._Read`` for the semantics)."""

    def get(self, table: str, key: bytes) -> bytes | None: ...
    def scan(
        self, table: str, prefix: bytes, start: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]: ...
    def last_before(self, table: str, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None: ...


def decode(cls: type[T], raw: bytes) -> T:
    """Decode a stored value of type ``cls`` (``wire.loads`` without the frame limit).

    Raises:
        WireError(MALFORMED): the bytes are not a ``cls`` (a corrupt or foreign row).
    """
    return wire.loads(cls, raw, STORED_VALUE_BYTES_MAX)


def _get(txn: ReadTxn, table: str, key: bytes, cls: type[T]) -> T | None:
    raw = txn.get(table, key)
    return None if raw is None else decode(cls, raw)


# --- key pieces ---------------------------------------------------------------------------


def enc_shard(shard: int) -> bytes:
    """The 2-byte prefix of every row of ``shard`` in every per-shard table."""
    assert 0 <= shard <= 0xFFFF, shard
    return _U16.pack(shard)


shard_prefix = enc_shard


def enc_str(text: str) -> bytes:
    """A string as a self-delimiting, order-preserving key piece (see the module doc)."""
    raw = text.encode("utf-8", "surrogatepass")
    esc = raw.replace(b"\x00", b"\x00\xff")
    if len(esc) <= _STR_INLINE_MAX:
        return esc + _STR_END
    head = esc[:_STR_PREFIX_MAX]
    if head.endswith(b"\x00"):  # cut inside an escape pair: keep the pair out whole
        head = head[:-1]
    return head + _STR_HASHED + hashlib.blake2b(raw, digest_size=16).digest()


def enc_u64(n: int) -> bytes:
    """An unsigned integer as 8 big-endian bytes (sorts numerically)."""
    assert 0 <= n < 1 << 64, n
    return _U64.pack(n)


def micros(t: float) -> int:
    """Epoch seconds as whole microseconds, the timer table's time unit (clamped at 0)."""
    return max(0, round(t * 1_000_000))


def run_key(shard: int, ns: str, wf: str, run: str) -> bytes:
    """Key of one run; also the prefix of that run's history rows."""
    return enc_shard(shard) + enc_str(ns) + enc_str(wf) + enc_str(run)


def scan_shard(txn: ReadTxn, shard: int) -> Iterator[Mutation]:
    """Every row of ``shard`` in every per-shard table, as puts (snapshot / handoff)."""
    prefix = enc_shard(shard)
    for table in SHARD_TABLES:
        for key, value in txn.scan(table, prefix):
            yield Mutation(table=table, key=key, value=value)


# --- node-wide meta -----------------------------------------------------------------------


def put_cluster_meta(meta: ClusterMeta) -> Mutation:
    """Record the identity this data dir belongs to."""
    return Mutation(table=META, key=_CLUSTER_KEY, value=wire.dumps(meta))


def get_cluster_meta(txn: ReadTxn) -> ClusterMeta | None:
    """The identity recorded by ``put_cluster_meta``, or None for a fresh data dir."""
    return _get(txn, META, _CLUSTER_KEY, ClusterMeta)


# --- per-shard rows -----------------------------------------------------------------------


def put_shard_meta(shard: int, meta: ShardMeta) -> Mutation:
    """Write a shard's bookkeeping row."""
    return Mutation(table=SHARD_META, key=enc_shard(shard), value=wire.dumps(meta))


def get_shard_meta(txn: ReadTxn, shard: int) -> ShardMeta | None:
    """A shard's bookkeeping row, if written."""
    return _get(txn, SHARD_META, enc_shard(shard), ShardMeta)


def execution_key(shard: int, ns: str, wf: str, run: str) -> bytes:
    """Key of a run's row in ``executions`` (and ``visibility``)."""
    return run_key(shard, ns, wf, run)


def put_execution(shard: int, state: RunRecord) -> Mutation:
    """Write a run's mutable state (keyed by its own namespace / ids)."""
    key = execution_key(shard, state.namespace, state.workflow_id, state.run_id)
    return Mutation(table=EXECUTIONS, key=key, value=wire.dumps(state))


def delete_execution(shard: int, ns: str, wf: str, run: str) -> Mutation:
    """Remove a run's mutable state (retention)."""
    return Mutation(table=EXECUTIONS, key=execution_key(shard, ns, wf, run))


def get_execution(txn: ReadTxn, cls: type[T], shard: int, ns: str, wf: str, run: str) -> T | None:
    """A run's mutable state (decoded as ``cls``), if the run exists."""
    return _get(txn, EXECUTIONS, execution_key(shard, ns, wf, run), cls)


def current_run_key(shard: int, ns: str, wf: str) -> bytes:
    """Key of a workflow id's current-run pointer."""
    return enc_shard(shard) + enc_str(ns) + enc_str(wf)


def put_current_run(shard: int, ns: str, wf: str, cur: object) -> Mutation:
    """Point workflow id ``wf`` at ``cur``."""
    return Mutation(table=CURRENT_RUNS, key=current_run_key(shard, ns, wf), value=wire.dumps(cur))


def delete_current_run(shard: int, ns: str, wf: str) -> Mutation:
    """Forget a workflow id's current run (retention)."""
    return Mutation(table=CURRENT_RUNS, key=current_run_key(shard, ns, wf))


def get_current_run(txn: ReadTxn, cls: type[T], shard: int, ns: str, wf: str) -> T | None:
    """The run workflow id ``wf`` currently names (decoded as ``cls``), if any."""
    return _get(txn, CURRENT_RUNS, current_run_key(shard, ns, wf), cls)


# History: one row per log entry's batch of events, keyed by its first event id, so a
# run's history is one range in event-id order.


def history_key(shard: int, ns: str, wf: str, run: str, first_event_id: int) -> bytes:
    """Key of the history batch of a run starting at ``first_event_id``."""
    return run_key(shard, ns, wf, run) + enc_u64(first_event_id)


def put_history_batch(
    shard: int, ns: str, wf: str, run: str, first_event_id: int, events: list[wire.HistoryEvent]
) -> Mutation:
    """Append a batch of consecutive events (``events[0].event_id == first_event_id``)."""
    assert events and events[0].event_id == first_event_id, (first_event_id, events[:1])
    assert all(e.event_id == first_event_id + i for i, e in enumerate(events)), "gap in batch"
    return Mutation(
        table=HISTORY, key=history_key(shard, ns, wf, run, first_event_id), value=wire.dumps(events)
    )


def delete_history(txn: ReadTxn, shard: int, ns: str, wf: str, run: str) -> list[Mutation]:
    """Deletes of every history batch of a run (retention)."""
    return [Mutation(table=HISTORY, key=k) for k, _ in txn.scan(HISTORY, run_key(shard, ns, wf, run))]


def read_history(
    txn: ReadTxn, shard: int, ns: str, wf: str, run: str, *, from_event_id: int = 1,
    limit: int | None = None,
) -> list[wire.HistoryEvent]:
    """Events of a run from ``from_event_id`` on, in order, at most ``limit`` of them.

    Paging: pass the last returned event id + 1 as the next ``from_event_id``.
    """
    prefix = run_key(shard, ns, wf, run)
    start = prefix + enc_u64(max(from_event_id, 0))
    # The batch holding ``from_event_id`` may start before it: begin at that batch.
    before = txn.last_before(HISTORY, prefix, start)
    first_key = before[0] if before is not None else start
    out: list[wire.HistoryEvent] = []
    if limit is not None and limit <= 0:
        return out
    for _, raw in txn.scan(HISTORY, prefix, first_key):
        for ev in decode(list[wire.HistoryEvent], raw):  # type: ignore[arg-type]
            if ev.event_id < from_event_id:
                continue
            out.append(ev)
            if limit is not None and len(out) >= limit:
                return out
    return out


def last_history_event_id(txn: ReadTxn, shard: int, ns: str, wf: str, run: str) -> int:
    """The id of a run's last stored event (0 if none): a reverse seek, one row decoded."""
    for _, raw in txn.scan(HISTORY, run_key(shard, ns, wf, run), reverse=True):
        events = decode(list[wire.HistoryEvent], raw)  # type: ignore[arg-type]
        return events[-1].event_id
    return 0


# Outbox: transfer tasks by id, timer tasks by (fire time in µs, id).


def put_transfer_task(shard: int, task: OutboxTask) -> Mutation:
    """Write a transfer task (its ``task_id`` must be assigned)."""
    assert task.task_id > 0, task
    key = enc_shard(shard) + enc_u64(task.task_id)
    return Mutation(table=TRANSFER_TASKS, key=key, value=wire.dumps(task))


def delete_transfer_task(shard: int, task_id: int) -> Mutation:
    """Remove a transfer task (dispatched and started)."""
    return Mutation(table=TRANSFER_TASKS, key=enc_shard(shard) + enc_u64(task_id))


def scan_transfer_tasks(txn: ReadTxn, cls: type[T], shard: int, *,
                        after_task_id: int = 0) -> Iterator[T]:
    """A shard's transfer tasks (decoded as ``cls``) with id > ``after_task_id``, in id order."""
    prefix = enc_shard(shard)
    for _, raw in txn.scan(TRANSFER_TASKS, prefix, prefix + enc_u64(after_task_id + 1)):
        yield decode(cls, raw)


def timer_key(shard: int, task: TimedTask) -> bytes:
    """Key of a timer task: fires in (fire time, task id) order."""
    return enc_shard(shard) + enc_u64(micros(task.fire_time)) + enc_u64(task.task_id)


def put_timer_task(shard: int, task: TimedTask) -> Mutation:
    """Write a timer task (its ``task_id`` must be assigned)."""
    assert task.task_id > 0, task
    return Mutation(table=TIMER_TASKS, key=timer_key(shard, task), value=wire.dumps(task))


def delete_timer_task(shard: int, task: TimedTask) -> Mutation:
    """Remove a timer task (fired, or fenced off as stale)."""
    return Mutation(table=TIMER_TASKS, key=timer_key(shard, task))


def scan_timer_tasks(
    txn: ReadTxn, cls: type[T], shard: int, *, due_before: float | None = None
) -> Iterator[T]:
    """A shard's timer tasks (decoded as ``cls``) in fire order; with ``due_before``, only
    those firing before it."""
    prefix = enc_shard(shard)
    end = None if due_before is None else prefix + enc_u64(micros(due_before))
    for key, raw in txn.scan(TIMER_TASKS, prefix):
        if end is not None and key >= end:
            return
        yield decode(cls, raw)


def put_visibility(shard: int, info: wire.WorkflowExecutionInfo, ns: str) -> Mutation:
    """Write the list/describe view of a run."""
    key = run_key(shard, ns, info.workflow_id, info.run_id)
    return Mutation(table=VISIBILITY, key=key, value=wire.dumps(info))


def delete_visibility(shard: int, ns: str, wf: str, run: str) -> Mutation:
    """Remove a run from listings (retention)."""
    return Mutation(table=VISIBILITY, key=run_key(shard, ns, wf, run))


def scan_visibility(txn: ReadTxn, shard: int, ns: str) -> Iterator[wire.WorkflowExecutionInfo]:
    """A shard's runs in namespace ``ns``, ordered by (workflow id, run id)."""
    for _, raw in txn.scan(VISIBILITY, enc_shard(shard) + enc_str(ns)):
        yield decode(wire.WorkflowExecutionInfo, raw)


# --- the shard log ------------------------------------------------------------------------


def log_key(shard: int, index: int) -> bytes:
    """Key of a shard's log entry ``index``."""
    return enc_shard(shard) + enc_u64(index)


def put_log_entry(shard: int, entry: LogEntry) -> Mutation:
    """Append (or overwrite) a log entry."""
    return Mutation(table=SHARD_LOG, key=log_key(shard, entry.index), value=wire.dumps(entry))


def delete_log_entry(shard: int, index: int) -> Mutation:
    """Truncate one log entry."""
    return Mutation(table=SHARD_LOG, key=log_key(shard, index))


def scan_log(txn: ReadTxn, shard: int, from_index: int = 0) -> Iterator[LogEntry]:
    """A shard's stored log entries with index >= ``from_index``, in order."""
    for _, raw in txn.scan(SHARD_LOG, enc_shard(shard), log_key(shard, from_index)):
        yield decode(LogEntry, raw)


def log_bounds(txn: ReadTxn, shard: int) -> tuple[int, int] | None:
    """(first, last) index of a shard's stored log entries, or None if it has none."""
    prefix = enc_shard(shard)
    first = next(txn.scan(SHARD_LOG, prefix), None)
    last = next(txn.scan(SHARD_LOG, prefix, reverse=True), None)
    if first is None or last is None:
        return None
    return _U64.unpack(first[0][2:])[0], _U64.unpack(last[0][2:])[0]


def put_shard_log_state(shard: int, state: ShardLogState) -> Mutation:
    """Record how far this node has applied a shard's log."""
    return Mutation(table=SHARD_STATE, key=enc_shard(shard), value=wire.dumps(state))


def get_shard_log_state(txn: ReadTxn, shard: int) -> ShardLogState | None:
    """How far this node has applied a shard's log, if it has ever applied an entry."""
    return _get(txn, SHARD_STATE, enc_shard(shard), ShardLogState)


# --- the replicated shard log (issue 6) ----------------------------------------------------


def put_repl_entry(shard: int, entry: wire.ReplEntry) -> Mutation:
    """Store (or overwrite) a replicated log entry."""
    return Mutation(table=REPL_LOG, key=log_key(shard, entry.index), value=wire.dumps(entry))


def delete_repl_entry(shard: int, index: int) -> Mutation:
    return Mutation(table=REPL_LOG, key=log_key(shard, index))


def scan_repl_log(txn: ReadTxn, shard: int, from_index: int = 0) -> Iterator[wire.ReplEntry]:
    """A shard's stored replicated entries with index >= ``from_index``, in order."""
    for _, raw in txn.scan(REPL_LOG, enc_shard(shard), log_key(shard, from_index)):
        yield decode(wire.ReplEntry, raw)


def put_replica_hard_state(shard: int, state: ReplicaHardState) -> Mutation:
    return Mutation(table=REPL_STATE, key=enc_shard(shard), value=wire.dumps(state))


def get_replica_hard_state(txn: ReadTxn, shard: int) -> ReplicaHardState | None:
    return _get(txn, REPL_STATE, enc_shard(shard), ReplicaHardState)


def _repl_applied_key(shard: int) -> bytes:
    # Beside the hard state in REPL_STATE, not in SHARD_STATE: a node may run a shard's
    # LocalShardLog and a replica of it side by side while the cluster is being wired.
    return enc_shard(shard) + b"applied"


def put_replica_applied(shard: int, index: int) -> Mutation:
    """Record how far this replica has applied its shard's log (same txn as the apply)."""
    return Mutation(table=REPL_STATE, key=_repl_applied_key(shard), value=wire.dumps(index))


def delete_replica_state(shard: int) -> list[Mutation]:
    """Deletes of a replica's promise and applied index (with its log: the replica is gone)."""
    return [Mutation(table=REPL_STATE, key=enc_shard(shard)),
            Mutation(table=REPL_STATE, key=_repl_applied_key(shard))]


def get_replica_applied(txn: ReadTxn, shard: int) -> int:
    raw = txn.get(REPL_STATE, _repl_applied_key(shard))
    return 0 if raw is None else decode(int, raw)


def encode_mutations(mutations: list[Mutation]) -> bytes:
    """A log entry's payload: its mutations as one CBOR value."""
    return cbor2.dumps([[m.table, m.key, m.value] for m in mutations])


def decode_mutations(payload: bytes) -> list[Mutation]:
    """The mutations of a log entry's payload, each checked.

    Raises:
        ShoalError(MALFORMED or INVALID_ARGUMENT): the payload is not a list of valid
            mutations (nothing is applied then).
    """
    try:
        rows = cbor2.loads(payload)
    except Exception as exc:  # noqa: BLE001 - cbor2 raises several types for bad bytes
        raise wire.WireError(wire.Code.MALFORMED, f"log entry payload is not CBOR: {exc}") from None
    if not isinstance(rows, list):
        raise wire.WireError(wire.Code.MALFORMED, "log entry payload is not a list")
    out: list[Mutation] = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str)):
            raise wire.WireError(wire.Code.MALFORMED, "log entry mutation is not [table, key, value]")
        m = Mutation(table=row[0], key=row[1], value=row[2])
        check_mutation(m)
        out.append(m)
    return out


def scan_shard_state_machine(txn: ReadTxn, shard: int) -> Iterator[tuple[str, bytes, bytes]]:
    """Every state-machine row of ``shard`` as (table, key, value): a snapshot's content."""
    prefix = enc_shard(shard)
    for table in SHARD_STATE_MACHINE_TABLES:
        for key, value in txn.scan(table, prefix):
            yield table, key, value


def check_mutation(m: Mutation) -> None:
    """Refuse a mutation LMDB would reject, before it can share a transaction with others.

    Raises:
        ShoalError(INVALID_ARGUMENT): unknown table, empty or over-long key, non-bytes value.
    """
    if m.table not in ALL_TABLES:
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"unknown table {m.table!r}")
    if not isinstance(m.key, bytes) or not 0 < len(m.key) <= KEY_BYTES_MAX:
        raise wire.ShoalError(
            wire.Code.INVALID_ARGUMENT,
            f"a {m.table} key must be 1..{KEY_BYTES_MAX} bytes, got {len(m.key)}",
        )
    if m.value is not None and not isinstance(m.value, bytes):
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT, f"a {m.table} value must be bytes")


