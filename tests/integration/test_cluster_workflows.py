"""Workflows on a real 3-node cluster: any node takes any request, shards are replicated,
and a killed shard leader's work goes on elsewhere (issue 7)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
import trio

from shoal import activity, wire, workflow
from shoal.client import Client
from shoal.node.cluster.routing import shard_for
from shoal.worker import Worker

from helpers.drill import (DRILL_ACTIVITIES, ActivityGate, DrillChain, Driven, await_results,
                           drill_problems, drill_result, drill_timeout_s, drill_workflows,
                           in_a_timer_now, phases_at, signal_many, start_many)
from helpers.history_check import history_problems
from helpers.node_cluster import cli_status, running_cluster, views, wait_balanced
from helpers.node_proc import NodeProcess, wait_until

pytestmark = pytest.mark.timeout(240)

CLUSTER = ["--gossip-preset", "small", "--shard-log", "replicated"]


@activity.defn
async def double(x: int) -> int:
    return 2 * x


@workflow.defn
class Chain:
    def __init__(self) -> None:
        self.bumps = 0

    @workflow.signal
    def bump(self) -> None:
        self.bumps += 1

    @workflow.run
    async def run(self, x: int) -> int:
        await workflow.wait_condition(lambda: self.bumps > 0)
        for _ in range(3):
            x = await workflow.execute_activity(double, x,
                                                start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(0.2)
        return x + self.bumps


async def test_any_node_serves_workflows_whose_shards_live_elsewhere(tmp_path) -> None:
    with running_cluster(tmp_path, 3, CLUSTER) as nodes:
        starter = await Client.connect(nodes[0].address)
        worker_client = await Client.connect(nodes[1].address)
        tq = f"chain-{uuid.uuid4()}"
        async with Worker(worker_client, task_queue=tq, workflows=[Chain], activities=[double]):
            handles = [await starter.start_workflow(Chain.run, i, id=f"chain-{i}-{uuid.uuid4()}",
                                                    task_queue=tq) for i in range(20)]
            for h in handles:
                await h.signal(Chain.bump)
            results = [await h.result() for h in handles]
        assert results == [8 * i + 1 for i in range(20)]
        await starter.service.close()
        await worker_client.service.close()
        async with views(nodes) as v:
            await wait_balanced(v, nodes, nodes[0].num_shards, timeout_s=60)
        status = await cli_status(nodes[1])  # `shoal cluster status --json`, as a person runs it
        assert len(status["nodes"]) == 3
        led = sorted(s for n in status["nodes"].values() for s in n["shards_led"])
        assert led == list(range(nodes[0].num_shards))
        assert all(n["shards_led"] and n["shards_replicated"] for n in status["nodes"].values())
        assert any(tq in q for n in status["nodes"].values() for q in n["task_queues"])


async def check_histories(client: Client, handles) -> None:
    for h in handles:
        events = [e.raw async for e in h.fetch_history_events()]
        assert history_problems(events) == [], h.id


# The "Done means" drill's sizes: these under `make test`, SHOAL_DRILL_WORKFLOWS (500) under
# `make drill`, which also sets SHOAL_DRILL_TIMEOUT_S.
DRILL_3 = drill_workflows(60)
DRILL_5 = drill_workflows(150)
MID_RUN = ("waiting for a signal", "in an activity", "in a timer")


def on_shards(driven: list[Driven], shards: list[int], num_shards: int) -> list[Driven]:
    """The runs whose workflow id lives on one of ``shards``."""
    return [d for d in driven
            if shard_for(wire.DEFAULT_NAMESPACE, d.handle.id, num_shards) in shards]


async def kill_mid_run(batch: list[Driven], node: NodeProcess, led: list[int],
                       gate: ActivityGate) -> float:
    """Signal ``batch``, then ``kill -9`` ``node`` (the leader of shards ``led``) at a moment
    when, of the batch's workflows on those shards, some are held in an activity and one
    is known to be in its timer; the kill's wall time. The held activities finish after."""
    mine = on_shards(batch, led, node.num_shards)
    assert len(mine) >= 2, f"only {len(mine)} of {len(batch)} workflows on shards {led}"
    held = mine[::3]
    gate.hold(d.handle.id for d in held)
    free = [d for d in mine if d not in held]
    past: set[str] = set()  # their timer fired already

    async def one_in_a_timer() -> bool:
        for d in free:
            if d.handle.id in past or gate.finished[d.handle.id] < DRILL_ACTIVITIES:
                continue
            now = await in_a_timer_now(d)
            if now:
                return True
            if now is None:
                past.add(d.handle.id)
        return False

    await signal_many(batch, DrillChain.bump)
    await wait_until(lambda: gate.waiting, timeout_s=60)
    await wait_until(one_in_a_timer, timeout_s=60)
    killed_at = time.time()
    node.kill()
    gate.release()
    return killed_at


