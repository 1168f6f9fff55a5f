"""Reproduces issue 7's open finding 1: a node that was replaced while it was down and then
restarted sometimes leads no shard for a long time (once over 60 s under a loaded
``make test``), although every shard is led and at R.

Usage (from the repository root)::

    PYTHONPATH=tests .venv/bin/python -m chaos.repro_relead [--runs 5] [--burners 2]
        [--workflows 150] [--wait-s 60] [--logs DIR]

Each run does what ``test_five_nodes_lose_two_one_after_the_other_and_get_them_back``
does: 5 nodes (small preset, replicated, ``--replace-after 2``, node logs at DEBUG), wait
until every node leads; start ``--workflows`` workflows with two workers; ``kill -9`` node
0, wait until the 4 survivors are balanced (its replicas replaced), ``kill -9`` node 1,
wait for every result; restart both at once on their data dirs (each joining through a
live node), then poll until every node leads some shard and every shard is led and at R. ``--burners``
processes spinning on the CPU meanwhile play the loaded ``make test`` machine.

Printed per run: seconds from each restarted node's "node serving" until it first leads a
shard, and from the later of the two until the cluster is balanced with everyone leading
(``NEVER`` if not within ``--wait-s``).
Every run's node logs go to ``--logs``/run-K/nI.log (kept, with the data dirs, only for
failed runs unless ``--keep-all``). Exit status 1 when any run failed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import trio

from shoal.client import Client
from shoal.worker import Worker

from chaos.faults import ChaosCluster
from chaos.workload import ChaosChain, double, expected_result
from helpers.node_cluster import running_cluster

ARGS = ["--gossip-preset", "small", "--shard-log", "replicated", "--replace-after", "2",
        "--log-level", "DEBUG"]


async def one_run(root: Path, count: int, wait_s: float) -> dict[str, object]:
    """One kill/kill/restart sequence; what happened after the restarts."""
    with running_cluster(root, 5, ARGS) as nodes:
        try:
            return await _sequence(nodes, count, wait_s)
        finally:
            for i, n in enumerate(nodes):
                (root / f"n{i}.log").write_text("".join(n.log_lines))


async def _sequence(nodes, count: int, wait_s: float) -> dict[str, object]:
    cluster = ChaosCluster(nodes, ARGS, time.monotonic(), echo=True)
    assert await cluster.wait_balanced(90, everyone_leads=True), cluster.log
    addrs = [n.address for n in nodes]
    client = await Client.connect(addrs[2:] + addrs[:2])
    workers = [await Client.connect(addrs[i:] + addrs[:i]) for i in (3, 4)]
    tq = f"relead-{uuid.uuid4()}"
    async with Worker(workers[0], task_queue=tq, workflows=[ChaosChain], activities=[double]), \
            Worker(workers[1], task_queue=tq, workflows=[ChaosChain], activities=[double]):
        handles = [await client.start_workflow(ChaosChain.run, i, id=f"{tq}-{i}",
                                               task_queue=tq) for i in range(count)]
        for h in handles[:count // 3]:
            await h.signal(ChaosChain.bump)
        cluster.kill9(0)
        for h in handles[count // 3:2 * count // 3]:
            await h.signal(ChaosChain.bump)
        assert await cluster.wait_balanced(90, everyone_leads=True), cluster.log
        cluster.kill9(1)
        for h in handles[2 * count // 3:]:
            await h.signal(ChaosChain.bump)
        for h in handles:
            await h.signal(ChaosChain.bump)
        results = [await h.result() for h in handles]
        assert results == [expected_result(i) for i in range(count)]
        # Both restart at once; times count from when each logged that it serves (a
        # starved machine takes seconds just to start the process).
        serving: dict[int, float] = {}

        async def restart(i: int) -> None:
            await cluster.restart(i)
            serving[i] = time.monotonic()

        async with trio.open_nursery() as nursery:
            for i in (0, 1):
                nursery.start_soon(restart, i)
        first_lead: dict[int, float] = {}
        balanced_s = None
        last = None
        t0 = min(serving.values())
        while time.monotonic() - t0 < wait_s:
            last = await cluster.poll_balance()
            for i in (0, 1):
                if i not in first_lead and last.led.get(nodes[i].address):
                    first_lead[i] = round(time.monotonic() - serving[i], 2)
            if last.ok(cluster.num_shards, everyone_leads=True):
                balanced_s = round(time.monotonic() - max(serving.values()), 2)
                break
            await trio.sleep(0.25)
    await client.service.close()
    for w in workers:
        await w.service.close()
    return {"first_lead_s": {f"n{i}": first_lead.get(i, "NEVER") for i in (0, 1)},
            "balanced_s": balanced_s or "NEVER",
            "led": {f"n{i}": (last.led.get(n.address) if last else None)
                    for i, n in enumerate(nodes)},
            "under": sorted(set(last.under)) if last else None,
            "faults": cluster.log}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--burners", type=int, default=2,
                   help="CPU-spinning processes running meanwhile (the loaded machine)")
    p.add_argument("--workflows", type=int, default=150)
    p.add_argument("--wait-s", type=float, default=60.0)
    p.add_argument("--logs", type=Path, default=None, help="where node logs go")
    p.add_argument("--keep-all", action="store_true", help="keep the logs of passed runs too")
    args = p.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix="shoal-relead-"))
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(args.burners)]
    failed = 0
    try:
        for k in range(args.runs):
            root = logs / f"run-{k}"
            t = time.monotonic()
            try:
                out = trio.run(one_run, root, args.workflows, args.wait_s)
                ok = out["balanced_s"] != "NEVER"
            except (AssertionError, RuntimeError) as exc:
                out, ok = {"error": repr(exc)[:2000]}, False
            failed += not ok
            print(f"run {k} {'ok' if ok else 'FAILED'} ({time.monotonic() - t:.0f} s): {out}",
                  flush=True)
            if ok and not args.keep_all:
                shutil.rmtree(root, ignore_errors=True)  # data dirs and logs
            else:
                print(f"  logs: {root}", flush=True)
    finally:
        for b in burners:
            b.kill()
            b.wait()
    print(f"{failed} of {args.runs} runs failed; logs under {logs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
