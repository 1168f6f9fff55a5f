"""Reproduces a bug the short chaos run found (seed 7, 3 nodes): a task queue partition
owner that is ``kill -9``ed and restarted before the other members notice loses the tasks
parked in its matching for good; their workflows stay Running.

Usage (from the repository root)::

    PYTHONPATH=tests .venv/bin/python -m chaos.repro_lost_tasks [--workflows 20] [--wait-s 60] [--control]

Starts 3 nodes (small preset, replicated), waits for balance, and with no worker running
starts ``--workflows`` ``ChaosChain`` workflows on a new task queue: each one's first
workflow task is dispatched to the queue's partition owner (the ring's
``partition_owner`` over the three node ids) and waits in its in-memory matching. Then it
``kill -9``s the owner and starts it again at once (about a second, less than the small
preset's ~2 s failure detection), starts a worker, sends each workflow its two signals and
waits ``--wait-s`` for the results. Printed: per workflow whether it completed (and whether
its shard was led by the owner before the kill). Exit status 1 when any did not.
``--control`` does the same without the kill and restart: every workflow completes.

Why: matching is soft state; a shard leader re-dispatches its scheduled-but-not-started
tasks only on a membership change (``node/node.py`` ``_watch_members``) or when the shard
is loaded. Survivors that never saw the owner leave see no change, and DESIGN §3.4's other
trigger, a dispatch deadline, does not exist, so nothing ever sends those tasks again.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import trio

from shoal import wire
from shoal.client import Client
from shoal.node.cluster.routing import shard_for
from shoal.ring.placement import partition_owner
from shoal.worker import Worker

from chaos.faults import ChaosCluster
from chaos.workload import ChaosChain, double, expected_result
from helpers.node_cluster import Views, running_cluster

ARGS = ["--gossip-preset", "small", "--shard-log", "replicated"]


async def reproduce(count: int, wait_s: float, control: bool) -> int:
    with running_cluster(Path(tempfile.mkdtemp(prefix="shoal-repro-")), 3, ARGS) as nodes:
        cluster = ChaosCluster(nodes, ARGS, time.monotonic())
        assert await cluster.wait_balanced(90, everyone_leads=True), cluster.log
        v = Views(nodes)
        status = {n.address: await v.status(n) for n in nodes}
        await v.aclose()
        ids = {n.address: status[n.address].node for n in nodes}
        tq = f"lost-{uuid.uuid4()}"
        owner_id = partition_owner(list(ids.values()), wire.DEFAULT_NAMESPACE, tq, 0)
        owner = next(i for i, n in enumerate(nodes) if ids[n.address] == owner_id)
        others = [n.address for i, n in enumerate(nodes) if i != owner]
        owner_leads = set(status[nodes[owner].address].shards_led)
        client = await Client.connect(others)
        handles = [await client.start_workflow(ChaosChain.run, i, id=f"{tq}-{i}", task_queue=tq)
                   for i in range(count)]
        if not control:
            cluster.kill9(owner)
            await cluster.restart(owner)
        print(f"partition owner node {owner} ({owner_id[:8]}) killed and restarted: "
              f"{cluster.log}", file=sys.stderr)
        lost = 0
        async with Worker(client, task_queue=tq, workflows=[ChaosChain], activities=[double]):
            for h in handles:
                for _ in range(2):
                    await h.signal(ChaosChain.bump)
            deadline = trio.current_time() + wait_s  # for all of them together
            for i, h in enumerate(handles):
                shard = shard_for(wire.DEFAULT_NAMESPACE, h.id, nodes[0].num_shards)
                result = None
                with trio.move_on_at(deadline):
                    result = await h.result()
                led_by_owner = shard in owner_leads
                ok = result == expected_result(i)
                lost += not ok
                print(f"{h.id} shard {shard} (led by the owner before: {led_by_owner}): "
                      f"{'completed' if ok else 'STILL RUNNING'}")
        await client.service.close()
    print(f"{lost} of {count} workflows never ran after the owner's quick restart",
          file=sys.stderr)
    return 1 if lost else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workflows", type=int, default=20)
    p.add_argument("--wait-s", type=float, default=60.0)
    p.add_argument("--control", action="store_true",
                   help="the same without the kill and restart (every workflow completes)")
    args = p.parse_args()
    return trio.run(reproduce, args.workflows, args.wait_s, args.control)


if __name__ == "__main__":
    sys.exit(main())
