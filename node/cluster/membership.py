"""The trio shell around the SWIM core: UDP probes, the peer link for streams, timers.

Owns: the node's UDP socket (bound to the listen host and the SAME port number as the
WebSocket listener, DESIGN §1), feeding datagrams to :class:`~shoal.gossip.swim.Swim`,
sending what it returns, arming its timers, carrying its stream messages (push-pull,
fallback pings) over the peer link (``Op.GOSSIP_STREAM``), refusing peers of another
cluster with a clear error on both sides, graceful leave, the cluster status answer, and
the partition drill's op (``Op.NETWORK_FAULTS``, for tests and operators' drills only: it
sets the node's :class:`~shoal.node.cluster.netfault.NetworkFaults`, tells it which node each
blocked address is, and drops gossip to and from the blocked peers). Must not: decide
anything about membership (the core does), or encode a message other than through ``wire``.

Clock: ``time.monotonic`` (the core only compares its own times). Bad input from a peer
is dropped and counted by the core, never raised; the shell logs drops as WARNING at most
once per ``DROP_REPORT_INTERVAL_S``, and each refused peer once.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from shoal import wire
from shoal.gossip.config import SwimConfig
from shoal.gossip.events import (
    MemberDied, MemberEvent, MemberJoined, MemberLeft, MemberRecovered, MemberSuspected,
    MemberUpdated, Output, StreamMessage, TimerKey,
)
from shoal.gossip.members import cluster_mismatch
from shoal.gossip.swim import Swim
from shoal.node.cluster.netfault import NetworkFaults
from shoal.node.cluster.peer_link import PeerLinks, PeerUnavailable

log = logging.getLogger(__name__)

CLUSTER_KEY_BYTES_MIN = 32
OUTBOX_DATAGRAMS_MAX = 1024  # queued UDP sends; beyond this a datagram is dropped (counted)
DROP_REPORT_INTERVAL_S = 10.0
LEAVE_GOSSIP_ROUNDS = 10  # gossip intervals we linger after leaving, so the news spreads
LEAVE_LINGER_MAX_S = 2.0

_EVENT_WORDS: dict[type, str] = {
    MemberJoined: "joined", MemberRecovered: "alive", MemberSuspected: "suspect",
    MemberDied: "dead", MemberLeft: "left", MemberUpdated: "updated",
}
_DROP_COUNTERS = ("dropped_auth", "dropped_malformed", "dropped_foreign", "dropped_unexpected")


def read_cluster_key(path: Path) -> bytes:
    """Read a cluster key file: at least 32 bytes of key material (one trailing newline,
    as ``echo`` writes, is not part of the key).

    Raises:
        ValueError: the file cannot be read or is too short; the message says how to fix it.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the cluster key file {path}: {exc.strerror or exc}") from None
    key = data.removesuffix(b"\n").removesuffix(b"\r")
    if len(key) < CLUSTER_KEY_BYTES_MIN:
        raise ValueError(
            f"the cluster key file {path} holds {len(key)} bytes; it needs at least "
            f"{CLUSTER_KEY_BYTES_MIN} (e.g. `head -c 32 /dev/urandom | base64 > {path}`)")
    return key


def split_hostport(addr: str) -> tuple[str, int]:
    """``HOST:PORT`` (the host may be ``[v6]``) -> (host, port)."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def stream_source_meta(msg: StreamMessage) -> wire.MemberMeta | None:
    """The sender's own metadata in a push-pull message (its entry about itself)."""
    if isinstance(msg, wire.GossipPacket):
        return None
    return next((m.meta for m in msg.members if m.node == msg.source), None)


@dataclass(slots=True)
class LinkStats:
    """The shell's own counters (the core's are :class:`~shoal.gossip.events.SwimStats`)."""

    datagrams_dropped_outbox: int = 0  # the send queue was full
    send_errors: int = 0  # the OS refused a datagram
    stream_served: int = 0  # peer stream requests answered
    stream_failed: int = 0  # our stream exchanges that got no answer (peer down, timeout)
    refused_foreign: int = 0  # peers refused for another cluster identity
    # The fault drill (Op.NETWORK_FAULTS) at work on gossip; zero unless a drill was set.
    fault_dropped_in: int = 0  # datagrams from a blocked peer, unread
    fault_dropped_out: int = 0  # datagrams to a blocked peer, unsent
    fault_refused_streams: int = 0  # a blocked peer's stream requests, refused
    fault_skipped_streams: int = 0  # our stream messages to a blocked peer, unsent


