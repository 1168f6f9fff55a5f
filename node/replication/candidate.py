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

Must not: be used alone; it is a mixin of :class:`shoal.node.replication.core.Replica`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shoal import wire
from shoal.node.replication import quorum
from shoal.node.replication.types import NodeId, Role, SnapshotInstall, SnapshotMeta

if TYPE_CHECKING:
    from shoal.node.replication.core import Replica


@dataclass(slots=True)
class Candidacy:
    """State of one campaign."""

    epoch: wire.Epoch
    progress_at: float  # when the campaign last got anywhere (it gives up when it stops)
    # (last epoch, last index) each promiser answered; ours is refreshed as we catch up.
    promises: dict[NodeId, tuple[wire.Epoch, int]] = field(default_factory=dict)
    asked: list[NodeId] = field(default_factory=list)
    max_commit: int = 0  # highest commit index any promiser reported
    # Our own promise is made (persisted) only once the others' promises would give us a
    # majority with it. Until then we keep following whoever leads, so a node with a stale
    # config that keeps campaigning in vain never raises its epoch and disrupts the
    # real leader (the problem Raft's pre-vote solves). Reusing an epoch we never
    # promised ourselves is safe: nothing was ever appended at it.
    self_promised: bool = False
    refused: list[NodeId] = field(default_factory=list)
    source: NodeId | None = None  # the member we are catching up from
    target_last: int = 0  # its last index when it promised
    next_from: int = 0  # next index to ask it for
    sent_at: float = 0.0  # when the last CatchUp went out (for the retransmit)
    snapshot_until: float = 0.0  # the source is sending a snapshot: wait for it until then
    # The pre-vote comes first: voters that said they would promise (we count ourselves).
    # Only once a majority would do we ask for real, so a campaign that cannot win never
    # raises anyone's promise.
    pre: bool = True
    pre_votes: list[NodeId] = field(default_factory=list)


