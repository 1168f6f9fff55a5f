"""The issue 7 "Done means" drill: many workflows driven through node kills, and its checks.

Owns: the drill's workflow (a signal, three activities, a timer) and the gate its worker's
activity passes, which can hold chosen workflows in an activity across a kill; how many
workflows a drill runs (``SHOAL_DRILL_WORKFLOWS``; ``make drill`` sets 500) and its pytest
timeout (``SHOAL_DRILL_TIMEOUT_S``); starting, signalling and awaiting them with bounded
concurrency while recording what the client saw acknowledged; what each workflow was doing
at a kill (read from its history's event times); and the end checks: the right result,
exactly once, DESIGN §4 invariants 4 and 5, every acknowledged signal in history.
Must not: start or kill nodes (the test does, so the kill's moment is visible there).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import trio

from shoal import activity, wire, workflow
from shoal.client import Client, WorkflowHandle

from helpers.history_check import ACTIVITY_OUTCOMES, CLOSE_EVENTS, history_problems

E = wire.EventType
T = TypeVar("T")

# Client calls a drill keeps in flight at once: enough that 500 starts or signals take a
# few seconds (so a kill lands while workflows are mid-run), few enough not to swamp a
# 2-core machine's node processes with parked requests.
IN_FLIGHT = 50

DRILL_ACTIVITIES = 3
# Long enough that a test which saw a timer start can kill a node before it fires, even on
# a loaded machine; short beside the drill's length.
DRILL_TIMER_S = 1.0


@workflow.defn
class DrillChain:
    """Waits for a signal, runs ``DRILL_ACTIVITIES`` activities one after another, then
    sleeps ``DRILL_TIMER_S`` (a durable timer); returns ``drill_result(x)``."""

    def __init__(self) -> None:
        self.bumps = 0

    @workflow.signal
    def bump(self) -> None:
        self.bumps += 1

    @workflow.run
    async def run(self, x: int) -> int:
        await workflow.wait_condition(lambda: self.bumps > 0)
        for _ in range(DRILL_ACTIVITIES):
            # 30 s: a held activity (ActivityGate) must not time out while its node dies.
            x = await workflow.execute_activity(ActivityGate.ACTIVITY, x,
                                                start_to_close_timeout=timedelta(seconds=30))
        await workflow.sleep(DRILL_TIMER_S)
        return x + self.bumps


def drill_result(x: int) -> int:
    """What ``DrillChain.run(x)`` returns after exactly one signal."""
    return x * 2 ** DRILL_ACTIVITIES + 1


class ActivityGate:
    """The drill's activity (doubles its input), run by the test's worker. It counts each
    workflow's finished activities, and holds the activities of the workflows named by
    ``hold`` until ``release``, so a kill can land while they are known to be in one."""

    ACTIVITY = "drill_double"

    def __init__(self) -> None:
        self.finished: Counter[str] = Counter()  # workflow id -> activities returned
        self.waiting: set[str] = set()  # held workflows whose activity is at the gate
        self._held: set[str] = set()
        self._open = trio.Event()
        self._open.set()

    def hold(self, workflow_ids: Iterable[str]) -> None:
        """Hold these workflows' activities (from now) until ``release``."""
        self._held = set(workflow_ids)
        self.waiting.clear()
        self._open = trio.Event()

    def release(self) -> None:
        self._open.set()

    def activity(self) -> Callable[[int], Awaitable[int]]:
        """The activity function to give the worker."""
        @activity.defn(name=self.ACTIVITY)
        async def drill_double(x: int) -> int:
            wid = activity.info().workflow_id
            if wid in self._held and not self._open.is_set():
                self.waiting.add(wid)
                await self._open.wait()
            self.finished[wid] += 1
            return 2 * x

        return drill_double


def drill_workflows(default: int) -> int:
    """How many workflows a drill test runs: ``SHOAL_DRILL_WORKFLOWS`` (``make drill`` sets
    500, the issue's size) or ``default`` (the size ``make test`` can afford)."""
    raw = os.environ.get("SHOAL_DRILL_WORKFLOWS", "")
    return int(raw) if raw else default


def drill_timeout_s(default: float) -> float:
    """The pytest timeout of a drill test: ``SHOAL_DRILL_TIMEOUT_S`` or ``default``."""
    raw = os.environ.get("SHOAL_DRILL_TIMEOUT_S", "")
    return float(raw) if raw else default


@dataclass(slots=True)
class Driven:
    """One workflow the drill started, and what the client saw acknowledged for it."""

    index: int  # the workflow's argument, so its expected result is known
    handle: WorkflowHandle
    signals_acked: int = 0
    result: Any = None
    events: list[wire.HistoryEvent] = field(default_factory=list)  # after fetch_histories

    @property
    def run_id(self) -> str:
        return self.handle.result_run_id or ""


async def each(items: Sequence[T], fn: Callable[[T], Awaitable[None]],
               in_flight: int = IN_FLIGHT) -> None:
    """``fn(item)`` for every item, at most ``in_flight`` at once; the first raise fails
    the lot (a client call that failed after the SDK's own retries is a finding)."""
    limit = trio.CapacityLimiter(in_flight)

    async def one(item: T) -> None:
        async with limit:
            await fn(item)

    async with trio.open_nursery() as nursery:
        for item in items:
            nursery.start_soon(one, item)


async def start_many(client: Client, run: Callable[..., Any], count: int, *,
                     task_queue: str, id_prefix: str) -> list[Driven]:
    """Start ``run(i)`` for i in 0..count-1 as workflows ``{id_prefix}-{i}``, concurrently;
    the started runs in index order."""
    started: dict[int, Driven] = {}

    async def start(i: int) -> None:
        handle = await client.start_workflow(run, i, id=f"{id_prefix}-{i}", task_queue=task_queue)
        started[i] = Driven(index=i, handle=handle)

    await each(range(count), start)
    return [started[i] for i in range(count)]


