"""One history shard on this node: the thin trio shell around the sans-IO history engine.

Owns: the per-workflow-id mailboxes that serialise changes to one workflow id, the cache of
mutable state that only the mailbox runner touches, turning engine transitions into one log
entry of LMDB mutations (transactional outbox, DESIGN §3.2), task-id allocation, and the
after-commit effects (dispatch to matching, arm timers, wake long polls). Reads (describe,
result, history) go to LMDB, which holds exactly what has committed.

Must not: decide workflow semantics (``node/history`` does), build keys or values by hand
(``store/tables.py`` does), or answer a caller before its entry has committed.

Batching: every request for one workflow id that arrives while an entry for that id is being
committed waits in the mailbox; the next drain applies all of them to the in-memory state one
after another and commits them as ONE entry. Many workflow ids' entries then share one group
commit in the writer. This is what lets thousands of signals per second land in one workflow
with one fsync each per batch rather than per request.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from shoal import wire
from shoal.node.history.engine import HistoryEngine, Transition
from shoal.node.matching.matching import DispatchTask
from shoal.node.history import records
from shoal.store import tables
from shoal.store.env import Store
from shoal.store.meta import ShardMeta
from shoal.store.shardlog import ShardLog

log = logging.getLogger(__name__)

TASK_ID_BLOCK = 1 << 20  # task ids are leased from the persisted ceiling in blocks this big
STATE_CACHE_MAX = 4096  # mutable states cached per shard
HISTORY_CACHE_MAX = 512  # runs whose committed history a shard keeps decoded
DEFERRED_DELETES_MAX = 256  # stale timer rows waiting for a shard entry before one of their own


class TimerSink(Protocol):
    def add(self, shard: int, task: records.TimerTask) -> None: ...


class TransferSink(Protocol):
    def add(self, shard: int, task: records.TransferTask) -> None: ...


class TaskSink(Protocol):
    """Where dispatched workflow and activity tasks go: this node's ``Matching``, or the
    cluster's task router (to the task queue's partition owner)."""

    def add(self, task: DispatchTask) -> bool: ...


class NotServingLog:
    """The log of a shard this node does not lead: every write is refused."""

    def __init__(self, shard_id: int) -> None:
        self.shard_id = shard_id
        self.applied_index = 0

    async def propose(self, mutations: list[tables.Mutation]) -> int:
        raise wire.ShoalError(wire.Code.NOT_LEADER, f"shard {self.shard_id} is not led here")


Op = Callable[["Batch"], Any]


@dataclass(eq=False, slots=True)
class _Pending:
    op: Op
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class _RunChanges:
    state: records.ExecutionState
    first_event_id: int
    events: list[wire.HistoryEvent] = field(default_factory=list)


# Events after which a run's list entry changes (besides its start and close).
_VISIBLE_CHANGES = frozenset({wire.EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                              wire.EventType.WORKFLOW_PROPERTIES_MODIFIED})


class Batch:
    """The in-memory view of one workflow id while a drain applies its pending ops.

    Ops load states through it, apply engine transitions with ``record``, and stage outbox
    deletions; the shard turns everything staged into one log entry.
    """

    def __init__(self, shard: Shard, namespace: str, workflow_id: str) -> None:
        self.shard, self.namespace, self.workflow_id = shard, namespace, workflow_id
        self.now = shard.clock()
        self.runs: dict[str, _RunChanges] = {}
        self.current_changed = False
        self.transfer_tasks: list[records.TransferTask] = []
        self.timer_tasks: list[records.TimerTask] = []
        self.deletes: list[tables.Mutation] = []
        self.closed_runs: list[str] = []

    # --- reads -------------------------------------------------------------------------

    def current(self) -> records.CurrentRun | None:
        return self.shard._current(self.namespace, self.workflow_id)

    def load(self, run_id: str) -> records.ExecutionState:
        """The mutable state of a run of this workflow id; '' names the current run."""
        if not run_id:
            cur = self.current()
            if cur is None:
                raise wire.ShoalError(
                    wire.Code.NOT_FOUND, f"workflow {self.workflow_id!r} does not exist"
                )
            run_id = cur.run_id
        state = self.shard._state(self.namespace, self.workflow_id, run_id)
        if state is None:
            raise wire.ShoalError(
                wire.Code.NOT_FOUND,
                f"workflow {self.workflow_id!r} run {run_id!r} does not exist",
            )
        return state

    def find(self, run_id: str) -> records.ExecutionState | None:
        """The mutable state of run ``run_id`` of this workflow id, or None if it is gone."""
        return self.shard._state(self.namespace, self.workflow_id, run_id)

    # --- staging -----------------------------------------------------------------------

    def record(self, state: records.ExecutionState, tr: Transition) -> None:
        """Stage what an engine transition produced for ``state``."""
        changes = self.runs.get(state.run_id)
        if changes is None:
            first = tr.events[0].event_id if tr.events else state.next_event_id
            changes = self.runs[state.run_id] = _RunChanges(state=state, first_event_id=first)
        if tr.events:
            expected = changes.first_event_id + len(changes.events)
            assert tr.events[0].event_id == expected, (tr.events[0].event_id, expected)
            changes.events.extend(tr.events)
        self.transfer_tasks.extend(tr.transfer_tasks)
        self.timer_tasks.extend(tr.timer_tasks)
        if tr.closed:
            self.closed_runs.append(state.run_id)
            cur = self.current()
            if cur is not None and cur.run_id == state.run_id:
                self.set_current(records.CurrentRun(
                    run_id=cur.run_id, status=state.status, start_request_id=cur.start_request_id
                ))
        if tr.new_run is not None:
            # Continue-as-new: the successor becomes current in the same entry that closes
            # its predecessor, so the workflow id always has a current run.
            new_state, new_tr = tr.new_run
            self.add_run(new_state)
            self.record(new_state, new_tr)
            self.set_current(records.CurrentRun(
                run_id=new_state.run_id, status=new_state.status,
                start_request_id=new_state.start_request_id,
            ))

    def set_current(self, current: records.CurrentRun) -> None:
        self.shard._currents[(self.namespace, self.workflow_id)] = current
        self.current_changed = True

    def add_run(self, state: records.ExecutionState) -> None:
        self.shard._put_cache(state)

    def delete_transfer_task(self, task_id: int) -> None:
        self.deletes.append(tables.delete_transfer_task(self.shard.shard_id, task_id))

    def delete_timer_task(self, task: records.TimerTask) -> None:
        self.deletes.append(tables.delete_timer_task(self.shard.shard_id, task))

    def defer_timer_delete(self, task: records.TimerTask) -> None:
        """Delete a stale timer's row with the shard's next entry instead of one of its own.

        Most timers (a workflow task's timeout, an activity's start-to-close) go stale when
        their subject completes; a commit per stale row doubled the writes per workflow.
        Riding on a later entry of the same shard keeps the delete in the shard's log (so a
        replica applies it too); if the node stops first, the timer fires again after the
        restart, is still stale, and is deferred again.
        """
        self.shard._deferred.append(tables.delete_timer_task(self.shard.shard_id, task))


class Shard:
    """History shard ``shard_id``: mailboxes, cache, outbox and after-commit effects."""

    def __init__(
        self,
        shard_id: int,
        *,
        store: Store,
        shard_log: ShardLog,
        engine: HistoryEngine,
        matching: TaskSink,
        timers: TimerSink,
        clock: Callable[[], float] = time.time,
        transfers: TransferSink | None = None,
    ) -> None:
        self.shard_id = shard_id
        self.transfers = transfers
        self.store, self.log, self.engine = store, shard_log, engine
        self.matching, self.timers, self.clock = matching, timers, clock
        self._mailboxes: dict[tuple[str, str], list[_Pending]] = {}
        self._states: collections.OrderedDict[tuple[str, str, str], records.ExecutionState] = (
            collections.OrderedDict()
        )
        self._currents: dict[tuple[str, str], records.CurrentRun | None] = {}
        self._changed: dict[tuple[str, str], trio.Event] = {}
        self._committed: dict[tuple[str, str], trio.Event] = {}  # any commit (buffered queries)
        self._next_task_id = 0
        self._task_id_ceiling = 0
        self._deferred: list[tables.Mutation] = []  # stale timer rows to delete (see Batch)
        # When each outstanding workflow/activity task was last handed to matching (the
        # dispatch deadline, see ``redispatch``); pruned at every sweep.
        self._dispatched_at: dict[int, float] = {}
        # Committed history per run, so a workflow task does not decode it from LMDB again.
        self._histories: collections.OrderedDict[tuple[str, str, str], list[wire.HistoryEvent]] = (
            collections.OrderedDict()
        )

    # --- start-up and leadership ---------------------------------------------------------

    def activate(self, shard_log: ShardLog) -> None:
        """This node now leads the shard: write through ``shard_log``, forget whatever was
        cached under an earlier leader, and re-dispatch and re-arm the shard's outbox."""
        self.log = shard_log
        self._reset()
        self.load()

    def deactivate(self) -> None:
        """Another node leads the shard now: refuse writes and drop the caches (its
        timers are dropped by the caller, its queued transfer tasks when they run)."""
        self.log = NotServingLog(self.shard_id)
        self._reset()

    def _reset(self) -> None:
        self._states.clear()
        self._currents.clear()
        self._histories.clear()
        self._deferred.clear()
        self._dispatched_at.clear()
        changed, self._changed = self._changed, {}
        committed, self._committed = self._committed, {}
        for ev in [*changed.values(), *committed.values()]:
            ev.set()  # long polls re-read, and go to the new leader when they retry

    async def confirm_leader(self) -> None:
        """Before a read that must be current (DESIGN §4): a quorum confirms this node still
        leads, so the tables hold every committed entry. A single node's log has nothing
        to confirm.

        Raises:
            ShoalError: NOT_LEADER / UNAVAILABLE: another node may lead now.
        """
        barrier = getattr(self.log, "read_barrier", None)
        if barrier is not None:
            await barrier()

    def redispatch(self, older_than_s: float = 0.0) -> int:
        """Hand scheduled-but-not-started workflow/activity tasks to matching again: all of
        them (a partition's owner may have changed), or those handed off at least
        ``older_than_s`` ago (the dispatch deadline: matching is soft state, and an owner
        that restarted before anyone saw it die lost what it held). Duplicates are dropped
        in matching or at record-started. Returns how many went."""
        now = time.monotonic()
        with self.store.read() as txn:
            tasks = [t for t in tables.scan_transfer_tasks(txn, records.TransferTask, self.shard_id)
                     if t.kind in records.MATCHED_TRANSFER_KINDS]
        outstanding = {t.task_id for t in tasks}
        for task_id in [i for i in self._dispatched_at if i not in outstanding]:
            del self._dispatched_at[task_id]  # started (or dropped) since
        sent = 0
        for t in tasks:
            if not older_than_s or now - self._dispatched_at.get(t.task_id, -math.inf) >= older_than_s:
                self._hand_off(t)
                sent += 1
        return sent

    def load(self) -> None:
        """Read the shard's outbox after a (re)start: re-dispatch and re-arm everything."""
        with self.store.read() as txn:
            meta = tables.get_shard_meta(txn, self.shard_id)
            # Skip the whole last leased block: ids below the ceiling may have been used.
            self._task_id_ceiling = meta.task_id_ceiling if meta else 0
            self._next_task_id = self._task_id_ceiling
            transfers = list(tables.scan_transfer_tasks(txn, records.TransferTask, self.shard_id))
            timers = list(tables.scan_timer_tasks(txn, records.TimerTask, self.shard_id))
        for t in transfers:
            self._hand_off(t)
        for tt in timers:
            self.timers.add(self.shard_id, tt)
        if transfers or timers:
            log.info(
                "shard loaded shard=%d transfer_tasks=%d timer_tasks=%d",
                self.shard_id, len(transfers), len(timers),
            )

    # --- the mailbox -------------------------------------------------------------------

    async def run_op(self, namespace: str, workflow_id: str, op: Op) -> Any:
        """Apply ``op`` to this workflow id's state and return once its entry has committed.

        Raises the ``ShoalError`` the op raised (nothing of it written), or the commit's error.
        """
        key = (namespace, workflow_id)
        pending = _Pending(op)
        queue = self._mailboxes.get(key)
        if queue is not None:
            queue.append(pending)  # a runner is draining this id; it will take ours too
        else:
            self._mailboxes[key] = [pending]
            # The drain must finish even if our caller goes away: others wait on it.
            with trio.CancelScope(shield=True):
                await self._drain(key)
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    async def _drain(self, key: tuple[str, str]) -> None:
        while True:
            ops = self._mailboxes[key]
            if not ops:
                del self._mailboxes[key]
                return
            self._mailboxes[key] = []
            await self._commit_ops(key, ops)

    async def _commit_ops(self, key: tuple[str, str], ops: list[_Pending]) -> None:
        batch = Batch(self, *key)
        ok: list[_Pending] = []
        deferred: list[tables.Mutation] = []
        try:
            for p in ops:
                try:
                    p.result = p.op(batch)
                    ok.append(p)
                except wire.ShoalError as exc:
                    p.error = exc  # the engine validated first: the state is untouched
            mutations = self._mutations(batch)
            if mutations or len(self._deferred) >= DEFERRED_DELETES_MAX:
                deferred, self._deferred = self._deferred, []
                await self.log.propose(mutations + deferred)
        except BaseException as exc:
            self._deferred.extend(deferred)
            # Nothing committed; in-memory states may hold the failed changes: forget them.
            self._forget(key)
            err = exc if isinstance(exc, wire.ShoalError) else None
            if err is None:
                log.exception("shard commit failed shard=%d", self.shard_id)
                err = wire.ShoalError(wire.Code.UNAVAILABLE, "the write failed; retry it")
            for p in ok:
                p.error = err
            for p in ops:
                p.done.set()
            if not isinstance(exc, Exception):
                raise
            return
        self._after_commit(batch)
        for p in ops:
            p.done.set()

    def _mutations(self, batch: Batch) -> list[tables.Mutation]:
        muts: list[tables.Mutation] = []
        sid = self.shard_id
        ids_needed = len(batch.transfer_tasks) + len(batch.timer_tasks)
        if ids_needed:
            meta = self._reserve_task_ids(ids_needed)
            if meta is not None:
                muts.append(meta)
            for t in batch.transfer_tasks:
                t.task_id = self._take_task_id()
                muts.append(tables.put_transfer_task(sid, t))
            for tt in batch.timer_tasks:
                tt.task_id = self._take_task_id()
                muts.append(tables.put_timer_task(sid, tt))
        for run_id, ch in batch.runs.items():
            st = ch.state
            if ch.events:
                put = tables.put_history_batch(
                    sid, st.namespace, st.workflow_id, run_id, ch.first_event_id, ch.events
                )
                # Temporal's history size is the sum of its stored event blobs: count this
                # batch's bytes as written. A failed commit forgets the state, count included.
                assert put.value is not None
                st.history_size_bytes += len(put.value)
                muts.append(put)
            muts.append(tables.put_execution(sid, st))
            # Visibility (list) changes only when a run starts, upserts search attributes or
            # closes; rewriting it on every entry cost an encode and a B-tree write per
            # request for nothing.
            if ch.first_event_id == 1 or run_id in batch.closed_runs or any(
                e.event_type in _VISIBLE_CHANGES for e in ch.events
            ):
                muts.append(tables.put_visibility(sid, execution_info(st), st.namespace))
        if batch.current_changed:
            cur = self._currents[(batch.namespace, batch.workflow_id)]
            assert cur is not None
            muts.append(tables.put_current_run(sid, batch.namespace, batch.workflow_id, cur))
        muts.extend(batch.deletes)
        return muts

    def _reserve_task_ids(self, n: int) -> tables.Mutation | None:
        if self._next_task_id + n <= self._task_id_ceiling:
            return None
        self._task_id_ceiling = self._next_task_id + n + TASK_ID_BLOCK
        return tables.put_shard_meta(
            self.shard_id, ShardMeta(task_id_ceiling=self._task_id_ceiling)
        )

    def _take_task_id(self) -> int:
        self._next_task_id += 1
        assert self._next_task_id <= self._task_id_ceiling
        return self._next_task_id

    def history(self, namespace: str, workflow_id: str, run_id: str, upto_event_id: int) -> list[wire.HistoryEvent]:
        """Committed events 1..``upto_event_id`` of a run (fewer if it has fewer)."""
        key = (namespace, workflow_id, run_id)
        events = self._histories.get(key)
        if events is None or len(events) < upto_event_id:
            with self.store.read() as txn:
                events = tables.read_history(txn, self.shard_id, namespace, workflow_id, run_id)
            self._histories[key] = events
            while len(self._histories) > HISTORY_CACHE_MAX:
                self._histories.popitem(last=False)
        self._histories.move_to_end(key)
        return events[:upto_event_id]

    def _after_commit(self, batch: Batch) -> None:
        for run_id, ch in batch.runs.items():
            key = (batch.namespace, batch.workflow_id, run_id)
            cached = self._histories.get(key)
            if cached is None or not ch.events:
                continue
            if len(cached) + 1 == ch.first_event_id and not (run_id in batch.closed_runs):
                cached.extend(ch.events)
            else:
                del self._histories[key]  # out of step (or closed): read it again if needed
        for t in batch.transfer_tasks:
            self._hand_off(t)
        for tt in batch.timer_tasks:
            self.timers.add(self.shard_id, tt)
        # Long polls wait for results, so only a close (or a new current run) wakes them.
        if batch.closed_runs or batch.current_changed:
            self._notify((batch.namespace, batch.workflow_id))
        if self._committed:
            ev = self._committed.pop((batch.namespace, batch.workflow_id), None)
            if ev is not None:
                ev.set()

    def _hand_off(self, t: records.TransferTask) -> None:
        """Workflow and activity tasks go to matching; cross-workflow ones to the processor."""
        if t.kind in records.MATCHED_TRANSFER_KINDS:
            self._dispatched_at[t.task_id] = time.monotonic()
            self.matching.add(self._dispatch_task(t))
        elif self.transfers is not None:
            self.transfers.add(self.shard_id, t)

    def _dispatch_task(self, t: records.TransferTask) -> DispatchTask:
        return DispatchTask(
            shard=self.shard_id, task_id=t.task_id, kind=t.kind, namespace=t.namespace,
            workflow_id=t.workflow_id, run_id=t.run_id, task_queue=t.task_queue,
            scheduled_event_id=t.scheduled_event_id, attempt=t.attempt,
        )

    # --- change notification (long polls) ----------------------------------------------

    def changed_event(self, namespace: str, workflow_id: str) -> trio.Event:
        """An event set at the next commit that closes a run of this workflow id or starts
        a new one."""
        key = (namespace, workflow_id)
        ev = self._changed.get(key)
        if ev is None:
            ev = self._changed[key] = trio.Event()
        return ev

    def committed_event(self, namespace: str, workflow_id: str) -> trio.Event:
        """An event set at the next commit of any change to this workflow id (a buffered
        query re-reads the run's workflow task then)."""
        key = (namespace, workflow_id)
        ev = self._committed.get(key)
        if ev is None:
            ev = self._committed[key] = trio.Event()
        return ev

    def _notify(self, key: tuple[str, str]) -> None:
        ev = self._changed.pop(key, None)
        if ev is not None:
            ev.set()

    # --- cache -------------------------------------------------------------------------

    def _current(self, namespace: str, workflow_id: str) -> records.CurrentRun | None:
        key = (namespace, workflow_id)
        if key in self._currents:
            return self._currents[key]
        with self.store.read() as txn:
            cur = tables.get_current_run(txn, records.CurrentRun, self.shard_id, namespace, workflow_id)
        if len(self._currents) >= STATE_CACHE_MAX:
            self._currents.pop(next(iter(self._currents)))
        self._currents[key] = cur
        return cur

    def _state(self, namespace: str, workflow_id: str, run_id: str) -> records.ExecutionState | None:
        key = (namespace, workflow_id, run_id)
        st = self._states.get(key)
        if st is not None:
            self._states.move_to_end(key)
            return st
        with self.store.read() as txn:
            st = tables.get_execution(txn, records.ExecutionState, self.shard_id, namespace, workflow_id, run_id)
        if st is not None:
            self._put_cache(st)
        return st

    def _put_cache(self, st: records.ExecutionState) -> None:
        key = (st.namespace, st.workflow_id, st.run_id)
        self._states[key] = st
        self._states.move_to_end(key)
        while len(self._states) > STATE_CACHE_MAX:
            old_key, _ = self._states.popitem(last=False)
            if (old_key[0], old_key[1]) in self._mailboxes:
                # Being changed right now: keep it (the drain holds it anyway).
                self._states[old_key] = _
                self._states.move_to_end(old_key, last=False)
                break

    def _forget(self, key: tuple[str, str]) -> None:
        self._currents.pop(key, None)
        for k in [k for k in self._histories if (k[0], k[1]) == key]:
            del self._histories[k]
        for k in [k for k in self._states if (k[0], k[1]) == key]:
            del self._states[k]


def execution_info(st: records.ExecutionState) -> wire.WorkflowExecutionInfo:
    """The list/describe summary of a run, as the visibility table keeps it."""
    return wire.WorkflowExecutionInfo(
        workflow_id=st.workflow_id, run_id=st.run_id, workflow_type=st.workflow_type,
        task_queue=st.task_queue, status=st.status, start_time=st.start_time,
        # No start delay exists yet (cron, start_delay, a retry's backoff), so the first
        # workflow task is due at start: execution_time is the start time.
        close_time=st.close_time, execution_time=st.start_time,
        history_length=st.next_event_id - 1, memo=st.memo,
        search_attributes=st.search_attributes, namespace=st.namespace,
        parent_execution=st.parent, root_execution=records.root_of(st),
        history_size_bytes=st.history_size_bytes,
    )
