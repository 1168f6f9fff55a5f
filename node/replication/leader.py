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

Shape: a :class:`Leader` lives for one term (etcd/raft's ``stepLeader``): the replica
creates it when a campaign wins, hands it acks, proposals, reads, ticks and snapshots, and
drops it, failing its pending reads, the moment it stops leading. It acts on the replica
only through :class:`~shoal.node.replication.role_base.ReplicaCore`.

Must not: import ``core`` or ``candidate``, or outlive its term (a new term starts from
fresh progress, so nothing a deposed leader learned is trusted).
"""


from __future__ import annotations

from collections import deque
from typing import Any

from shoal import wire
from shoal.node.replication import quorum
from shoal.node.replication.membership import next_config
from shoal.node.replication.progress import Flow, Progress
from shoal.node.replication.role_base import ReplicaCore
from shoal.node.replication.types import NodeId, ReadReady, Role, cap_bytes


class Leader:
    """One term of a replica as its shard's leader.

    Args:
        replica: the replica that just became leader (role LEADER, its epoch promised).
    """

    def __init__(self, replica: ReplicaCore) -> None:
        self.replica = replica
        self.progress: dict[NodeId, Progress] = {}
        self.serving = False  # our own-epoch no-op has committed
        self.noop_index = 0
        self.reads: deque[tuple[int, int, Any]] = deque()  # (seq, read index, ctx)
        self.read_seq = 0
        self.next_heartbeat = 0.0
        self.silent: frozenset[NodeId] = frozenset()  # voters ignored for compaction
        # Members a config entry of ours removed, by its index: told once it commits.
        self.dropped: dict[NodeId, int] = {}

    def start(self, now: float) -> None:
        """Track the config's members and append our no-op (we serve once it commits)."""
        r = self.replica
        self._sync_progress(now)
        noop = wire.ReplEntry(epoch=r.promised, index=r.log.last_index + 1,
                              kind=wire.EntryKind.NOOP)
        self.noop_index = noop.index
        self._append_local(noop, now)
        self.next_heartbeat = now + r.cfg.heartbeat_interval_s
        self._broadcast(now)

    def drop(self) -> None:
        """The term is over: every pending read fails (its outcome is unknown)."""
        r = self.replica
        assert r.out is not None
        r.out.read_failures.extend(ctx for _, _, ctx in self.reads)
        self.reads.clear()

    def _sync_progress(self, now: float) -> None:
        """Track exactly the members of the latest config (it is in effect once appended)."""
        r = self.replica
        cfg = r.log.config
        peers = [n for n in cfg.voters + cfg.learners if n != r.me]
        for n in peers:
            if n not in self.progress:
                self.progress[n] = Progress(next=r.log.last_index + 1, last_ack=now,
                                            progress_at=now)
        for n in [n for n in self.progress if n not in peers]:
            del self.progress[n]
            self.dropped[n] = r.log.config_index
        for n in peers:
            self.dropped.pop(n, None)

    def _append_local(self, entry: wire.ReplEntry, now: float) -> None:
        r = self.replica
        assert entry.index == r.log.last_index + 1 and entry.epoch == r.promised
        new = r.log.append([entry], floor=r.commit)
        assert new == [entry] and r.out is not None
        r.out.persist.append(entry)
        if entry.kind is wire.EntryKind.CONFIG:
            self._sync_progress(now)

    def propose(self, payload: Any, now: float) -> int:
        """Append ``payload`` at our epoch and ship it; returns its index."""
        r = self.replica
        entry = wire.ReplEntry(epoch=r.promised, index=r.log.last_index + 1,
                               payload=payload)
        self._append_local(entry, now)
        self._broadcast(now)
        return entry.index

    # --- sending -------------------------------------------------------------------------

    def _broadcast(self, now: float) -> None:
        for peer, pr in self.progress.items():
            self._replicate(peer, pr, now, heartbeat=False)

    def _replicate(self, peer: NodeId, pr: Progress, now: float, heartbeat: bool) -> None:
        """Send ``peer`` what flow control allows; a heartbeat always sends something."""
        r = self.replica
        if pr.flow is Flow.SNAPSHOT:
            if heartbeat:  # keep it from campaigning while the snapshot travels
                self._send_append(peer, pr, 0, now, empty=True)
            return
        if pr.flow is Flow.PROBE:
            if not pr.probe_sent or heartbeat:
                pr.probe_sent = self._send_append(peer, pr, pr.next - 1, now)
            return
        sent = False
        while len(pr.inflight) < r.cfg.max_inflight and pr.next <= r.log.last_index:
            if not self._send_append(peer, pr, pr.next - 1, now):
                return
            sent = True
        if heartbeat and not sent:
            known = pr.match if r.log.epoch_at(pr.match) is not None else 0
            self._send_append(peer, pr, known, now, empty=True)

    def _send_append(self, peer: NodeId, pr: Progress, prev: int, now: float,
                     empty: bool = False) -> bool:
        """Send entries after ``prev``; False (and ask for a snapshot) if compacted."""
        r = self.replica
        prev_epoch = r.log.epoch_at(prev)
        if prev_epoch is None or (prev < r.log.snap_index and not empty):
            # The entries after prev are compacted away: only a snapshot can help.
            pr.to_snapshot(now)
            assert r.out is not None
            r.out.snapshot_to.append(peer)
            return False
        entries = [] if empty else cap_bytes(
            r.log.slice(prev + 1, prev + r.cfg.append_entries_max), r.cfg.append_bytes_max)
        if entries and pr.flow is Flow.REPLICATE:
            pr.inflight.append(entries[-1].index)
            pr.next = entries[-1].index + 1
        r.send(peer, wire.Append(
            shard=r.shard, epoch=r.promised, prev_epoch=prev_epoch, prev_index=prev,
            entries=entries, commit=r.commit, compact=r.compact_hint, read_seq=self.read_seq))
        return True

    def ship_snapshot(self, peer: NodeId, index: int, data: Any, now: float) -> None:
        """Send ``peer`` the snapshot the driver made for it, if it still waits for one."""
        r = self.replica
        pr = self.progress.get(peer)
        if r.role is not Role.LEADER or pr is None or pr.flow is not Flow.SNAPSHOT:
            return
        epoch = r.log.epoch_at(index)
        assert epoch is not None and index <= r.applied_emitted, "snapshot not applied"
        pr.snapshot_at = now
        r.send(peer, wire.InstallSnapshot(
            shard=r.shard, epoch=r.promised, index=index, snap_epoch=epoch,
            config=r.log.config_at(index), data=data))

    # --- receiving -----------------------------------------------------------------------

    def on_append_ack(self, src: NodeId, m: wire.AppendAck, now: float) -> None:
        """A follower's answer; the replica has already stepped down if it names a higher
        epoch."""
        r = self.replica
        pr = self.progress.get(src)
        if r.role is not Role.LEADER or m.epoch != r.promised or pr is None:
            return  # stale: an older epoch of ours, or a member we no longer track
        pr.last_ack = now
        pr.applied = max(pr.applied, m.applied)
        pr.read_seq = max(pr.read_seq, m.read_seq)
        if m.ok:
            if pr.on_match(m.match, now):
                self.maybe_commit(now)
        elif m.reject_index > pr.match and pr.flow is not Flow.SNAPSHOT:
            # A log mismatch at reject_index (a stale reject is at or below match).
            pr.to_probe(max(pr.match + 1, min(m.reject_index, m.hint_index + 1)))
        if r.role is Role.LEADER:  # committing may have handed leadership over
            self._replicate(src, pr, now, heartbeat=False)
            if r.target is not None:
                self.step_reconfig(now)

    def maybe_commit(self, now: float) -> None:
        """Advance the commit index to what a majority of voters has persisted."""
        r = self.replica
        cfg = r.log.config
        match = {n: pr.match for n, pr in self.progress.items()}
        match[r.me] = r.persisted
        index = quorum.committed_index(match, cfg.voters)
        # Only an entry of our own epoch is committed by counting (Raft §5.4.2); the ones
        # before it commit with it.
        if index <= r.commit or r.log.epoch_at(index) != r.promised:
            return
        r.commit = index
        for n, at in [(n, at) for n, at in self.dropped.items() if at <= index]:
            del self.dropped[n]
            r.send(n, wire.Removed(shard=r.shard, epoch=r.promised, config_index=at))
        if not self.serving and r.commit >= self.noop_index:
            self.serving = True
            r.emit()
        if r.me not in cfg.voters and r.commit >= r.log.config_index:
            # Our removal is committed: hand over. (A config without us that we hold
            # committed does not mean removal in general: a joiner's snapshot may predate
            # the entry that adds it. Here we appended it ourselves.)
            r.become(Role.FOLLOWER, None)
            r.last_heard = now
            if r.me not in cfg.learners:
                r.set_removed()
            return
        if r.target is not None:
            self.step_reconfig(now)

    # --- time ----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Check quorum, then heartbeat (and retransmit) on schedule."""
        r = self.replica
        cfg = r.log.config
        heard = [n for n, pr in self.progress.items()
                 if now - pr.last_ack < r.cfg.leader_timeout_s] + [r.me]
        if not quorum.is_majority(heard, cfg.voters) and r.me in cfg.voters:
            # Check quorum: a leader cut off from a majority stops claiming the shard so
            # clients and the ring move on (its writes could not commit anyway).
            r.become(Role.FOLLOWER, None)
            r.last_heard = now
            return
        self.silent = frozenset(n for n, pr in self.progress.items()
                                if now - pr.last_ack >= r.cfg.compact_silent_s)
        if now < self.next_heartbeat:
            return
        self.next_heartbeat = now + r.cfg.heartbeat_interval_s
        for peer, pr in self.progress.items():
            if pr.flow is Flow.REPLICATE and pr.inflight and \
                    now - pr.progress_at >= 2 * r.cfg.heartbeat_interval_s:
                pr.to_probe(pr.match + 1)  # an append or its ack was lost
            if pr.flow is Flow.SNAPSHOT and now - pr.snapshot_at >= r.cfg.snapshot_timeout_s:
                pr.snapshot_at = now
                assert r.out is not None
                r.out.snapshot_to.append(peer)
            self._replicate(peer, pr, now, heartbeat=True)
        if r.target is not None:
            self.step_reconfig(now)

    def finish(self) -> None:
        """End of every call while leading: compaction point and reads now servable."""
        r = self.replica
        voters = r.log.config.voters
        heard = [pr.applied for n, pr in self.progress.items()
                 if n in voters and n not in self.silent]
        hint = min(heard + [r.applied])
        silent = [pr.applied for n, pr in self.progress.items()
                  if n in voters and n in self.silent]
        if silent:
            hint = min(hint, max(min(silent), r.applied - r.cfg.compact_retain_entries))
        r.compact_hint = hint
        if not self.reads:
            return
        seqs = {n: pr.read_seq for n, pr in self.progress.items()}
        seqs[r.me] = self.read_seq
        confirmed = quorum.committed_index(seqs, voters)
        assert r.out is not None
        while self.reads and self.reads[0][0] <= confirmed and \
                self.reads[0][1] <= r.applied_emitted:
            _, index, ctx = self.reads.popleft()
            r.out.reads.append(ReadReady(ctx, index))

    def read(self, ctx: Any, now: float) -> None:
        """Take the commit index for ``ctx`` and send the heartbeat that confirms it."""
        r = self.replica
        self.read_seq += 1
        self.reads.append((self.read_seq, r.commit, ctx))
        for peer, pr in self.progress.items():
            if peer in r.log.config.voters:
                known = pr.match if r.log.epoch_at(pr.match) is not None else 0
                self._send_append(peer, pr, known, now, empty=True)

    # --- membership ----------------------------------------------------------------------

    def step_reconfig(self, now: float) -> None:
        """Append the next single-node config change, if one may start now."""
        r = self.replica
        if not r.serving or r.target is None or r.log.config_index > r.commit:
            return  # one change at a time, and only after our no-op (Ongaro's fix)
        lag = r.cfg.learner_lag_entries

        def caught_up(n: NodeId) -> bool:
            pr = self.progress.get(n)
            return pr is not None and pr.flow is Flow.REPLICATE and pr.match + lag >= r.commit

        new = next_config(r.log.config, r.target, r.me, caught_up)
        if new is None:
            return
        entry = wire.ReplEntry(epoch=r.promised, index=r.log.last_index + 1,
                               kind=wire.EntryKind.CONFIG, config=new)
        self._append_local(entry, now)
        self._broadcast(now)
