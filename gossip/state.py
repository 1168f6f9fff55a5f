"""SWIM's membership state machine: alive, suspect, dead, left, refutation and merging.

Owns: :class:`Membership` — our member list, our own incarnation, the suspicions in
progress and the piggyback queue — and the rules for applying an ``Alive``, ``Suspect``
or ``Dead`` rumour or a push-pull state (memberlist ``state.go``: ``aliveNode``,
``suspectNode``, ``deadNode``, ``mergeState``, ``refute``). Every accepted change is
re-broadcast so the epidemic continues, and reported to the shell as an event.
Must not: send packets, probe, or read a clock (``now`` is passed in).

Ordering rules (SWIM §4.2): for one member, a higher incarnation always wins; at the same
incarnation Dead beats Suspect beats Alive. Only the member itself raises its incarnation,
which is how it refutes a suspicion or a false death.
"""

from __future__ import annotations

import logging
import random

from shoal import wire
from shoal.gossip.awareness import Awareness
from shoal.gossip.broadcast import BroadcastQueue
from shoal.gossip.config import SwimConfig
from shoal.gossip.events import (
    MemberDied, MemberJoined, MemberLeft, MemberRecovered, MemberSuspected, MemberUpdated,
    Output, SwimStats,
)
from shoal.gossip.members import Member, MemberList, cluster_mismatch
from shoal.gossip.suspicion import Suspicion, expected_confirmations, suspicion_timeout
from shoal.wire import MemberState

log = logging.getLogger(__name__)


