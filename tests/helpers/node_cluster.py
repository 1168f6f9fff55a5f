"""A cluster of real node processes on 127.0.0.1, and polling its members' views.

Shared by the cluster integration tests: start N nodes that join through the first, one
open connection per node for ``CLUSTER_STATUS`` and ``NETWORK_FAULTS``, waiting until
observers see a member in a state, and ``shoal cluster status --json`` as a person runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import trio

from helpers.node_proc import NodeProcess, free_port, wait_until
from shoal import wire
from shoal.sdk.connection import ServiceConnection

SMALL = ["--gossip-preset", "small"]


@contextlib.contextmanager
def running_cluster(root: Path, size: int, extra: list[str] = SMALL, *,
                    num_shards: int = 16) -> Iterator[list[NodeProcess]]:
    """``size`` nodes on fixed ports; nodes 1.. join through node 0. All are killed on exit,
    and each node's errors are printed (shown when a test failed)."""
    seed_port = free_port()
    nodes = [NodeProcess(root / "n0", port=seed_port, extra=extra, num_shards=num_shards)]
    nodes += [NodeProcess(root / f"n{i}", port=free_port(), num_shards=num_shards,
                          extra=[*extra, "--join", f"127.0.0.1:{seed_port}"])
              for i in range(1, size)]
    try:
        nodes[0].start()
        with ThreadPoolExecutor(size - 1 or 1) as pool:
            list(pool.map(NodeProcess.start, nodes[1:]))
        yield nodes
    finally:
        for n in nodes:
            n.kill()
        for n in nodes:  # what a node said when things broke
            trouble = [line for line in n.log_lines if "ERROR" in line or "Traceback" in line]
            if trouble:
                print(f"node {n.listen_port}:", "".join(trouble[-10:]))


async def run_cli(node: NodeProcess, *args: str) -> str:
    """``shoal ARGS...`` against ``node`` as a person runs it; its stdout (it must succeed)."""
    proc = await trio.run_process(
        [sys.executable, "-m", "shoal.cli.main", *args],
        capture_stdout=True, capture_stderr=True, check=False,
        env={**os.environ, "SHOAL_ADDRESS": node.address})
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


async def cli_status(node: NodeProcess) -> dict:
    """``shoal cluster status --json``."""
    return json.loads(await run_cli(node, "cluster", "status", "--json"))


class Views:
    """One open connection per node, for polling ``CLUSTER_STATUS`` quickly."""

    def __init__(self, nodes: list[NodeProcess]) -> None:
        self.nodes = list(nodes)
        self.conns = {n.address: ServiceConnection(n.address, wire.DEFAULT_NAMESPACE)
                      for n in nodes}

    async def status(self, node: NodeProcess) -> wire.ClusterStatusResponse:
        return await self.conns[node.address].call(
            wire.Op.CLUSTER_STATUS, wire.ClusterStatusRequest(), retry_for_s=5.0)

    async def member(self, node: NodeProcess, name: str) -> wire.ClusterMember | None:
        resp = await self.status(node)
        return next((m for m in resp.members if m.name == name), None)

    async def block(self, node: NodeProcess, gossip_addrs: list[str]) -> None:
        """The partition drill: cut ``node`` off from these peers (by gossip address:
        gossip, replication and requests between the nodes; ``[]`` clears it)."""
        await self.conns[node.address].call(
            wire.Op.NETWORK_FAULTS, wire.NetworkFaultsRequest(blocked_addrs=gossip_addrs),
            retry_for_s=5.0)

    async def aclose(self) -> None:
        for c in self.conns.values():
            await c.close()


@contextlib.asynccontextmanager
async def views(nodes: list[NodeProcess]):
    v = Views(nodes)
    try:
        yield v
    finally:
        await v.aclose()


async def wait_all_see(v: Views, observers: list[NodeProcess], name: str, state: str,
                       timeout_s: float) -> dict[str, float]:
    """Poll until every observer shows ``name`` in ``state``; seconds until each did."""
    seen = await wait_each_sees(v, {obs.address: [name] for obs in observers}, state, timeout_s)
    return {obs: t for (obs, _), t in seen.items()}


async def wait_each_sees(v: Views, watch: dict[str, list[str]], state: str,
                         timeout_s: float) -> dict[tuple[str, str], float]:
    """Poll until each observer (by address) has shown each of its names in ``state`` at
    least once; seconds until each pair did. A pair counts once seen, so a dead member
    the observer later forgets (reclaims) still counts."""
    t0 = time.monotonic()
    nodes = {n.address: n for n in v.nodes}
    seen: dict[tuple[str, str], float] = {}

    last: dict[tuple[str, str], str | None] = {}

    async def everyone() -> bool:
        for obs, names in watch.items():
            if all((obs, name) in seen for name in names):
                continue
            states = {m.name: m.state for m in (await v.status(nodes[obs])).members}
            for name in names:
                last[(obs, name)] = states.get(name)
                if (obs, name) not in seen and states.get(name) == state:
                    seen[(obs, name)] = time.monotonic() - t0
        return len(seen) == sum(len(names) for names in watch.values())

    try:
        await wait_until(everyone, timeout_s=timeout_s, interval_s=0.05)
    except AssertionError:
        missing = {f"{obs} sees {name}": last.get((obs, name))
                   for obs, names in watch.items() for name in names if (obs, name) not in seen}
        raise AssertionError(f"not every observer saw {state!r} within {timeout_s}s; "
                             f"last states: {missing}") from None
    return seen


async def node_name(v: Views, node: NodeProcess) -> str:
    return (await v.status(node)).node


async def wait_all_alive(v: Views, nodes: list[NodeProcess], timeout_s: float) -> None:
    """Poll until every node lists all of ``nodes`` (and no other member) alive."""
    async def all_alive() -> bool:
        for n in nodes:
            resp = await v.status(n)
            if sum(m.state == "alive" for m in resp.members) != len(nodes):
                return False
        return True

    await wait_until(all_alive, timeout_s=timeout_s, interval_s=0.05)


async def wait_balanced(v: Views, nodes: list[NodeProcess], num_shards: int,
                        timeout_s: float) -> dict[str, list[int]]:
    """Poll until ``nodes`` lead every shard between them (each exactly once), each leads
    some, and no shard is below its replication factor; the shards each node (by address)
    leads."""
    led: dict[str, list[int]] = {}

    async def balanced() -> bool:
        led.clear()
        under = 0
        for n in nodes:
            resp = await v.status(n)
            led[n.address] = resp.shards_led
            under += len(resp.shards_under_replicated)
        every = sorted(s for shards in led.values() for s in shards)
        return under == 0 and every == list(range(num_shards)) and all(led.values())

    try:
        await wait_until(balanced, timeout_s=timeout_s, interval_s=0.1)
    except AssertionError:
        raise AssertionError(f"not balanced within {timeout_s}s: {led}") from None
    return dict(led)