class ClusterMembership:
    """This node's gossip membership: one :class:`Swim` core and its I/O.

    Args:
        name: our member name (the node id).
        cfg: timing and the cluster key.
        meta: what we tell the cluster (API address and cluster identity).
        advertise: ``HOST:PORT`` peers use for our UDP probes and peer link.
        seeds: addresses to join through (empty: start a new cluster).
        clock: seconds; monotonic.
        faults: the node's partition drill, shared with its other peer paths (a node's
            own when not given).
    """

    def __init__(self, name: str, cfg: SwimConfig, meta: wire.MemberMeta, advertise: str,
                 seeds: list[str], *, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, faults: NetworkFaults | None = None) -> None:
        self.name, self.cfg, self.meta, self.advertise = name, cfg, meta, advertise
        self.seeds = sorted(set(s for s in seeds if s != advertise))
        self.clock = clock
        self.swim = Swim(name, cfg, rng or random.Random(), meta, addr=advertise)
        self.link_stats = LinkStats()
        self._timers: dict[TimerKey, float] = {}
        self._timers_changed = trio.Event()
        self._outbox_in, self._outbox_out = trio.open_memory_channel(OUTBOX_DATAGRAMS_MAX)
        self._nursery: trio.Nursery | None = None
        self._links: PeerLinks | None = None
        self._reply_ids = itertools.count(1)
        self._refused_by: dict[str, str] = {}  # seed address -> why it refused our join
        self._warned: set[str] = set()  # peers already named in a WARNING
        self._drops_reported = {c: 0 for c in _DROP_COUNTERS}
        self._drops_reported_at = -math.inf
        self.faults = faults if faults is not None else NetworkFaults()
        # Called after membership events (a join, a death, a leave ...): the node re-reads
        # the ring's members then.
        self.on_change: Callable[[], None] | None = None

    # --- running ------------------------------------------------------------------------

    async def run(self, host: str, port: int, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind UDP ``host:port``, join through the seeds, and run until cancelled.

        Raises:
            OSError: the UDP port cannot be bound.
            wire.ShoalError(CLUSTER_MISMATCH): every seed refused our join.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = trio.socket.socket(family, socket.SOCK_DGRAM)
        with sock:
            await sock.bind((host, port))
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._links = PeerLinks(nursery, self.name, self.cfg.cluster_key)
                nursery.start_soon(self._receive_loop, sock)
                nursery.start_soon(self._send_loop, sock)
                nursery.start_soon(self._timer_loop)
                log.info("gossip started name=%s addr=%s seeds=%s key=%s", self.name,
                         self.advertise, ",".join(self.seeds) or "-",
                         "on" if self.cfg.cluster_key else "off")
                self._apply(self.swim.join(self.seeds, self.clock()))
                task_status.started()
                # Runs until cancelled; the peer connections' tasks live in this nursery,
                # so cancelling it closes them too.
                await trio.sleep_forever()

    async def leave(self) -> None:
        """Leave gracefully: tell the cluster, then keep gossiping for a few intervals
        (at most ``LEAVE_LINGER_MAX_S``) so the news spreads before we stop. Alone in the
        cluster, there is nobody to tell and nothing to wait for."""
        others = [m for m in self.swim.alive_members() if m.name != self.name]
        self._apply(self.swim.leave(self.clock()))
        if others:
            await trio.sleep(min(LEAVE_LINGER_MAX_S,
                                 LEAVE_GOSSIP_ROUNDS * self.cfg.gossip_interval_s))

    async def _receive_loop(self, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data, src = await sock.recvfrom(wire.UDP_PACKET_BYTES_MAX)
            except OSError as exc:  # e.g. ICMP errors surfaced by the OS: not fatal
                log.debug("gossip receive failed: %s", exc)
                continue
            self.on_datagram(data, src)

    def on_datagram(self, data: bytes, src: tuple) -> None:
        """One UDP datagram from ``src`` (a socket address): to the core, unless a fault
        drill blocks its sender."""
        if self.faults.active and self.faults.blocks_addr(f"{src[0]}:{src[1]}"):
            self.link_stats.fault_dropped_in += 1
            return
        self._apply(self.swim.on_message(f"{src[0]}:{src[1]}", data, self.clock()))
        self._report_drops()

    async def _send_loop(self, sock: trio.socket.SocketType) -> None:
        async for addr, frame in self._outbox_out:
            try:
                await sock.sendto(frame, split_hostport(addr))
            except (OSError, ValueError) as exc:
                self.link_stats.send_errors += 1
                log.debug("gossip send failed addr=%s: %s", addr, exc)

    async def _timer_loop(self) -> None:
        """One task for every timer: sleep until the earliest deadline, fire what is due.
        Re-arming replaces a key's deadline; the core ignores stale firings."""
        while True:
            changed = self._timers_changed = trio.Event()
            if not self._timers:
                await changed.wait()
                continue
            delay = min(self._timers.values()) - self.clock()
            if delay > 0:
                with trio.move_on_after(delay):
                    await changed.wait()
                continue
            now = self.clock()
            due = sorted((at, str(key), key) for key, at in self._timers.items() if at <= now)
            for _, _, key in due:
                del self._timers[key]
                self._apply(self.swim.on_timer(key, now))

    # --- doing what the core says -------------------------------------------------------

    def _apply(self, out: Output) -> None:
        key = self.cfg.cluster_key
        for addr, pkt in out.send:
            if self._is_blocked(addr):
                self.link_stats.fault_dropped_out += 1
                continue
            try:
                self._outbox_in.send_nowait((addr, wire.encode_gossip(pkt, key)))
            except trio.WouldBlock:
                self.link_stats.datagrams_dropped_outbox += 1
        for addr, msg in out.stream:
            if self._is_blocked(addr):
                self.link_stats.fault_skipped_streams += 1
                continue
            assert self._nursery is not None, "the core streams only after join()"
            self._nursery.start_soon(self._exchange, addr, msg)
        for timer, at in out.timers:
            self._timers[timer] = at
        if out.timers:
            self._timers_changed.set()
        for event in out.events:
            self._log_event(event)
        if out.events and self.faults.active:
            self.faults.learn(self._member_addrs())  # a blocked peer may just have joined
        if out.events and self.on_change is not None:
            self.on_change()

    def _log_event(self, event: MemberEvent) -> None:
        m = event.member
        log.info("member %s name=%s addr=%s incarnation=%d", _EVENT_WORDS[type(event)],
                 m.name, m.addr, m.incarnation)

    async def _exchange(self, addr: str, msg: StreamMessage) -> None:
        """Deliver one stream message to ``addr`` over the peer link; feed the answer back."""
        assert self._links is not None
        frame = wire.encode_gossip(msg, self.cfg.cluster_key)
        try:
            with trio.fail_after(self.cfg.push_pull_timeout_s):
                answer = await self._links.request(
                    addr, wire.Op.GOSSIP_STREAM,
                    wire.GossipStreamRequest(frame=frame, source_addr=self.advertise))
        except wire.ShoalError as exc:
            self.link_stats.stream_failed += 1
            if exc.code == wire.Code.CLUSTER_MISMATCH:
                self._on_refused(addr, exc.message)
            else:
                log.debug("gossip stream refused addr=%s: %s", addr, exc)
            return
        except (PeerUnavailable, trio.TooSlowError) as exc:
            self.link_stats.stream_failed += 1
            log.debug("gossip stream failed addr=%s: %r", addr, exc)
            return
        if not answer.frame:
            if isinstance(msg, wire.PushPullRequest) and msg.join:
                # A push-pull is always answered; silence means our frame was dropped.
                self._on_refused(addr, "it dropped our join request unread: the cluster "
                                       "keys differ (or only one side has one)")
            return
        reply = self.swim.decode_frame(answer.frame)
        if reply is None:
            self._report_drops()
            return
        reason = self._mismatch(reply)
        if reason:
            self.link_stats.refused_foreign += 1
            self._warn_once(addr, "refused peer addr=%s: %s", addr, reason)
            self._on_refused(addr, reason)
            return
        self._apply(self.swim.on_message(addr, reply, self.clock(), stream=True))

    def _mismatch(self, msg: StreamMessage) -> str | None:
        theirs = stream_source_meta(msg)
        return None if theirs is None else cluster_mismatch(self.meta, theirs)

    def _on_refused(self, addr: str, reason: str) -> None:
        """A seed refused us. If every seed has and we never joined, we cannot be part of
        this cluster: stop the node with the reason (a person must fix the config)."""
        self._warn_once(addr, "join refused addr=%s: %s", addr, reason)
        if addr not in self.seeds or self.swim.joined:
            return
        self._refused_by[addr] = reason
        if set(self._refused_by) >= set(self.seeds):
            reasons = "; ".join(f"{a}: {r}" for a, r in sorted(self._refused_by.items()))
            log.error("every seed refused this node; stopping (%s)", reasons)
            raise wire.ShoalError(wire.Code.CLUSTER_MISMATCH,
                                  f"this node cannot join the cluster; every seed refused it "
                                  f"({reasons})")

    def _warn_once(self, peer: str, fmt: str, *args: object) -> None:
        if peer not in self._warned:
            self._warned.add(peer)
            log.warning(fmt, *args)

    def _report_drops(self) -> None:
        """WARNING about dropped peer input, as totals, at most once per interval."""
        now = self.clock()
        stats = self.swim.stats
        counts = {c: getattr(stats, c) for c in _DROP_COUNTERS}
        if counts == self._drops_reported or now - self._drops_reported_at < DROP_REPORT_INTERVAL_S:
            return
        self._drops_reported, self._drops_reported_at = counts, now
        log.warning("dropped gossip input totals auth=%d malformed=%d foreign=%d unexpected=%d",
                    *counts.values())

    # --- requests from peers and clients (WebSocket ops) ----------------------------------

    async def on_gossip_stream(self, namespace: str, req: wire.GossipStreamRequest
                               ) -> wire.GossipStreamResponse:
        """``Op.GOSSIP_STREAM``: a peer's stream message; answer with the core's reply.

        Raises:
            wire.ShoalError(CLUSTER_MISMATCH): the peer belongs to another cluster.
            wire.ShoalError(UNAVAILABLE): a fault drill blocks the sender.
        """
        msg = self.swim.decode_frame(req.frame)
        if msg is None:
            self._report_drops()
            return wire.GossipStreamResponse()
        source_addr = req.source_addr
        if not isinstance(msg, wire.GossipPacket):  # push-pull: the sender's own entry
            source_addr = next((m.addr for m in msg.members if m.node == msg.source),
                               source_addr)
        if self._is_blocked(source_addr):
            self.link_stats.fault_refused_streams += 1
            raise wire.ShoalError(wire.Code.UNAVAILABLE,
                                  f"node {self.name} is in a fault drill that cuts it off "
                                  f"from {source_addr}")
        reason = self._mismatch(msg)
        if reason:
            assert not isinstance(msg, wire.GossipPacket)
            self.link_stats.refused_foreign += 1
            self._warn_once(msg.source, "refused member name=%s: %s", msg.source, reason)
            raise wire.ShoalError(wire.Code.CLUSTER_MISMATCH,
                                  f"node {self.name} refused {msg.source}: {reason}")
        # The core answers "to" the sender's address; a token we pick out marks the reply,
        # which goes back on this same connection rather than on a new one.
        token = f"<reply {next(self._reply_ids)}>"
        out = self.swim.on_message(token, msg, self.clock(), stream=True)
        replies = [m for a, m in out.stream if a == token]
        out.stream = [(a, m) for a, m in out.stream if a != token]
        assert len(replies) <= 1, "one stream message gets at most one answer"
        self._apply(out)
        self.link_stats.stream_served += 1
        frame = wire.encode_gossip(replies[0], self.cfg.cluster_key) if replies else b""
        return wire.GossipStreamResponse(frame=frame)

    async def on_network_faults(self, namespace: str, req: wire.NetworkFaultsRequest
                                ) -> wire.Empty:
        """``Op.NETWORK_FAULTS``: a fault-injection drill, not for normal operation. Cut
        this node off from the peers at ``req.blocked_addrs`` (replacing any earlier drill;
        an empty list clears it). Here: their datagrams and stream requests are dropped and
        counted, and nothing is sent to them; the SWIM core is not told, it sees silence,
        as in a real partition. The node's other peer paths obey the same
        :class:`NetworkFaults` (replication, forwarded requests, peer connections).

        Raises:
            wire.ShoalError(INVALID_ARGUMENT): an address is not ``HOST:PORT`` or is ours.
        """
        self.faults.set(req.blocked_addrs, self.advertise, self._member_addrs())
        if self.faults.active:
            log.warning("network fault drill set: cut off from blocked=%s (gossip, "
                        "replication, forwarded requests)", ",".join(self.faults.blocked_addrs))
        else:
            log.warning("network fault drill cleared")
        return wire.Empty()

    def _is_blocked(self, addr: str) -> bool:
        return self.faults.blocks_addr(addr)

    def _member_addrs(self) -> list[tuple[str, str, str]]:
        """Every member gossip knows (dead ones too): node id, gossip and API address."""
        return [(m.name, m.addr, m.meta.api_addr) for m in self.swim.members()]

    async def on_cluster_status(self, namespace: str, req: wire.ClusterStatusRequest
                                ) -> wire.ClusterStatusResponse:
        """``Op.CLUSTER_STATUS``: every member we know, our health and counters."""
        return self.status()

    def status(self) -> wire.ClusterStatusResponse:
        """This node's view of the cluster, for ``shoal cluster status``."""
        now = self.clock()
        members = [
            wire.ClusterMember(
                name=m.name, state=m.state.name.lower(), incarnation=m.incarnation,
                gossip_addr=m.addr, api_addr=m.meta.api_addr, is_self=m.name == self.name,
                last_contact_age_s=None if m.last_contact is None or m.name == self.name
                else round(max(0.0, now - m.last_contact), 3),
            )
            for m in self.swim.members()
        ]
        return wire.ClusterStatusResponse(
            node=self.name, cluster_name=self.meta.cluster_name, num_shards=self.meta.num_shards,
            members=members, health_score=self.swim.health_score,
            stats={**asdict(self.swim.stats), **asdict(self.link_stats),
                   **asdict(self.faults.stats)},
            blocked_addrs=self.faults.blocked_addrs,
        )
