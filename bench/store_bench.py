"""``python -m shoal.bench.store_bench``: group-commit throughput and latency on real LMDB.

For 1, 8 and 64 concurrent writers, each looping over ~1 KiB batches (4 rows of 256 bytes),
measure commits/s, p50/p99 commit latency, transactions (= fsyncs) per second and batches
per transaction, in a fresh temp dir on the disk that holds ``--dir`` (default: the system
temp dir). Three paths:

* ``writer``: ``GroupCommitWriter.commit`` directly;
* ``shardlog``: ``LocalShardLog.propose`` over 16 shards, writing the LogEntry row and
  truncating the previous one (the default);
* ``shardlog_no_entry``: the same without the LogEntry row, to price that row.

Prints one JSON object. Takes about ``3 * 3 * --seconds`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from shoal.bench.stats import latency_summary
from shoal.store import tables
from shoal.store.env import Store
from shoal.store.shardlog import LocalShardLog
from shoal.store.writer import GroupCommitWriter

ROWS_PER_BATCH = 4
ROW_BYTES = 256
SHARDS = 16


def batch(shard: int, writer: int, n: int) -> list[tables.Mutation]:
    """One ~1 KiB batch of writer ``writer``'s ``n``-th commit, in ``shard``."""
    base = tables.enc_shard(shard) + b"bench-%03d-%09d-" % (writer, n)
    return [tables.Mutation(table=tables.HISTORY, key=base + bytes([i]), value=os.urandom(ROW_BYTES))
            for i in range(ROWS_PER_BATCH)]


async def drive(
    concurrency: int, seconds: float, commit: Callable[[int, int], Awaitable[object]]
) -> tuple[int, list[float], float]:
    """Run ``concurrency`` writers calling ``commit(writer, n)`` in a loop for ``seconds``;
    return (commits, latencies in ms, elapsed s)."""
    latencies_ms: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one(w: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await commit(w, n)
            latencies_ms.append((time.perf_counter() - t0) * 1000)
            n += 1

    t_start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for w in range(concurrency):
            nursery.start_soon(one, w)
    return len(latencies_ms), latencies_ms, time.perf_counter() - t_start


async def _run_one(path: Path, mode: str, concurrency: int, seconds: float) -> dict[str, Any]:
    store = Store.open(path)
    try:
        async with GroupCommitWriter.open(store) as writer:
            if mode == "writer":
                async def commit(w: int, n: int) -> object:
                    return await writer.commit(batch(w % SHARDS, w, n))
            else:
                logs = [LocalShardLog(s, store, writer, write_entries=(mode == "shardlog"))
                        for s in range(SHARDS)]

                async def commit(w: int, n: int) -> object:
                    log = logs[w % SHARDS]
                    return await log.propose(batch(log.shard, w, n))

            count, lat, elapsed = await drive(concurrency, seconds, commit)
        stats = writer.stats
        return {
            "mode": mode,
            "writers": concurrency,
            "commits_per_s": round(count / elapsed, 1),
            **latency_summary(lat),
            "fsyncs_per_s": round(stats.transactions / elapsed, 1),
            "batches_per_txn": round(stats.batches / max(stats.transactions, 1), 2),
            "data_file_mib": round((path / "data.mdb").stat().st_size / 2**20, 1),
        }
    finally:
        store.close()


async def _main(base: Path, seconds: float) -> dict[str, Any]:
    results = []
    for mode in ("writer", "shardlog", "shardlog_no_entry"):
        for concurrency in (1, 8, 64):
            path = Path(tempfile.mkdtemp(prefix="store-bench-", dir=base))
            try:
                results.append(await _run_one(path / "lmdb", mode, concurrency, seconds))
            finally:
                shutil.rmtree(path, ignore_errors=True)
    return {
        "bench": "store",
        "batch_bytes": ROWS_PER_BATCH * ROW_BYTES,
        "seconds_per_case": seconds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "dir": str(base)},
        "results": results,
    }


def main() -> None:
    """Run the store benchmark and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per case (default 3)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    print(json.dumps(trio.run(_main, args.dir, args.seconds), indent=2))


if __name__ == "__main__":
    main()