async def check_drill(client: Client, tq: str, driven: list[Driven],
                      kills: dict[str, tuple[float, list[int]]],
                      num_shards: int) -> dict[str, dict[str, int]]:
    """Every "Done means" check over ``driven``, and that each kill (wall time, shards the
    killed node led) caught some of the workflows on those shards waiting for a signal,
    some in an activity and some in a timer; what those were doing at each kill."""
    problems = await drill_problems(client, tq, driven)
    assert problems == [], f"{len(problems)} problems: {problems[:20]}"
    phases = {name: phases_at(on_shards(driven, led, num_shards), at)
              for name, (at, led) in kills.items()}
    for name, counts in phases.items():
        assert all(counts.get(p) for p in MID_RUN), f"{name} missed a phase: {counts}"
    return phases


@pytest.mark.timeout(drill_timeout_s(240))
async def test_kill_9_of_a_shard_leader_loses_nothing_and_its_node_comes_back(tmp_path) -> None:
    """The "Done means" drill on 3 nodes: DRILL_3 workflows mid-run while a shard leader is
    killed with kill -9, then it restarts; every check before and after the restart."""
    with running_cluster(tmp_path, 3, CLUSTER) as nodes:
        num_shards = nodes[0].num_shards
        async with views(nodes) as v:
            led = await wait_balanced(v, nodes, num_shards, timeout_s=60)
        addrs = [n.address for n in nodes]
        client = await Client.connect(addrs)
        worker_client = await Client.connect(list(reversed(addrs)))
        tq = f"drill-{uuid.uuid4()}"
        gate = ActivityGate()
        t0 = time.monotonic()
        async with Worker(worker_client, task_queue=tq, workflows=[DrillChain],
                          activities=[gate.activity()]):
            driven = await start_many(client, DrillChain.run, DRILL_3, task_queue=tq,
                                      id_prefix=f"k9-{uuid.uuid4()}")
            half = DRILL_3 // 2
            killed = led[nodes[0].address]
            kills = {"kill": (await kill_mid_run(driven[:half], nodes[0], killed, gate), killed)}
            await signal_many(driven[half:], DrillChain.bump)
            assert await await_results(driven) == [drill_result(i) for i in range(DRILL_3)]
            phases = await check_drill(client, tq, driven, kills, num_shards)
            degraded_s = time.monotonic() - t0

            nodes[0].start()  # same data dir: same node id, its replicas catch up from disk
            async with views(nodes) as v:
                await wait_balanced(v, nodes, num_shards, timeout_s=60)
            again = await start_many(client, DrillChain.run, 20, task_queue=tq,
                                     id_prefix=f"back-{uuid.uuid4()}")
            await signal_many(again, DrillChain.bump)
            assert await await_results(again) == [drill_result(i) for i in range(20)]
            # Every acknowledged write is still there now the killed node is back.
            await check_drill(client, tq, driven + again, {}, num_shards)
        print(json.dumps({"workflows": DRILL_3, "phases_on_killed_shards": phases,
                          "until_checked_degraded_s": round(degraded_s, 1),
                          "total_s": round(time.monotonic() - t0, 1)}))
        await client.service.close()
        await worker_client.service.close()


