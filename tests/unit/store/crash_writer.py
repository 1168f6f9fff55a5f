"""Subprocess for the crash test: propose batches forever, print each acknowledgement.

Usage: python crash_writer.py <lmdb dir>. Every proposal is three rows keyed by
(writer, n); a line "writer n" is printed only after ``propose`` returned. The test kills
this process with SIGKILL mid-stream and checks every printed batch survived whole.
"""

import sys
from pathlib import Path

import trio

from shoal.store import tables
from shoal.store.env import Store
from shoal.store.shardlog import LocalShardLog
from shoal.store.writer import GroupCommitWriter

WRITERS = 8
SHARDS = 4


def rows(shard: int, writer: int, n: int) -> list[tables.Mutation]:
    base = tables.enc_shard(shard) + b"w%02d-%08d-" % (writer, n)
    return [tables.Mutation(table=tables.HISTORY, key=base + bytes([i]), value=b"x" * 300)
            for i in range(3)]


async def main(path: Path) -> None:
    store = Store.open(path, map_size=1 << 20)  # small: the map grows while we are killed
    async with GroupCommitWriter.open(store) as writer:
        logs = [LocalShardLog(s, store, writer) for s in range(SHARDS)]

        async def one(w: int) -> None:
            log = logs[w % SHARDS]
            for n in range(1_000_000):
                await log.propose(rows(log.shard, w, n))
                print(w, n, flush=True)

        async with trio.open_nursery() as nursery:
            for w in range(WRITERS):
                nursery.start_soon(one, w)


if __name__ == "__main__":
    trio.run(main, Path(sys.argv[1]))
