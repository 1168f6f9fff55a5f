"""Replication messages between node processes, over the peer link.

Owns: ``PeerReplicaTransport`` (a queue and a sender task per destination node: messages
that pile up while a batch is in flight go together in the next ``REPL_MESSAGES`` request,
so the link costs one round trip per batch, not per message) and ``ReplicaHost`` (this
node's replica drivers by shard, and the ``REPL_MESSAGES`` handler that hands each decoded
message to its shard's driver). Must not: interpret messages (the drivers and cores do).

Delivery is best effort and FIFO per destination: the consensus protocol tolerates loss
(it retransmits on its ticks), so a full queue drops its oldest messages and an unreachable
peer's batch is dropped after a short back-off rather than retried. A peer the partition
drill cuts off (``node/cluster/netfault.py``) gets nothing: its messages are dropped (counted) when
sent and when their batch's turn comes; what it sends us never arrives, since the server
closes its peer connections.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from shoal import wire
from shoal.node.cluster.netfault import NetworkFaults
from shoal.node.cluster.peer_link import PeerLinks, PeerUnavailable

if TYPE_CHECKING:
    from shoal.node.replication.driver import ReplicaDriver

log = logging.getLogger(__name__)

QUEUE_MAX = 10_000  # messages waiting for one destination before the oldest are dropped
BATCH_MAX = 512  # messages per REPL_MESSAGES request
BATCH_BYTES_MAX = wire.FRAME_BYTES_MAX // 2  # a batch stays well inside one frame
SEND_TIMEOUT_S = 2.0
BACKOFF_S = 0.2


@dataclass(slots=True)
class TransportStats:
    batches: int = 0
    messages: int = 0
    bytes: int = 0
    dropped: int = 0  # queue overflow or an unreachable peer
    refused: int = 0  # incoming frames that did not decode, or for no local replica


@dataclass(eq=False, slots=True)
class _Outbox:
    queue: deque[bytes] = field(default_factory=deque)
    ready: trio.Event = field(default_factory=trio.Event)


class PeerReplicaTransport:
    """Sends replication messages to other nodes (``ReplicaTransport`` for real processes).

    Args:
        links: this transport's own peer connections (not shared with gossip, so a burst
            of appends never delays a probe).
        address_of: a node id's peer address (``HOST:PORT``), or None while unknown.
        nursery: where the per-destination sender tasks run.
        host: where drivers hosted here are registered for incoming messages.
        faults: the node's partition drill (none: nothing is ever cut).
    """

    def __init__(self, links: PeerLinks, address_of: Callable[[str], str | None],
                 nursery: trio.Nursery, host: ReplicaHost | None = None,
                 faults: NetworkFaults | None = None) -> None:
        self._links, self._address_of, self._nursery = links, address_of, nursery
        self._host = host
        self._faults = faults if faults is not None else NetworkFaults()
        self._outboxes: dict[str, _Outbox] = {}
        self.stats = TransportStats()

    def register(self, driver: ReplicaDriver) -> None:
        """A driver hosted here: incoming messages for its shard go to it (``host``)."""
        if self._host is not None:
            self._host.register(driver)

    def send(self, src: str, dst: str, msg: wire.ReplMessage) -> None:
        """Queue ``msg`` for ``dst`` (never blocks); dropped if the drill cuts ``dst`` off."""
        if self._faults.blocks_node(dst):
            self._drop_cut_off(1)
            return
        box = self._outboxes.get(dst)
        if box is None:
            box = self._outboxes[dst] = _Outbox()
            self._nursery.start_soon(self._sender, src, dst, box)
        box.queue.append(wire.encode_repl(msg))
        while len(box.queue) > QUEUE_MAX:
            box.queue.popleft()
            self.stats.dropped += 1
        box.ready.set()

    async def _sender(self, src: str, dst: str, box: _Outbox) -> None:
        while True:
            if not box.queue:
                await box.ready.wait()
                box.ready = trio.Event()
                continue
            frames, size = [], 0
            while box.queue and len(frames) < BATCH_MAX and size < BATCH_BYTES_MAX:
                frame = box.queue.popleft()
                frames.append(frame)
                size += len(frame)
            if self._faults.blocks_node(dst):  # cut off since these were queued
                self._drop_cut_off(len(frames))
                continue
            addr = self._address_of(dst)
            if addr is None:
                self.stats.dropped += len(frames)
                await trio.sleep(BACKOFF_S)
                continue
            try:
                with trio.fail_after(SEND_TIMEOUT_S):
                    await self._links.request(addr, wire.Op.REPL_MESSAGES,
                                              wire.ReplMessagesRequest(src=src, frames=frames))
            except (PeerUnavailable, wire.ShoalError, trio.TooSlowError) as exc:
                self.stats.dropped += len(frames)
                log.debug("replication batch to %s dropped: %s", dst, exc)
                await trio.sleep(BACKOFF_S)
                continue
            self.stats.batches += 1
            self.stats.messages += len(frames)
            self.stats.bytes += size

    def _drop_cut_off(self, count: int) -> None:
        self.stats.dropped += count
        self._faults.stats.fault_repl_dropped_out += count


class ReplicaHost:
    """This node's replica drivers, by shard, and the handler for incoming batches."""

    def __init__(self) -> None:
        self.drivers: dict[int, ReplicaDriver] = {}
        self.stats = TransportStats()

    def register(self, driver: ReplicaDriver) -> None:
        self.drivers[driver.shard] = driver

    async def on_repl_messages(self, namespace: str, req: wire.ReplMessagesRequest) -> wire.Empty:
        """``REPL_MESSAGES``: deliver each message to its shard's driver, in order.

        Never raises for what a peer sent: bad frames and unknown shards are counted.
        """
        for frame in req.frames:
            try:
                msg = wire.decode_repl(frame)
            except wire.WireError:
                self.stats.refused += 1
                continue
            driver = self.drivers.get(msg.shard)
            if driver is None:
                self.stats.refused += 1
                continue
            driver.deliver(req.src, msg)
        self.stats.messages += len(req.frames)
        return wire.Empty()