async def signal_many(driven: Sequence[Driven], signal: Callable[..., Any]) -> None:
    """Send ``signal`` once to each run, concurrently, counting the acknowledged ones."""
    async def send(d: Driven) -> None:
        await d.handle.signal(signal)
        d.signals_acked += 1

    await each(driven, send)


async def await_results(driven: Sequence[Driven]) -> list[Any]:
    """Wait for every run's result (concurrently); the results in ``driven``'s order."""
    async def wait(d: Driven) -> None:
        d.result = await d.handle.result()

    await each(driven, wait)
    return [d.result for d in driven]


async def fetch_histories(driven: Sequence[Driven]) -> None:
    """Read every run's history as a client sees it into ``Driven.events``."""
    async def fetch(d: Driven) -> None:
        d.events = [e.raw async for e in d.handle.fetch_history_events()]

    await each(driven, fetch)


async def in_a_timer_now(d: Driven) -> bool | None:
    """Whether the run's history shows a timer started and not fired (None: it fired)."""
    events = [e.raw async for e in d.handle.fetch_history_events()]
    started = {e.event_id for e in events if e.event_type == E.TIMER_STARTED}
    fired = {e.attributes.started_event_id for e in events if e.event_type == E.TIMER_FIRED}
    if fired:
        return None
    return bool(started)


def phase_at(events: Sequence[wire.HistoryEvent], at: float) -> str:
    """What a run of the drill's workflow (wait for a signal, activities, a timer) was doing
    at wall time ``at``, judged from its history's event times: the first open step wins."""
    def when(types: frozenset[E] | set[E]) -> list[float]:
        return [e.event_time for e in events if e.event_type in types]

    if any(t <= at for t in when(CLOSE_EVENTS)):
        return "closed"
    if not any(t <= at for t in when({E.WORKFLOW_EXECUTION_SIGNALED})):
        return "waiting for a signal"
    outcome_at = {e.attributes.scheduled_event_id: e.event_time
                  for e in events if e.event_type in ACTIVITY_OUTCOMES}
    for e in events:
        if e.event_type == E.ACTIVITY_TASK_SCHEDULED and e.event_time <= at < outcome_at.get(
                e.event_id, float("inf")):
            return "in an activity"
    fired_at = {e.attributes.started_event_id: e.event_time
                for e in events if e.event_type == E.TIMER_FIRED}
    for e in events:
        if e.event_type == E.TIMER_STARTED and e.event_time <= at < fired_at.get(
                e.event_id, float("inf")):
            return "in a timer"
    return "in a workflow task"


def phases_at(driven: Sequence[Driven], at: float) -> dict[str, int]:
    """How many runs were in each phase at wall time ``at`` (needs ``fetch_histories``)."""
    return dict(sorted(Counter(phase_at(d.events, at) for d in driven).items()))


def run_problems(d: Driven, expected_result: Any, activities: int) -> list[str]:
    """What is wrong with one finished run (needs ``fetch_histories``): its result, its
    history's validity (invariants 4 and 5), one completion, every activity completed
    once, and every signal the client saw acknowledged present exactly once."""
    wid = d.handle.id
    out = [f"{wid}: {p}" for p in history_problems(d.events)]
    if d.result != expected_result:
        out.append(f"{wid}: result {d.result!r}, expected {expected_result!r}")
    kinds = Counter(e.event_type for e in d.events)
    if kinds[E.WORKFLOW_EXECUTION_COMPLETED] != 1:
        out.append(f"{wid}: {kinds[E.WORKFLOW_EXECUTION_COMPLETED]} completed events")
    if kinds[E.ACTIVITY_TASK_COMPLETED] != activities:
        out.append(f"{wid}: {kinds[E.ACTIVITY_TASK_COMPLETED]} activity completions, "
                   f"expected {activities}")
    if kinds[E.WORKFLOW_EXECUTION_SIGNALED] != d.signals_acked:
        out.append(f"{wid}: {d.signals_acked} signals acknowledged, "
                   f"{kinds[E.WORKFLOW_EXECUTION_SIGNALED]} in history")
    return out


async def list_problems(client: Client, task_queue: str, driven: Sequence[Driven]) -> list[str]:
    """What ``list_workflows`` gets wrong about the runs on ``task_queue``: each started id
    must be listed exactly once, as the run its start acknowledged, completed, and nothing
    else may be listed."""
    listed = [w async for w in client.list_workflows(f"TaskQueue = '{task_queue}'")]
    want = {d.handle.id: d.run_id for d in driven}
    out: list[str] = []
    times = Counter(w.id for w in listed)
    out += [f"{wid}: listed {times[wid]} times" for wid in sorted(want) if times[wid] != 1]
    for w in listed:
        if w.id not in want:
            out.append(f"{w.id}: listed but never started by the drill")
        elif w.run_id != want[w.id]:
            out.append(f"{w.id}: listed run {w.run_id}, the start acknowledged {want[w.id]}")
        elif w.status != wire.WorkflowExecutionStatus.COMPLETED:
            out.append(f"{w.id}: listed as {w.status.name}")
    return out


async def drill_problems(client: Client, task_queue: str, driven: Sequence[Driven]) -> list[str]:
    """Every "Done means" check over the drill's ``DrillChain`` runs on ``task_queue``
    (fetches their histories first); the violations, empty when none."""
    await fetch_histories(driven)
    out: list[str] = []
    for d in driven:
        out += run_problems(d, drill_result(d.index), DRILL_ACTIVITIES)
    return out + await list_problems(client, task_queue, driven)
