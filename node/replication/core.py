"""Sans-IO consensus core of one shard replica (DESIGN §4): epochs, log, commit, roles.

Owns: the replica's role, its promise (epoch), its log view, commit and apply indexes, and
the follower side of the protocol (Prepare -> Promise, Append -> AppendAck, CatchUp,
InstallSnapshot). The candidate side is a ``candidate.Candidate`` (one per campaign) and
the leader side a ``leader.Leader`` (one per term), as etcd/raft steps each role with its
own function: :class:`Replica` dispatches each input to the role object it has, and they
act on it through ``role_base.ReplicaCore``, the fields and moves all roles share.

Inputs are a message, a tick, "persisted up to (epoch, index)" and "applied up to index",
always with ``now``; each returns an :class:`Output` (see ``types.py`` for the order in
which the driver must carry it out). Must not: do I/O, read clocks, use global random,
import trio, or look inside entry payloads.

The protocol is Multi-Paxos with Raft's log rules. Leadership is driven from outside: the
driver calls :meth:`Replica.campaign` when the ring names this node; a follower that hears
no leader for long also campaigns (the fallback), later the lower it sits in the ring.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Callable

from shoal import wire
from shoal.node.replication.candidate import Candidate
from shoal.node.replication.leader import Leader
from shoal.node.replication.log import LogView
from shoal.node.replication.types import (
    NodeId, Output, PersistedState, ReplicaConfig, Role, RoleChanged, SnapshotInstall,
    SnapshotMeta, cap_bytes,
)

log = logging.getLogger(__name__)

F, C, L = Role.FOLLOWER, Role.CANDIDATE, Role.LEADER
_LEGAL = {(F, F), (F, C), (C, F), (C, L), (L, F)}


class Replica:
    """One member's replica of one shard's log.

    Args:
        me: this node's id.
        shard: the shard id (stamped on every message).
        cfg: timing and batching.
        rng: the only randomness (fallback jitter); seed it in tests and simulations.
        state: what the driver made durable before a restart; None for a fresh replica.
        candidate_role: makes the object that runs one campaign (tests inject bugs here).
        leader_role: makes the object that runs one term as leader (likewise).
    """

    def __init__(self, me: NodeId, shard: int, cfg: ReplicaConfig, rng: random.Random,
                 state: PersistedState | None = None, *,
                 candidate_role: Callable[[Replica, wire.Epoch, float], Candidate] = Candidate,
                 leader_role: Callable[[Replica], Leader] = Leader) -> None:
        st = state or PersistedState()
        self.me, self.shard, self.cfg, self.rng = me, shard, cfg, rng
        self.promised = st.promised  # highest epoch promised; persisted before it is used
        self.log = LogView(st.snapshot, st.entries)
        assert st.applied >= self.log.snap_index and st.applied <= self.log.last_index
        self.persisted = self.log.last_index  # all of a restarted log is durable
        self.applied = st.applied  # durable in the shard's state (driver confirmed)
        self.applied_emitted = st.applied  # handed to the driver in Output.apply
        self.commit = st.applied  # the rest is learned again from a leader
        self.role = F
        self.leader: NodeId | None = None
        self.leader_epoch: wire.Epoch | None = None
        # Highest index verified equal to the current leader's log (prev matched plus the
        # entries it sent). Acks report min(this, persisted): entries beyond it may be a
        # stale tail from an older leader even when durable.
        self.leader_match = 0
        self.last_acked = -1
        self.compact_hint = 0  # every voter applied up to here (from the leader)
        self.rank: int | None = None  # position in the ring order; None = config order
        self.last_heard: float | None = None
        # When a leader last reached us (a failed campaign of our own resets ``last_heard``
        # but not this): how long a replica has been cut off from its group.
        self.leader_heard: float | None = None
        self._jitter = rng.random()
        self.out: Output | None = None  # the Output of the input being handled
        self._candidate_role, self._leader_role = candidate_role, leader_role
        self.candidacy: Candidate | None = None  # while a candidate
        self.leading: Leader | None = None  # while a leader
        self.seen_counter = 0  # highest epoch counter seen in a refusal
        self.target: tuple[NodeId, ...] | None = None  # the ring's voters (reconfigure)
        # The candidate (and its epoch) we are sending a catch-up snapshot, and since when.
        self._catch_up_snap: tuple[NodeId, wire.Epoch, float] | None = None
        # A committed config without this node replaced one with it: the replica takes no
        # part any more, and the node drops it with its data (see wire.Removed).
        self.removed = False

    # --- public inputs -------------------------------------------------------------------

    def on_message(self, src: NodeId, msg: Any, now: float) -> Output:
        """Handle one replication message from ``src``."""
        out = self._begin()
        handler = _HANDLERS.get(type(msg))
        if handler is None or msg.shard != self.shard or msg.epoch.counter < 0:
            log.warning("replication message dropped src=%s kind=%s", src, type(msg).__name__)
        elif not self.removed:
            handler(self, src, msg, now)
        return self._finish(out)

    def tick(self, now: float) -> Output:
        """Time passes: heartbeats, retransmits, timeouts, fallback. Call at least every
        ``cfg.heartbeat_interval_s``."""
        out = self._begin()
        if self.removed:
            pass
        elif self.leading is not None:
            self.leader_heard = now  # we are the leader we hear
            self.leading.tick(now)
        elif self.candidacy is not None:
            self.candidacy.tick(now)
        else:
            self._follower_tick(now)
        return self._finish(out)

    def on_persisted(self, epoch: wire.Epoch, index: int, now: float) -> Output:
        """Storage made the log durable up to entry ``(epoch, index)`` (and all before it).
        A notice for an entry that has since been replaced is ignored."""
        out = self._begin()
        if self.persisted < index <= self.log.last_index and self.log.matches(index, epoch):
            self.persisted = index
            if self.leading is not None:
                self.leading.maybe_commit(now)
            elif self.role is F and self.leader is not None:
                if min(self.leader_match, self.persisted) > self.last_acked:
                    self._ack(self.leader, 0)
        return self._finish(out)

    def on_applied(self, index: int, now: float) -> Output:
        """The shard's state durably reflects every entry up to ``index``."""
        out = self._begin()
        assert index <= self.applied_emitted, (index, self.applied_emitted)
        self.applied = max(self.applied, index)
        return self._finish(out)

    def campaign(self, now: float) -> Output:
        """The ring names this node leader: run Prepare at a fresh epoch. A no-op unless
        this node is a follower and a voter of the config it knows."""
        out = self._begin()
        if not self.removed:
            self._campaign(now)
        return self._finish(out)

    def propose(self, payload: Any, now: float) -> tuple[int, Output]:
        """Append ``payload`` as a new entry; it is committed when it shows up in
        ``Output.apply`` with this replica's epoch and the returned index.

        Raises:
            ShoalError: NOT_LEADER unless this replica is a serving leader.
        """
        leading = self._require_serving()
        out = self._begin()
        index = leading.propose(payload, now)
        return index, self._finish(out)

    def read(self, ctx: Any, now: float) -> Output:
        """Start a quorum-confirmed read; ``ctx`` comes back in ``Output.reads`` once a
        majority has confirmed this leadership and the state is current.

        Raises:
            ShoalError: NOT_LEADER unless this replica is a serving leader.
        """
        leading = self._require_serving()
        out = self._begin()
        leading.read(ctx, now)
        return self._finish(out)

    def reconfigure(self, voters: tuple[NodeId, ...] | list[NodeId], now: float) -> Output:
        """The ring's replica set for this shard. A leader moves the config towards it one
        node at a time; other roles remember it for when they lead."""
        out = self._begin()
        assert voters, "a shard needs at least one voter"
        self.target = tuple(voters)
        if self.leading is not None:
            self.leading.step_reconfig(now)
        return self._finish(out)

    def send_snapshot(self, peer: NodeId, index: int, data: Any, now: float) -> Output:
        """Ship a snapshot of the applied state as of ``index`` to ``peer`` (after the core
        asked for it in ``Output.snapshot_to``): a follower too far behind, when leading,
        or a candidate catching up from us. Ignored if that no longer applies."""
        out = self._begin()
        if self.leading is not None:
            self.leading.ship_snapshot(peer, index, data, now)
        else:
            self._ship_catch_up_snapshot(peer, index, data)
        return self._finish(out)

    def bootstrap(self, config: wire.ShardConfig) -> Output:
        """Give a brand-new shard its first config as entry 1 at epoch zero.

        Every founding member must bootstrap with the *same* config (or only one founding
        node bootstraps and adds the others by reconfiguration); two different entries 1
        at epoch zero would break log matching.
        """
        out = self._begin()
        assert self.log.last_index == 0 and self.promised == wire.EPOCH_ZERO
        first = wire.ReplEntry(epoch=wire.EPOCH_ZERO, index=1, kind=wire.EntryKind.CONFIG,
                               config=config)
        out.persist.extend(self.log.append([first], floor=0))
        return self._finish(out)

    def set_rank(self, rank: int) -> None:
        """This node's position in the ring's order for the shard (0 = leader hint): how
        many leader timeouts the fallback waits before campaigning."""
        self.rank = rank

    # --- state ---------------------------------------------------------------------------

    @property
    def epoch(self) -> wire.Epoch:
        """The epoch this replica has promised (and leads, when leader)."""
        return self.promised

    @property
    def serving(self) -> bool:
        """Leader whose own-epoch no-op has committed: it may take proposals and reads."""
        return self.role is L and self.leading is not None and self.leading.serving

    @property
    def config(self) -> wire.ShardConfig:
        return self.log.config

    @property
    def is_voter(self) -> bool:
        return self.me in self.log.config.voters

    # --- plumbing ------------------------------------------------------------------------

    def _begin(self) -> Output:
        assert self.out is None, "re-entrant call into the core"
        self.out = Output()
        return self.out

    def _finish(self, out: Output) -> Output:
        hi = min(self.commit, self.persisted)
        if hi > self.applied_emitted:
            # Only durable entries are applied, so a restart never has to un-apply.
            out.apply.extend(self.log.slice(self.applied_emitted + 1, hi))
            self.applied_emitted = hi
        if self.leading is not None:
            self.leading.finish()
        self._maybe_compact()
        self.out = None
        # Exactly the current role has its role object (become() ends the others).
        assert (self.leading is not None) == (self.role is L)
        assert (self.candidacy is not None) == (self.role is C)
        assert self.applied <= self.applied_emitted <= max(self.commit, self.log.snap_index)
        assert self.persisted <= self.log.last_index and self.log.snap_index <= self.applied
        return out

    def _require_serving(self) -> Leader:
        if not self.serving:
            raise wire.ShoalError(wire.Code.NOT_LEADER,
                                  f"shard {self.shard} is not led here; try the leader",
                                  leader=self.leader or "")
        assert self.leading is not None
        return self.leading

    # --- for the role objects (role_base.ReplicaCore) ------------------------------------

    def send(self, to: NodeId, msg: Any) -> None:
        """Queue ``msg`` for ``to`` in the current output."""
        assert self.out is not None
        self.out.send.append((to, msg))

    def set_promised(self, epoch: wire.Epoch) -> None:
        """Raise the promise; durable before anything this call sends."""
        assert epoch >= self.promised and self.out is not None
        if epoch != self.promised:
            self.promised = epoch
            self.out.hard_state = epoch  # durable before anything this call sends

    def become(self, role: Role, leader: NodeId | None) -> None:
        """The one place roles change; emits :class:`RoleChanged`. Leaving a role ends
        its role object (a leader's pending reads fail)."""
        assert (self.role, role) in _LEGAL, f"illegal move {self.role} -> {role}"
        was = self.role
        self.role, self.leader = role, leader
        if was is L and role is not L:
            assert self.leading is not None
            self.leading.drop()
            self.leading = None
        if role is not C:
            self.candidacy = None
        if role is F:
            self._jitter = self.rng.random()
        log.debug("shard role changed shard=%d node=%s role=%s epoch=%s leader=%s",
                 self.shard, self.me, role.value, self.promised, leader)
        self.emit()

    def become_leader(self, now: float) -> None:
        """The campaign won: start a term as leader at the promised epoch."""
        self.become(L, self.me)
        self.leading = self._leader_role(self)
        self.leading.start(now)

    def emit(self) -> None:
        """Report the current role, epoch, leader and serving flag."""
        assert self.out is not None
        self.out.events.append(RoleChanged(self.role, self.promised, self.leader,
                                           self.serving))

    def observe_higher(self, epoch: wire.Epoch, now: float) -> None:
        """Someone promised or leads a higher epoch: adopt it and stop leading at once
        (DESIGN §4: a rejected leader steps down)."""
        if epoch <= self.promised:
            return
        self.set_promised(epoch)
        self.leader_epoch, self.leader_match, self.last_acked = None, 0, -1
        self.become(F, None)
        self.last_heard = now

    def _follow(self, epoch: wire.Epoch, leader: NodeId, now: float) -> None:
        """Accept ``leader`` of ``epoch`` (>= our promise) as the current leader."""
        self.set_promised(epoch)
        if self.role is not F or self.leader != leader or self.leader_epoch != epoch:
            self.leader_epoch, self.leader_match, self.last_acked = epoch, 0, -1
            self.become(F, leader)
        self.last_heard = self.leader_heard = now

    def set_removed(self) -> None:
        """A committed config no longer lists this node: stop taking part."""
        if self.role is not F:
            self.become(F, None)
        self.removed = True
        log.info("shard replica removed shard=%d node=%s", self.shard, self.me)
        self.emit()

    def _removed_by_committed_config(self, node: NodeId) -> int | None:
        """The index of the config we know committed if it does not list ``node``."""
        cfg = self.log.config
        if cfg.voters and node not in cfg.voters + cfg.learners and \
                self.commit >= self.log.config_index:
            return self.log.config_index
        return None

    def _on_removed(self, src: NodeId, m: wire.Removed, now: float) -> None:
        cfg = self.log.config
        if self.log.config_index > m.config_index and self.me in cfg.voters + cfg.learners:
            return  # we were added back since (a later config of ours lists us)
        self.set_removed()

    def _maybe_compact(self) -> None:
        target = min(self.compact_hint, self.applied)
        if target - self.log.snap_index >= self.cfg.compact_lag_entries:
            epoch = self.log.epoch_at(target)
            assert epoch is not None and self.out is not None
            self.out.compact = SnapshotMeta(target, epoch, self.log.config_at(target))
            self.log.compact(target)

    # --- candidate and leader inputs: to the role object, if any ------------------------

    def _campaign(self, now: float) -> None:
        if self.role is not F or not self.is_voter:
            return
        epoch = wire.Epoch(max(self.promised.counter, self.seen_counter) + 1, self.me)
        self.leader_epoch, self.leader_match, self.last_acked = None, 0, -1
        self.become(C, None)
        self.candidacy = self._candidate_role(self, epoch, now)
        self.candidacy.start(now)

    def _on_promise(self, src: NodeId, m: wire.Promise, now: float) -> None:
        self.seen_counter = max(self.seen_counter, m.promised.counter)
        if self.candidacy is not None:
            self.candidacy.on_promise(src, m, now)
        elif not m.pre and m.promised > self.promised:
            self.observe_higher(m.promised, now)  # a late answer to a campaign given up

    def _on_catch_up_reply(self, src: NodeId, m: wire.CatchUpReply, now: float) -> None:
        if m.promised > self.promised:
            self.observe_higher(m.promised, now)
        elif self.candidacy is not None:
            self.candidacy.on_catch_up_reply(src, m, now)

    def _on_append_ack(self, src: NodeId, m: wire.AppendAck, now: float) -> None:
        if m.epoch > self.promised:
            self.observe_higher(m.epoch, now)  # rejected: step down at once
        elif self.leading is not None:
            self.leading.on_append_ack(src, m, now)

    # --- follower side ---------------------------------------------------------------------

    def _follower_tick(self, now: float) -> None:
        if self.last_heard is None:
            self.last_heard = now
        if self.leader_heard is None:
            self.leader_heard = now
        if not (self.cfg.fallback and self.is_voter):
            return
        rank = self.rank if self.rank is not None else self.log.config.voters.index(self.me)
        wait = self.cfg.leader_timeout_s * (1 + rank + self._jitter)
        if now - self.last_heard >= wait:
            log.info("shard fallback campaign shard=%d node=%s voters=%s", self.shard, self.me,
                     ",".join(v[:8] for v in self.log.config.voters))
            self._campaign(now)

    def _on_prepare(self, src: NodeId, m: wire.Prepare, now: float) -> None:
        cfg = self.log.config
        # A replica that knows no config yet (a new learner, or one deleted after its
        # removal) promises nobody: it holds no log, so counting it in a quorum could let
        # a stale candidate that still lists it lead without the committed entries.
        # A candidate outside our config may be a removed member (whose campaigns must
        # not raise our promise) or one added by a config we have not received: promise
        # it only if its log is at least as advanced as ours, which a removed member's
        # is not once the group has moved on. (Safety never depended on this: a candidate
        # adopts the most advanced log of a majority of its own config.)
        up_to_date = (m.last_epoch, m.last_index) >= (self.log.last_epoch, self.log.last_index)
        known = bool(cfg.voters) and (src in cfg.voters or up_to_date)
        ok = False
        if m.pre:
            ok = m.epoch.node == src and known and m.epoch > self.promised  # changes nothing
        elif m.epoch.node == src and known:
            if m.epoch > self.promised:
                self.observe_higher(m.epoch, now)
                ok = True
            elif m.epoch == self.promised and self.leader in (None, src):
                ok = True  # a retransmitted Prepare: answer again
        if not ok:
            log.debug("shard prepare refused shard=%d node=%s src=%s known=%s epoch=%s "
                      "promised=%s", self.shard, self.me, src, known, m.epoch, self.promised)
            removed_at = self._removed_by_committed_config(src)
            if removed_at is not None:
                self.send(src, wire.Removed(shard=self.shard, epoch=self.promised,
                                             config_index=removed_at))
        self.send(src, wire.Promise(
            shard=self.shard, epoch=m.epoch, ok=ok, promised=self.promised,
            last_epoch=self.log.last_epoch, last_index=self.log.last_index,
            commit=self.commit, pre=m.pre))

    def _on_catch_up(self, src: NodeId, m: wire.CatchUp, now: float) -> None:
        # Our log cannot change under the candidate: we refuse every lower epoch now, and
        # nobody but the candidate appends at its epoch.
        promised_it = m.epoch == self.promised and m.epoch.node == src
        ok = promised_it and m.from_index > self.log.snap_index
        snapshot = promised_it and not ok
        if snapshot:
            # We compacted what it asks for: send our applied state (once per
            # snapshot_timeout_s however often it asks; it waits for it meanwhile).
            sent = self._catch_up_snap
            if sent is None or sent[:2] != (src, m.epoch) or \
                    now - sent[2] >= self.cfg.snapshot_timeout_s:
                self._catch_up_snap = (src, m.epoch, now)
                assert self.out is not None
                self.out.snapshot_to.append(src)
        entries = cap_bytes(
            self.log.slice(m.from_index, m.from_index + self.cfg.append_entries_max - 1),
            self.cfg.append_bytes_max) if ok else []
        self.send(src, wire.CatchUpReply(shard=self.shard, epoch=m.epoch, ok=ok,
                                          promised=self.promised, entries=entries,
                                          last_index=self.log.last_index, snapshot=snapshot))

    def _ship_catch_up_snapshot(self, peer: NodeId, index: int, data: Any) -> None:
        sent = self._catch_up_snap
        if self.role is L or sent is None or sent[:2] != (peer, self.promised):
            return  # we promised someone else since, or lead: the campaign is over
        epoch = self.log.epoch_at(index)
        assert epoch is not None and index <= self.applied_emitted, "snapshot not applied"
        self.send(peer, wire.InstallSnapshot(
            shard=self.shard, epoch=self.promised, index=index, snap_epoch=epoch,
            config=self.log.config_at(index), data=data))

    def _on_append(self, src: NodeId, m: wire.Append, now: float) -> None:
        if any(e.index != m.prev_index + 1 + i for i, e in enumerate(m.entries)):
            log.warning("replication append dropped: entries not contiguous src=%s", src)
            return
        if self._holds_off(m.epoch):
            return
        if m.epoch < self.promised or m.epoch.node != src:
            # Below our promise: this tells the old leader to step down.
            self.send(src, wire.AppendAck(shard=self.shard, epoch=self.promised, ok=False,
                                           reject_index=m.prev_index))
            return
        self._follow(m.epoch, src, now)
        self.compact_hint = max(self.compact_hint, m.compact)
        entries = m.entries
        if m.prev_index < self.log.snap_index:
            # We compacted past prev: that prefix is committed, so equal to the leader's.
            entries = entries[self.log.snap_index - m.prev_index:]
        elif not self.log.matches(m.prev_index, m.prev_epoch):
            self.send(src, wire.AppendAck(
                shard=self.shard, epoch=self.promised, ok=False, reject_index=m.prev_index,
                hint_index=self._reject_hint(m.prev_index), applied=self.applied,
                read_seq=m.read_seq))
            return
        self.store(entries)
        self.leader_match = max(self.leader_match, m.prev_index + len(m.entries))
        # Raft's min(leaderCommit, last new entry): never commit a tail we have not
        # verified against this leader.
        self.commit = max(self.commit, min(m.commit, self.leader_match))
        self._ack(src, m.read_seq)

    def _holds_off(self, epoch: wire.Epoch) -> bool:
        """A candidate that has not promised itself yet neither follows nor rejects the
        leader it is trying to replace: it drops its messages (always safe) until it
        wins or gives up."""
        cand = self.candidacy
        return self.role is C and cand is not None and not cand.self_promised and \
            epoch < cand.epoch

    def _reject_hint(self, prev: int) -> int:
        """Where the leader should probe next: below our log's end, and below the whole
        run of the epoch that conflicts at ``prev`` (one round trip per epoch, not per
        entry). Never below our commit index: that prefix is equal everywhere."""
        if prev > self.log.last_index:
            return self.log.last_index
        hint = self.log.first_index_of_epoch_run(prev) - 1
        return max(hint, min(self.commit, prev - 1), self.log.snap_index)

    def store(self, entries: list[wire.ReplEntry]) -> None:
        """Merge entries into the log and have the new ones persisted."""
        new = self.log.append(entries, floor=self.commit)
        if new:
            assert self.out is not None
            self.out.persist.extend(new)
            self.persisted = min(self.persisted, new[0].index - 1)

    def _ack(self, to: NodeId, read_seq: int) -> None:
        match = min(self.leader_match, self.persisted)
        self.last_acked = max(self.last_acked, match)
        self.send(to, wire.AppendAck(shard=self.shard, epoch=self.promised, ok=True,
                                      match=match, applied=self.applied, read_seq=read_seq))

    def _on_install(self, src: NodeId, m: wire.InstallSnapshot, now: float) -> None:
        if m.epoch.node == self.me:
            # From the member our campaign at m.epoch catches up from.
            cand = self.candidacy
            if self.role is C and cand is not None and m.epoch == cand.epoch:
                cand.on_install(src, m, now)
            return
        if self._holds_off(m.epoch):
            return
        if m.epoch < self.promised or m.epoch.node != src:
            self.send(src, wire.AppendAck(shard=self.shard, epoch=self.promised, ok=False,
                                           reject_index=m.index))
            return
        self._follow(m.epoch, src, now)
        if self.log.matches(m.index, m.snap_epoch) or m.index <= self.commit:
            # We already hold that prefix: no state to replace, and it is committed.
            self.leader_match = max(self.leader_match, m.index)
            self.commit = max(self.commit, m.index)
        else:
            assert self.out is not None and not self.out.persist
            meta = SnapshotMeta(m.index, m.snap_epoch, m.config)
            self.out.install = SnapshotInstall(meta, m.data)
            self.log.reset(meta)
            # The install is durable before the ack below is sent (Output order), and it
            # is the apply of everything up to m.index.
            self.persisted = self.commit = self.applied = self.applied_emitted = m.index
            self.leader_match = m.index
        self._ack(src, 0)


_HANDLERS = {
    wire.Prepare: Replica._on_prepare,
    wire.Promise: Replica._on_promise,
    wire.Append: Replica._on_append,
    wire.AppendAck: Replica._on_append_ack,
    wire.CatchUp: Replica._on_catch_up,
    wire.CatchUpReply: Replica._on_catch_up_reply,
    wire.InstallSnapshot: Replica._on_install,
    wire.Removed: Replica._on_removed,
}
