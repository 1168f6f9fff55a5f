"""Key encodings sort like their tuples, and every table helper round-trips."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal import wire
from shoal.node.history import records
from shoal.store import tables
from shoal.store.env import Store
from shoal.store.meta import ClusterMeta, ShardMeta

# Strings short enough to be written inline (exact order); NUL and non-ASCII included.
short_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
shard = st.integers(min_value=0, max_value=0xFFFF)


def _run_tuple_key(t: tuple[int, str, str, str, int]) -> bytes:
    return tables.run_key(t[0], t[1], t[2], t[3]) + tables.enc_u64(t[4])


def _utf8_order(t: tuple) -> tuple:
    # Python compares str by code point, which is UTF-8 byte order.
    return tuple(x.encode() if isinstance(x, str) else x for x in t)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(shard, short_text, short_text, short_text, u64), min_size=2, max_size=20))
def test_composite_keys_sort_exactly_like_their_tuples(keys: list) -> None:
    by_tuple = sorted(keys, key=_utf8_order)
    by_bytes = sorted(keys, key=_run_tuple_key)
    assert [_utf8_order(k) for k in by_bytes] == [_utf8_order(k) for k in by_tuple]


@settings(max_examples=300, deadline=None)
@given(st.tuples(short_text, short_text), st.tuples(short_text, short_text))
def test_distinct_string_pairs_give_distinct_keys_and_prefixes_do_not_leak(a: tuple, b: tuple) -> None:
    ka = tables.current_run_key(1, *a)
    kb = tables.current_run_key(1, *b)
    assert (ka == kb) == (a == b)
    # A (shard, namespace) prefix selects exactly that namespace.
    prefix = tables.enc_shard(1) + tables.enc_str(a[0])
    assert kb.startswith(prefix) == (a[0] == b[0])


@settings(max_examples=200, deadline=None)
@given(shard, st.floats(min_value=0, max_value=4e9), u64, st.floats(min_value=0, max_value=4e9), u64)
def test_timer_keys_sort_by_fire_time_then_task_id(s: int, t1: float, id1: int, t2: float, id2: int) -> None:
    k1 = tables.timer_key(s, _timer(t1, id1))
    k2 = tables.timer_key(s, _timer(t2, id2))
    assert (k1 < k2) == ((tables.micros(t1), id1) < (tables.micros(t2), id2))


def test_long_ids_fit_lmdb_keys_and_stay_unique() -> None:
    long_a = "é" * 1000  # 2000 bytes of UTF-8
    long_b = "é" * 999 + "e"
    nul = "\x00" * 1000
    keys = {tables.history_key(0xFFFF, x, y, z, 1 << 60) for x in (long_a, long_b, nul)
            for y in (long_a, nul) for z in (long_b, nul)}
    assert len(keys) == 12
    assert max(len(k) for k in keys) <= tables.KEY_BYTES_MAX
    assert tables.enc_str(long_a) != tables.enc_str(long_b)


def test_inline_strings_up_to_the_limit_are_kept_whole() -> None:
    text = string.ascii_letters * 2  # 104 bytes
    assert tables.enc_str(text) == text.encode() + b"\x00\x01"
    assert tables.enc_str("a\x00b") == b"a\x00\xffb\x00\x01"


def _timer(fire: float, task_id: int) -> records.TimerTask:
    return records.TimerTask(
        task_id=task_id, fire_time=fire, kind=records.TimerKind.USER_TIMER,
        namespace="ns", workflow_id="wf", run_id="r", timer_id="t",
    )


def _events(first: int, n: int) -> list[wire.HistoryEvent]:
    return [
        wire.HistoryEvent(
            event_id=i, event_time=1.5, event_type=wire.EventType.TIMER_FIRED,
            attributes=wire.TimerFiredAttributes(timer_id=f"t{i}", started_event_id=i - 1),
        )
        for i in range(first, first + n)
    ]


def test_every_table_helper_round_trips(store: Store) -> None:
    cluster = ClusterMeta(cluster_name="c", num_shards=8, node_id="n1", created_at=3.0)
    state = records.ExecutionState(
        namespace="ns", workflow_id="wf", run_id="r1", workflow_type="T", task_queue="q",
        start_time=1.0, next_event_id=7,
    )
    cur = records.CurrentRun(run_id="r1", status=wire.WorkflowExecutionStatus.RUNNING)
    xfer = records.TransferTask(
        task_id=5, kind=records.TransferKind.ACTIVITY_TASK, namespace="ns", workflow_id="wf",
        run_id="r1", task_queue="q", scheduled_event_id=3,
    )
    info = wire.WorkflowExecutionInfo(
        workflow_id="wf", run_id="r1", workflow_type="T", task_queue="q",
        status=wire.WorkflowExecutionStatus.RUNNING, start_time=1.0,
    )
    entry = tables.LogEntry(epoch=2, index=9, mutations=[tables.put_execution(3, state),
                                                         tables.delete_transfer_task(3, 1)])
    store.write_sync([
        tables.put_cluster_meta(cluster),
        tables.put_shard_meta(3, ShardMeta(task_id_ceiling=1000)),
        tables.put_execution(3, state),
        tables.put_current_run(3, "ns", "wf", cur),
        tables.put_transfer_task(3, xfer),
        tables.put_timer_task(3, _timer(10.0, 6)),
        tables.put_visibility(3, info, "ns"),
        tables.put_history_batch(3, "ns", "wf", "r1", 1, _events(1, 3)),
        tables.put_log_entry(3, entry),
        tables.put_shard_log_state(3, tables.ShardLogState(applied_index=9, applied_epoch=2)),
    ])
    with store.read() as txn:
        assert tables.get_cluster_meta(txn) == cluster
        assert tables.get_shard_meta(txn, 3) == ShardMeta(task_id_ceiling=1000)
        assert tables.get_shard_meta(txn, 4) is None
        assert tables.get_execution(txn, records.ExecutionState, 3, "ns", "wf", "r1") == state
        assert tables.get_execution(txn, records.ExecutionState, 3, "ns", "wf", "r2") is None
        assert tables.get_current_run(txn, records.CurrentRun, 3, "ns", "wf") == cur
        assert list(tables.scan_transfer_tasks(txn, records.TransferTask, 3)) == [xfer]
        assert list(tables.scan_transfer_tasks(txn, records.TransferTask, 3, after_task_id=5)) == []
        assert list(tables.scan_timer_tasks(txn, records.TimerTask, 3)) == [_timer(10.0, 6)]
        assert list(tables.scan_visibility(txn, 3, "ns")) == [info]
        assert list(tables.scan_visibility(txn, 3, "other")) == []
        assert tables.read_history(txn, 3, "ns", "wf", "r1") == _events(1, 3)
        assert list(tables.scan_log(txn, 3)) == [entry]
        assert tables.log_bounds(txn, 3) == (9, 9)
        assert tables.get_shard_log_state(txn, 3) == tables.ShardLogState(applied_index=9, applied_epoch=2)
        shard_rows = list(tables.scan_shard(txn, 3))
    assert len(shard_rows) == 9  # everything but the node-wide meta row
    assert wire.loads(tables.LogEntry, wire.dumps(entry)) == entry  # replication ships these


def test_history_reads_from_any_event_id_and_pages(store: Store) -> None:
    muts = [tables.put_history_batch(0, "ns", "wf", "r", 1, _events(1, 4)),
            tables.put_history_batch(0, "ns", "wf", "r", 5, _events(5, 1)),
            tables.put_history_batch(0, "ns", "wf", "r", 6, _events(6, 5)),
            # A neighbouring run must not leak into this one's reads.
            tables.put_history_batch(0, "ns", "wf", "r\x00", 1, _events(1, 2)),
            tables.put_history_batch(0, "ns", "wf", "q", 1, _events(1, 2))]
    store.write_sync(muts)
    with store.read() as txn:
        assert [e.event_id for e in tables.read_history(txn, 0, "ns", "wf", "r")] == list(range(1, 11))
        assert [e.event_id for e in tables.read_history(txn, 0, "ns", "wf", "r", from_event_id=3)] == list(range(3, 11))
        pages, start = [], 1
        while True:
            page = tables.read_history(txn, 0, "ns", "wf", "r", from_event_id=start, limit=3)
            if not page:
                break
            pages.append([e.event_id for e in page])
            start = page[-1].event_id + 1
        assert tables.read_history(txn, 0, "ns", "wf", "r", from_event_id=11) == []
        assert tables.last_history_event_id(txn, 0, "ns", "wf", "r") == 10
        assert tables.last_history_event_id(txn, 0, "ns", "wf", "none") == 0
        deletes = tables.delete_history(txn, 0, "ns", "wf", "r")
    assert pages == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    store.write_sync(deletes)
    with store.read() as txn:
        assert tables.read_history(txn, 0, "ns", "wf", "r") == []
        assert len(tables.read_history(txn, 0, "ns", "wf", "r\x00")) == 2


def test_timer_scan_returns_only_due_tasks_in_fire_order(store: Store) -> None:
    timers = [_timer(t, i) for i, t in enumerate([50.0, 10.0, 10.0, 30.0, 99.5], start=1)]
    store.write_sync([tables.put_timer_task(2, t) for t in timers] +
                     [tables.put_timer_task(3, _timer(1.0, 77))])
    with store.read() as txn:
        due = [(t.fire_time, t.task_id) for t in tables.scan_timer_tasks(txn, records.TimerTask, 2, due_before=50.0)]
        everything = [t.task_id for t in tables.scan_timer_tasks(txn, records.TimerTask, 2)]
    assert due == [(10.0, 2), (10.0, 3), (30.0, 4)]
    assert everything == [2, 3, 4, 1, 5]
    store.write_sync([tables.delete_timer_task(2, timers[1])])
    with store.read() as txn:
        assert [t.task_id for t in tables.scan_timer_tasks(txn, records.TimerTask, 2, due_before=10.000001)] == [3]


@pytest.mark.parametrize("bad", [
    tables.Mutation(table="nope", key=b"k", value=b""),
    tables.Mutation(table=tables.META, key=b"", value=b""),
    tables.Mutation(table=tables.META, key=b"k" * 512, value=b""),
])
def test_check_mutation_refuses_what_lmdb_would_reject(bad: tables.Mutation) -> None:
    with pytest.raises(wire.ShoalError) as err:
        tables.check_mutation(bad)
    assert err.value.code == wire.Code.INVALID_ARGUMENT
