"""A tiny synchronous driver for replication core unit tests.

Each node's :class:`Replica` runs with "instant" storage: an Output's writes are durable
as soon as the harness handles it (then ``on_persisted`` is called), and its messages go
to one FIFO queue that tests drain with :meth:`Harness.run`, optionally dropping some.
Applied entries, served reads and role events are recorded per node.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from shoal import wire
from shoal.node.replication import Output, PersistedState, Replica, ReplicaConfig


class Harness:
    def __init__(self, voters: list[str], others: list[str] = (), cfg: ReplicaConfig | None = None,
                 seed: int = 1) -> None:
        self.cfg = cfg or ReplicaConfig(fallback=False)
        self.now = 0.0
        self.queue: deque[tuple[str, str, Any]] = deque()
        self.trace: list[str] = []
        self.sent: list[tuple[str, str, Any]] = []  # every message delivered, in order
        self.drop: Callable[[str, str, Any], bool] = lambda src, dst, msg: False
        self.down: set[str] = set()
        self.nodes: dict[str, Replica] = {}
        self.applied: dict[str, list[wire.ReplEntry]] = {}
        self.reads: dict[str, list[Any]] = {}
        self.events: dict[str, list[Any]] = {}
        self.snapshots: dict[str, list[Any]] = {}
        self.state: dict[str, list[Any]] = {}  # payloads applied (the "state machine")
        rng = random.Random(seed)
        config = wire.ShardConfig(voters=tuple(voters))
        for n in list(voters) + list(others):
            self.nodes[n] = Replica(n, 0, self.cfg, random.Random(rng.getrandbits(32)))
            for d in (self.applied, self.reads, self.events, self.snapshots, self.state):
                d[n] = []
            if n in voters:
                self.handle(n, self.nodes[n].bootstrap(config))

    def handle(self, node: str, out: Output) -> None:
        """Carry out one Output the way a driver must (persist, send, apply...)."""
        core = self.nodes[node]
        for dst, msg in out.send:
            self.queue.append((node, dst, msg))
        if out.install is not None:
            self.state[node] = list(out.install.data)
        for e in out.apply:
            self.applied[node].append(e)
            if e.kind == wire.EntryKind.NORMAL:
                self.state[node].append(e.payload)
        self.reads[node].extend((r.ctx, list(self.state[node])) for r in out.reads)
        self.events[node].extend(out.events)
        if out.persist:
            last = out.persist[-1]
            self.handle(node, core.on_persisted(last.epoch, last.index, self.now))
        if out.apply:
            self.handle(node, core.on_applied(out.apply[-1].index, self.now))
        for peer in out.snapshot_to:
            self.snapshots[node].append(peer)
            self.handle(node, core.send_snapshot(peer, core.applied_emitted,
                                                 list(self.state[node]), self.now))

    def run(self, max_msgs: int = 100_000) -> int:
        """Deliver queued messages (and what they cause) until none are left."""
        n = 0
        while self.queue and n < max_msgs:
            src, dst, msg = self.queue.popleft()
            n += 1
            if dst in self.down or src in self.down or self.drop(src, dst, msg):
                continue
            self.trace.append(f"{src}->{dst} {type(msg).__name__}")
            self.sent.append((src, dst, msg))
            self.handle(dst, self.nodes[dst].on_message(src, msg, self.now))
        return n

    def tick(self, dt: float) -> None:
        self.now += dt
        for n, core in self.nodes.items():
            if n not in self.down:
                self.handle(n, core.tick(self.now))

    def campaign(self, node: str) -> None:
        self.handle(node, self.nodes[node].campaign(self.now))
        self.run()

    def propose(self, node: str, payload: Any) -> int:
        index, out = self.nodes[node].propose(payload, self.now)
        self.handle(node, out)
        return index

    def read(self, node: str, ctx: Any) -> None:
        self.handle(node, self.nodes[node].read(ctx, self.now))

    def restart(self, node: str, state: PersistedState) -> None:
        self.nodes[node] = Replica(node, 0, self.cfg, random.Random(7), state)
