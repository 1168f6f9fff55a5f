"""One process of the log bench's multi-process case: replicas of every bench shard on real
LMDB, talking to the other processes over the peer link (``REPL_MESSAGES``).

Usage (``bench/log_bench.py`` starts these)::

    python -m shoal.bench.log_node --name a --dir D --listen 127.0.0.1:P \\
        --peer a=127.0.0.1:P --peer b=127.0.0.1:Q --peer c=127.0.0.1:R [--lead --seconds 3]

Every process serves its replicas until killed. The ``--lead`` process campaigns for every
shard, then runs the 1/8/64-writer cases against its leaders and prints one JSON list.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any

import trio

from shoal import wire
from shoal.bench.stats import latency_summary
from shoal.bench.store_bench import SHARDS, batch, drive
from shoal.node.cluster.peer_link import PeerLinks
from shoal.node.replication.driver import ReplicaDriver, ReplicatedShardLog
from shoal.node.replication.transport import PeerReplicaTransport, ReplicaHost
from shoal.node.replication import Replica, ReplicaConfig
from shoal.node.api.server import Dispatcher, NodeIdentity, serve
from shoal.store.env import Store
from shoal.node.replication.storage import ReplicaStorage
from shoal.store.writer import GroupCommitWriter

WRITERS = (1, 8, 64)


async def _lead(drivers: list[ReplicaDriver], writer: GroupCommitWriter,
                transport: PeerReplicaTransport, seconds: float) -> list[dict[str, Any]]:
    for driver in drivers:
        while not driver.serving:  # the others may still be starting: campaign until won
            driver.feed(driver.replica.campaign(trio.current_time()))
            with trio.move_on_after(1.0):
                await driver.wait_serving()
    logs = [ReplicatedShardLog(d) for d in drivers]

    async def commit(w: int, n: int) -> object:
        log = logs[w % SHARDS]
        return await log.propose(batch(log.shard, w, n))

    results = []
    for writers in WRITERS:
        fsyncs, sent = writer.stats.transactions, transport.stats.messages
        count, lat, elapsed = await drive(writers, seconds, commit)
        fsyncs, sent = writer.stats.transactions - fsyncs, transport.stats.messages - sent
        results.append({
            "mode": "r3_processes", "writers": writers,
            "entries_per_s": round(count / elapsed, 1), **latency_summary(lat),
            "leader_fsyncs_per_s": round(fsyncs / elapsed, 1),
            "entries_per_leader_fsync": round(count / max(fsyncs, 1), 2),
            "leader_messages_sent_per_entry": round(sent / max(count, 1), 2),
        })
    return results


async def main(args: argparse.Namespace) -> None:
    peers = dict(p.split("=", 1) for p in args.peer)
    names = tuple(sorted(peers))
    host, port = args.listen.rsplit(":", 1)
    store = Store.open(Path(args.dir) / "lmdb")
    try:
        async with GroupCommitWriter.open(store) as writer, trio.open_nursery() as nursery:
            replicas = ReplicaHost()
            dispatcher = Dispatcher(None, NodeIdentity(args.name, "log-bench", SHARDS))
            dispatcher.add_handler(wire.Op.REPL_MESSAGES, replicas.on_repl_messages)
            transport = PeerReplicaTransport(PeerLinks(nursery, args.name), peers.get, nursery)
            cfg = ReplicaConfig(fallback=False)
            drivers = []
            for shard in range(SHARDS):
                storage = ReplicaStorage(store, shard)
                core = Replica(args.name, shard, cfg, random.Random(f"{args.name}/{shard}"),
                               storage.persisted_state())
                driver = ReplicaDriver(core, storage, writer, transport)
                replicas.register(driver)
                await nursery.start(driver.run)
                if not storage.last_stored:
                    driver.feed(core.bootstrap(wire.ShardConfig(voters=names)))
                drivers.append(driver)
            await nursery.start(serve, dispatcher, host, int(port))
            print(f"log node serving name={args.name}", file=sys.stderr, flush=True)
            if args.lead:
                results = await _lead(drivers, writer, transport, args.seconds)
                print(json.dumps(results), flush=True)
                nursery.cancel_scope.cancel()
    finally:
        store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--peer", action="append", default=[])
    parser.add_argument("--lead", action="store_true")
    parser.add_argument("--seconds", type=float, default=3.0)
    logging.basicConfig(level=logging.WARNING)
    trio.run(main, parser.parse_args())
