"""Failover time of a real cluster (DESIGN §8, issue 7): from ``kill -9`` of a shard's leader
to the first write its successor commits.

Owns: one kill's measurement (``measure_kill``) and the loop over kills with a restart and a
rebalance between them (``run_kills``). Must not: start the cluster (``cluster_nodes.py``)
or run the W1-W4 workloads.

Method, per kill: pick node X (round robin) and a shard X leads (``CLUSTER_STATUS``
``shards_led``, seeded choice). A writer whose client is connected to the survivors only
(so client failover is not part of the figure) starts a workflow whose id hashes to that
shard (``node.routing.shard_for``) every ``WRITE_INTERVAL_S``, each start its own call with
its own retries, many in flight. After a steady spell it ``kill -9``s X. The figure is the
time from the kill to the first acknowledgement of a start *issued after* X was reaped: such
a write cannot have been committed by X, so it was committed by the successor (a write in
flight at the kill might have been). Its resolution is about ``WRITE_INTERVAL_S`` plus one
write's latency. Then X restarts on its data dir, joining through a survivor, and the next
kill waits until the cluster is balanced again (every shard led, none under-replicated).

No worker polls the writer's task queue: a start is one committed history write, which is
all the figure needs.
"""

from __future__ import annotations

import itertools
import math
import random
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import trio

from shoal import wire
from shoal.bench.cluster_nodes import BenchNode, Views, wait_balanced
from shoal.bench.stats import percentile
from shoal.client import Client
from shoal.node.cluster.routing import shard_for

WRITE_INTERVAL_S = 0.02  # a new start this often, whatever is still in flight
IN_FLIGHT_MAX = 500  # starts in flight at once; above it the writer skips a beat
STEADY_WRITES = 5  # acknowledged starts before the kill (the path is warm)
FAILOVER_TIMEOUT_S = 60.0  # a kill with no post-kill acknowledgement by then counts as failed
BALANCE_TIMEOUT_S = 180.0


def ids_on_shard(shard: int, num_shards: int, tag: str) -> Iterator[str]:
    """Workflow ids (of the default namespace) that hash to ``shard``, endlessly."""
    for i in itertools.count():
        wid = f"failover-{tag}-{i}"
        if shard_for(wire.DEFAULT_NAMESPACE, wid, num_shards) == shard:
            yield wid


class _Writer:
    """Starts a workflow on the shard every ``WRITE_INTERVAL_S``; remembers when each start
    was issued and acknowledged (monotonic seconds)."""

    def __init__(self, client: Client, ids: Iterator[str]) -> None:
        self.client, self.ids = client, ids
        self.task_queue = f"failover-{uuid.uuid4().hex[:8]}"
        self.done: list[tuple[float, float]] = []  # (issued, acknowledged)
        self.errors: list[str] = []
        self.in_flight = 0
        self.acked = trio.Event()  # set (and replaced) on every acknowledgement

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                if self.in_flight < IN_FLIGHT_MAX:
                    nursery.start_soon(self._one, next(self.ids))
                await trio.sleep(WRITE_INTERVAL_S)

    async def _one(self, workflow_id: str) -> None:
        self.in_flight += 1
        issued = time.monotonic()
        try:
            await self.client.start_workflow("BenchFailover", id=workflow_id,
                                             task_queue=self.task_queue)
        except Exception as exc:  # noqa: BLE001 - a failed write is counted and reported
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        finally:
            self.in_flight -= 1
        self.done.append((issued, time.monotonic()))
        self.acked.set()
        self.acked = trio.Event()

    def first_ack_issued_after(self, t: float) -> float | None:
        acks = [ack for issued, ack in self.done if issued >= t]
        return min(acks) if acks else None


async def _leader_of(nodes: list[BenchNode], shard: int, timeout_s: float = 3.0) -> int | None:
    """Index (in ``nodes``) of the live node that says it leads ``shard``; None if none
    does within ``timeout_s`` (a leader's status can lag its first commit a little)."""
    live = [n for n in nodes if n.alive()]
    views = Views(live)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for n in live:
                if shard in (await views.status(n)).shards_led:
                    return nodes.index(n)
            await trio.sleep(0.05)
        return None
    finally:
        await views.aclose()


async def measure_kill(nodes: list[BenchNode], victim: BenchNode, shard: int,
                       num_shards: int) -> dict[str, Any]:
    """Kill ``victim`` (which leads ``shard``) under a stream of writes to the shard; the
    seconds until a write issued after the kill was acknowledged, and what happened."""
    survivors = [n for n in nodes if n is not victim]
    client = await Client.connect([n.address for n in survivors])
    writer = _Writer(client, ids_on_shard(shard, num_shards, uuid.uuid4().hex[:8]))
    row: dict[str, Any] = {"victim": nodes.index(victim), "shard": shard}
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            with trio.fail_after(FAILOVER_TIMEOUT_S):  # the cluster did not even take writes
                while len(writer.done) < STEADY_WRITES:
                    await writer.acked.wait()
            t_kill = time.monotonic()
            victim.kill()
            t_reaped = time.monotonic()
            row["writes_before_kill"] = len(writer.done)
            with trio.move_on_after(FAILOVER_TIMEOUT_S):
                while writer.first_ack_issued_after(t_reaped) is None:
                    await writer.acked.wait()
            nursery.cancel_scope.cancel()
        first = writer.first_ack_issued_after(t_reaped)
        row["failover_s"] = round(first - t_kill, 3) if first is not None else None
        row["write_errors"] = len(writer.errors)
        if writer.errors:
            row["first_error"] = writer.errors[0]
        row["successor"] = await _leader_of(nodes, shard)
    finally:
        await client.service.close()
    return row


async def run_kills(nodes: list[BenchNode], num_shards: int, kills: int,
                    seed: int) -> dict[str, Any]:
    """``kills`` kill/restart rounds over a balanced cluster; the JSON-ready report."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for k in range(kills):
        led = await wait_balanced(nodes, num_shards, BALANCE_TIMEOUT_S)
        victim = nodes[k % len(nodes)]
        shard = rng.choice(led[victim.address])
        row = {"kill": k, **await measure_kill(nodes, victim, shard, num_shards)}
        t0 = time.monotonic()
        survivor = next(n for n in nodes if n is not victim)
        await trio.to_thread.run_sync(lambda: victim.start(join=f"127.0.0.1:{survivor.port}"))
        await wait_balanced(nodes, num_shards, BALANCE_TIMEOUT_S)
        row["restart_to_balanced_s"] = round(time.monotonic() - t0, 2)
        rows.append(row)
        print(f"kill {k}: {row}", flush=True, file=sys.stderr)
    return summarize(rows)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p99/max of the kills' failover times, and each kill's row."""
    times = [r["failover_s"] for r in rows if r.get("failover_s") is not None]

    def fig(p: float) -> float:
        return round(percentile(times, p), 3) if times else math.nan

    return {
        "kills": len(rows), "failed_kills": len(rows) - len(times),
        "target_p99_s": 5.0, "write_interval_s": WRITE_INTERVAL_S,
        "failover_p50_s": fig(50), "failover_p99_s": fig(99),
        "failover_max_s": round(max(times), 3) if times else math.nan,
        "each_failover_s": [r.get("failover_s") for r in rows],
        "per_kill": rows,
    }
