"""``python -m shoal.bench.cluster_bench`` (``make bench-cluster``): W1-W4 on a 3-node cluster
with R = 3 beside one node with R = 1, and the failover time of a killed shard leader
(DESIGN §8, issue 7). Prints one JSON object.

The cluster: ``--nodes`` ``shoal node start`` processes on 127.0.0.1 (temp data dirs, the
small gossip preset, the replicated shard log), waited on until balanced (every shard led,
none below its replication factor). The workloads are ``workloads.py``'s, run by the same
driver process as ``make bench`` (``run_shoal.py``) with the starter's client given every
node's address and the workers' client the same addresses in reverse order, so requests
and tasks cross nodes. The one-node side is ``make bench``'s, on the replicated shard log
by default (the same consensus path with R = 1). Failover runs on a fresh cluster of the
same shape (``failover.py`` says how it is measured). Beside the workloads the cluster part
reports each node's CPU use while balanced and idle (per-shard heartbeats and ticks cost
CPU in proportion to ``--num-shards``) and the nodes' routing counters afterwards.

Everything shares one machine; report the load average (``machine.loadavg_*``) with the
figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import trio

from shoal.bench import failover
from shoal.bench.__main__ import FULL, QUICK, _run_driver, run_shoal
from shoal.bench.cluster_nodes import (BenchNode, idle_cpu, routing_counters, running_cluster,
                                      wait_balanced)

DEFAULT_NUM_SHARDS = 512  # the product's default (``--num-shards``)
BALANCE_TIMEOUT_S = 180.0
WORKLOAD_TIMEOUT_S = 300.0  # a workload past it (a workflow stuck) reports an error
IDLE_SAMPLE_S = 3.0  # CPU use of the balanced cluster before the workloads


def _node_args(num_shards: int) -> list[str]:
    return ["--num-shards", str(num_shards), "--gossip-preset", "small",
            "--shard-log", "replicated"]


def _trouble(nodes: list[BenchNode]) -> dict[str, list[str]]:
    """Each node's last warning and error lines (none on a clean run)."""
    return {f"n{i}": [ln.strip() for ln in n.trouble()[-5:]]
            for i, n in enumerate(nodes) if n.trouble()}


@contextlib.contextmanager
def _telling_node_logs(nodes: list[BenchNode]) -> Iterator[None]:
    """A part that fails says what the nodes logged (before they are killed)."""
    try:
        yield
    except Exception as exc:
        raise RuntimeError(f"{type(exc).__name__}: {exc}; node logs: {_trouble(nodes)}") from exc


@contextlib.contextmanager
def _keeping_logs(nodes: list[BenchNode], logs_dir: Path | None, part: str) -> Iterator[None]:
    """Write each node's log to ``logs_dir/<part>-n<i>.log`` when the part ends, however it
    ends (for a post-mortem of a stuck workload or a slow failover)."""
    try:
        yield
    finally:
        if logs_dir is not None:
            logs_dir.mkdir(parents=True, exist_ok=True)
            for i, n in enumerate(nodes):
                (logs_dir / f"{part}-n{i}.log").write_text("".join(n.lines))


def run_cluster_workloads(sizes: dict[str, int], size: int, num_shards: int,
                          logs_dir: Path | None = None) -> dict[str, Any]:
    """W1-W4 on a fresh ``size``-node cluster once it is balanced."""
    with tempfile.TemporaryDirectory(prefix="shoal-cluster-bench-") as tmp, \
            running_cluster(Path(tmp), size, _node_args(num_shards)) as nodes, \
            _keeping_logs(nodes, logs_dir, "workloads"):
        t0 = time.monotonic()
        with _telling_node_logs(nodes):
            trio.run(wait_balanced, nodes, num_shards, BALANCE_TIMEOUT_S)
        balanced_s = round(time.monotonic() - t0, 2)
        idle = idle_cpu(nodes, IDLE_SAMPLE_S)
        addrs = [n.address for n in nodes]
        result = _run_driver("shoal.bench.run_shoal", ",".join(addrs), sizes,
                             worker_address=",".join(reversed(addrs)),
                             workload_timeout_s=WORKLOAD_TIMEOUT_S)
        with _telling_node_logs(nodes):
            routing = trio.run(routing_counters, nodes)
        trouble = _trouble(nodes)
    return {"nodes": size, "replication_factor": min(3, size), "balanced_after_s": balanced_s,
            "idle_cpu_per_node": idle, **result, "routing_per_node": routing,
            **({"node_warnings": trouble} if trouble else {})}


def run_failover(size: int, num_shards: int, kills: int, seed: int,
                 logs_dir: Path | None = None) -> dict[str, Any]:
    """``kills`` kill -9 / restart rounds on a fresh ``size``-node cluster."""
    with tempfile.TemporaryDirectory(prefix="shoal-failover-bench-") as tmp, \
            running_cluster(Path(tmp), size, _node_args(num_shards)) as nodes, \
            _keeping_logs(nodes, logs_dir, "failover"):
        with _telling_node_logs(nodes):
            result = trio.run(failover.run_kills, nodes, num_shards, kills, seed)
        trouble = _trouble(nodes)
    return {"nodes": size, "gossip_preset": "small", "seed": seed, **result,
            **({"node_warnings": trouble} if trouble else {})}


def _section(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one part of the bench; a part that fails is reported in the JSON (with what the
    nodes logged, if anything) and the others still run."""
    print(f"{name}...", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        out = run()
    except Exception as exc:  # noqa: BLE001 - one broken part must not lose the others' figures
        out = {"error": f"{type(exc).__name__}: {exc}"}
    print(f"{name} done in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller workloads (smoke run)")
    p.add_argument("--sizes", default="", help="JSON of workload sizes overriding the chosen set")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--num-shards", type=int, default=DEFAULT_NUM_SHARDS)
    p.add_argument("--kills", type=int, default=20, help="failover rounds (0: none)")
    p.add_argument("--seed", type=int, default=1, help="picks the killed shards")
    p.add_argument("--single-shard-log", choices=("replicated", "local"), default="replicated",
                   help="the one-node side's shard log (local: make bench's default)")
    p.add_argument("--skip-workloads", action="store_true", help="failover only")
    p.add_argument("--keep-logs", type=Path, default=None, metavar="DIR",
                   help="write the cluster nodes' logs here (a restarted node's log goes on)")
    a = p.parse_args(argv)
    sizes = {**(QUICK if a.quick else FULL), **(json.loads(a.sizes) if a.sizes else {})}
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_start": [round(x, 2) for x in os.getloadavg()]},
        "sizes": sizes, "num_shards": a.num_shards,
    }
    if not a.skip_workloads:
        result[f"shoal_{a.nodes}node_r{min(3, a.nodes)}"] = _section(
            "cluster workloads",
            lambda: run_cluster_workloads(sizes, a.nodes, a.num_shards, a.keep_logs))
        result["shoal_1node_r1"] = _section("one-node workloads", lambda: {
            "shard_log": a.single_shard_log,
            **run_shoal(sizes, a.single_shard_log, a.num_shards, WORKLOAD_TIMEOUT_S)})
    if a.kills > 0:
        result["failover"] = _section(
            "failover", lambda: run_failover(a.nodes, a.num_shards, a.kills, a.seed, a.keep_logs))
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
