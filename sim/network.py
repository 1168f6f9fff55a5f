"""Deterministic fake network and clock shared by every simulation (DESIGN §9).

Owns: simulated time, one event queue (message deliveries, timer firings, scripted
actions), and the fault model — seeded loss, delay, jitter (which reorders), duplication,
partitions and one-way cuts, paused nodes and crashed nodes. Nodes are opaque ids (any
hashable value: ``int`` or ``str``); messages are opaque objects the network never looks
inside. Must not: know about any protocol, read the wall clock, use global ``random``,
iterate a set, or call ``hash()`` on strings — the same seed must give the same run.

Semantics a simulation can rely on:

- ``send(src, dst, msg)`` models a datagram: it may be lost, delayed, duplicated and
  reordered according to the link's :class:`LinkFaults`. ``reliable=True`` models a
  stream (TCP / WebSocket peer link): never lost or duplicated, FIFO per (src, dst), but
  it is dropped if the link is cut when it arrives or if either end crashed (and so lost
  its connections) while it was in flight. Cores must time out on their own; the network
  does not report failures.
- ``set_timer(node, key, at)`` arms a per-node timer; arming the same key again replaces
  its previous deadline (only the newest one fires).
- ``pause(node, until)`` freezes a node (a GC or VM stall — Lifeguard's "slow node"):
  messages and timers due while it is paused are held and handed over, in their original
  order, when the pause ends. Other nodes keep running.
- ``crash(node)`` stops a node: its timers are discarded and everything sent to it until
  ``restart(node)`` is lost. The simulation decides what state a restarted node keeps.
- Ties in time are broken by insertion order, so there is no hidden nondeterminism.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

NodeId = Hashable
TimerKey = Hashable


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Fault settings for datagrams on a link. Reliable messages only use the delays."""

    loss: float = 0.0
    """Probability in [0, 1] that a datagram is dropped. Default 0."""
    delay_s: float = 0.0005
    """Fixed one-way latency in seconds. Default 0.5 ms (a LAN)."""
    jitter_s: float = 0.0
    """Extra latency drawn uniformly from [0, jitter_s); a jitter larger than the gap
    between two sends reorders them. Default 0."""
    duplicate: float = 0.0
    """Probability in [0, 1] that a datagram is delivered twice (independent delays)."""

    def __post_init__(self) -> None:
        assert 0.0 <= self.loss <= 1.0 and 0.0 <= self.duplicate <= 1.0
        assert self.delay_s >= 0.0 and self.jitter_s >= 0.0


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message arriving at ``dst``."""

    src: NodeId
    dst: NodeId
    msg: Any
    reliable: bool
    sent_at: float


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A node's timer firing."""

    node: NodeId
    key: TimerKey


@dataclass(frozen=True, slots=True)
class Action:
    """A scripted action (crash, partition, client request...) run at its time."""

    fn: Callable[[], None]
    label: str = ""


Event = Delivered | TimerFired | Action


@dataclass(slots=True)
class NodeStats:
    """Per-node counters. Sends are counted whether or not the message arrives."""

    sent_msgs: int = 0
    sent_bytes: int = 0
    received_msgs: int = 0
    received_bytes: int = 0
    dropped_loss: int = 0  # datagrams from this node lost to the loss rate
    dropped_cut: int = 0  # messages from this node lost to a partition or cut
    dropped_down: int = 0  # messages to this node lost because it was crashed


@dataclass(slots=True)
class _Entry:
    # The heap holds (time, seq, _Entry); seq is unique so _Entry is never compared.
    event: Event
    size: int = 0
    epochs: tuple[int, int] | None = None  # (src, dst) crash epochs of a reliable message
    timer_gen: int = 0
    timer_epoch: int = 0  # the node's crash epoch when the timer was armed


