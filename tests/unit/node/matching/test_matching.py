"""Matching: backlog, sync match, duplicates, and no task lost to a cancelled poll."""

import trio

from shoal.node.matching.matching import DispatchTask, Matching, TaskQueue
from shoal.node.history.records import TransferKind


def _task(task_id: int, queue: str = "q") -> DispatchTask:
    return DispatchTask(shard=0, task_id=task_id, kind=TransferKind.ACTIVITY_TASK,
                        namespace="default", workflow_id="w", run_id="r", task_queue=queue,
                        scheduled_event_id=5, attempt=1)


async def test_backlog_is_served_in_order() -> None:
    q = TaskQueue()
    q.add(_task(1))
    q.add(_task(2))
    assert (await q.poll(1.0)).task_id == 1
    assert (await q.poll(1.0)).task_id == 2


async def test_duplicate_task_id_is_dropped() -> None:
    q = TaskQueue()
    assert q.add(_task(1))
    assert not q.add(_task(1))
    assert q.backlog_size == 1


async def test_waiting_poller_gets_task_by_sync_match(autojump_clock) -> None:
    q = TaskQueue()
    got = []

    async def poller() -> None:
        got.append(await q.poll(30.0))

    async with trio.open_nursery() as n:
        n.start_soon(poller)
        await trio.sleep(1)
        assert q.poller_count == 1
        q.add(_task(7))
    assert got[0].task_id == 7
    assert q.backlog_size == 0


async def test_poll_times_out_empty(autojump_clock) -> None:
    q = TaskQueue()
    assert await q.poll(5.0) is None
    assert q.poller_count == 0


async def test_cancelled_poller_does_not_swallow_a_later_task(autojump_clock) -> None:
    q = TaskQueue()
    async with trio.open_nursery() as n:
        n.start_soon(q.poll, 30.0)
        await trio.sleep(1)
        n.cancel_scope.cancel()
    q.add(_task(3))
    assert q.poller_count == 0
    assert (await q.poll(1.0)).task_id == 3


async def test_queues_are_separate_by_kind_and_name() -> None:
    m = Matching()
    m.add(_task(1, "a"))
    assert m.queue("default", TransferKind.ACTIVITY_TASK, "b").backlog_size == 0
    assert m.queue("default", TransferKind.WORKFLOW_TASK, "a").backlog_size == 0
    assert m.queue("default", TransferKind.ACTIVITY_TASK, "a").backlog_size == 1
