"""Reproduces issue 7's open finding 3: a fresh 3-node cluster of 512 shards on a loaded
machine once still had 246 unled shards after 180 s.

Usage (from the repository root)::

    PYTHONPATH=tests .venv/bin/python -m chaos.repro_fresh_balance [--runs 2] [--burners 3]
        [--shards 512] [--wait-s 180] [--logs DIR]

Each run starts 3 nodes (small preset, replicated, ``--num-shards``; the founder serves
every shard alone, the joiners get theirs by learner + snapshot + config change) while
``--burners`` processes spin on the CPU, then polls every node's ``CLUSTER_STATUS`` until
every shard is led by exactly one node, none is below R and each node leads some. Printed
per run: seconds until balanced (or ``NEVER`` within ``--wait-s``), and every 10 s how
many shards were unled and how many below R. Node logs (INFO) go to ``--logs``/run-K/
(kept only for failed runs). Exit status 1 when any run failed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from chaos.faults import ChaosCluster
from helpers.node_cluster import running_cluster

ARGS = ["--gossip-preset", "small", "--shard-log", "replicated"]


async def one_run(root: Path, shards: int, wait_s: float) -> dict[str, object]:
    with running_cluster(root, 3, ARGS, num_shards=shards) as nodes:
        try:
            return await _poll(nodes, wait_s)
        finally:
            for i, n in enumerate(nodes):
                (root / f"n{i}.log").write_text("".join(n.log_lines))


async def _poll(nodes, wait_s: float) -> dict[str, object]:
    cluster = ChaosCluster(nodes, ARGS, time.monotonic())
    t0 = time.monotonic()
    trace: list[tuple[float, int, int]] = []
    next_note = 0.0
    while (t := time.monotonic() - t0) < wait_s:
        b = await cluster.poll_balance()
        led = {s for shards in b.led.values() for s in shards}
        if t >= next_note:
            trace.append((round(t, 1), cluster.num_shards - len(led), len(set(b.under))))
            next_note += 10.0
        if b.ok(cluster.num_shards, everyone_leads=True):
            return {"balanced_s": round(t, 2), "trace": trace}
        await trio.sleep(0.5)
    return {"balanced_s": "NEVER", "trace": trace,
            "led": {a: len(s) for a, s in b.led.items()}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--burners", type=int, default=3)
    p.add_argument("--shards", type=int, default=512)
    p.add_argument("--wait-s", type=float, default=180.0)
    p.add_argument("--logs", type=Path, default=None)
    args = p.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix="shoal-fresh-"))
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
               for _ in range(args.burners)]
    failed = 0
    try:
        for k in range(args.runs):
            root = logs / f"run-{k}"
            out = trio.run(one_run, root, args.shards, args.wait_s)
            ok = out["balanced_s"] != "NEVER"
            failed += not ok
            print(f"run {k} {'ok' if ok else 'FAILED'}: {out}", flush=True)
            if ok:
                shutil.rmtree(root, ignore_errors=True)
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