class Network:
    """Simulated clock, event queue and fault model for N nodes in one process.

    Args:
        rng: the only source of randomness (derive it from the run's seed).
        faults: default :class:`LinkFaults` for every link; override per link with
            :meth:`set_link_faults`.
    """

    def __init__(self, rng: random.Random, faults: LinkFaults | None = None) -> None:
        self.rng = rng
        self.now = 0.0
        self.faults = faults or LinkFaults()
        self.stats: dict[NodeId, NodeStats] = {}
        self._heap: list[tuple[float, int, _Entry]] = []
        self._seq = 0
        self._timer_gen: dict[tuple[NodeId, TimerKey], int] = {}
        self._link_faults: dict[tuple[NodeId, NodeId], LinkFaults] = {}
        self._group: dict[NodeId, int] = {}  # partition group; absent = group -1
        self._cut: dict[tuple[NodeId, NodeId], bool] = {}  # one-way cuts src -> dst
        self._paused_until: dict[NodeId, float] = {}
        self._crashed: dict[NodeId, bool] = {}
        self._epoch: dict[NodeId, int] = {}  # bumped by every crash
        self._fifo: dict[tuple[NodeId, NodeId], float] = {}  # last reliable arrival

    # --- scheduling ---------------------------------------------------------------------

    def _push(self, at: float, entry: _Entry) -> None:
        assert at >= self.now, f"cannot schedule in the past: {at} < {self.now}"
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, entry))

    def call_at(self, when: float, fn: Callable[[], None], label: str = "") -> None:
        """Run ``fn()`` at simulated time ``when`` (clamped to now)."""
        self._push(max(when, self.now), _Entry(Action(fn, label)))

    def set_timer(self, node: NodeId, key: TimerKey, fire_at: float) -> None:
        """Arm ``node``'s timer ``key`` at ``fire_at``; replaces an earlier arming of ``key``."""
        if self._crashed.get(node):
            return
        gen = self._timer_gen.get((node, key), 0) + 1
        self._timer_gen[(node, key)] = gen
        entry = _Entry(TimerFired(node, key), timer_gen=gen, timer_epoch=self._epoch.get(node, 0))
        self._push(max(fire_at, self.now), entry)

    def cancel_timer(self, node: NodeId, key: TimerKey) -> None:
        """Disarm ``node``'s timer ``key`` if armed."""
        if (node, key) in self._timer_gen:
            self._timer_gen[(node, key)] += 1

    def send(
        self, src: NodeId, dst: NodeId, msg: Any, *, size: int = 0, reliable: bool = False
    ) -> None:
        """Send ``msg`` from ``src`` to ``dst``; ``size`` (bytes) only feeds the stats."""
        st = self._stats(src)
        st.sent_msgs += 1
        st.sent_bytes += size
        f = self._link_faults.get((src, dst), self.faults)
        if reliable:
            at = self.now + f.delay_s + (self.rng.random() * f.jitter_s if f.jitter_s else 0.0)
            at = max(at, self._fifo.get((src, dst), 0.0))  # streams keep their order
            self._fifo[(src, dst)] = at
            epochs = (self._epoch.get(src, 0), self._epoch.get(dst, 0))
            self._push(at, _Entry(Delivered(src, dst, msg, True, self.now), size, epochs))
            return
        if f.loss and self.rng.random() < f.loss:
            st.dropped_loss += 1
            return
        copies = 2 if f.duplicate and self.rng.random() < f.duplicate else 1
        for _ in range(copies):
            at = self.now + f.delay_s + (self.rng.random() * f.jitter_s if f.jitter_s else 0.0)
            self._push(at, _Entry(Delivered(src, dst, msg, False, self.now), size))

    # --- faults -------------------------------------------------------------------------

    def set_link_faults(self, src: NodeId, dst: NodeId, faults: LinkFaults | None) -> None:
        """Override the faults of the one-way link src -> dst (None: back to the default)."""
        if faults is None:
            self._link_faults.pop((src, dst), None)
        else:
            self._link_faults[(src, dst)] = faults

    def partition(self, *groups: Iterable[NodeId]) -> None:
        """Split the network: nodes in different groups cannot talk. Unlisted nodes form
        one more group together. Replaces any earlier partition."""
        self._group = {}
        for i, g in enumerate(groups):
            for n in g:
                self._group[n] = i

    def heal(self) -> None:
        """Remove every partition and one-way cut."""
        self._group = {}
        self._cut = {}

    def cut(self, src: NodeId, dst: NodeId) -> None:
        """Drop everything sent from ``src`` to ``dst`` (one way) until :meth:`heal`."""
        self._cut[(src, dst)] = True

    def connected(self, src: NodeId, dst: NodeId) -> bool:
        """Whether a message from ``src`` would currently reach ``dst``'s link."""
        if self._cut.get((src, dst)):
            return False
        return self._group.get(src, -1) == self._group.get(dst, -1)

    def pause(self, node: NodeId, until: float) -> None:
        """Freeze ``node`` until simulated time ``until`` (see the module docstring)."""
        self._paused_until[node] = max(until, self._paused_until.get(node, 0.0))

    def paused(self, node: NodeId) -> bool:
        return self._paused_until.get(node, 0.0) > self.now

    def crash(self, node: NodeId) -> None:
        """Stop ``node``: its timers are discarded, messages to it are lost."""
        self._crashed[node] = True
        self._epoch[node] = self._epoch.get(node, 0) + 1
        self._paused_until.pop(node, None)

    def restart(self, node: NodeId) -> None:
        """Bring a crashed node back (with no timers armed)."""
        self._crashed[node] = False

    def is_up(self, node: NodeId) -> bool:
        return not self._crashed.get(node, False)

    # --- running ------------------------------------------------------------------------

    def _stats(self, node: NodeId) -> NodeStats:
        st = self.stats.get(node)
        if st is None:
            st = self.stats[node] = NodeStats()
        return st

    def next_time(self) -> float | None:
        """Time of the next queued event, or None when the queue is empty."""
        return self._heap[0][0] if self._heap else None

    def step(self, until: float | None = None) -> Event | None:
        """Advance the clock to the next event that takes effect and return it.

        Actions are run before they are returned. Events that do not take effect (a
        replaced timer, a message to a crashed node, a message across a cut) are skipped.
        Returns None when nothing is queued (at or before ``until``, when given).
        """
        while self._heap and (until is None or self._heap[0][0] <= until):
            at, _, entry = heapq.heappop(self._heap)
            self.now = at
            ev = entry.event
            if isinstance(ev, Action):
                ev.fn()
                return ev
            if isinstance(ev, TimerFired):
                if self._timer_gen.get((ev.node, ev.key)) != entry.timer_gen:
                    continue  # replaced or cancelled
                if self._crashed.get(ev.node) or entry.timer_epoch != self._epoch.get(ev.node, 0):
                    continue  # the node crashed since the timer was armed
                if self._paused_until.get(ev.node, 0.0) > at:
                    self._push(self._paused_until[ev.node], entry)
                    continue
                return ev
            if self._deliverable(ev, entry):
                if self._paused_until.get(ev.dst, 0.0) > at:
                    self._push(self._paused_until[ev.dst], entry)
                    continue
                st = self._stats(ev.dst)
                st.received_msgs += 1
                st.received_bytes += entry.size
                return ev
        return None

    def _deliverable(self, ev: Delivered, entry: _Entry) -> bool:
        if not self.connected(ev.src, ev.dst):
            self._stats(ev.src).dropped_cut += 1
            return False
        if self._crashed.get(ev.dst):
            self._stats(ev.dst).dropped_down += 1
            return False
        if entry.epochs is not None:
            # A stream does not survive a crash of either end.
            if entry.epochs != (self._epoch.get(ev.src, 0), self._epoch.get(ev.dst, 0)):
                self._stats(ev.dst).dropped_down += 1
                return False
        return True

    def run_until(self, t: float, handle: Callable[[Event], None]) -> None:
        """Process events up to and including time ``t``, passing each to ``handle``;
        the clock ends at ``t``."""
        while True:
            ev = self.step(until=t)
            if ev is None:
                break
            handle(ev)
        self.now = max(self.now, t)


__all__ = [
    "Action", "Delivered", "Event", "LinkFaults", "Network", "NodeId", "NodeStats",
    "TimerFired", "TimerKey",
]
