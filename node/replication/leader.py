"""Leader side of a shard replica: replication, commit, reads, membership (DESIGN §4).

Owns: per-follower progress and flow control (probe, then pipelined appends with up to
``max_inflight`` in flight; entries proposed while the window is full go out together in
the next message, which is the batching), the commit rule (a majority of voters has
persisted, counting only entries of our own epoch, Raft §5.4.2), serving only after our
no-op commits, quorum-confirmed reads (ReadIndex), check-quorum step-down, snapshots for
followers behind the compaction point, log compaction once every voter heard from lately
has applied, and single-node membership changes towards the ring's replica set.

Reads (ReadIndex, Raft thesis §6.4): a read takes the commit index when it arrives, then
waits until a majority of voters has answered a heartbeat sent after it, proving no higher
epoch had a majority meanwhile, and until that index is applied here. No clock is trusted:
no lease, so no bound on clock drift or pauses is assumed anywhere.

Must not: be used alone; it is a mixin of :class:`shoal.node.replication.core.Replica`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from shoal import wire
from shoal.node.replication import quorum
from shoal.node.replication.membership import next_config
from shoal.node.replication.progress import Flow, Progress
from shoal.node.replication.types import NodeId, ReadReady, Role, cap_bytes

if TYPE_CHECKING:
    from shoal.node.replication.core import Replica


class LeaderMixin:
    """Leader handling for :class:`Replica`."""

    def _lead_reset(self: Replica) -> None:
        self._progress: dict[NodeId, Progress] = {}
        self._serving = False
        self._noop_index = 0
        self._reads: deque[tuple[int, int, Any]] = deque()  # (seq, read index, ctx)
        self._read_seq = 0
        self._next_heartbeat = 0.0
        self._silent: frozenset[NodeId] = frozenset()  # voters ignored for compaction
        # Members a config entry of ours removed, by its index: told once it commits.
        self._dropped: dict[NodeId, int] = {}

    @property
    def serving(self) -> bool:
        """Leader whose own-epoch no-op has committed: it may take proposals and reads."""
        return self.role is Role.LEADER and self._serving

    def _require_serving(self: Replica) -> None:
        if not self.serving:
            raise wire.ShoalError(wire.Code.NOT_LEADER,
                                  f"shard {self.shard} is not led here; try the leader",
                                  leader=self.leader or "")

    def _become_leader(self: Replica, now: float) -> None:
        self._become(Role.LEADER, self.me)
        self._lead_reset()
        self._sync_progress(now)
        noop = wire.ReplEntry(epoch=self.promised, index=self.log.last_index + 1,
                              kind=wire.EntryKind.NOOP)
        self._noop_index = noop.index
        self._append_local(noop, now)
        self._next_heartbeat = now + self.cfg.heartbeat_interval_s
        self._broadcast(now)

    def _drop_leadership(self: Replica) -> None:
        assert self._out is not None
        self._out.read_failures.extend(ctx for _, _, ctx in self._reads)
        self._lead_reset()

    def _sync_progress(self: Replica, now: float) -> None:
        """Track exactly the members of the latest config (it is in effect once appended)."""
        cfg = self.log.config
        peers = [n for n in cfg.voters + cfg.learners if n != self.me]
        for n in peers:
            if n not in self._progress:
                self._progress[n] = Progress(next=self.log.last_index + 1, last_ack=now,
                                             progress_at=now)
        for n in [n for n in self._progress if n not in peers]:
            del self._progress[n]
            self._dropped[n] = self.log.config_index
        for n in peers:
            self._dropped.pop(n, None)

    def _append_local(self: Replica, entry: wire.ReplEntry, now: float) -> None:
        assert entry.index == self.log.last_index + 1 and entry.epoch == self.promised
        new = self.log.append([entry], floor=self.commit)
        assert new == [entry] and self._out is not None
        self._out.persist.append(entry)
        if entry.kind is wire.EntryKind.CONFIG:
            self._sync_progress(now)

    def _propose(self: Replica, payload: Any, now: float) -> int:
        entry = wire.ReplEntry(epoch=self.promised, index=self.log.last_index + 1,
                               payload=payload)
        self._append_local(entry, now)
        self._broadcast(now)
        return entry.index

    # --- sending -------------------------------------------------------------------------

    def _broadcast(self: Replica, now: float) -> None:
        for peer, pr in self._progress.items():
            self._replicate(peer, pr, now, heartbeat=False)

    def _replicate(self: Replica, peer: NodeId, pr: Progress, now: float,
                   heartbeat: bool) -> None:
        """Send ``peer`` what flow control allows; a heartbeat always sends something."""
        if pr.flow is Flow.SNAPSHOT:
            if heartbeat:  # keep it from campaigning while the snapshot travels
                self._send_append(peer, pr, 0, now, empty=True)
            return
        if pr.flow is Flow.PROBE:
            if not pr.probe_sent or heartbeat:
                pr.probe_sent = self._send_append(peer, pr, pr.next - 1, now)
            return
        sent = False
        while len(pr.inflight) < self.cfg.max_inflight and pr.next <= self.log.last_index:
            if not self._send_append(peer, pr, pr.next - 1, now):
                return
            sent = True
        if heartbeat and not sent:
            known = pr.match if self.log.epoch_at(pr.match) is not None else 0
            self._send_append(peer, pr, known, now, empty=True)

    def _send_append(self: Replica, peer: NodeId, pr: Progress, prev: int, now: float,
                     empty: bool = False) -> bool:
        """Send entries after ``prev``; False (and ask for a snapshot) if compacted."""
        prev_epoch = self.log.epoch_at(prev)
        if prev_epoch is None or (prev < self.log.snap_index and not empty):
            # The entries after prev are compacted away: only a snapshot can help.
            pr.to_snapshot(now)
            assert self._out is not None
            self._out.snapshot_to.append(peer)
            return False
        entries = [] if empty else cap_bytes(
            self.log.slice(prev + 1, prev + self.cfg.append_entries_max),
            self.cfg.append_bytes_max)
        if entries and pr.flow is Flow.REPLICATE:
            pr.inflight.append(entries[-1].index)
            pr.next = entries[-1].index + 1
        self._send(peer, wire.Append(
            shard=self.shard, epoch=self.promised, prev_epoch=prev_epoch, prev_index=prev,
            entries=entries, commit=self.commit, compact=self.compact_hint,
            read_seq=self._read_seq))
        return True

    def _ship_snapshot(self: Replica, peer: NodeId, index: int, data: Any,
                       now: float) -> None:
        pr = self._progress.get(peer)
        if self.role is not Role.LEADER or pr is None or pr.flow is not Flow.SNAPSHOT:
            return
        epoch = self.log.epoch_at(index)
        assert epoch is not None and index <= self.applied_emitted, "snapshot not applied"
        pr.snapshot_at = now
        self._send(peer, wire.InstallSnapshot(
            shard=self.shard, epoch=self.promised, index=index, snap_epoch=epoch,
            config=self.log.config_at(index), data=data))

    # --- receiving -----------------------------------------------------------------------

    def _on_append_ack(self: Replica, src: NodeId, m: wire.AppendAck, now: float) -> None:
        if m.epoch > self.promised:
            self._observe_higher(m.epoch, now)  # rejected: step down at once
            return
        pr = self._progress.get(src)
        if self.role is not Role.LEADER or m.epoch != self.promised or pr is None:
            return  # stale: an older epoch of ours, or a member we no longer track
        pr.last_ack = now
        pr.applied = max(pr.applied, m.applied)
        pr.read_seq = max(pr.read_seq, m.read_seq)
        if m.ok:
            if pr.on_match(m.match, now):
                self._maybe_commit(now)
        elif m.reject_index > pr.match and pr.flow is not Flow.SNAPSHOT:
            # A log mismatch at reject_index (a stale reject is at or below match).
            pr.to_probe(max(pr.match + 1, min(m.reject_index, m.hint_index + 1)))
        if self.role is Role.LEADER:
            self._replicate(src, pr, now, heartbeat=False)
            if self.target is not None:
                self._step_reconfig(now)

    def _maybe_commit(self: Replica, now: float) -> None:
        cfg = self.log.config
        match = {n: pr.match for n, pr in self._progress.items()}
        match[self.me] = self.persisted
        index = quorum.committed_index(match, cfg.voters)
        # Only an entry of our own epoch is committed by counting (Raft §5.4.2); the ones
        # before it commit with it.
        if index <= self.commit or self.log.epoch_at(index) != self.promised:
            return
        self.commit = index
        for n, at in [(n, at) for n, at in self._dropped.items() if at <= index]:
            del self._dropped[n]
            self._send(n, wire.Removed(shard=self.shard, epoch=self.promised, config_index=at))
        if not self._serving and self.commit >= self._noop_index:
            self._serving = True
            self._emit()
        if self.me not in cfg.voters and self.commit >= self.log.config_index:
            # Our removal is committed: hand over. (A config without us that we hold
            # committed does not mean removal in general: a joiner's snapshot may predate
            # the entry that adds it. Here we appended it ourselves.)
            self._become(Role.FOLLOWER, None)
            self.last_heard = now
            if self.me not in cfg.learners:
                self._set_removed()
            return
        if self.target is not None:
            self._step_reconfig(now)

    # --- time ----------------------------------------------------------------------------

    def _leader_tick(self: Replica, now: float) -> None:
        cfg = self.log.config
        heard = [n for n, pr in self._progress.items()
                 if now - pr.last_ack < self.cfg.leader_timeout_s] + [self.me]
        if not quorum.is_majority(heard, cfg.voters) and self.me in cfg.voters:
            # Check quorum: a leader cut off from a majority stops claiming the shard so
            # clients and the ring move on (its writes could not commit anyway).
            self._become(Role.FOLLOWER, None)
            self.last_heard = now
            return
        self._silent = frozenset(n for n, pr in self._progress.items()
                                 if now - pr.last_ack >= self.cfg.compact_silent_s)
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.cfg.heartbeat_interval_s
        for peer, pr in self._progress.items():
            if pr.flow is Flow.REPLICATE and pr.inflight and \
                    now - pr.progress_at >= 2 * self.cfg.heartbeat_interval_s:
                pr.to_probe(pr.match + 1)  # an append or its ack was lost
            if pr.flow is Flow.SNAPSHOT and now - pr.snapshot_at >= self.cfg.snapshot_timeout_s:
                pr.snapshot_at = now
                assert self._out is not None
                self._out.snapshot_to.append(peer)
            self._replicate(peer, pr, now, heartbeat=True)
        if self.target is not None:
            self._step_reconfig(now)

    def _leader_finish(self: Replica) -> None:
        """End of every call while leading: compaction point and reads now servable."""
        voters = self.log.config.voters
        heard = [pr.applied for n, pr in self._progress.items()
                 if n in voters and n not in self._silent]
        hint = min(heard + [self.applied])
        silent = [pr.applied for n, pr in self._progress.items()
                  if n in voters and n in self._silent]
        if silent:
            hint = min(hint, max(min(silent), self.applied - self.cfg.compact_retain_entries))
        self.compact_hint = hint
        if not self._reads:
            return
        seqs = {n: pr.read_seq for n, pr in self._progress.items()}
        seqs[self.me] = self._read_seq
        confirmed = quorum.committed_index(seqs, voters)
        assert self._out is not None
        while self._reads and self._reads[0][0] <= confirmed and \
                self._reads[0][1] <= self.applied_emitted:
            _, index, ctx = self._reads.popleft()
            self._out.reads.append(ReadReady(ctx, index))

    def _read(self: Replica, ctx: Any, now: float) -> None:
        self._read_seq += 1
        self._reads.append((self._read_seq, self.commit, ctx))
        for peer, pr in self._progress.items():
            if peer in self.log.config.voters:
                known = pr.match if self.log.epoch_at(pr.match) is not None else 0
                self._send_append(peer, pr, known, now, empty=True)

    # --- membership ----------------------------------------------------------------------

    def _step_reconfig(self: Replica, now: float) -> None:
        """Append the next single-node config change, if one may start now."""
        if not self.serving or self.target is None or self.log.config_index > self.commit:
            return  # one change at a time, and only after our no-op (Ongaro's fix)
        lag = self.cfg.learner_lag_entries

        def caught_up(n: NodeId) -> bool:
            pr = self._progress.get(n)
            return pr is not None and pr.flow is Flow.REPLICATE and pr.match + lag >= self.commit

        new = next_config(self.log.config, self.target, self.me, caught_up)
        if new is None:
            return
        entry = wire.ReplEntry(epoch=self.promised, index=self.log.last_index + 1,
                               kind=wire.EntryKind.CONFIG, config=new)
        self._append_local(entry, now)
        self._broadcast(now)
