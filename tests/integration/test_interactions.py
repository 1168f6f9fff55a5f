"""Temporal-style programs for signals, cancellation, terminate, continue-as-new and patching,
ported to shoal (imports, trio, activity sleeps and the address changed), against a real node.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Optional

import pytest
import trio

from shoal import activity, workflow
from shoal.client import Client, WorkflowFailureError, WorkflowQueryFailedError, WorkflowUpdateFailedError
from shoal.common import EventType
from shoal.sdk.connection import RPCError
from shoal.exceptions import ApplicationError, CancelledError, TerminatedError
from shoal.worker import Worker
from shoal import wire

from helpers.node_proc import wait_until
from shoal.node.history.invariants import check_history

pytestmark = pytest.mark.timeout(60)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def _raw_history(handle) -> list[wire.HistoryEvent]:
    return [e.raw for e in (await handle.fetch_history()).events]


# --- signals: the "greeting" sample (signals with a wait_condition) ---------------------


@workflow.defn
class GreetingCollector:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.exit = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.exit)
        return self.names

    @workflow.signal
    async def submit_greeting(self, name: str) -> None:
        self.names.append(name)

    @workflow.signal
    def exit_now(self) -> None:  # a sync handler
        self.exit = True


async def test_signals_reach_sync_and_async_handlers_in_order(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[GreetingCollector]):
        handle = await client.start_workflow(GreetingCollector.run, id=_id("sig"), task_queue=tq)
        for name in ["user1", "user2", "user3"]:
            await handle.signal(GreetingCollector.submit_greeting, name)
        await handle.signal("exit_now")
        assert await handle.result() == ["user1", "user2", "user3"]
    history = await _raw_history(handle)
    assert check_history(history) == []
    signaled = [e.attributes.signal_name for e in history
                if e.event_type == wire.EventType.WORKFLOW_EXECUTION_SIGNALED]
    assert signaled == ["submit_greeting"] * 3 + ["exit_now"]


async def test_signals_sent_before_a_worker_exists_are_delivered(client: Client) -> None:
    tq = _id("tq")
    handle = await client.start_workflow(GreetingCollector.run, id=_id("sig-early"), task_queue=tq)
    await handle.signal(GreetingCollector.submit_greeting, "early")
    await handle.signal(GreetingCollector.exit_now)
    async with Worker(client, task_queue=tq, workflows=[GreetingCollector]):
        assert await handle.result() == ["early"]


@workflow.defn
class LateHandler:
    """Registers its handler only after a timer: earlier signals wait in the buffer."""

    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.sleep(0.3)
        workflow.set_signal_handler("late", lambda v: self.got.append(v))
        await workflow.wait_condition(lambda: len(self.got) >= 2)
        return self.got


async def test_signals_without_a_handler_are_buffered_until_one_is_set(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[LateHandler]):
        handle = await client.start_workflow(LateHandler.run, id=_id("late"), task_queue=tq)
        await handle.signal("late", "a")
        await handle.signal("late", "b")
        assert await handle.result() == ["a", "b"]


async def test_signal_to_a_closed_or_missing_workflow_is_a_clear_error(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[GreetingCollector]):
        handle = await client.start_workflow(GreetingCollector.run, id=_id("closed"), task_queue=tq)
        await handle.signal(GreetingCollector.exit_now)
        await handle.result()
    with pytest.raises(RPCError) as exc:
        await handle.signal(GreetingCollector.submit_greeting, "too late")
    assert exc.value.code == wire.Code.WORKFLOW_NOT_RUNNING
    assert "COMPLETED" in str(exc.value)
    with pytest.raises(RPCError) as exc:
        await client.get_workflow_handle(_id("missing")).signal("x")
    assert exc.value.code == wire.Code.NOT_FOUND


async def test_signal_with_start_starts_then_signals_the_running_run(client: Client) -> None:
    tq = _id("tq")
    wf_id = _id("sws")
    async with Worker(client, task_queue=tq, workflows=[GreetingCollector]):
        h1 = await client.start_workflow(GreetingCollector.run, id=wf_id, task_queue=tq,
                                         start_signal="submit_greeting", start_signal_args=["a"])
        h2 = await client.start_workflow(GreetingCollector.run, id=wf_id, task_queue=tq,
                                         start_signal="submit_greeting", start_signal_args=["b"])
        assert h1.result_run_id == h2.result_run_id  # the second one only signalled
        await h1.signal(GreetingCollector.exit_now)
        assert await h1.result() == ["a", "b"]


# --- cancellation -----------------------------------------------------------------------


@activity.defn
async def cleanup(note: str) -> str:
    return f"cleaned {note}"


@workflow.defn
class CancellableWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.sleep(3600)
            return "slept"
        except asyncio.CancelledError:
            # Clean up with an activity, then let the cancellation stand (as the sample).
            await workflow.execute_activity(cleanup, "up", start_to_close_timeout=timedelta(seconds=10))
            raise


@workflow.defn
class CancelIgnoringWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: False)
        except asyncio.CancelledError:
            return "handled the cancel and completed"
        return "unreachable"


async def test_cancel_delivers_cancelled_error_and_cleanup_runs(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[CancellableWorkflow], activities=[cleanup]):
        handle = await client.start_workflow(CancellableWorkflow.run, id=_id("cancel"), task_queue=tq)
        await wait_until(lambda: _has_timer(handle), timeout_s=10)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as exc:
            await handle.result()
    assert isinstance(exc.value.cause, CancelledError)
    history = await _raw_history(handle)
    assert check_history(history) == []
    types = [e.event_type for e in history]
    assert types[-1] == wire.EventType.WORKFLOW_EXECUTION_CANCELED
    assert wire.EventType.ACTIVITY_TASK_COMPLETED in types  # the cleanup ran
    assert (await handle.describe()).status == wire.WorkflowExecutionStatus.CANCELED


async def test_a_workflow_may_swallow_cancellation_and_complete(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[CancelIgnoringWorkflow]):
        handle = await client.start_workflow(CancelIgnoringWorkflow.run, id=_id("cancel2"), task_queue=tq)
        await handle.cancel()
        await handle.cancel()  # a second request is accepted and changes nothing
        assert await handle.result() == "handled the cancel and completed"


async def _has_timer(handle) -> bool:
    history = await _raw_history(handle)
    return any(e.event_type == wire.EventType.TIMER_STARTED for e in history)


# --- terminate --------------------------------------------------------------------------


async def test_terminate_closes_the_run_without_running_workflow_code(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[CancellableWorkflow], activities=[cleanup]):
        handle = await client.start_workflow(CancellableWorkflow.run, id=_id("term"), task_queue=tq)
        await wait_until(lambda: _has_timer(handle), timeout_s=10)
        await handle.terminate(reason="operator said so")
        with pytest.raises(WorkflowFailureError) as exc:
            await handle.result()
    assert isinstance(exc.value.cause, TerminatedError)
    assert "operator said so" in str(exc.value.cause)
    history = await _raw_history(handle)
    assert history[-1].event_type == wire.EventType.WORKFLOW_EXECUTION_TERMINATED
    assert wire.EventType.ACTIVITY_TASK_SCHEDULED not in [e.event_type for e in history]
    with pytest.raises(RPCError) as err:
        await handle.terminate()
    assert err.value.code == wire.Code.WORKFLOW_NOT_RUNNING


# --- continue-as-new --------------------------------------------------------------------


@workflow.defn
class LoopingWorkflow:
    @workflow.run
    async def run(self, iteration: int) -> str:
        if iteration == 3:
            return f"finished after {iteration} runs, first run {workflow.info().first_execution_run_id}"
        await workflow.sleep(0.05)
        workflow.continue_as_new(iteration + 1)


async def test_continue_as_new_chains_runs_and_result_follows(client: Client) -> None:
    tq = _id("tq")
    wf_id = _id("can")
    async with Worker(client, task_queue=tq, workflows=[LoopingWorkflow]):
        handle = await client.start_workflow(LoopingWorkflow.run, 0, id=wf_id, task_queue=tq)
        result = await handle.result()
    assert result == f"finished after 3 runs, first run {handle.result_run_id}"
    current = await client.get_workflow_handle(wf_id).describe()
    assert current.run_id != handle.result_run_id
    assert current.status == wire.WorkflowExecutionStatus.COMPLETED
    first = await client.get_workflow_handle(wf_id, run_id=handle.result_run_id).describe()
    assert first.status == wire.WorkflowExecutionStatus.CONTINUED_AS_NEW
    # Each run's history starts fresh and ends with ContinuedAsNew naming the next run.
    h0 = await _raw_history(client.get_workflow_handle(wf_id, run_id=handle.result_run_id))
    assert check_history(h0) == []
    assert h0[-1].event_type == wire.EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    nxt = h0[-1].attributes.new_execution_run_id
    h1 = await _raw_history(client.get_workflow_handle(wf_id, run_id=nxt))
    assert h1[0].attributes.continued_execution_run_id == handle.result_run_id
    with pytest.raises(Exception) as exc:
        await handle.result(follow_runs=False)
    assert type(exc.value).__name__ == "WorkflowContinuedAsNewError"


# --- patching ---------------------------------------------------------------------------


@activity.defn
async def old_step() -> str:
    return "old"


@activity.defn
async def new_step() -> str:
    return "new"


def _patch_workflow(version: int):
    """Version 1 runs old_step; version 2 patches in new_step; version 3 deprecates it."""

    @workflow.defn(name="PatchedWorkflow")
    class PatchedWorkflow:
        def __init__(self) -> None:
            self.go = False

        @workflow.run
        async def run(self) -> str:
            if version == 1:
                step = old_step
            elif version == 2:
                step = new_step if workflow.patched("my-change") else old_step
            else:
                workflow.deprecate_patch("my-change")
                step = new_step
            result = await workflow.execute_activity(step, start_to_close_timeout=timedelta(seconds=10))
            await workflow.wait_condition(lambda: self.go)
            return result

        @workflow.signal
        def proceed(self) -> None:
            self.go = True

    return PatchedWorkflow


async def test_patched_keeps_old_runs_on_the_old_branch(client: Client) -> None:
    tq = _id("tq")
    v1, v2, v3 = _patch_workflow(1), _patch_workflow(2), _patch_workflow(3)
    acts = [old_step, new_step]
    # A run started and recorded under v1 (it ran its step and waits for the signal).
    async with Worker(client, task_queue=tq, workflows=[v1], activities=acts, max_cached_workflows=0):
        old = await client.start_workflow("PatchedWorkflow", id=_id("patch-old"), task_queue=tq)
        await wait_until(lambda: _activity_done(old), timeout_s=10)
    # v2 workers: the old run replays, sees no marker, keeps old_step; a new run patches.
    async with Worker(client, task_queue=tq, workflows=[v2], activities=acts, max_cached_workflows=0):
        await old.signal("proceed")
        assert await old.result() == "old"
        new = await client.start_workflow("PatchedWorkflow", id=_id("patch-new"), task_queue=tq)
        await wait_until(lambda: _activity_done(new), timeout_s=10)
    markers = [e for e in await _raw_history(new) if e.event_type == wire.EventType.MARKER_RECORDED]
    assert [m.attributes.marker_name for m in markers] == ["core_patch"]
    # v3 (deprecated patch) replays v2's run, which recorded the marker, without complaint.
    async with Worker(client, task_queue=tq, workflows=[v3], activities=acts, max_cached_workflows=0):
        await new.signal("proceed")
        assert await new.result() == "new"
    for h in (old, new):
        assert check_history(await _raw_history(h)) == []
        desc = await h.describe()
        assert desc.raw_description.last_workflow_task_failure is None


async def _activity_done(handle) -> bool:
    types = [e.event_type for e in await _raw_history(handle)]
    # Completed, and the task that saw it completed too (the run now waits for the signal).
    return wire.EventType.ACTIVITY_TASK_COMPLETED in types and types[-1] == wire.EventType.WORKFLOW_TASK_COMPLETED


# --- queries ----------------------------------------------------------------------------


@workflow.defn
class CounterWorkflow:
    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.count

    @workflow.signal
    def increment(self, by: int) -> None:
        self.count += by

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def current(self) -> int:
        return self.count

    @workflow.query
    def times(self, factor: int) -> int:
        return self.count * factor

    @workflow.query
    def broken(self) -> int:
        raise ValueError("no can do")


async def test_query_reads_state_without_recording_anything(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[CounterWorkflow]):
        handle = await client.start_workflow(CounterWorkflow.run, id=_id("q"), task_queue=tq)
        await handle.signal(CounterWorkflow.increment, 2)
        await handle.signal(CounterWorkflow.increment, 3)
        await wait_until(lambda: _signals_seen(handle, 2), timeout_s=10)
        before = len(await _raw_history(handle))
        assert await handle.query(CounterWorkflow.current) == 5
        assert await handle.query("times", 10) == 50
        assert len(await _raw_history(handle)) == before  # queries record nothing
        with pytest.raises(WorkflowQueryFailedError) as exc:
            await handle.query(CounterWorkflow.broken)
        assert "ValueError" in str(exc.value) and "no can do" in str(exc.value)
        with pytest.raises(WorkflowQueryFailedError) as exc:
            await handle.query("nope")
        assert "no query handler 'nope'" in str(exc.value) and "current" in str(exc.value)
        await handle.signal(CounterWorkflow.finish)
        assert await handle.result() == 5
        # A closed run can still be queried: a worker replays it.
        assert await handle.query(CounterWorkflow.current) == 5


async def test_query_without_a_worker_times_out_clearly(client: Client) -> None:
    handle = await client.start_workflow(CounterWorkflow.run, id=_id("q-none"), task_queue=_id("nobody"))
    with pytest.raises(RPCError) as exc:
        await handle.query(CounterWorkflow.current, timeout=timedelta(seconds=0.3))
    assert exc.value.code == wire.Code.DEADLINE_EXCEEDED
    assert "is a worker polling" in exc.value.message


async def _signals_seen(handle, n: int) -> bool:
    history = await _raw_history(handle)
    signals = [e.event_id for e in history if e.event_type == wire.EventType.WORKFLOW_EXECUTION_SIGNALED]
    completed = [e.event_id for e in history if e.event_type == wire.EventType.WORKFLOW_TASK_COMPLETED]
    return len(signals) >= n and bool(completed) and completed[-1] > signals[n - 1]


# --- updates ----------------------------------------------------------------------------


@workflow.defn
class ShoppingCart:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.checked_out = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.checked_out)
        return self.items

    @workflow.update
    async def add_item(self, item: str) -> int:
        await workflow.sleep(0.01)  # an async handler that waits on a durable timer
        self.items.append(item)
        return len(self.items)

    @add_item.validator
    def validate_item(self, item: str) -> None:
        if not item:
            raise ValueError("empty item name")
        if self.checked_out:
            raise ValueError("cart is checked out")

    @workflow.update
    def checkout(self) -> str:
        self.checked_out = True
        return f"{len(self.items)} items"


async def test_updates_return_results_and_rejections_leave_no_event(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[ShoppingCart]):
        handle = await client.start_workflow(ShoppingCart.run, id=_id("cart"), task_queue=tq)
        assert await handle.execute_update(ShoppingCart.add_item, "apple") == 1
        assert await handle.execute_update("add_item", "pear", id="pear-1") == 2
        assert await handle.execute_update("add_item", "pear", id="pear-1") == 2  # same id: same answer
        before = await _raw_history(handle)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await handle.execute_update(ShoppingCart.add_item, "")
        assert "empty item name" in str(exc.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await handle.execute_update("no_such_update")
        assert "no update handler 'no_such_update'" in str(exc.value.cause)
        assert len(await _raw_history(handle)) == len(before)  # rejections recorded nothing
        assert await handle.execute_update(ShoppingCart.checkout) == "2 items"
        assert await handle.result() == ["apple", "pear"]
    history = await _raw_history(handle)
    assert check_history(history) == []
    types = [e.event_type for e in history]
    assert types.count(wire.EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 3
    assert types.count(wire.EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED) == 3


async def test_update_handlers_replay_on_a_fresh_worker(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[ShoppingCart], max_cached_workflows=0):
        handle = await client.start_workflow(ShoppingCart.run, id=_id("cart2"), task_queue=tq)
        assert await handle.execute_update(ShoppingCart.add_item, "a") == 1
        assert await handle.execute_update(ShoppingCart.add_item, "b") == 2
        assert await handle.execute_update(ShoppingCart.checkout) == "2 items"
        assert await handle.result() == ["a", "b"]
        desc = await handle.describe()
        assert desc.raw_description.last_workflow_task_failure is None


# --- search attributes and memo -----------------------------------------------------------


@workflow.defn
class Staged:
    @workflow.run
    async def run(self) -> dict:
        assert workflow.info().search_attributes == {"Stage": "new"}
        workflow.upsert_search_attributes({"Stage": "working", "Owner": "ann"})
        await workflow.sleep(0.01)
        workflow.upsert_search_attributes({"Owner": None})
        return {"sa": dict(workflow.info().search_attributes), "memo": dict(workflow.memo())}


async def test_upsert_search_attributes_and_memo(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Staged], max_cached_workflows=0):
        handle = await client.start_workflow(Staged.run, id=_id("sa"), task_queue=tq,
                                             search_attributes={"Stage": "new"}, memo={"note": "hi"})
        assert await handle.result() == {"sa": {"Stage": "working"}, "memo": {"note": "hi"}}
    history = await _raw_history(handle)
    upserts = [e for e in history if e.event_type == wire.EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
    assert len(upserts) == 2 and upserts[1].attributes.search_attributes == {"Owner": b""}
    info = (await handle.describe()).raw_description.info
    assert set(info.search_attributes) == {"Stage"}
