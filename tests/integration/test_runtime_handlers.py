"""Handlers a workflow sets while it runs (temporalio's set_query_handler /
set_update_handler and their dynamic forms), all_handlers_finished, and new_random, on a
real node with real workers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shoal import workflow
from shoal.client import Client, WorkflowUpdateFailedError
from shoal.worker import Worker

pytestmark = pytest.mark.timeout(60)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


@workflow.defn
class Late:
    """Registers its handlers at run time, as temporalio programs may."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        def add(item: str) -> int:
            self.items.append(item)
            return len(self.items)

        def no_blanks(item: str) -> None:
            if not item:
                raise ValueError("an item must not be blank")

        workflow.set_query_handler("count", lambda: len(self.items))
        workflow.set_dynamic_query_handler(lambda name, args: f"{name}:{len(args)}")
        workflow.set_update_handler("add", add, validator=no_blanks)
        workflow.set_signal_handler("stop", lambda: setattr(self, "done", True))
        assert workflow.get_query_handler("count") is not None
        assert workflow.get_update_handler("add") is add
        await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.query
    def declared(self) -> str:
        return "declared"


async def test_handlers_set_at_run_time_answer_queries_and_updates(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Late]):
        handle = await client.start_workflow(Late.run, id=_id("late"), task_queue=tq)
        assert await handle.query("count") == 0
        assert await handle.execute_update("add", "a") == 1
        assert await handle.execute_update("add", "b") == 2
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await handle.execute_update("add", "")
        assert "must not be blank" in str(exc.value.cause)
        assert await handle.query("count") == 2
        assert await handle.query("whatever") == "whatever:0"  # the dynamic handler
        assert await handle.query(Late.declared) == "declared"  # decorated ones still work
        await handle.signal("stop")
        assert await handle.result() == ["a", "b"]


@workflow.defn
class Patient:
    """Returns only once every handler has finished, the idiom temporalio documents."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.stop = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.stop)
        finished_at_stop = workflow.all_handlers_finished()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return [*self.log, f"finished at stop: {finished_at_stop}"]

    @workflow.signal
    async def slow(self, name: str) -> None:
        await workflow.sleep(timedelta(milliseconds=200))
        self.log.append(name)

    @workflow.signal
    def finish(self) -> None:
        self.stop = True


async def test_a_run_can_wait_until_all_handlers_finished(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Patient]):
        handle = await client.start_workflow(Patient.run, id=_id("patient"), task_queue=tq)
        await handle.signal(Patient.slow, "x")
        await handle.signal(Patient.finish)
        assert await handle.result() == ["x", "finished at stop: False"]


@workflow.defn
class Dice:
    def __init__(self) -> None:
        self.rolls: list[int] = []

    @workflow.run
    async def run(self) -> list[int]:
        rng = workflow.new_random()
        self.rolls.append(rng.randint(1, 1_000_000))
        await workflow.sleep(timedelta(milliseconds=50))
        self.rolls.append(workflow.new_random().randint(1, 1_000_000))
        return self.rolls

    @workflow.query
    def seen(self) -> list[int]:
        return self.rolls


async def test_new_random_gives_the_same_numbers_when_the_run_is_replayed(client: Client) -> None:
    tq = _id("tq")
    # No cache: every task replays the run from its history on a fresh instance.
    async with Worker(client, task_queue=tq, workflows=[Dice], max_cached_workflows=0):
        handle = await client.start_workflow(Dice.run, id=_id("dice"), task_queue=tq)
        rolls = await handle.result()
        assert len(rolls) == 2 and rolls[0] != rolls[1]
        assert await handle.query(Dice.seen) == rolls  # a closed run's query replays it


@workflow.defn
class Memos:
    @workflow.run
    async def run(self) -> dict:
        workflow.upsert_memo({"stage": "two", "gone": None, "count": 2})
        seen = dict(workflow.memo())
        await workflow.sleep(timedelta(milliseconds=20))  # a second task: the upsert replays
        workflow.upsert_memo({"count": 3})
        return {"seen": seen, "count": workflow.memo_value("count"),
                "missing": workflow.memo_value("nope", "default")}


async def test_upsert_memo_changes_the_memo_describe_shows(client: Client) -> None:
    tq = _id("tq")
    async with Worker(client, task_queue=tq, workflows=[Memos], max_cached_workflows=0):
        handle = await client.start_workflow(Memos.run, id=_id("memo"), task_queue=tq,
                                             memo={"stage": "one", "gone": "soon"})
        out = await handle.result()
        assert out == {"seen": {"stage": "two", "count": 2}, "count": 3, "missing": "default"}
        desc = await handle.describe()
        assert await desc.memo() == {"stage": "two", "count": 3}
        history = await handle.fetch_history()
        modified = [e for e in history.events
                    if e.raw.event_type.name == "WORKFLOW_PROPERTIES_MODIFIED"]
        assert len(modified) == 2
