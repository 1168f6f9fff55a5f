"""The chaos run's faults on real node processes, and the balance they wait for.

Owns: which nodes are up, ``kill -9`` / SIGTERM / restart (with ``--join`` to a live node),
the partition drill, polling the live nodes until the cluster is balanced, and the
seeded schedule that picks the next fault. Must not: run workflows (``workload.py``).

The partition drill (``Op.NETWORK_FAULTS``) is a full cut between the node and the others:
gossip, shard replication, forwarded requests and task hand-offs are dropped both ways.
The clients and workers connected to the cut-off node still reach it; it answers them
errors (or forwards nowhere) for every shard it no longer leads.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from helpers.node_cluster import Views
from helpers.node_proc import NodeProcess

FAULT_KINDS = ("kill9", "sigterm", "partition")
SIGTERM_EXIT_TIMEOUT_S = 30.0


@dataclass(slots=True)
class Balance:
    """One poll of the live nodes' ``CLUSTER_STATUS``."""

    led: dict[str, list[int]] = field(default_factory=dict)
    under: list[int] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def ok(self, num_shards: int, *, everyone_leads: bool) -> bool:
        """No shard below its replication factor and every shard led by exactly one live
        node (with ``everyone_leads``, also each live node leads some)."""
        every = sorted(s for shards in self.led.values() for s in shards)
        return (not self.unreachable and not self.under and every == list(range(num_shards))
                and (not everyone_leads or all(self.led.values())))


class ChaosCluster:
    """The nodes of a chaos run and the faults done to them, in order."""

    def __init__(self, nodes: list[NodeProcess], base_args: list[str], t0: float,
                 echo: bool = False, min_down_s: float = 0.0) -> None:
        self.nodes = nodes
        self.echo = echo  # print each fault to stderr as it happens
        self.base_args = base_args
        # A killed node is restarted no sooner than this after its kill (0: at once).
        self.min_down_s = min_down_s
        self.down: set[int] = set()  # indexes of nodes not running
        self.down_since: dict[int, float] = {}  # monotonic time of each down node's kill
        self.t0 = t0
        self.log: list[dict[str, Any]] = []  # every fault and restart, with its time
        self.balance_waits_s: list[float] = []

    @property
    def num_shards(self) -> int:
        return self.nodes[0].num_shards

    def live(self) -> list[NodeProcess]:
        return [n for i, n in enumerate(self.nodes) if i not in self.down]

    def note(self, action: str, node: int, **fields: Any) -> None:
        self.log.append({"t": round(time.monotonic() - self.t0, 2), "action": action,
                         "node": node, "port": self.nodes[node].listen_port, **fields})
        if self.echo:
            print(f"chaos {self.log[-1]}", file=sys.stderr)

    async def poll_balance(self) -> Balance:
        """Each live node's view of the shards it leads and those below R."""
        out = Balance()
        v = Views(self.live())
        try:
            for n in v.nodes:
                try:
                    resp = await v.status(n)
                except Exception as exc:  # noqa: BLE001 - a node mid-restart: not balanced yet
                    out.unreachable.append(f"{n.address}: {type(exc).__name__}")
                    continue
                out.led[n.address] = resp.shards_led
                out.under += resp.shards_under_replicated
        finally:
            await v.aclose()
        return out

    async def wait_balanced(self, timeout_s: float, *, everyone_leads: bool) -> bool:
        """Poll until balanced (see ``Balance.ok``); False if not within ``timeout_s``."""
        t0 = time.monotonic()
        last = Balance()
        while time.monotonic() - t0 < timeout_s:
            last = await self.poll_balance()
            if last.ok(self.num_shards, everyone_leads=everyone_leads):
                self.balance_waits_s.append(round(time.monotonic() - t0, 2))
                return True
            await trio.sleep(0.25)
        self.note("balance_timeout", -1, timeout_s=timeout_s, under=sorted(set(last.under)),
                  led={a: len(s) for a, s in last.led.items()}, unreachable=last.unreachable)
        return False

    def kill9(self, i: int) -> None:
        self.nodes[i].kill()
        self.down.add(i)
        self.down_since[i] = time.monotonic()
        self.note("kill9", i)

    async def restart(self, i: int) -> None:
        """Start node ``i`` again on its port and data dir, joining through a live node."""
        node = self.nodes[i]
        killed_at = self.down_since.pop(i, None)
        if killed_at is not None:
            await trio.sleep(max(0.0, killed_at + self.min_down_s - time.monotonic()))
        live = [n for j, n in enumerate(self.nodes) if j not in self.down and j != i]
        node.extra = [*self.base_args, "--join", live[0].address.removeprefix("ws://")]
        t = time.monotonic()
        await node.start_async(timeout_s=60.0)
        self.down.discard(i)
        self.note("restart", i, start_s=round(time.monotonic() - t, 2))

    async def sigterm_and_restart(self, i: int) -> None:
        """SIGTERM (the node leaves gracefully, handing its shards off first), then start it
        again; a node that does not exit in time is killed and noted."""
        node = self.nodes[i]
        t = time.monotonic()
        self.down.add(i)
        try:
            code = await trio.to_thread.run_sync(node.terminate, SIGTERM_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            node.kill()
            code = None
        self.note("sigterm", i, exit_code=code, exit_s=round(time.monotonic() - t, 2))
        await self.restart(i)

    async def partition(self, i: int, hold_s: float) -> None:
        """Cut node ``i`` off from every other live node (gossip, replication and
        requests, both ways) for ``hold_s``, then clear the drill everywhere."""
        live = self.live()
        v = Views(live)
        try:
            addr = {n.address: next(m.gossip_addr for m in (await v.status(n)).members
                                    if m.is_self) for n in live}
            me = self.nodes[i]
            others = [n for n in live if n is not me]
            self.note("partition", i, hold_s=round(hold_s, 2))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(v.block, me, [addr[o.address] for o in others])
                for o in others:
                    nursery.start_soon(v.block, o, [addr[me.address]])
            await trio.sleep(hold_s)
            async with trio.open_nursery() as nursery:
                for n in live:
                    nursery.start_soon(v.block, n, [])
            self.note("partition_cleared", i)
        finally:
            await v.aclose()

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.log:
            out[entry["action"]] = out.get(entry["action"], 0) + 1
        return out


@dataclass(slots=True)
class Schedule:
    """The seeded choice of the next fault: which kind, on which node, how long to wait.

    At most ``max_down`` nodes are down (killed, or cut off by the drill) at once: a
    minority of R = 3 (one) in a 3-node cluster; in 5 nodes two, the second only once the
    first's replicas were replaced (the run waits for balance before every fault).
    """

    rng: random.Random
    kinds: tuple[str, ...]
    max_down: int
    gap_s: tuple[float, float] = (2.0, 6.0)
    hold_s: tuple[float, float] = (4.0, 10.0)

    def gap(self) -> float:
        return self.rng.uniform(*self.gap_s)

    def next_action(self, down: int, must_kill: bool) -> str:
        """``restart`` or a fault kind; a fault only while fewer than ``max_down`` are down.
        ``must_kill``: a kill is still owed (the run's minimum), so faults are kills."""
        if down and (down >= self.max_down or self.rng.random() < 0.5):
            return "restart"
        if must_kill and "kill9" in self.kinds:
            return "kill9"
        return self.rng.choice(self.kinds)
