"""Replayer and WorkflowHistory JSON: hand-driven histories and real Temporal exports."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from helpers.history_builder import Driver

from shoal import wire
from shoal.client import WorkflowHistory
from shoal.sdk import activity, workflow
from shoal.sdk.history import HistoryEvent
from shoal.worker import Replayer, WorkflowReplayResult
from shoal.workflow import NondeterminismError

DATA = Path(__file__).parents[2] / "data"
TEN_S = timedelta(seconds=10)


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class Steps:
    @workflow.run
    async def run(self, name: str) -> list:
        await asyncio.sleep(5)
        greeting = await workflow.execute_activity(greet, name, start_to_close_timeout=TEN_S)
        loud = await workflow.execute_activity(shout, greeting, start_to_close_timeout=TEN_S)
        return [greeting, loud]


@workflow.defn(name="Steps")
class StepsChanged:
    """Steps after an incompatible change: the timer is gone."""

    @workflow.run
    async def run(self, name: str) -> list:
        greeting = await workflow.execute_activity(greet, name, start_to_close_timeout=TEN_S)
        return [greeting]


def _history(name: str = "Ann", run_id: str = "run-1") -> WorkflowHistory:
    """A closed run of ``Steps``, recorded by driving it as the server would."""
    d = Driver(Steps, name)
    d.activate()
    d.history.advance(5).timer_fired("1")
    d.activate()
    d.history.activity_completed("2", f"Hello, {name}!")
    d.activate()
    d.history.activity_completed("3", f"HELLO, {name.upper()}!")
    d.activate()
    assert d.result() == [f"Hello, {name}!", f"HELLO, {name.upper()}!"]
    events = [HistoryEvent(e) for e in d.history.events]
    first = events[0].raw
    started = first.attributes
    assert isinstance(started, wire.WorkflowExecutionStartedAttributes)
    patched = wire.HistoryEvent(
        event_id=1, event_time=first.event_time, event_type=first.event_type,
        attributes=type(started)(**{**{f: getattr(started, f) for f in started.__slots__},
                                    "original_execution_run_id": run_id}))
    return WorkflowHistory(f"wf-{name}", [HistoryEvent(patched)] + events[1:])


def _raws(history: WorkflowHistory) -> list[wire.HistoryEvent]:
    return [e.raw for e in history.events]


# --- JSON -------------------------------------------------------------------------------


def test_to_json_round_trips_through_from_json():
    history = _history()
    back = WorkflowHistory.from_json(history.workflow_id, history.to_json())
    assert back.workflow_id == history.workflow_id
    assert _raws(back) == _raws(history)


def test_to_json_writes_temporals_shape():
    events = json.loads(_history().to_json())["events"]
    first = events[0]
    assert first["eventId"] == "1"
    assert first["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    started = first["workflowExecutionStartedEventAttributes"]
    assert started["workflowType"] == {"name": "Steps"}
    payload = started["input"]["payloads"][0]
    assert payload == {"metadata": {"encoding": "anNvbi9wbGFpbg=="},  # base64("json/plain")
                       "data": "IkFubiI="}  # base64('"Ann"')
    timer = next(e for e in events if e["eventType"] == "EVENT_TYPE_TIMER_STARTED")
    assert timer["timerStartedEventAttributes"]["startToFireTimeout"] == "5s"


def test_payload_without_a_json_form_is_kept_as_cbor():
    history = _history()
    raw = history.events[0].raw
    started = raw.attributes
    odd = type(started)(**{**{f: getattr(started, f) for f in started.__slots__},
                           "input": [b"\x43abc"]})  # CBOR bytes: no JSON form
    one = WorkflowHistory("wf", [HistoryEvent(wire.HistoryEvent(
        event_id=1, event_time=raw.event_time, event_type=raw.event_type, attributes=odd))])
    text = one.to_json()
    assert "YmluYXJ5L2Nib3I=" in text  # base64("binary/cbor")
    assert _raws(WorkflowHistory.from_json("wf", text)) == _raws(one)


def test_from_json_reads_a_real_temporal_export():
    history = WorkflowHistory.from_json(
        "greeting-1", (DATA / "temporal_greeting_history.json").read_text())
    assert len(history.events) == 16
    assert history.run_id == "01a23c72-af40-7514-a68e-7ad9c7b2c9f5"
    scheduled = history.events[4].activity_task_scheduled_event_attributes
    assert scheduled.activity_type.name == "compose_greeting"
    assert scheduled.start_to_close_timeout == TEN_S
    assert scheduled.schedule_to_close_timeout is None  # Temporal's "0s": not set


def test_from_json_accepts_pascal_case_event_types_of_older_exports():
    data = json.loads((DATA / "temporal_greeting_history.json").read_text())
    data["events"][0]["eventType"] = "WorkflowExecutionStarted"
    assert WorkflowHistory.from_json("g", data).events[0].raw.event_type == \
        wire.EventType.WORKFLOW_EXECUTION_STARTED


@pytest.mark.parametrize("mutate, named", [
    (lambda e: e.__setitem__("eventType", "EVENT_TYPE_NEXUS_OPERATION_STARTED"), "eventType"),
    (lambda e: e["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
        ["metadata"].__setitem__("encoding", "anNvbi9wcm90b2J1Zg=="), r"input\.payloads\[0\]"),
    (lambda e: e.__setitem__("eventId", "one"), "eventId"),
])
def test_from_json_names_the_field_it_cannot_map(mutate, named):
    data = json.loads((DATA / "temporal_greeting_history.json").read_text())
    mutate(data["events"][0])
    with pytest.raises(ValueError, match=named):
        WorkflowHistory.from_json("g", data)


# --- replay ---------------------------------------------------------------------------


async def test_replay_of_a_matching_history_passes():
    history = _history()
    result = await Replayer(workflows=[Steps]).replay_workflow(history)
    assert result == WorkflowReplayResult(history=history, replay_failure=None)


async def test_replay_of_a_json_round_tripped_history_passes():
    history = WorkflowHistory.from_json("wf-Ann", _history().to_json())
    assert (await Replayer(workflows=[Steps]).replay_workflow(history)).replay_failure is None


async def test_changed_workflow_raises_nondeterminism_error():
    with pytest.raises(NondeterminismError, match="TIMER_STARTED"):
        await Replayer(workflows=[StepsChanged]).replay_workflow(_history())


async def test_failure_is_returned_when_not_raising():
    result = await Replayer(workflows=[StepsChanged]).replay_workflow(
        _history(), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, NondeterminismError)


async def test_unregistered_workflow_type_is_a_replay_failure():
    @workflow.defn(name="Other")
    class Other:
        @workflow.run
        async def run(self) -> None:
            return None

    with pytest.raises(RuntimeError, match="'Steps' is not registered"):
        await Replayer(workflows=[Other]).replay_workflow(_history())


async def test_replay_workflows_collects_failures_by_run_id():
    async def histories():
        yield _history("Ann", "run-a")
        yield _history("Bo", "run-b")

    ok = await Replayer(workflows=[Steps]).replay_workflows(histories())
    assert ok.replay_failures == {}
    bad = await Replayer(workflows=[StepsChanged]).replay_workflows(
        histories(), raise_on_replay_failure=False)
    assert sorted(bad.replay_failures) == ["run-a", "run-b"]
    assert all(isinstance(e, NondeterminismError) for e in bad.replay_failures.values())
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[StepsChanged]).replay_workflows(histories())


async def test_workflow_replay_iterator_yields_one_result_per_history():
    replayer = Replayer(workflows=[Steps])
    async with replayer.workflow_replay_iterator([_history("Ann"), _history("Bo")]) as results:
        seen = [r.history.workflow_id async for r in results]
    assert seen == ["wf-Ann", "wf-Bo"]


def test_replayer_needs_a_workflow():
    with pytest.raises(ValueError):
        Replayer(workflows=[])


# --- Temporal's own histories, replayed on the ported code --------------------------------


@activity.defn
async def compose_greeting(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class GreetTwiceWorkflow:
    """tests/data/temporal_greet_twice_history.py, ported: only the imports changed."""

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=TEN_S)
        greeting = await workflow.execute_activity(
            compose_greeting, greeting, start_to_close_timeout=TEN_S)
        return greeting


@workflow.defn(name="GreetTwiceWorkflow")
class GreetOnceWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(compose_greeting, name,
                                               start_to_close_timeout=TEN_S)


def _temporal(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, (DATA / f"temporal_{name}_history.json").read_text())


async def test_temporal_history_replays_on_the_ported_workflow():
    result = await Replayer(workflows=[GreetTwiceWorkflow]).replay_workflow(
        _temporal("greet_twice"))
    assert result.replay_failure is None


async def test_temporal_history_on_changed_code_raises_nondeterminism_error():
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[GreetOnceWorkflow]).replay_workflow(_temporal("greet_twice"))


@workflow.defn
class GreetingWorkflow:
    """tests/data/temporal_greeting_history.py, ported: an activity, then a timer."""

    @workflow.run
    async def run(self, name: str) -> str:
        greeting = await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=TEN_S)
        await workflow.sleep(timedelta(seconds=1))
        return greeting


@pytest.mark.xfail(strict=True, reason="shoal numbers activities and timers from one "
                   "sequence (timer id '2' here); Temporal counts each kind apart ('1')")
async def test_temporal_history_with_activity_and_timer_replays():
    await Replayer(workflows=[GreetingWorkflow]).replay_workflow(_temporal("greeting"))
