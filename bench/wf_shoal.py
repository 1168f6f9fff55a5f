"""Bench workflows for shoal. ``wf_temporal.py`` is the same code with temporalio imports."""

import asyncio
from datetime import timedelta

from shoal import activity, workflow


@activity.defn
async def bench_echo(x: int) -> int:
    return x


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, x: int) -> int:
        return await workflow.execute_activity(
            bench_echo, x, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class ThreeActivities:
    @workflow.run
    async def run(self, x: int) -> int:
        for _ in range(3):
            x = await workflow.execute_activity(
                bench_echo, x + 1, start_to_close_timeout=timedelta(seconds=30)
            )
        return x


@workflow.defn
class TwoSecondTimer:
    @workflow.run
    async def run(self) -> None:
        await asyncio.sleep(2)


@workflow.defn
class SignalCounter:
    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self, expected: int) -> int:
        await workflow.wait_condition(lambda: self.count >= expected)
        return self.count

    @workflow.signal
    def bump(self) -> None:
        self.count += 1
