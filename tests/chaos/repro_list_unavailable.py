"""Reproduces a bug the chaos run found (seed 1, 5 nodes): on a balanced 5-node cluster
with no faults at all, ``LIST_WORKFLOWS`` sent to some nodes fails with UNAVAILABLE
("N shard(s) have no reachable leader") for as long as one cares to retry.

Usage (from the repository root)::

    PYTHONPATH=tests .venv/bin/python -m chaos.repro_list_unavailable [--retry-s 30]

Starts 5 nodes (small preset, replicated, --replace-after 4) as the integration tests do,
waits until ``CLUSTER_STATUS`` shows them balanced (every shard led once, none below R,
every node leads some), waits 20 s more, then sends one ``LIST_WORKFLOWS`` to each node
directly (the SDK retrying for ``--retry-s``), and prints per node the shards it leads, the
replicas it holds, the shards it ran a fallback campaign for in that time, and the list's
outcome. Exit status 1 when any node's list failed.

What it shows: with 16 shards and R = 3 a node should hold about 10 replicas, yet some
hold 14-16 (replicas they were removed from while the cluster formed are never released),
run a "shard fallback campaign" for some of them every ~2 s for ever, and answer the list
with UNAVAILABLE: the scan (``node/api/service.py`` ``_matching_runs``) asks
``view.leader(shard)``, which for such a stale replica names the leader it last followed,
and a ``SCAN_VISIBILITY`` to a node that no longer leads returns the shard as missing with
no hint, so all ``SCAN_ATTEMPTS`` go to the same wrong node.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import trio

from shoal import wire
from shoal.sdk.connection import RPCError, ServiceConnection

from chaos.faults import ChaosCluster
from helpers.node_cluster import Views, running_cluster

ARGS = ["--gossip-preset", "small", "--shard-log", "replicated", "--replace-after", "4"]


async def reproduce(retry_s: float) -> int:
    failed = 0
    with running_cluster(Path(tempfile.mkdtemp(prefix="shoal-repro-")), 5, ARGS) as nodes:
        cluster = ChaosCluster(nodes, ARGS, time.monotonic())
        assert await cluster.wait_balanced(90, everyone_leads=True), cluster.log
        mark = [len(n.log_lines) for n in nodes]
        await trio.sleep(20)
        v = Views(nodes)
        try:
            for i, n in enumerate(nodes):
                st = await v.status(n)
                campaigns = sorted({int(line.split("shard=")[1].split()[0])
                                    for line in n.log_lines[mark[i]:]
                                    if "fallback campaign" in line})
                conn = ServiceConnection(n.address, wire.DEFAULT_NAMESPACE)
                t = time.monotonic()
                try:
                    await conn.call(wire.Op.LIST_WORKFLOWS,
                                    wire.ListWorkflowsRequest(query="", page_size=10),
                                    retry_for_s=retry_s)
                    outcome = "list ok"
                except RPCError as exc:
                    failed += 1
                    outcome = f"list FAILED {exc.code}: {exc.message}"
                finally:
                    await conn.close()
                print(f"node {i} {st.node[:8]} leads {st.shards_led} replicates "
                      f"{st.shards_replicated} ({len(st.shards_led) + len(st.shards_replicated)} "
                      f"replicas) fallback campaigns {campaigns}: {outcome} "
                      f"after {time.monotonic() - t:.1f}s")
        finally:
            await v.aclose()
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--retry-s", type=float, default=30.0)
    return trio.run(reproduce, p.parse_args().retry_s)


if __name__ == "__main__":
    sys.exit(main())
