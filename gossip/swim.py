"""The SWIM + Lifeguard gossip core of one node, sans-IO (DESIGN §5).

Owns: failure detection (randomized round-robin probes; ping, ack, ping-req through k
helpers with Lifeguard nacks), dissemination (broadcasts piggybacked on every packet and
pushed in gossip rounds), push-pull full-state sync for joins and anti-entropy, graceful
leave, and the dispatch of incoming frames and timer firings. The membership rules live
in ``state.py``; suspicion maths in ``suspicion.py``; health in ``awareness.py``.

Must not: open sockets, read a clock, sleep, use global ``random`` or trio. The shell
calls :meth:`Swim.on_message` for every frame, :meth:`Swim.on_timer` when a timer it was
told to arm fires, and does what the returned :class:`Output` says.

References: Das, Gupta, Motivala, "SWIM" (2002); Dadgar, Phillips, Currey, "Lifeguard:
Local Health Awareness for More Accurate Failure Detection" (2018); HashiCorp memberlist.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass

from shoal import wire
from shoal.gossip.awareness import Awareness
from shoal.gossip.broadcast import retransmit_limit
from shoal.gossip.config import SwimConfig
from shoal.gossip.events import Output, SwimStats, TimerKey
from shoal.gossip.members import Member, MemberInfo
from shoal.gossip.state import Membership
from shoal.wire import MemberState

log = logging.getLogger(__name__)

PUSH_PULL_SCALE_THRESHOLD = 32  # members before periodic push-pull starts to slow down


def push_pull_interval(interval_s: float, n: int) -> float:
    """Periodic push-pull interval for ``n`` members: flat up to 32, then growing with
    log2 N, so the cluster-wide full-state traffic stays bounded (memberlist)."""
    if n <= PUSH_PULL_SCALE_THRESHOLD:
        return interval_s
    return interval_s * (math.ceil(math.log2(n) - math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1)


@dataclass(slots=True)
class _Probe:
    """The probe in flight (one at a time, as memberlist)."""

    seq: int
    target: str
    addr: str
    incarnation: int  # the target's incarnation when the probe began: what we accuse
    deadline: float
    expected_nacks: int = 0
    nacks: int = 0


@dataclass(slots=True)
class _Relay:
    """A ping-req we serve: forward the target's ack to ``origin_addr``, or nack."""

    origin_addr: str
    origin_seq: int
    nack: bool


