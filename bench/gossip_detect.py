"""kill -9 detection time of a real cluster (issue 5's target). Prints one JSON object.

Usage: ``python -m shoal.bench.gossip_detect --runs 20 [--nodes 5] [--preset small]``
(``make bench-gossip``).

Each run starts a fresh cluster of ``--nodes`` ``shoal node start`` processes on
127.0.0.1 (all join through the first), waits until every node lists every node alive,
``kill -9``s one node chosen at random (seeded), and polls ``CLUSTER_STATUS`` on every
survivor at once until each shows the victim dead. Per run it reports the time from the
kill to the first survivor and to the last survivor showing it dead; over the runs, the
p50/p99/max of both and how many runs had every survivor there within ``--target`` s.

The poll interval (``POLL_INTERVAL_S``) adds up to that much to each figure. For runs over
the target, ``slow_runs`` lists what each survivor's log said about the victim (suspected,
declared dead by its own suspicion timer or told so), in seconds after the kill, so the
mechanism of a slow run can be read off the output.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio

from shoal import wire
from shoal.bench.stats import percentile
from shoal.bench.cluster_nodes import BenchNode, running_cluster
from shoal.sdk.connection import ServiceConnection

POLL_INTERVAL_S = 0.02
CONVERGE_TIMEOUT_S = 60.0
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


@contextlib.contextmanager
def _cluster(root: Path, size: int, preset: str) -> Iterator[list[BenchNode]]:
    with running_cluster(root, size, ["--gossip-preset", preset, "--num-shards", "16"]) as nodes:
        yield nodes


async def _status(conn: ServiceConnection) -> wire.ClusterStatusResponse:
    return await conn.call(wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest(), retry_for_s=5.0)


async def _wait_converged(conns: dict[str, ServiceConnection], size: int) -> None:
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while True:
        views = [await _status(c) for c in conns.values()]
        if all(sum(m.state == "alive" for m in v.members) == size for v in views):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cluster did not converge within {CONVERGE_TIMEOUT_S}s")
        await trio.sleep(0.1)


async def _detect(victim: BenchNode, survivors: list[BenchNode], timeout_s: float
                  ) -> tuple[float, dict[str, float | None]]:
    """Kill the victim; seconds until each survivor shows it dead (None: not in time).

    Returns the kill's wall-clock time too, to line the survivors' logs up with it.
    """
    conns = {n.name: ServiceConnection(n.address, wire.DEFAULT_NAMESPACE) for n in survivors}
    seen: dict[str, float | None] = {n.name: None for n in survivors}
    try:
        await _wait_converged(conns | {victim.name: ServiceConnection(
            victim.address, wire.DEFAULT_NAMESPACE)}, len(survivors) + 1)
        for c in conns.values():  # every connection open before the clock starts
            await _status(c)
        killed_wall = time.time()
        t0 = time.monotonic()
        victim.kill()

        async def watch(name: str, conn: ServiceConnection) -> None:
            while time.monotonic() - t0 < timeout_s:
                states = {m.name: m.state for m in (await _status(conn)).members}
                if states.get(victim.name) == "dead":
                    seen[name] = time.monotonic() - t0
                    return
                await trio.sleep(POLL_INTERVAL_S)

        async with trio.open_nursery() as nursery:
            for name, conn in conns.items():
                nursery.start_soon(watch, name, conn)
        return killed_wall, seen
    finally:
        for c in conns.values():
            await c.close()


def _victim_log(node: BenchNode, victim: str, killed_wall: float) -> list[str]:
    """The survivor's log lines about the victim after the kill, stamped in seconds after it."""
    out = []
    for line in node.lines:
        m = _LOG_TIME.match(line)
        if not m or f"name={victim}" not in line:
            continue
        at = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at >= killed_wall - 0.01:
            out.append(f"+{at - killed_wall:.2f}s {line[m.end():].strip()}")
    return out


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50_s": round(percentile(values, 50), 3), "p99_s": round(percentile(values, 99), 3),
            "max_s": round(max(values), 3) if values else float("nan")}


def run(runs: int, size: int, preset: str, target_s: float, timeout_s: float,
        seed: int) -> dict[str, Any]:
    """Run the measurement ``runs`` times; the JSON-ready report."""
    rng = random.Random(seed)
    per_run: list[dict[str, Any]] = []
    slow: list[dict[str, Any]] = []
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="shoal-gossip-detect-") as tmp, \
                _cluster(Path(tmp), size, preset) as nodes:
            victim = nodes[rng.randrange(size)]
            survivors = [n for n in nodes if n is not victim]
            killed_wall, seen = trio.run(_detect, victim, survivors, timeout_s)
            times = [t for t in seen.values() if t is not None]
            row = {"victim": nodes.index(victim),
                   "first_s": round(min(times), 3) if times else None,
                   "all_s": round(max(times), 3) if len(times) == len(seen) else None,
                   "each_s": sorted(round(t, 3) for t in times)}
            per_run.append(row)
            if row["all_s"] is None or row["all_s"] > target_s:
                time.sleep(0.2)  # the survivors' last log lines reach our readers
                slow.append({"run": i, **row, "logs": {
                    f"n{nodes.index(n)}": _victim_log(n, victim.name, killed_wall)
                    for n in survivors}})
        print(f"run {i}: {row}", file=sys.stderr, flush=True)
    alls = [r["all_s"] for r in per_run if r["all_s"] is not None]
    firsts = [r["first_s"] for r in per_run if r["first_s"] is not None]
    return {
        "workload": "gossip_kill9_detection", "nodes": size, "preset": preset, "runs": runs,
        "poll_interval_s": POLL_INTERVAL_S, "target_s": target_s,
        "all_survivors_dead": _summary(alls), "first_survivor_dead": _summary(firsts),
        "runs_within_target": sum(1 for t in alls if t <= target_s),
        "runs_not_detected": sum(1 for r in per_run if r["all_s"] is None),
        "all_s": sorted(alls), "slow_runs": slow,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--preset", default="small", choices=["small", "lan"])
    p.add_argument("--target", type=float, default=3.0, help="seconds; issue 5's is 3")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for every survivor before a run counts as undetected")
    p.add_argument("--seed", type=int, default=1, help="picks the victims")
    a = p.parse_args()
    print(json.dumps(run(a.runs, a.nodes, a.preset, a.target, a.timeout, a.seed)))


if __name__ == "__main__":
    main()
