"""Candidate side of a shard replica: Prepare, promises, catch-up (DESIGN §4 "Takeover").

Owns: one campaign. The candidate picks an epoch above everything it has promised, asks
the voters of its config to promise it, and once a majority of voters has promised it
adopts the most advanced log among them (highest (last epoch, last index), as in Raft's
up-to-date rule), fetching the missing suffix from that member page by page (or, when it
has compacted past what we need, its snapshot and then the pages after it). A promise
freezes the promiser's log against lower epochs, so the fetched log is exactly what it
promised with. Any log at least that advanced holds every committed entry (Raft's leader
completeness argument applies unchanged: the adopted log is that of a member whom the
whole majority would have voted for).

Membership: the config that counts is the one in the *adopted* log, as in Raft where a
candidate counts votes against its own latest config. If catching up reveals a newer
config, the candidate asks its new voters and repeats until a majority of the config in
its log has promised. If that config no longer has this node as a voter, it gives up.

Shape: a :class:`Candidate` lives for one campaign (etcd/raft's ``stepCandidate``); the
replica creates it when it campaigns, hands it the candidate's messages and ticks, and
drops it on any role change. It acts on the replica only through
:class:`~shoal.node.replication.role_base.ReplicaCore`.

Must not: import ``core`` or ``leader`` (winning is ``ReplicaCore.become_leader``), or
keep anything across campaigns (the replica keeps the epoch counters it has seen).
"""


from __future__ import annotations

from shoal import wire
from shoal.node.replication import quorum
from shoal.node.replication.role_base import ReplicaCore
from shoal.node.replication.types import NodeId, Role, SnapshotInstall, SnapshotMeta


