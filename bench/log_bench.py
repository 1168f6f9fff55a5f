"""``python -m shoal.bench.log_bench``: replicated-log append throughput and latency on LMDB.

For 1, 8 and 64 concurrent writers proposing ~1 KiB entries (the store bench's batches) to
16 shards, measure entries/s, p50/p99 commit latency (propose -> committed and applied on
the leader) and fsyncs/s, through the real consensus core, replica driver, replica storage
and group-commit writer:

* ``r1``: one node, each shard a single-voter group (commit = local fsync);
* ``r3_in_process``: three nodes in this process (three LMDB environments, three writer
  threads, the wire codec between them), each shard's leader on the first. One Python
  process runs all three nodes' protocol work: a CPU-bound lower bound;
* ``r3_processes``: three ``bench/log_node.py`` processes on loopback, talking over the
  peer link (``REPL_MESSAGES`` over WebSocket), every shard led by the first. The three
  writer counts run one after another on the same stores.

Prints one JSON object. Takes about ``3 * 3 * --seconds`` seconds plus start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from shoal import wire
from shoal.bench.stats import latency_summary
from shoal.bench.store_bench import SHARDS, batch, drive
from shoal.node.replication.driver import InProcessTransport, ReplicaDriver, ReplicatedShardLog
from shoal.node.replication import Replica, ReplicaConfig
from shoal.store.env import Store
from shoal.node.replication.storage import ReplicaStorage
from shoal.store.writer import GroupCommitWriter


async def _run_case(base: Path, nodes: tuple[str, ...], writers: int,
                    seconds: float) -> dict[str, Any]:
    net = InProcessTransport()
    cfg = ReplicaConfig(fallback=False)
    leaders: list[ReplicaDriver] = []
    stores: dict[str, Store] = {}
    writers_by_node: dict[str, GroupCommitWriter] = {}
    async with AsyncExitStack() as stack, trio.open_nursery() as nursery:
        for name in nodes:
            store = Store.open(base / name)
            stack.callback(store.close)
            stores[name] = store
            writers_by_node[name] = await stack.enter_async_context(GroupCommitWriter.open(store))
        for shard in range(SHARDS):
            for name in nodes:
                storage = ReplicaStorage(stores[name], shard)
                core = Replica(name, shard, cfg, random.Random(f"{name}/{shard}"),
                               storage.persisted_state())
                driver = ReplicaDriver(core, storage, writers_by_node[name], net)
                net.register(driver)
                await nursery.start(driver.run)
                driver.feed(core.bootstrap(wire.ShardConfig(voters=nodes)))
                if name == nodes[0]:
                    leaders.append(driver)
            leaders[-1].feed(leaders[-1].replica.campaign(trio.current_time()))
        for driver in leaders:
            await driver.wait_serving()
        logs = [ReplicatedShardLog(d) for d in leaders]
        before = {n: w.stats.transactions for n, w in writers_by_node.items()}

        async def commit(w: int, n: int) -> object:
            log = logs[w % SHARDS]
            return await log.propose(batch(log.shard, w, n))

        count, lat, elapsed = await drive(writers, seconds, commit)
        fsyncs = {n: w.stats.transactions - before[n] for n, w in writers_by_node.items()}
        nursery.cancel_scope.cancel()
    return {
        "mode": "r1" if len(nodes) == 1 else f"r{len(nodes)}_in_process",
        "writers": writers,
        "entries_per_s": round(count / elapsed, 1),
        **latency_summary(lat),
        "leader_fsyncs_per_s": round(fsyncs[nodes[0]] / elapsed, 1),
        "entries_per_leader_fsync": round(count / max(fsyncs[nodes[0]], 1), 2),
        "messages_per_entry": round(net.sent / max(count, 1), 2) if len(nodes) > 1 else 0,
    }


async def _main(base: Path, seconds: float) -> dict[str, Any]:
    results = []
    for nodes in (("a",), ("a", "b", "c")):
        for writers in (1, 8, 64):
            path = Path(tempfile.mkdtemp(prefix="log-bench-", dir=base))
            try:
                results.append(await _run_case(path, nodes, writers, seconds))
            finally:
                shutil.rmtree(path, ignore_errors=True)
    return {
        "bench": "replicated_log",
        "entry_bytes": len(b"".join(m.value or b"" for m in batch(0, 0, 0))),
        "shards": SHARDS,
        "seconds_per_case": seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "dir": str(base)},
        "results": results,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(base: Path, seconds: float) -> list[dict[str, Any]]:
    """The ``r3_processes`` case: three node processes, the first leads and measures."""
    ports = {n: _free_port() for n in "abc"}
    peers = [f"--peer={n}=127.0.0.1:{p}" for n, p in ports.items()]
    root = Path(tempfile.mkdtemp(prefix="log-bench-procs-", dir=base))
    procs: list[subprocess.Popen[str]] = []
    try:
        for name in ("c", "b", "a"):
            cmd = [sys.executable, "-m", "shoal.bench.log_node", "--name", name,
                   "--dir", str(root / name), "--listen", f"127.0.0.1:{ports[name]}",
                   "--seconds", str(seconds), *peers, *(["--lead"] if name == "a" else [])]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          text=True))
        out, _ = procs[-1].communicate(timeout=120 + 10 * seconds)
        if procs[-1].returncode != 0:
            raise RuntimeError(f"the leading log node exited with {procs[-1].returncode}")
        return json.loads(out.strip().splitlines()[-1])
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """Run the replicated-log benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per case (default 3)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--no-processes", action="store_true",
                        help="skip the three-process case")
    args = parser.parse_args()
    report = trio.run(_main, args.dir, args.seconds)
    if not args.no_processes:
        report["results"].extend(run_processes(args.dir, args.seconds))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