class Membership:
    """Our view of the cluster and the rules that change it.

    Args:
        me: our member name; addr: our UDP address; meta: our metadata.
        cfg: timing; rng: the core's random source (member list order).
        awareness: our health score (refuting an accusation lowers our health).
        stats: the core's counters.
    """

    def __init__(self, me: str, addr: str, meta: wire.MemberMeta, cfg: SwimConfig,
                 rng: random.Random, awareness: Awareness, stats: SwimStats) -> None:
        self.me, self.cfg, self.awareness, self.stats = me, cfg, awareness, stats
        self.members = MemberList(rng)
        self.broadcasts = BroadcastQueue()
        self.suspicions: dict[str, Suspicion] = {}
        self.left = False
        # Incarnations start at 1 so that any rumour about us at 0 is already stale.
        self.members.add(Member(me, addr, 1, MemberState.ALIVE, meta, 0.0))
        self._broadcast(me, self._self_alive())

    # --- helpers --------------------------------------------------------------------------

    @property
    def local(self) -> Member:
        m = self.members.get(self.me)
        assert m is not None, "we are always in our own member list"
        return m

    def _self_alive(self) -> wire.Alive:
        m = self.local
        return wire.Alive(node=self.me, incarnation=m.incarnation, addr=m.addr, meta=m.meta)

    def _broadcast(self, key: str, msg: wire.GossipMessage) -> None:
        self.broadcasts.queue(key, msg, wire.gossip_message_size(msg))

    def _same_cluster(self, meta: wire.MemberMeta) -> bool:
        return cluster_mismatch(self.local.meta, meta) is None

    def local_state(self) -> list[wire.PushNodeState]:
        """Every member we know, for a push-pull exchange."""
        return [m.push_state() for m in self.members.all()]

    def update_meta(self, meta: wire.MemberMeta) -> None:
        """Change our metadata; a new incarnation makes it win over the old everywhere."""
        m = self.local
        assert self._same_cluster(meta), "a node cannot change cluster identity while running"
        m.meta = meta
        m.incarnation += 1
        self._broadcast(self.me, self._self_alive())

    def refute(self, accused_incarnation: int) -> None:
        """Answer a suspicion or death rumour about us with a higher incarnation."""
        m = self.local
        m.incarnation = max(m.incarnation + 1, accused_incarnation + 1)
        # Being accused hints that we are the slow one (Lifeguard §IV-A).
        self.awareness.apply_delta(1)
        self.stats.refutations += 1
        self._broadcast(self.me, self._self_alive())

    # --- rumours --------------------------------------------------------------------------

    def alive(self, a: wire.Alive, now: float, out: Output) -> None:
        """Apply an ``Alive`` rumour (a join, a refutation, a metadata change)."""
        if not self._same_cluster(a.meta):
            self.stats.dropped_foreign += 1
            return
        m = self.members.get(a.node)
        is_local = a.node == self.me
        if m is None:
            m = Member(a.node, a.addr, a.incarnation, MemberState.DEAD, a.meta, now)
            self.members.add(m)
            old_state, old_meta = None, None
        else:
            # A new address is only accepted for a member that died or left: it restarted
            # elsewhere. Two live members claiming one name keep the one we know.
            moved = m.addr != a.addr
            if moved and not m.dead_or_left:
                self.stats.dropped_foreign += 1
                return
            if a.incarnation <= m.incarnation and not is_local and not moved:
                return  # old news (this also keeps a dead member dead)
            if is_local and a.incarnation < m.incarnation:
                return
            old_state, old_meta = m.state, m.meta
        self._drop_suspicion(a.node)
        if is_local:
            if self.left:
                return  # we said goodbye; nothing to defend
            if a.incarnation == m.incarnation and a.meta == m.meta and a.addr == m.addr:
                return  # our own alive rumour coming back to us
            self.refute(a.incarnation)
            return
        self._broadcast(a.node, a)
        m.incarnation, m.meta, m.addr = a.incarnation, a.meta, a.addr
        if m.state != MemberState.ALIVE:
            m.state, m.state_change = MemberState.ALIVE, now
        if old_state is None or old_state in (MemberState.DEAD, MemberState.LEFT):
            out.events.append(MemberJoined(m.info()))
            return
        if old_state == MemberState.SUSPECT:
            out.events.append(MemberRecovered(m.info()))
        if old_meta != m.meta:
            out.events.append(MemberUpdated(m.info()))

    def suspect(self, s: wire.Suspect, now: float, out: Output) -> None:
        """Apply a ``Suspect`` rumour: start a suspicion, or count a confirmation."""
        m = self.members.get(s.node)
        if m is None or s.incarnation < m.incarnation:
            return
        susp = self.suspicions.get(s.node)
        if susp is not None:
            # Lifeguard: each independent suspicion shortens the timeout; re-gossip new
            # confirmations so other members can count them too.
            if susp.confirm(s.source, now):
                self._broadcast(s.node, s)
                out.timers.append((("suspicion", s.node), susp.deadline))
            return
        if m.state != MemberState.ALIVE:
            return
        if s.node == self.me:
            self.refute(s.incarnation)
            return
        self._broadcast(s.node, s)
        m.incarnation, m.state, m.state_change = s.incarnation, MemberState.SUSPECT, now
        n = len(self.members)
        lo = suspicion_timeout(self.cfg.suspicion_mult, n, self.cfg.probe_interval_s)
        hi = self.cfg.suspicion_max_timeout_mult * lo
        k = expected_confirmations(self.cfg.suspicion_mult, n)
        susp = self.suspicions[s.node] = Suspicion(s.source, k, lo, hi, now)
        out.timers.append((("suspicion", s.node), susp.deadline))
        out.events.append(MemberSuspected(m.info()))

    def on_suspicion_timer(self, name: str, now: float, out: Output
                           ) -> list[tuple[str, wire.Dead]]:
        """A suspicion's timer fired: declare the member dead if it is still due.

        Returns:
            The verdict to send straight to some of the members that accused it too
            (see :meth:`dead`), as (address, message).
        """
        susp = self.suspicions.get(name)
        if susp is None or now + 1e-9 < susp.deadline:
            return []  # refuted, or a stale timer from before a confirmation moved the deadline
        m = self.members.get(name)
        if m is None or m.state != MemberState.SUSPECT:
            self._drop_suspicion(name)
            return []
        # Rare and worth a line: which member timed a suspicion out, and how quickly, is
        # what explains a slow detection.
        log.info("suspicion expired name=%s after=%.2fs confirmations=%d/%d; declaring it dead",
                 name, now - susp.start, susp.confirmations, susp.k)
        return self.dead(wire.Dead(node=name, incarnation=m.incarnation, source=self.me), now, out)

    def stale_accusation(self, s: wire.Suspect) -> wire.Dead | None:
        """Our verdict, if ``s`` accuses a member we already hold dead or left.

        Whoever sent ``s`` has not heard the verdict yet (a heard death replaces the
        queued suspicion), and is waiting on a suspicion timer that may run to its upper
        bound; the caller answers it with this. None if ``s`` is news or about us.
        """
        m = self.members.get(s.node)
        if m is None or s.node == self.me or not m.dead_or_left or s.incarnation > m.incarnation:
            return None
        source = s.node if m.state == MemberState.LEFT else self.me
        return wire.Dead(node=s.node, incarnation=m.incarnation, source=source)

    def dead(self, d: wire.Dead, now: float, out: Output) -> list[tuple[str, wire.Dead]]:
        """Apply a ``Dead`` rumour (``source == node``: a graceful leave).

        Returns:
            If we were suspecting the member: the verdict to send straight to (address,
            message) up to ``gossip_nodes`` of the others we heard accuse it, first
            accuser first, besides broadcasting it. Each of them waits on a suspicion
            timer of its own, and the first accuser in particular may have none of the
            confirmations that shortened ours (they came from members that heard *its*
            rumour): with the few retransmits of a small cluster, a broadcast that
            happens to miss it would leave it suspecting until its upper bound.
        """
        m = self.members.get(d.node)
        if m is None or d.incarnation < m.incarnation:
            return []
        susp = self.suspicions.get(d.node)
        self._drop_suspicion(d.node)
        if m.dead_or_left:
            return []
        if d.node == self.me and not self.left:
            self.refute(d.incarnation)
            return []
        self._broadcast(d.node, d)
        m.incarnation, m.state_change = d.incarnation, now
        m.state = MemberState.LEFT if d.node == d.source else MemberState.DEAD
        if d.node != self.me:
            event = MemberLeft if m.state == MemberState.LEFT else MemberDied
            out.events.append(event(m.info()))
        if susp is None:
            return []
        tell = []
        for name in susp.accusers:
            a = self.members.get(name)
            if name not in (self.me, d.source) and a is not None and not a.dead_or_left:
                tell.append((a.addr, d))
        return tell[:self.cfg.gossip_nodes]

    def merge(self, remote: list[wire.PushNodeState], now: float, out: Output) -> None:
        """Merge a peer's full state from a push-pull exchange."""
        for r in remote:
            if r.state == MemberState.ALIVE:
                self.alive(wire.Alive(node=r.node, incarnation=r.incarnation, addr=r.addr,
                                      meta=r.meta), now, out)
            elif r.state == MemberState.LEFT:
                self.dead(wire.Dead(node=r.node, incarnation=r.incarnation, source=r.node),
                          now, out)
            else:
                # A peer's "dead" only makes us suspect: we give the member its chance to
                # refute rather than trust one peer's verdict (memberlist mergeState).
                self.suspect(wire.Suspect(node=r.node, incarnation=r.incarnation,
                                          source=self.me), now, out)

    def contacted(self, name: str, now: float) -> None:
        """Record that ``name`` itself just answered us (for "age of last contact")."""
        m = self.members.get(name)
        if m is not None:
            m.last_contact = now

    def _drop_suspicion(self, name: str) -> None:
        self.suspicions.pop(name, None)
