"""What a leader knows about one follower's log (etcd's ``tracker.Progress``).

Owns: the follower's match and next index, its flow-control state (probe, pipelined
replicate, waiting for a snapshot), the appends in flight, and the last time it answered.
Must not: send anything; the leader decides what to send from this.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum


class Flow(Enum):
    """How the leader feeds a follower."""

    PROBE = "probe"  # one append per heartbeat until we learn where its log matches ours
    REPLICATE = "replicate"  # pipelined: up to max_inflight appends without waiting
    SNAPSHOT = "snapshot"  # it needs entries we compacted: waiting on a snapshot


@dataclass(slots=True)
class Progress:
    """Leader-side view of one member (voter or learner)."""

    next: int
    match: int = 0
    flow: Flow = Flow.PROBE
    inflight: deque[int] = field(default_factory=deque)  # last index of each append sent
    probe_sent: bool = False  # a probe is out; wait for its answer or the next heartbeat
    last_ack: float = 0.0
    applied: int = 0
    read_seq: int = 0
    snapshot_at: float = -1.0  # when we last asked the driver for a snapshot
    progress_at: float = 0.0  # when match last advanced (an append lost in flight shows
    # as acks that keep coming, for heartbeats, while match stands still)

    def on_match(self, index: int, now: float) -> bool:
        """Record that the follower durably holds our log up to ``index``; True if new."""
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        if index <= self.match:
            return False
        self.match = index
        self.progress_at = now
        self.next = max(self.next, index + 1)
        self.probe_sent = False
        if self.flow is not Flow.REPLICATE:
            self.flow = Flow.REPLICATE
            self.inflight.clear()
        return True

    def to_probe(self, next_index: int) -> None:
        """Forget optimistic state and probe from ``next_index`` (> match)."""
        assert next_index > self.match
        self.flow = Flow.PROBE
        self.next = next_index
        self.inflight.clear()
        self.probe_sent = False

    def to_snapshot(self, now: float) -> None:
        self.flow = Flow.SNAPSHOT
        self.inflight.clear()
        self.probe_sent = False
        self.snapshot_at = now
