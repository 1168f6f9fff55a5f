"""ActivityEnvironment runs an activity function as one attempt: info, heartbeats and
cancellation are the test's to set and see (temporalio.testing.ActivityEnvironment)."""

from __future__ import annotations

import dataclasses

import pytest
import trio

from shoal import activity
from shoal.exceptions import CancelledError
from shoal.testing import ActivityEnvironment


@activity.defn
def add(a: int, b: int) -> int:
    activity.heartbeat("half way", a)
    return a + b + activity.info().attempt


@activity.defn
async def wait_until_cancelled() -> str:
    activity.heartbeat("waiting")
    try:
        await trio.sleep_forever()
    except trio.Cancelled:
        assert activity.is_cancelled()
        raise
    return "never"


@activity.defn
def checks_cancellation() -> bool:
    activity.heartbeat("tick")
    return activity.is_cancelled()


def test_a_plain_activity_runs_with_its_info_and_heartbeats_are_seen() -> None:
    env = ActivityEnvironment()
    beats: list[tuple] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    env.info = dataclasses.replace(env.info, attempt=3)
    assert env.run(add, 1, 2) == 6
    assert beats == [("half way", 1)]


async def test_cancel_interrupts_an_async_activity_where_it_waits() -> None:
    env = ActivityEnvironment()
    beats: list[tuple] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    async with trio.open_nursery() as nursery:
        outcome: list[BaseException] = []

        async def run() -> None:
            with pytest.raises(CancelledError) as exc:
                await env.run(wait_until_cancelled)
            outcome.append(exc.value)

        nursery.start_soon(run)
        await trio.testing.wait_all_tasks_blocked()
        env.cancel()
    assert outcome and beats == [("waiting",)]


def test_a_plain_activity_sees_a_cancel_through_is_cancelled() -> None:
    env = ActivityEnvironment()
    assert env.run(checks_cancellation) is False
    env.on_heartbeat = lambda *details: env.cancel()  # cancelled while it runs
    assert env.run(checks_cancellation) is True


def test_outside_an_environment_there_is_no_activity_context() -> None:
    with pytest.raises(Exception):
        activity.info()
