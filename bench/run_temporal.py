"""Run the same bench workloads against the Temporal dev server (temporalio, asyncio).

Usage: python -m shoal.bench.run_temporal --address 127.0.0.1:7233 --sizes '{...}'
Needs the optional bench extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from shoal.bench import wf_temporal, workloads


async def run_limited(factories: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(f: Callable[[], Awaitable[Any]]) -> None:
        async with sem:
            await f()

    await asyncio.gather(*(one(f) for f in factories))
    return []


async def main(address: str, sizes: dict[str, int]) -> dict[str, Any]:
    client = await Client.connect(address)
    sdk = workloads.Sdk(client=client, Worker=Worker, wf=wf_temporal, EventType=EventType,
                        run_limited=run_limited)
    return await workloads.run_all(sdk, sizes)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--sizes", default="{}")
    a = p.parse_args()
    print(json.dumps(asyncio.run(main(a.address, json.loads(a.sizes)))), flush=True)
    # temporalio's native bridge can abort during interpreter shutdown ("PyGILState_Release");
    # the result is printed, so leave without running finalizers.
    os._exit(0)