class CandidateMixin:
    """Campaign handling for :class:`Replica`."""

    def _campaign(self: Replica, now: float) -> None:
        if self.role is not Role.FOLLOWER or not self.is_voter:
            return
        epoch = wire.Epoch(max(self.promised.counter, self._seen_counter) + 1, self.me)
        self.leader_epoch, self.leader_match, self.last_acked = None, 0, -1
        self._become(Role.CANDIDATE, None)
        self._cand = Candidacy(epoch, progress_at=now, asked=[self.me],
                               max_commit=self.commit, pre_votes=[self.me])
        self._pre_vote_advance(now)

    def _pre_vote_advance(self: Replica, now: float) -> None:
        """Ask for real once a majority of voters would promise; until then ask them."""
        cand = self._cand
        assert cand is not None and cand.pre
        voters = self.log.config.voters
        if quorum.is_majority([n for n in cand.pre_votes if n in voters], voters):
            cand.pre = False
            cand.asked, cand.refused = [self.me], []
            cand.progress_at = now
            self._cand_advance(now)
        else:
            self._prepare_voters()

    def _prepare_voters(self: Replica) -> None:
        """Send Prepare to every voter of the current config not asked yet."""
        cand = self._cand
        assert cand is not None
        for n in self.log.config.voters:
            if n not in cand.asked:
                cand.asked.append(n)
                self._send(n, self._prepare_message())

    def _prepare_message(self: Replica) -> wire.Prepare:
        cand = self._cand
        assert cand is not None
        return wire.Prepare(shard=self.shard, epoch=cand.epoch, pre=cand.pre,
                            last_epoch=self.log.last_epoch, last_index=self.log.last_index)

    def _candidate_tick(self: Replica, now: float) -> None:
        cand = self._cand
        assert cand is not None
        if now >= max(cand.progress_at + self.cfg.prepare_timeout_s, cand.snapshot_until):
            self._become(Role.FOLLOWER, None)  # the fallback or the ring will try again
            self.last_heard = now
            return
        # Messages get lost: ask again whoever has not answered, or the catch-up source
        # (unless it is sending us a snapshot).
        if cand.source is not None:
            if now - cand.sent_at >= self.cfg.heartbeat_interval_s and \
                    now >= cand.snapshot_until:
                self._request_catch_up(now)
            return
        answered = cand.pre_votes + cand.refused if cand.pre else cand.promises
        for n in cand.asked:
            if n != self.me and n not in answered:
                self._send(n, self._prepare_message())

    def _on_promise(self: Replica, src: NodeId, m: wire.Promise, now: float) -> None:
        self._seen_counter = max(self._seen_counter, m.promised.counter)
        cand = self._cand
        if m.pre:
            if cand is not None and cand.pre and m.epoch == cand.epoch and \
                    src not in cand.pre_votes + cand.refused:
                if m.ok:
                    cand.pre_votes.append(src)
                    cand.progress_at = now
                    self._pre_vote_advance(now)
                else:
                    # Nothing to adopt: a refusal changed nobody's state, and the next
                    # campaign picks an epoch above the one it names (_seen_counter).
                    self._count_refusal(src, now)
            return
        if m.promised > self.promised and (cand is None or m.promised != cand.epoch):
            self._observe_higher(m.promised, now)
            return
        if cand is not None and m.epoch == cand.epoch and not m.ok and src not in cand.refused:
            self._count_refusal(src, now)
            return
        if cand is None or m.epoch != cand.epoch or not m.ok or src in cand.promises:
            return
        cand.promises[src] = (m.last_epoch, m.last_index)
        cand.max_commit = max(cand.max_commit, m.commit)
        cand.progress_at = now
        self._cand_advance(now)

    def _count_refusal(self: Replica, src: NodeId, now: float) -> None:
        cand = self._cand
        assert cand is not None
        cand.refused.append(src)
        voters = self.log.config.voters
        if sum(1 for n in cand.refused if n in voters) > len(voters) - \
                quorum.majority(len(voters)):
            # A majority refused (most likely our config is stale and they no longer
            # count us as a voter): give up now rather than at the timeout, so we
            # go back to following the leader, who can bring us up to date.
            self._become(Role.FOLLOWER, None)
            self.last_heard = now

    def _cand_advance(self: Replica, now: float) -> None:
        """Lead, catch up, or ask more voters, depending on what has been promised."""
        cand = self._cand
        assert cand is not None
        if cand.source is not None:
            return  # catching up; we come back here when it is done
        cfg = self.log.config
        if self.me not in cfg.voters:
            self._become(Role.FOLLOWER, None)  # the adopted log removed us
            return
        mine = (self.log.last_epoch, self.log.last_index)
        cand.promises[self.me] = mine
        voters = [n for n in cand.promises if n in cfg.voters]
        if not quorum.is_majority(voters, cfg.voters):
            self._prepare_voters()
            return
        if not cand.self_promised:
            if cand.epoch <= self.promised:  # we promised someone else meanwhile
                self._become(Role.FOLLOWER, None)
                return
            self._set_promised(cand.epoch)  # durable before anything below is sent
            cand.self_promised = True
            mine = (self.log.last_epoch, self.log.last_index)
            cand.promises[self.me] = mine
        # Most advanced voter that promised; ties go to us (nothing to fetch).
        best = max(voters, key=lambda n: (cand.promises[n], n == self.me))
        if cand.promises[best] <= mine:
            # Anything a promiser reported committed is in our (maximal) log.
            self.commit = max(self.commit, min(cand.max_commit, self.log.last_index))
            self._become_leader(now)
            return
        cand.source = best
        cand.target_last = cand.promises[best][1]
        # Our committed prefix equals everyone's, so fetch from just after it.
        cand.next_from = self.commit + 1
        self._request_catch_up(now)

    def _request_catch_up(self: Replica, now: float) -> None:
        cand = self._cand
        assert cand is not None and cand.source is not None
        cand.sent_at = now
        self._send(cand.source, wire.CatchUp(shard=self.shard, epoch=cand.epoch,
                                             from_index=cand.next_from))

    def _on_catch_up_reply(self: Replica, src: NodeId, m: wire.CatchUpReply,
                           now: float) -> None:
        if m.promised > self.promised:
            self._observe_higher(m.promised, now)
            return
        cand = self._cand
        if cand is None or m.epoch != cand.epoch or src != cand.source:
            return
        if not m.ok:
            if m.snapshot:
                # It compacted past the entries we asked for and sends its applied state
                # instead (committed, so equal to every member's prefix up to there).
                cand.snapshot_until = max(cand.snapshot_until,
                                          now + self.cfg.snapshot_timeout_s)
                cand.progress_at = now
                return
            self._become(Role.FOLLOWER, None)
            self.last_heard = now
            return
        if m.entries and m.entries[0].index != cand.next_from:
            return  # a duplicate or stale page
        assert m.last_index == cand.target_last, "promiser's log moved after its promise"
        self._store(list(m.entries))
        if m.entries:
            cand.next_from = m.entries[-1].index + 1
            cand.progress_at = now
        self._cand_fetched(now)

    def _cand_install(self: Replica, src: NodeId, m: wire.InstallSnapshot, now: float) -> None:
        """The catch-up source's applied state as of ``m.index``: adopt it as our log's
        base (replacing the state and the whole log), then fetch the entries after it."""
        cand = self._cand
        assert cand is not None and self._out is not None
        if src != cand.source or m.index < cand.next_from or m.index > cand.target_last:
            return  # a duplicate, or from a member we no longer fetch from
        assert not self._out.persist
        meta = SnapshotMeta(m.index, m.snap_epoch, m.config)
        self._out.install = SnapshotInstall(meta, m.data)
        self.log.reset(meta)
        # The install is durable before anything this call sends (Output order).
        self.persisted = self.commit = self.applied = self.applied_emitted = m.index
        cand.next_from = m.index + 1
        cand.snapshot_until = 0.0
        cand.progress_at = now
        self._cand_fetched(now)

    def _cand_fetched(self: Replica, now: float) -> None:
        """After a page or a snapshot from the source: fetch more, or lead."""
        cand = self._cand
        assert cand is not None and cand.source is not None
        if cand.next_from <= cand.target_last:
            self._request_catch_up(now)
            return
        src = cand.source
        # Our log now equals the source's as of its promise; a longer tail of ours would
        # have made us the most advanced, so there is none.
        assert self.log.last_index == cand.target_last, (self.log.last_index, cand.target_last)
        assert (self.log.last_epoch, self.log.last_index) == cand.promises[src]
        cand.source = None
        self._cand_advance(now)
