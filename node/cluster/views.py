"""The views of the cluster the request path asks: who serves a shard, who leads it, who owns
a task queue partition, and a node's API address.

Owns: the ``ClusterView`` protocol, ``SoloView`` (one node serves everything, so a single
node takes the very same request path) and ``RingView`` (gossip's members, the ring and this
node's replicas), and the ``NOT_LEADER`` answer with its hint. Must not: decide placement
(the ring and the steward do) or do I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from shoal import wire
from shoal.ring.placement import partition_owner


class ClusterView(Protocol):
    """What the request path needs to know about the cluster."""

    me: str

    def serving(self, shard: int) -> bool:
        """This node leads ``shard`` and may write it."""

    def leader(self, shard: int) -> str | None:
        """Who leads ``shard`` as far as this node knows (a hint); None: nobody known."""

    def partition_owner(self, namespace: str, queue: str) -> str:
        """The node whose matching holds ``queue``'s tasks and parks its polls."""

    def api_addr(self, node: str) -> str | None:
        """``HOST:PORT`` of ``node``'s API, or None while unknown."""


class SoloView:
    """One node: every shard and every partition is served here."""

    def __init__(self, me: str) -> None:
        self.me = me

    def serving(self, shard: int) -> bool:
        return True

    def leader(self, shard: int) -> str | None:
        return self.me

    def partition_owner(self, namespace: str, queue: str) -> str:
        return self.me

    def api_addr(self, node: str) -> str | None:
        return None


def not_leader(what: str, node: str | None, view: ClusterView) -> wire.ShoalError:
    """``NOT_LEADER`` with the hint a forwarding node retries with."""
    hint = {"leader": node, "addr": view.api_addr(node)} if node else {}
    return wire.ShoalError(wire.Code.NOT_LEADER,
                           f"{what} is not served by this node" + (f"; try {node}" if node else ""),
                           **hint)


class RingView:
    """The cluster as gossip, the ring and this node's replicas show it.

    Args:
        me: this node's id.
        replicas: this node's shard replicas (who serves, who leads).
        members: the alive members' API addresses by node id (gossip's view; ourselves
            included), re-read on every membership change.
    """

    def __init__(self, me: str, replicas: Any, members: Callable[[], dict[str, str]]) -> None:
        self.me, self.replicas, self._members = me, replicas, members
        self._alive: dict[str, str] = {me: ""}
        self.refresh()

    def refresh(self) -> None:
        """Membership changed: re-read who is alive."""
        self._alive = self._members() or {self.me: ""}

    @property
    def alive(self) -> list[str]:
        return sorted(self._alive)

    def serving(self, shard: int) -> bool:
        return self.replicas.serving(shard)

    def leader(self, shard: int) -> str | None:
        known = self.replicas.leader_of(shard)
        if known is not None:
            return known
        target = self.replicas.steward.target(shard, time.monotonic())
        return target[0] if target else None

    def partition_owner(self, namespace: str, queue: str) -> str:
        return partition_owner(self._alive, namespace, queue, 0)

    def api_addr(self, node: str) -> str | None:
        addr = self._alive.get(node)
        return addr.removeprefix("ws://") if addr else None
