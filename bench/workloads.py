"""The bench workloads (DESIGN §8), written once for both SDKs.

Each takes an ``Sdk`` shim (client, Worker class, workflow module, EventType, and a
``run_limited`` that runs coroutine factories with bounded concurrency on that SDK's event
loop) so shoal (trio) and the Temporal dev server (temporalio on asyncio) run the very same
workload code. Worker, client and server share the machine, as the issue prescribes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shoal.bench.stats import latency_summary


@dataclass
class Sdk:
    client: Any
    Worker: type
    wf: Any  # bench.wf_shoal or bench.wf_temporal
    EventType: Any
    run_limited: Callable[[list[Callable[[], Awaitable[Any]]], int], Awaitable[list[Any]]]
    # The workers' client; None: ``client``. The cluster bench connects it to the nodes in
    # another order than the starter's, so tasks cross nodes as a real deployment's do.
    worker_client: Any = None

    @property
    def workers_client(self) -> Any:
        return self.worker_client if self.worker_client is not None else self.client


def _tq(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:8]}"


async def w1_latency(sdk: Sdk, runs: int) -> dict[str, Any]:
    """W1: one-activity workflows, one at a time; client-observed latency."""
    tq = _tq("w1")
    ms: list[float] = []
    async with sdk.Worker(sdk.workers_client, task_queue=tq, workflows=[sdk.wf.OneActivity],
                          activities=[sdk.wf.bench_echo]):
        for i in range(runs + 5):
            t0 = time.perf_counter()
            r = await sdk.client.execute_workflow(sdk.wf.OneActivity.run, i, id=f"w1-{uuid.uuid4()}",
                                                  task_queue=tq)
            assert r == i
            if i >= 5:  # warm-up runs are not counted
                ms.append((time.perf_counter() - t0) * 1000)
    return latency_summary(ms)


async def w2_throughput(sdk: Sdk, workflows: int, in_flight: int, *, cache: bool = True) -> dict[str, Any]:
    """W2: ``workflows`` runs of 3 sequential activities, ``in_flight`` at a time.

    ``cache=False`` runs the worker with ``max_cached_workflows=0``: no sticky execution,
    every workflow task replays the run's full history.
    """
    tq = _tq("w2")
    ms: list[float] = []

    def one(i: int) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            t0 = time.perf_counter()
            r = await sdk.client.execute_workflow(sdk.wf.ThreeActivities.run, i,
                                                  id=f"w2-{uuid.uuid4()}", task_queue=tq)
            assert r == i + 3
            ms.append((time.perf_counter() - t0) * 1000)
        return go

    extra = {} if cache else {"max_cached_workflows": 0}
    async with sdk.Worker(sdk.workers_client, task_queue=tq, workflows=[sdk.wf.ThreeActivities],
                          activities=[sdk.wf.bench_echo], **extra):
        t0 = time.perf_counter()
        await sdk.run_limited([one(i) for i in range(workflows)], in_flight)
        elapsed = time.perf_counter() - t0
    return {"workflows": workflows, "in_flight": in_flight,
            "workflows_per_s": round(workflows / elapsed, 1), **latency_summary(ms)}


async def w3_timer_lateness(sdk: Sdk, timers: int) -> dict[str, Any]:
    """W3: ``timers`` two-second timers started together; lateness from the history
    (TimerFired time - TimerStarted time - 2 s), so it measures the server's timer path."""
    tq = _tq("w3")
    handles: list[Any] = []

    def start(i: int) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            handles.append(await sdk.client.start_workflow(
                sdk.wf.TwoSecondTimer.run, id=f"w3-{uuid.uuid4()}", task_queue=tq))
        return go

    lateness: list[float] = []

    def measure(h: Any) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            await h.result()
            started = fired = None
            async for ev in h.fetch_history_events():
                if ev.event_type == sdk.EventType.EVENT_TYPE_TIMER_STARTED:
                    started = ev.event_time
                elif ev.event_type == sdk.EventType.EVENT_TYPE_TIMER_FIRED:
                    fired = ev.event_time
            assert started is not None and fired is not None
            lateness.append(((fired - started).total_seconds() - 2.0) * 1000)
        return go

    async with sdk.Worker(sdk.workers_client, task_queue=tq, workflows=[sdk.wf.TwoSecondTimer]):
        await sdk.run_limited([start(i) for i in range(timers)], 100)
        await sdk.run_limited([measure(h) for h in handles], 100)
    return {"timers": timers, **{k.replace("_ms", "_lateness_ms") if k != "count" else k: v
                                  for k, v in latency_summary(lateness).items()}}


async def w4_signals(sdk: Sdk, signals: int, in_flight: int) -> dict[str, Any]:
    """W4: ``signals`` signals into one workflow, ``in_flight`` senders at a time.

    ``signals_per_s`` counts acknowledged signals (each is recorded in history before its
    call returns); ``drained_s`` is until the workflow has handled them all and returned.
    """
    tq = _tq("w4")
    async with sdk.Worker(sdk.workers_client, task_queue=tq, workflows=[sdk.wf.SignalCounter]):
        handle = await sdk.client.start_workflow(sdk.wf.SignalCounter.run, signals,
                                                 id=f"w4-{uuid.uuid4()}", task_queue=tq)
        ms: list[float] = []

        def one() -> Callable[[], Awaitable[None]]:
            async def go() -> None:
                t0 = time.perf_counter()
                await handle.signal(sdk.wf.SignalCounter.bump)
                ms.append((time.perf_counter() - t0) * 1000)
            return go

        t0 = time.perf_counter()
        await sdk.run_limited([one() for _ in range(signals)], in_flight)
        acked = time.perf_counter() - t0
        assert await handle.result() == signals
        drained = time.perf_counter() - t0
    return {"signals": signals, "in_flight": in_flight, "signals_per_s": round(signals / acked, 1),
            "drained_s": round(drained, 2), **{f"signal_{k}": v for k, v in latency_summary(ms).items()}}


Step = Callable[[], Awaitable[dict[str, Any]]]
Bound = Callable[[str, Step], Awaitable[dict[str, Any]]]


async def run_all(sdk: Sdk, sizes: dict[str, int], bound: Bound | None = None) -> dict[str, Any]:
    """W1-W4 in order, with the sizes ``bench/__main__.py`` chose.

    ``bound(name, step)``, if given, runs each workload (the SDK's own way of giving up
    after a while, so one stuck workflow costs one workload's figures, not all of them).
    """
    steps: dict[str, Step] = {
        "W1": lambda: w1_latency(sdk, sizes["w1_runs"]),
        "W2": lambda: w2_throughput(sdk, sizes["w2_workflows"], sizes["w2_in_flight"]),
        "W2_no_cache": lambda: w2_throughput(sdk, sizes["w2_workflows"], sizes["w2_in_flight"],
                                             cache=False),
        "W3": lambda: w3_timer_lateness(sdk, sizes["w3_timers"]),
        "W4": lambda: w4_signals(sdk, sizes["w4_signals"], sizes["w4_in_flight"]),
    }
    return {name: await (bound(name, step) if bound is not None else step())
            for name, step in steps.items()}