class Candidate:
    """One campaign of a replica, from its first Prepare until it leads or gives up.

    Args:
        replica: the replica campaigning (already in the candidate role).
        epoch: the epoch it campaigns for.
        now: when the campaign starts.
    """

    def __init__(self, replica: ReplicaCore, epoch: wire.Epoch, now: float) -> None:
        self.replica = replica
        self.epoch = epoch
        self.progress_at = now  # when the campaign last got anywhere (it gives up when it stops)
        # (last epoch, last index) each promiser answered; ours is refreshed as we catch up.
        self.promises: dict[NodeId, tuple[wire.Epoch, int]] = {}
        self.asked: list[NodeId] = [replica.me]
        self.max_commit = replica.commit  # highest commit index any promiser reported
        # Our own promise is made (persisted) only once the others' promises would give us
        # a majority with it. Until then we keep following whoever leads, so a node with a
        # stale config that keeps campaigning in vain never raises its epoch and disrupts
        # the real leader (the problem Raft's pre-vote solves). Reusing an epoch we never
        # promised ourselves is safe: nothing was ever appended at it.
        self.self_promised = False
        self.refused: list[NodeId] = []
        self.source: NodeId | None = None  # the member we are catching up from
        self.target_last = 0  # its last index when it promised
        self.next_from = 0  # next index to ask it for
        self.sent_at = 0.0  # when the last CatchUp went out (for the retransmit)
        self.snapshot_until = 0.0  # the source is sending a snapshot: wait for it until then
        # The pre-vote comes first: voters that said they would promise (we count
        # ourselves). Only once a majority would do we ask for real, so a campaign that
        # cannot win never raises anyone's promise.
        self.pre = True
        self.pre_votes: list[NodeId] = [replica.me]

    def start(self, now: float) -> None:
        """Send the pre-vote round (or go straight on if we alone are a majority)."""
        self._pre_vote_advance(now)

    def _pre_vote_advance(self, now: float) -> None:
        """Ask for real once a majority of voters would promise; until then ask them."""
        assert self.pre
        r = self.replica
        voters = r.log.config.voters
        if quorum.is_majority([n for n in self.pre_votes if n in voters], voters):
            self.pre = False
            self.asked, self.refused = [r.me], []
            self.progress_at = now
            self.advance(now)
        else:
            self._prepare_voters()

    def _prepare_voters(self) -> None:
        """Send Prepare to every voter of the current config not asked yet."""
        r = self.replica
        for n in r.log.config.voters:
            if n not in self.asked:
                self.asked.append(n)
                r.send(n, self._prepare_message())

    def _prepare_message(self) -> wire.Prepare:
        r = self.replica
        return wire.Prepare(shard=r.shard, epoch=self.epoch, pre=self.pre,
                            last_epoch=r.log.last_epoch, last_index=r.log.last_index)

    def tick(self, now: float) -> None:
        """Give up when the campaign stalls; otherwise retransmit what may be lost."""
        r = self.replica
        if now >= max(self.progress_at + r.cfg.prepare_timeout_s, self.snapshot_until):
            r.become(Role.FOLLOWER, None)  # the fallback or the ring will try again
            r.last_heard = now
            return
        # Messages get lost: ask again whoever has not answered, or the catch-up source
        # (unless it is sending us a snapshot).
        if self.source is not None:
            if now - self.sent_at >= r.cfg.heartbeat_interval_s and \
                    now >= self.snapshot_until:
                self._request_catch_up(now)
            return
        answered = self.pre_votes + self.refused if self.pre else self.promises
        for n in self.asked:
            if n != r.me and n not in answered:
                r.send(n, self._prepare_message())

    def on_promise(self, src: NodeId, m: wire.Promise, now: float) -> None:
        """A (pre-)vote answer; the replica has noted the epoch counter it names."""
        r = self.replica
        if m.pre:
            if self.pre and m.epoch == self.epoch and src not in self.pre_votes + self.refused:
                if m.ok:
                    self.pre_votes.append(src)
                    self.progress_at = now
                    self._pre_vote_advance(now)
                else:
                    # Nothing to adopt: a refusal changed nobody's state, and the next
                    # campaign picks an epoch above the one it names (seen_counter).
                    self._count_refusal(src, now)
            return
        if m.promised > r.promised and m.promised != self.epoch:
            r.observe_higher(m.promised, now)
            return
        if m.epoch == self.epoch and not m.ok and src not in self.refused:
            self._count_refusal(src, now)
            return
        if m.epoch != self.epoch or not m.ok or src in self.promises:
            return
        self.promises[src] = (m.last_epoch, m.last_index)
        self.max_commit = max(self.max_commit, m.commit)
        self.progress_at = now
        self.advance(now)

    def _count_refusal(self, src: NodeId, now: float) -> None:
        r = self.replica
        self.refused.append(src)
        voters = r.log.config.voters
        if sum(1 for n in self.refused if n in voters) > len(voters) - \
                quorum.majority(len(voters)):
            # A majority refused (most likely our config is stale and they no longer
            # count us as a voter): give up now rather than at the timeout, so we
            # go back to following the leader, who can bring us up to date.
            r.become(Role.FOLLOWER, None)
            r.last_heard = now

    def advance(self, now: float) -> None:
        """Lead, catch up, or ask more voters, depending on what has been promised."""
        r = self.replica
        if self.source is not None:
            return  # catching up; we come back here when it is done
        cfg = r.log.config
        if r.me not in cfg.voters:
            r.become(Role.FOLLOWER, None)  # the adopted log removed us
            return
        mine = (r.log.last_epoch, r.log.last_index)
        self.promises[r.me] = mine
        voters = [n for n in self.promises if n in cfg.voters]
        if not quorum.is_majority(voters, cfg.voters):
            self._prepare_voters()
            return
        if not self.self_promised:
            if self.epoch <= r.promised:  # we promised someone else meanwhile
                r.become(Role.FOLLOWER, None)
                return
            r.set_promised(self.epoch)  # durable before anything below is sent
            self.self_promised = True
            mine = (r.log.last_epoch, r.log.last_index)
            self.promises[r.me] = mine
        # Most advanced voter that promised; ties go to us (nothing to fetch).
        best = max(voters, key=lambda n: (self.promises[n], n == r.me))
        if self.promises[best] <= mine:
            # Anything a promiser reported committed is in our (maximal) log.
            r.commit = max(r.commit, min(self.max_commit, r.log.last_index))
            r.become_leader(now)
            return
        self.source = best
        self.target_last = self.promises[best][1]
        # Our committed prefix equals everyone's, so fetch from just after it.
        self.next_from = r.commit + 1
        self._request_catch_up(now)

    def _request_catch_up(self, now: float) -> None:
        assert self.source is not None
        self.sent_at = now
        r = self.replica
        r.send(self.source, wire.CatchUp(shard=r.shard, epoch=self.epoch,
                                         from_index=self.next_from))

    def on_catch_up_reply(self, src: NodeId, m: wire.CatchUpReply, now: float) -> None:
        """A page of the source's log (or word that a snapshot comes instead); the replica
        has already stepped down if it names a higher promise."""
        r = self.replica
        if m.epoch != self.epoch or src != self.source:
            return
        if not m.ok:
            if m.snapshot:
                # It compacted past the entries we asked for and sends its applied state
                # instead (committed, so equal to every member's prefix up to there).
                self.snapshot_until = max(self.snapshot_until,
                                          now + r.cfg.snapshot_timeout_s)
                self.progress_at = now
                return
            r.become(Role.FOLLOWER, None)
            r.last_heard = now
            return
        if m.entries and m.entries[0].index != self.next_from:
            return  # a duplicate or stale page
        assert m.last_index == self.target_last, "promiser's log moved after its promise"
        r.store(list(m.entries))
        if m.entries:
            self.next_from = m.entries[-1].index + 1
            self.progress_at = now
        self._fetched(now)

    def on_install(self, src: NodeId, m: wire.InstallSnapshot, now: float) -> None:
        """The catch-up source's applied state as of ``m.index``: adopt it as our log's
        base (replacing the state and the whole log), then fetch the entries after it."""
        r = self.replica
        assert r.out is not None
        if src != self.source or m.index < self.next_from or m.index > self.target_last:
            return  # a duplicate, or from a member we no longer fetch from
        assert not r.out.persist
        meta = SnapshotMeta(m.index, m.snap_epoch, m.config)
        r.out.install = SnapshotInstall(meta, m.data)
        r.log.reset(meta)
        # The install is durable before anything this call sends (Output order).
        r.persisted = r.commit = r.applied = r.applied_emitted = m.index
        self.next_from = m.index + 1
        self.snapshot_until = 0.0
        self.progress_at = now
        self._fetched(now)

    def _fetched(self, now: float) -> None:
        """After a page or a snapshot from the source: fetch more, or lead."""
        assert self.source is not None
        if self.next_from <= self.target_last:
            self._request_catch_up(now)
            return
        r = self.replica
        src = self.source
        # Our log now equals the source's as of its promise; a longer tail of ours would
        # have made us the most advanced, so there is none.
        assert r.log.last_index == self.target_last, (r.log.last_index, self.target_last)
        assert (r.log.last_epoch, r.log.last_index) == self.promises[src]
        self.source = None
        self.advance(now)
