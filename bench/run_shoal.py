"""Run the bench workloads against a shoal node (trio). Prints one JSON object.

Usage: python -m shoal.bench.run_shoal --address ws://127.0.0.1:7350 [--sizes JSON]
[--worker-address ADDR]. Either address may be a comma-separated list of nodes (a cluster):
the client takes them in that order and fails over between them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from shoal.bench import wf_shoal, workloads
from shoal.client import Client
from shoal.common import EventType
from shoal.worker import Worker


async def run_limited(factories: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    sem = trio.Semaphore(limit)

    async def one(f: Callable[[], Awaitable[Any]]) -> None:
        async with sem:
            await f()

    async with trio.open_nursery() as n:
        for f in factories:
            n.start_soon(one, f)
    return []


def bounded_by(timeout_s: float) -> workloads.Bound:
    """Run a workload for at most ``timeout_s``; past it, its figures are an error saying so."""
    async def bound(name: str, step: workloads.Step) -> dict[str, Any]:
        with trio.move_on_after(timeout_s):
            return await step()
        return {"error": f"{name} did not finish within {timeout_s:g} s (a workflow stuck?)"}
    return bound


async def main(address: str, sizes: dict[str, int], worker_address: str = "",
               workload_timeout_s: float = 0.0) -> dict[str, Any]:
    client = await Client.connect(address.split(","))
    worker_client = await Client.connect(worker_address.split(",")) if worker_address else None
    sdk = workloads.Sdk(client=client, Worker=Worker, wf=wf_shoal, EventType=EventType,
                        run_limited=run_limited, worker_client=worker_client)
    bound = bounded_by(workload_timeout_s) if workload_timeout_s > 0 else None
    return await workloads.run_all(sdk, sizes, bound)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--sizes", default="{}")
    p.add_argument("--worker-address", default="", help="the workers' node(s); default: --address")
    p.add_argument("--workload-timeout", type=float, default=0.0,
                   help="seconds each workload may take (0: no bound)")
    a = p.parse_args()
    print(json.dumps(trio.run(main, a.address, json.loads(a.sizes), a.worker_address,
                              a.workload_timeout)))