class Swim:
    """One node's gossip membership.

    Args:
        me: our member name (unique in the cluster; the node id).
        cfg: timing and sizing (:class:`SwimConfig`).
        rng: every random choice comes from here (seed it in simulations).
        meta: our metadata; peers with another cluster name or NUM_SHARDS are refused.
        addr: our UDP address as peers should use it (default: ``me``).
    """

    def __init__(self, me: str, cfg: SwimConfig, rng: random.Random, meta: wire.MemberMeta,
                 *, addr: str | None = None) -> None:
        self.me, self.addr, self.cfg, self.rng = me, addr or me, cfg, rng
        self.stats = SwimStats()
        self.awareness = Awareness(cfg.awareness_max_multiplier)
        self.state = Membership(me, self.addr, meta, cfg, rng, self.awareness, self.stats)
        self._seq = 0
        self._probe: _Probe | None = None
        self._relays: dict[int, _Relay] = {}
        self._started = False
        self._seeds: list[str] = []
        self._joined = False

    # --- read-only views --------------------------------------------------------------

    def members(self) -> list[MemberInfo]:
        """Every member we know (any state, ourselves included), sorted by name."""
        return sorted((m.info() for m in self.state.members.all()), key=lambda i: i.name)

    def alive_members(self) -> list[MemberInfo]:
        """Members alive or suspected (a suspect still counts until declared dead), by name."""
        return [i for i in self.members()
                if i.state in (MemberState.ALIVE, MemberState.SUSPECT)]

    @property
    def incarnation(self) -> int:
        return self.state.local.incarnation

    @property
    def health_score(self) -> int:
        """Lifeguard's local health score: 0 healthy, up to awareness_max_multiplier - 1."""
        return self.awareness.score

    @property
    def joined(self) -> bool:
        """Whether a join succeeded (or none was needed: we started a cluster)."""
        return self._joined

    # --- commands from the shell --------------------------------------------------------

    def join(self, seeds: list[str], now: float) -> Output:
        """Start the protocol and join the cluster through ``seeds`` (UDP/peer addresses).

        An empty list starts a new cluster. Otherwise a push-pull request goes to every
        seed over the reliable link; it is repeated every ``push_pull_timeout_s`` until
        one answers.
        """
        out = Output()
        if not self._started:
            self._start(now, out)
        self._seeds = sorted(s for s in seeds if s != self.addr)
        self._joined = not self._seeds
        self._send_join(now, out)
        return out

    def leave(self, now: float) -> Output:
        """Leave gracefully: tell the cluster we left (a ``Dead`` about ourselves from
        ourselves), pushing it at once to a few members. The shell should keep running the
        core for a few gossip intervals before it stops, so the news spreads."""
        out = Output()
        if self.state.left:
            return out
        self.state.left = True
        local = self.state.local
        self.state.dead(wire.Dead(node=self.me, incarnation=local.incarnation, source=self.me),
                        now, out)
        for m in self.state.members.k_random(self.cfg.gossip_nodes, self._not_alive_peer):
            self._send(out, m.addr, [])
        log.info("gossip leave node=%s incarnation=%d", self.me, local.incarnation)
        return out

    def update_meta(self, meta: wire.MemberMeta, now: float) -> Output:
        """Publish new metadata (e.g. a changed API address) under a new incarnation."""
        self.state.update_meta(meta)
        return Output()

    # --- inputs -------------------------------------------------------------------------

    def on_message(self, src_addr: str, data: bytes | wire.GossipPacket | wire.PushPullRequest
                   | wire.PushPullResponse, now: float, *, stream: bool = False) -> Output:
        """Handle one incoming frame (raw bytes or an already-decoded message).

        Args:
            src_addr: where it came from (acks and push-pull answers go back there).
            data: the frame; bytes are decoded and authenticated with the cluster key.
            now: current time.
            stream: True if it came over the reliable peer link (push-pull), False for
                UDP. A message on the wrong channel is dropped and counted.

        Returns:
            What to send, arm and report. Bad input never raises: it is counted in
            :attr:`stats` and dropped.
        """
        out = Output()
        if isinstance(data, (bytes, bytearray, memoryview)):
            decoded = self.decode_frame(data)
            if decoded is None:
                return out
            data = decoded
        if isinstance(data, wire.GossipPacket) and not stream:
            self.stats.packets_received += 1
            for msg in data.messages:
                self._on_gossip(src_addr, msg, now, out)
        elif isinstance(data, wire.GossipPacket):
            self._on_stream_probe(src_addr, data, now, out)
        elif isinstance(data, wire.PushPullRequest) and stream:
            self._on_push_pull_request(src_addr, data, now, out)
        elif isinstance(data, wire.PushPullResponse) and stream:
            self.stats.push_pulls += 1
            self._joined = True
            self.state.merge(data.members, now, out)
            self.state.contacted(data.source, now)
        else:
            self.stats.dropped_unexpected += 1
        return out

    def decode_frame(self, data: bytes | bytearray | memoryview
                     ) -> wire.GossipPacket | wire.PushPullRequest | wire.PushPullResponse | None:
        """Decode and authenticate one frame with the cluster key.

        A shell that must look at a stream message before handing it over (to answer on
        the same link) decodes with this, so bad frames are counted in one place.

        Returns:
            The message, or None if the frame was dropped (counted in :attr:`stats` as
            ``dropped_auth`` or ``dropped_malformed``).
        """
        try:
            return wire.decode_gossip(bytes(data), self.cfg.cluster_key)
        except wire.WireError as exc:
            if exc.details.get("reason") == "auth":
                self.stats.dropped_auth += 1
            else:
                self.stats.dropped_malformed += 1
            return None

    def on_timer(self, key: TimerKey, now: float) -> Output:
        """Handle a timer firing. Stale firings (superseded timers) are ignored."""
        out = Output()
        kind = key[0]
        if kind == "probe":
            self._on_probe_tick(now, out)
        elif kind == "gossip":
            self._on_gossip_tick(now, out)
        elif kind == "push_pull":
            self._on_push_pull_tick(now, out)
        elif kind == "join":
            if not self._joined:
                self._send_join(now, out)
        elif kind == "probe_timeout":
            self._on_probe_timeout(key[1], now, out)  # type: ignore[arg-type]
        elif kind == "probe_deadline":
            self._on_probe_deadline(key[1], now, out)  # type: ignore[arg-type]
        elif kind == "relay":
            self._on_relay_expired(key[1], out)  # type: ignore[arg-type]
        elif kind == "suspicion":
            name: str = key[1]  # type: ignore[assignment]
            for addr, verdict in self.state.on_suspicion_timer(name, now, out):
                self._send_alone(out, addr, verdict)
        else:
            raise AssertionError(f"unknown timer key {key!r}")  # the shell echoes our keys
        return out

    # --- sending ------------------------------------------------------------------------

    def _retransmit_limit(self) -> int:
        return retransmit_limit(self.cfg.retransmit_mult, len(self.state.members))

    def _send(self, out: Output, addr: str, msgs: list[wire.GossipMessage]) -> None:
        """Send ``msgs`` to ``addr`` with as many pending broadcasts as fit the packet."""
        used = wire.GOSSIP_PACKET_OVERHEAD_BYTES + sum(wire.gossip_message_size(m) for m in msgs)
        extra, _ = self.state.broadcasts.take(self.cfg.packet_bytes_max - used,
                                              self._retransmit_limit())
        if not msgs and not extra:
            return
        self.stats.broadcasts_piggybacked += len(extra)
        self.stats.packets_sent += 1
        out.send.append((addr, wire.GossipPacket(messages=[*msgs, *extra])))

    def _send_alone(self, out: Output, addr: str, msg: wire.GossipMessage) -> None:
        """Send one message to ``addr`` now, with nothing piggybacked: a direct answer
        that may well be queued for broadcast too, which would only repeat it."""
        self.stats.packets_sent += 1
        out.send.append((addr, wire.GossipPacket(messages=[msg])))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _not_alive_peer(self, m: Member) -> bool:
        return m.name == self.me or m.state != MemberState.ALIVE

    # --- timers -------------------------------------------------------------------------

    def _start(self, now: float, out: Output) -> None:
        """Arm the periodic timers, each at a random phase so nodes started together do
        not probe and gossip in lock step (memberlist staggers the same way)."""
        self._started = True
        cfg = self.cfg
        out.timers.append((("probe",), now + self.rng.random() * cfg.probe_interval_s))
        out.timers.append((("gossip",), now + self.rng.random() * cfg.gossip_interval_s))
        if cfg.push_pull_interval_s > 0:
            first = self.rng.random() * push_pull_interval(cfg.push_pull_interval_s, 1)
            out.timers.append((("push_pull",), now + first))

    def _send_join(self, now: float, out: Output) -> None:
        if self._joined:
            return
        local = self.state.local_state()
        for seed in self._seeds:
            out.stream.append((seed, wire.PushPullRequest(source=self.me, join=True,
                                                          members=local)))
        out.timers.append((("join",), now + self.cfg.push_pull_timeout_s))

    def _on_probe_tick(self, now: float, out: Output) -> None:
        out.timers.append((("probe",), now + self.cfg.probe_interval_s))
        if self.state.left or self._probe is not None:
            # A probe stretched by our health score is still running: skip this tick, as
            # memberlist's ticker skips the ticks a slow probe overran.
            return
        target = self.state.members.next_probe_target(self.me, now, self.cfg.gossip_to_the_dead_s)
        if target is not None:
            self._start_probe(target, now, out)

    def _start_probe(self, target: Member, now: float, out: Output) -> None:
        seq = self._next_seq()
        # Lifeguard: an unhealthy node gives each probe more time before it suspects.
        interval = self.awareness.scale(self.cfg.probe_interval_s)
        self._probe = _Probe(seq, target.name, target.addr, target.incarnation, now + interval)
        msgs: list[wire.GossipMessage] = [wire.Ping(seq=seq, target=target.name)]
        if target.state != MemberState.ALIVE:
            # Tell a suspect it is suspected so it can refute at once (Lifeguard's buddy
            # system), instead of waiting for the rumour to reach it.
            msgs.append(wire.Suspect(node=target.name, incarnation=target.incarnation,
                                     source=self.me))
        self._send(out, target.addr, msgs)
        self.stats.probes += 1
        out.timers.append((("probe_timeout", seq), now + self.cfg.probe_timeout_s))
        out.timers.append((("probe_deadline", seq), now + interval))

    def _on_probe_timeout(self, seq: int, now: float, out: Output) -> None:
        """No direct ack in time: ask k random live members to probe the target for us."""
        p = self._probe
        if p is None or p.seq != seq:
            return
        helpers = self.state.members.k_random(
            self.cfg.indirect_checks,
            lambda m: m.name == p.target or self._not_alive_peer(m))
        req = wire.IndirectPing(seq=seq, target=p.target, target_addr=p.addr, nack=True)
        for h in helpers:
            self._send(out, h.addr, [req])
        p.expected_nacks = len(helpers)
        self.stats.indirect_probes += len(helpers)
        if now + self.cfg.probe_timeout_s > p.deadline:
            # Our timers fired late (we were paused or starved: Lifeguard's slow node).
            # Give the helpers the time they need to answer before we judge the target;
            # otherwise our own stall would make us accuse a healthy member.
            p.deadline = now + self.cfg.probe_timeout_s
            out.timers.append((("probe_deadline", seq), p.deadline))
        if self.cfg.stream_fallback:
            # memberlist's TCP fallback: a path that loses datagrams may still carry a
            # stream, and a member we can reach is not failed.
            out.stream.append((p.addr, wire.GossipPacket(
                messages=[wire.Ping(seq=seq, target=p.target)])))

    def _on_stream_probe(self, src_addr: str, pkt: wire.GossipPacket, now: float,
                         out: Output) -> None:
        """A fallback ping or its ack over the reliable link (no piggybacking there)."""
        if len(pkt.messages) != 1:
            self.stats.dropped_unexpected += 1
            return
        msg = pkt.messages[0]
        if isinstance(msg, wire.Ping):
            if msg.target != self.me:
                self.stats.dropped_misdirected += 1
                return
            out.stream.append((src_addr, wire.GossipPacket(messages=[wire.Ack(seq=msg.seq)])))
        elif isinstance(msg, wire.Ack):
            p = self._probe
            if p is not None and p.seq == msg.seq:
                self.stats.fallback_acks += 1
                self._on_ack(msg.seq, now, out)
        else:
            self.stats.dropped_unexpected += 1

    def _on_probe_deadline(self, seq: int, now: float, out: Output) -> None:
        """The probe ran out of time without any ack: suspect the target."""
        p = self._probe
        if p is None or p.seq != seq or now + 1e-9 < p.deadline:
            return  # acked already, or the deadline was pushed back
        self._probe = None
        self.stats.probes_failed += 1
        # Lifeguard: helpers that did not even nack suggest *our* network is the problem;
        # with no helpers, any failed probe counts against our own health.
        missing = p.expected_nacks - p.nacks if p.expected_nacks else 1
        self.awareness.apply_delta(max(0, missing))
        m = self.state.members.get(p.target)
        if m is None:
            return
        self.state.suspect(wire.Suspect(node=p.target, incarnation=p.incarnation,
                                        source=self.me), now, out)

    def _on_relay_expired(self, seq: int, out: Output) -> None:
        relay = self._relays.pop(seq, None)
        if relay is not None and relay.nack:
            self._send(out, relay.origin_addr, [wire.Nack(seq=relay.origin_seq)])

    def _on_gossip_tick(self, now: float, out: Output) -> None:
        out.timers.append((("gossip",), now + self.cfg.gossip_interval_s))
        if not len(self.state.broadcasts):
            return  # nothing to say: a quiet cluster sends no gossip packets
        limit = self._retransmit_limit()
        room = self.cfg.packet_bytes_max - wire.GOSSIP_PACKET_OVERHEAD_BYTES
        dead_for = self.cfg.gossip_to_the_dead_s

        def excluded(m: Member) -> bool:
            if m.name == self.me or m.state == MemberState.LEFT:
                return True
            # Keep gossiping to the recently dead so a falsely declared member hears it
            # and refutes.
            return m.state == MemberState.DEAD and now - m.state_change > dead_for

        for m in self.state.members.k_random(self.cfg.gossip_nodes, excluded):
            msgs, _ = self.state.broadcasts.take(room, limit)
            if not msgs:
                break
            self.stats.packets_sent += 1
            out.send.append((m.addr, wire.GossipPacket(messages=msgs)))

    def _on_push_pull_tick(self, now: float, out: Output) -> None:
        n = len(self.state.members)
        out.timers.append((("push_pull",), now + push_pull_interval(self.cfg.push_pull_interval_s, n)))
        if self.state.left:
            return
        peers = [m.addr for m in self.state.members.k_random(1, self._not_alive_peer)]
        # Beyond memberlist (Serf does this above it): also try one member we think is
        # dead, and every seed we do not see alive, so the two sides of a healed
        # partition find each other again even after they forgot each other.
        peers += [m.addr for m in self.state.members.k_random(
            1, lambda m: m.state != MemberState.DEAD)]
        alive = {m.addr for m in self.state.members.all() if m.state != MemberState.DEAD
                 and m.state != MemberState.LEFT}
        peers += [s for s in self._seeds if s not in alive]
        local = self.state.local_state()
        for addr in dict.fromkeys(peers):  # unique, in order
            out.stream.append((addr, wire.PushPullRequest(source=self.me, join=False,
                                                          members=local)))

    # --- messages -----------------------------------------------------------------------

    def _on_gossip(self, src_addr: str, msg: wire.GossipMessage, now: float, out: Output) -> None:
        if isinstance(msg, wire.Alive):
            self.state.alive(msg, now, out)
        elif isinstance(msg, wire.Suspect):
            verdict = self.state.stale_accusation(msg)
            if verdict is not None:
                # The sender still suspects a member we know is dead: tell it now rather
                # than leave it to a broadcast that may have missed it.
                self.stats.verdicts_answered += 1
                self._send_alone(out, src_addr, verdict)
            self.state.suspect(msg, now, out)
        elif isinstance(msg, wire.Dead):
            for addr, verdict in self.state.dead(msg, now, out):
                self._send_alone(out, addr, verdict)
        elif isinstance(msg, wire.Ping):
            if msg.target != self.me:
                self.stats.dropped_misdirected += 1  # meant for whoever had this address
                return
            self._send(out, src_addr, [wire.Ack(seq=msg.seq)])
        elif isinstance(msg, wire.Ack):
            self._on_ack(msg.seq, now, out)
        elif isinstance(msg, wire.Nack):
            if self._probe is not None and self._probe.seq == msg.seq:
                self._probe.nacks += 1
        elif isinstance(msg, wire.IndirectPing):
            self._on_indirect_ping(src_addr, msg, now, out)
        else:
            raise AssertionError(f"unhandled gossip message {type(msg).__name__}")

    def _on_ack(self, seq: int, now: float, out: Output) -> None:
        p = self._probe
        if p is not None and p.seq == seq:
            self._probe = None  # done; its timers will find nothing to do
            self.awareness.apply_delta(-1)
            # Direct, relayed or over the stream: the target itself answered our ping.
            self.state.contacted(p.target, now)
            return
        relay = self._relays.pop(seq, None)
        if relay is not None:
            self._send(out, relay.origin_addr, [wire.Ack(seq=relay.origin_seq)])
        # Otherwise a late or duplicate ack: nothing to do.

    def _on_indirect_ping(self, src_addr: str, req: wire.IndirectPing, now: float,
                          out: Output) -> None:
        seq = self._next_seq()
        self._relays[seq] = _Relay(src_addr, req.seq, req.nack)
        self._send(out, req.target_addr, [wire.Ping(seq=seq, target=req.target)])
        # The requester gives up after its own probe deadline; a nack after our probe
        # timeout tells it that at least the path to us works.
        out.timers.append((("relay", seq), now + self.cfg.probe_timeout_s))
        self.stats.relays += 1

    def _on_push_pull_request(self, src_addr: str, req: wire.PushPullRequest, now: float,
                              out: Output) -> None:
        # Merge first (memberlist answers first): if their state says we are dead, our
        # answer then already carries the refutation and they take us back at once.
        self.state.merge(req.members, now, out)
        self.state.contacted(req.source, now)
        out.stream.append((src_addr, wire.PushPullResponse(
            source=self.me, members=self.state.local_state())))
        self.stats.push_pulls += 1
