"""The chaos run's workload: Chain-like workflows started continuously, and the end checks.

Owns: the workflow and activity the workers run, one driver per workflow (start, two
signals, wait for the result, each call retried with the same request id until it is
acknowledged), the tally of failed client calls and how long calls took, and the checks
run once the cluster is healed (DESIGN §4 invariants 4 and 5 per history, every acknowledged
signal in its history, each workflow completed once with the right result, the list count).
Must not: touch node processes or faults (``faults.py`` does).
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import trio

from shoal import activity, wire, workflow
from shoal.client import Client, WorkflowFailureError
from shoal.exceptions import WorkflowAlreadyStartedError
from shoal.sdk.connection import ConnectionLost, RPCError

from helpers.history_check import history_problems

T = TypeVar("T")
E = wire.EventType

SIGNALS_PER_WORKFLOW = 2
ACTIVITIES_PER_WORKFLOW = 3
TIMER_S = 0.5
# The second signal is sent this long (at most) after the first, so it lands while the
# workflow is parked on its condition, often in the middle of a fault.
SIGNAL_GAP_MAX_S = 2.0
# Between attempts of a call the SDK itself gave up on (it retries for 60 s inside).
RETRY_PAUSE_S = 0.5


@activity.defn
async def double(x: int) -> int:
    return 2 * x


@workflow.defn
class ChaosChain:
    """Waits for two signals, runs three activities one after another and a timer."""

    def __init__(self) -> None:
        self.bumps = 0

    @workflow.signal
    def bump(self) -> None:
        self.bumps += 1

    @workflow.run
    async def run(self, x: int) -> int:
        await workflow.wait_condition(lambda: self.bumps >= SIGNALS_PER_WORKFLOW)
        for _ in range(ACTIVITIES_PER_WORKFLOW):
            x = await workflow.execute_activity(double, x,
                                                start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(TIMER_S)
        return x + self.bumps


def expected_result(x: int) -> int:
    """What ``ChaosChain.run(x)`` returns when it got exactly the two signals it waits for."""
    return x * 2 ** ACTIVITIES_PER_WORKFLOW + SIGNALS_PER_WORKFLOW


@dataclass(slots=True)
class WorkflowRecord:
    """What the client knows about one workflow it drove."""

    index: int
    workflow_id: str
    start_request_id: str
    run_id: str = ""
    signals_acked: int = 0
    result: Any = None
    finished: bool = False  # the result call returned (with a result or a failure)
    started_at: float = 0.0  # monotonic, when the start was acknowledged
    finished_at: float = 0.0  # monotonic, when the result call returned
    failure: str = ""  # the run closed other than completed


@dataclass(slots=True)
class CallStats:
    """Client calls that raised to the workload (after the SDK's own retries), by op and
    code, and the longest any single call took, by op."""

    failed: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    max_s: dict[str, float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)

    def timed(self, op: str, seconds: float) -> None:
        self.calls[op] += 1
        self.max_s[op] = max(self.max_s.get(op, 0.0), seconds)

    def as_json(self) -> dict[str, Any]:
        return {"calls": dict(self.calls),
                "failed": {op: dict(codes) for op, codes in sorted(self.failed.items())},
                "failed_total": sum(sum(c.values()) for c in self.failed.values()),
                "max_request_s": {op: round(s, 3) for op, s in sorted(self.max_s.items())}}


def _code(exc: BaseException) -> str:
    if isinstance(exc, RPCError):
        return str(exc.code)
    return type(exc).__name__


class Workload:
    """Starts ``ChaosChain`` workflows at ``rate_per_s`` and drives each to its result."""

    def __init__(self, client: Client, task_queue: str, seed: int, rate_per_s: float) -> None:
        self.client = client
        self.task_queue = task_queue
        self.seed = seed
        self.rate_per_s = rate_per_s
        self.records: list[WorkflowRecord] = []
        self.stats = CallStats()
        self.give_up_at = float("inf")  # monotonic; the drain sets it
        self.run_prefix = f"chaos-{seed}-{uuid.uuid4().hex[:8]}"

    async def start_until(self, nursery: trio.Nursery, stop: trio.Event) -> None:
        """Start a workflow driver every 1/rate seconds until ``stop`` is set."""
        i = 0
        while not stop.is_set():
            rec = WorkflowRecord(index=i, workflow_id=f"{self.run_prefix}-{i}",
                                 start_request_id=str(uuid.uuid4()))
            self.records.append(rec)
            nursery.start_soon(self._drive, rec)
            i += 1
            with trio.move_on_after(1.0 / self.rate_per_s):
                await stop.wait()

    async def _call(self, op: str, fn: Callable[[], Awaitable[T]], *, timed: bool = True) -> T:
        """``fn()`` until it answers; each raise is tallied under ``op`` and its code, then
        the same request (same request id) is sent again, until the drain gives up."""
        while True:
            t0 = time.monotonic()
            try:
                out = await fn()
            except (RPCError, ConnectionLost, OSError) as exc:
                if timed:
                    self.stats.timed(op, time.monotonic() - t0)
                self.stats.failed[op][_code(exc)] += 1
                if time.monotonic() > self.give_up_at:
                    raise
                await trio.sleep(RETRY_PAUSE_S)
                continue
            if timed:
                self.stats.timed(op, time.monotonic() - t0)
            return out

    async def _drive(self, rec: WorkflowRecord) -> None:
        rng = random.Random(f"{self.seed}:{rec.index}")
        client = self.client

        async def start() -> Any:
            try:
                return await client.start_workflow(
                    ChaosChain.run, rec.index, id=rec.workflow_id, task_queue=self.task_queue,
                    request_id=rec.start_request_id)
            except WorkflowAlreadyStartedError as exc:
                # Only a start retried under a new request id could see this; ours reuse it.
                self.stats.failed["start"]["WORKFLOW_ALREADY_STARTED"] += 1
                return client.get_workflow_handle(rec.workflow_id, run_id=exc.run_id or None)

        handle = await self._call("start", start)
        rec.run_id = handle.result_run_id or ""
        rec.started_at = time.monotonic()
        execution = wire.WorkflowExecution(workflow_id=rec.workflow_id, run_id=rec.run_id)
        for k in range(SIGNALS_PER_WORKFLOW):
            if k:
                await trio.sleep(rng.uniform(0, SIGNAL_GAP_MAX_S))
            req = wire.SignalWorkflowRequest(
                execution=execution, signal_name="bump",
                input=client.data_converter.to_payloads([]),
                request_id=str(uuid.uuid4()), identity=client.identity)
            await self._call("signal", lambda: client.service.call(wire.Op.SIGNAL_WORKFLOW, req))
            rec.signals_acked += 1
        typed = client.get_workflow_handle_for(ChaosChain.run, rec.workflow_id, run_id=rec.run_id)
        try:
            # A result waits in 30 s long polls: not a request time worth a maximum.
            rec.result = await self._call("result", typed.result, timed=False)
        except WorkflowFailureError as exc:
            rec.failure = f"{type(exc.cause).__name__}: {exc.cause}"
        rec.finished = True
        rec.finished_at = time.monotonic()

    async def check(self) -> list[str]:
        """Every invariant the run must keep, checked on the healed cluster; the violations
        (empty: none). Call after every driver returned."""
        violations: list[str] = []
        for rec in self.records:
            try:
                violations += await self._check_one(rec)
            except (RPCError, ConnectionLost) as exc:
                violations.append(f"{rec.workflow_id}: history not fetched: {exc}")
        try:
            violations += await self._check_list()
        except (RPCError, ConnectionLost) as exc:
            # A user's list call failing on a healed cluster is a finding in itself.
            violations.append(f"list_workflows failed (via {self.client.service.address}): {exc}")
        return violations

    async def _check_one(self, rec: WorkflowRecord) -> list[str]:
        wid = rec.workflow_id
        if not rec.run_id:
            return [f"{wid}: never acknowledged as started"]
        out: list[str] = []
        if not rec.finished:
            out.append(f"{wid}: no result (driver still waiting)")
        elif rec.failure:
            out.append(f"{wid}: closed without completing: {rec.failure}")
        elif rec.result != expected_result(rec.index):
            out.append(f"{wid}: result {rec.result!r}, expected {expected_result(rec.index)}")
        handle = self.client.get_workflow_handle(wid, run_id=rec.run_id)
        events = [e.raw async for e in handle.fetch_history_events()]
        out += [f"{wid}: {p}" for p in history_problems(events)]
        kinds = Counter(e.event_type for e in events)
        if kinds[E.WORKFLOW_EXECUTION_SIGNALED] != rec.signals_acked:
            out.append(f"{wid}: {rec.signals_acked} signals acknowledged, "
                       f"{kinds[E.WORKFLOW_EXECUTION_SIGNALED]} in history")
        if rec.finished and kinds[E.WORKFLOW_EXECUTION_COMPLETED] != 1:
            out.append(f"{wid}: {kinds[E.WORKFLOW_EXECUTION_COMPLETED]} completed events")
        if rec.finished and kinds[E.ACTIVITY_TASK_COMPLETED] != ACTIVITIES_PER_WORKFLOW:
            out.append(f"{wid}: {kinds[E.ACTIVITY_TASK_COMPLETED]} activity completions, "
                       f"expected {ACTIVITIES_PER_WORKFLOW}")
        return out

    async def _check_list(self) -> list[str]:
        listed = [w async for w in self.client.list_workflows(f"TaskQueue = '{self.task_queue}'")]
        out: list[str] = []
        started = [r for r in self.records if r.run_id]
        if len(listed) != len(started):
            out.append(f"list_workflows shows {len(listed)} runs; {len(started)} were started")
        runs = Counter(w.id for w in listed)
        out += [f"{wid}: {n} runs listed" for wid, n in sorted(runs.items()) if n > 1]
        want = {r.workflow_id: r.run_id for r in started}
        out += [f"{w.id}: listed run {w.run_id} is not the one started ({want.get(w.id)})"
                for w in listed if want.get(w.id) != w.run_id]
        statuses = Counter(w.status.name for w in listed)
        if set(statuses) - {"COMPLETED"}:
            out.append(f"list_workflows statuses: {dict(statuses)}")
        return out

    def summary(self) -> dict[str, Any]:
        recs = self.records
        took = sorted((r.finished_at - r.started_at, r.workflow_id) for r in recs if r.finished)
        latency: dict[str, Any] = {}
        if took:
            latency = {"p50": round(took[len(took) // 2][0], 2),
                       "p99": round(took[min(len(took) - 1, len(took) * 99 // 100)][0], 2),
                       "max": round(took[-1][0], 2), "slowest": took[-1][1]}
        return {"start_to_result_s": latency,
                "started": sum(1 for r in recs if r.run_id),
                "attempted": len(recs),
                "completed": sum(1 for r in recs if r.finished and not r.failure),
                "right_result": sum(1 for r in recs if r.finished
                                    and r.result == expected_result(r.index)),
                "signals_acked": sum(r.signals_acked for r in recs)}