@pytest.mark.timeout(drill_timeout_s(240))
async def test_five_nodes_lose_two_one_after_the_other_and_get_them_back(tmp_path) -> None:
    """The "Done means" drill on 5 nodes: kill -9 a shard leader mid-run, wait until its
    replicas are replaced, kill a second leader mid-run, then restart both; DRILL_5
    workflows run throughout and every check holds before and after the restarts."""
    with running_cluster(tmp_path, 5, [*CLUSTER, "--replace-after", "2"]) as nodes:
        num_shards = nodes[0].num_shards
        async with views(nodes) as v:
            led = await wait_balanced(v, nodes, num_shards, timeout_s=60)
        addrs = [n.address for n in nodes]
        client = await Client.connect(addrs[2:] + addrs[:2])
        workers = [await Client.connect(addrs[i:] + addrs[:i]) for i in (3, 4)]
        tq = f"drill-{uuid.uuid4()}"
        gate = ActivityGate()
        t0 = time.monotonic()
        async with Worker(workers[0], task_queue=tq, workflows=[DrillChain],
                          activities=[gate.activity()]), \
                Worker(workers[1], task_queue=tq, workflows=[DrillChain],
                       activities=[gate.activity()]):
            driven = await start_many(client, DrillChain.run, DRILL_5, task_queue=tq,
                                      id_prefix=f"five-{uuid.uuid4()}")
            # Quarters: signalled before the first kill, after it, before the second kill,
            # after it; so each kill finds workflows in every phase.
            q = [DRILL_5 * k // 4 for k in range(5)]
            # Each victim: the shard leader with the most of its quarter's workflows (the
            # ring does not give every node the same number of shards, and a kill needs
            # some of them mid-run). nodes[2] stays up: the client's first address and the
            # restarted nodes' --join seed.
            victims: list[NodeProcess] = []

            def pick(quarter: list[Driven], live: list[NodeProcess]) -> NodeProcess:
                victim = max((n for n in live if n is not nodes[2]),
                             key=lambda n: len(on_shards(quarter, led[n.address], num_shards)))
                victims.append(victim)
                return victim

            victim = pick(driven[q[0]:q[1]], nodes)
            first = led[victim.address]
            kills = {"first kill": (
                await kill_mid_run(driven[q[0]:q[1]], victim, first, gate), first)}
            await signal_many(driven[q[1]:q[2]], DrillChain.bump)
            live = [n for n in nodes if n is not victim]
            async with views(live) as v:
                led = await wait_balanced(v, live, num_shards, timeout_s=60)
            victim = pick(driven[q[2]:q[3]], live)
            second = led[victim.address]
            kills["second kill"] = (
                await kill_mid_run(driven[q[2]:q[3]], victim, second, gate), second)
            await signal_many(driven[q[3]:], DrillChain.bump)
            assert await await_results(driven) == [drill_result(i) for i in range(DRILL_5)]
            phases = await check_drill(client, tq, driven, kills, num_shards)
            degraded_s = time.monotonic() - t0

            for n in victims:  # an operator restarts them with a live member to join
                n.extra = [*CLUSTER, "--replace-after", "2", "--join", addrs[2].removeprefix("ws://")]
                n.start()
            async with views(nodes) as v:
                # Each restarted node leads its share again (issue 7: once, under load,
                # one did not within 60 s; see tests/chaos/repro_relead.py).
                await wait_balanced(v, nodes, num_shards, timeout_s=60)
            again = await start_many(client, DrillChain.run, 30, task_queue=tq,
                                     id_prefix=f"back-{uuid.uuid4()}")
            await signal_many(again, DrillChain.bump)
            assert await await_results(again) == [drill_result(i) for i in range(30)]
            await check_drill(client, tq, driven + again, {}, num_shards)
        print(json.dumps({"workflows": DRILL_5, "phases_on_killed_shards": phases,
                          "until_checked_degraded_s": round(degraded_s, 1),
                          "total_s": round(time.monotonic() - t0, 1)}))
        await client.service.close()
        for w in workers:
            await w.service.close()


async def test_a_node_joining_a_loaded_cluster_takes_its_share_with_no_failed_request(tmp_path) -> None:
    with running_cluster(tmp_path, 3, CLUSTER) as nodes:
        num_shards = nodes[0].num_shards
        async with views(nodes) as v:
            await wait_balanced(v, nodes, num_shards, timeout_s=60)
        addrs = [n.address for n in nodes]
        client = await Client.connect(addrs)
        worker_client = await Client.connect(list(reversed(addrs)))
        tq = f"join-{uuid.uuid4()}"
        handles = []
        joined = trio.Event()

        async def load() -> None:
            # Start and signal workflows until the new node has its share, then a few more.
            extra = 20
            while extra:
                i = len(handles)
                h = await client.start_workflow(Chain.run, i, id=f"join-{i}-{uuid.uuid4()}",
                                                task_queue=tq)
                await h.signal(Chain.bump)
                handles.append(h)
                if joined.is_set():
                    extra -= 1
                await trio.sleep(0.01)

        async with Worker(worker_client, task_queue=tq, workflows=[Chain], activities=[double]):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(load)
                await trio.sleep(0.5)
                newcomer = NodeProcess(tmp_path / "n3", extra=[
                    *CLUSTER, "--join", addrs[0].removeprefix("ws://")])
                nodes.append(newcomer)  # running_cluster kills it with the rest
                before = len(handles)
                await newcomer.start_async()
                async with views(nodes) as v:
                    led = await wait_balanced(v, nodes, num_shards, timeout_s=60)
                assert led[newcomer.address], "the new node leads no shard"
                during = len(handles) - before  # started while the shards moved
                joined.set()
            results = [await h.result() for h in handles]
        assert results == [8 * i + 1 for i in range(len(handles))]
        assert during > 0
        await check_histories(client, handles)
        await client.service.close()
        await worker_client.service.close()


async def test_a_node_that_leaves_hands_its_shards_off_under_load(tmp_path) -> None:
    with running_cluster(tmp_path, 4, CLUSTER) as nodes:
        num_shards = nodes[0].num_shards
        async with views(nodes) as v:
            led = await wait_balanced(v, nodes, num_shards, timeout_s=60)
        leaver = nodes[0]
        assert led[leaver.address]
        addrs = [n.address for n in nodes[1:]]
        client = await Client.connect(addrs)
        worker_client = await Client.connect(list(reversed(addrs)))
        tq = f"leave-{uuid.uuid4()}"
        async with Worker(worker_client, task_queue=tq, workflows=[Chain], activities=[double]):
            handles = [await client.start_workflow(Chain.run, i, id=f"leave-{i}-{uuid.uuid4()}",
                                                   task_queue=tq) for i in range(30)]
            assert await trio.to_thread.run_sync(leaver.terminate) == 0
            assert any("left the cluster shards_still_led=0" in line for line in leaver.log_lines), \
                "".join(leaver.log_lines[-20:])
            for h in handles:
                await h.signal(Chain.bump)
            assert [await h.result() for h in handles] == [8 * i + 1 for i in range(30)]
            await check_histories(client, handles)
        async with views(nodes[1:]) as v:
            await wait_balanced(v, nodes[1:], num_shards, timeout_s=60)
        await client.service.close()
        await worker_client.service.close()
