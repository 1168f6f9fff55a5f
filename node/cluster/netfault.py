"""The partition drill's cut: which peers this node is cut off from, and what it dropped.

Owns: the peers named by the last ``Op.NETWORK_FAULTS`` request (by gossip address, as an
operator reads them in ``shoal cluster status``), the node ids and API addresses those
addresses stand for (learned from gossip membership, and remembered for the drill's life:
a member seen dead is forgotten by gossip some seconds later, but must stay cut off), and
the counters of what the cut dropped. Every path between nodes asks it: gossip (the
membership shell), replication (``PeerReplicaTransport``), forwarded requests and task
hand-offs going out (``PeerCalls``) and peer requests coming in (the server).

Must not: do I/O or decide what a drop means to the protocol; each path drops or fails
its own traffic the way a cut network would (silence, or a connection failure).

A FAULT-INJECTION DRILL for tests and operators' rehearsals, never normal operation. With
no drill set every check is one dict lookup on an empty dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shoal import wire

PEER_IDENTITY_PREFIX = "peer:"  # how a peer names itself in its handshake (PeerCalls, PeerLinks)


def parse_blocked_addrs(addrs: list[str], own: str) -> dict[tuple[str, int], str]:
    """Check a fault drill's peer addresses; normalized ``(host, port)`` -> as written.

    Raises:
        wire.ShoalError(INVALID_ARGUMENT): too many, not ``HOST:PORT``, or our own address.
    """
    if len(addrs) > wire.NETWORK_FAULT_ADDRS_MAX:
        raise wire.ShoalError(wire.Code.INVALID_ARGUMENT,
                              f"a fault drill names {len(addrs)} peers; the limit is "
                              f"{wire.NETWORK_FAULT_ADDRS_MAX}")
    blocked: dict[tuple[str, int], str] = {}
    for addr in addrs:
        key = addr_key(addr)
        if key is None:
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT,
                                  f"blocked address {addr!r} is not HOST:PORT with a port in "
                                  f"1-65535 (use a member's gossip_addr from cluster status)")
        if key == addr_key(own):
            raise wire.ShoalError(wire.Code.INVALID_ARGUMENT,
                                  f"blocked address {addr!r} is this node's own; name peers")
        blocked[key] = addr
    return blocked


def addr_key(addr: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (or ``[v6]:PORT``, or a ``ws://`` URL) as the drill compares it; None
    if it is not one."""
    host, sep, port = addr.removeprefix("ws://").rpartition(":")
    host = host.strip("[]").lower()
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


@dataclass(slots=True)
class FaultStats:
    """What the cut dropped, beyond gossip's own ``fault_*`` counters (``LinkStats``).
    All zero unless a drill was set; shown in ``cluster status`` stats."""

    fault_repl_dropped_out: int = 0  # replication messages to a blocked peer, unsent
    fault_calls_failed_out: int = 0  # forwarded requests / task hand-offs to one, failed
    fault_calls_lost_out: int = 0  # answers that came back after the cut, thrown away
    fault_peer_refused_in: int = 0  # a blocked peer's connections and requests, cut


@dataclass(frozen=True, slots=True)
class _Member:
    node: str  # node id
    gossip_addr: str
    api_addr: str


class NetworkFaults:
    """This node's partition drill: empty (nothing cut) until :meth:`set` names peers."""

    def __init__(self) -> None:
        self._addrs: dict[tuple[str, int], str] = {}  # blocked gossip addrs, as written
        self._nodes: set[str] = set()  # their node ids, once known
        self._api: set[tuple[str, int]] = set()  # their API addresses, once known
        self.stats = FaultStats()
        # Called after the cut changed (set, or a blocked peer's node id learned): a path
        # with calls in flight ends those to peers now blocked (``PeerCalls``).
        self.on_change: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        """A drill is set."""
        return bool(self._addrs)

    @property
    def blocked_addrs(self) -> list[str]:
        """The blocked peers' gossip addresses, as the request wrote them, sorted."""
        return sorted(self._addrs.values())

    def set(self, addrs: list[str], own: str,
            members: Iterable[tuple[str, str, str]] = ()) -> None:
        """Replace the drill: cut this node off from the peers at ``addrs`` (gossip
        addresses; empty clears it). ``own`` is our gossip address; ``members`` what
        gossip knows now, as (node id, gossip address, API address).

        Raises:
            wire.ShoalError(INVALID_ARGUMENT): see :func:`parse_blocked_addrs`; nothing
                changes then.
        """
        blocked = parse_blocked_addrs(addrs, own)
        self._addrs, self._nodes, self._api = blocked, set(), set()
        self.learn(members, notify=False)
        self._notify()

    def learn(self, members: Iterable[tuple[str, str, str]], *, notify: bool = True) -> None:
        """Gossip's members (node id, gossip address, API address): remember which node
        and API address each blocked gossip address stands for. Never forgets one while
        the drill lasts, so a blocked member gossip has reclaimed stays cut off."""
        if not self._addrs:
            return
        known = len(self._nodes) + len(self._api)
        for node, gossip_addr, api_addr in members:
            if addr_key(gossip_addr) in self._addrs:
                self._nodes.add(node)
                api = addr_key(api_addr)
                if api is not None:
                    self._api.add(api)
        if notify and len(self._nodes) + len(self._api) > known:
            self._notify()

    def _notify(self) -> None:
        for listener in self.on_change:
            listener()

    def blocks_addr(self, addr: str) -> bool:
        """``addr`` (a gossip or API address, ``HOST:PORT`` or ``ws://HOST:PORT``) is a
        blocked peer's."""
        if not self._addrs:
            return False
        key = addr_key(addr)
        return key in self._addrs or key in self._api

    def blocks_node(self, node: str) -> bool:
        """``node`` (a node id) is a blocked peer."""
        return bool(self._nodes) and node in self._nodes

    def refuses_peer(self, identity: str) -> bool:
        """A peer connection whose handshake named ``identity`` (``peer:<node id>``)
        comes from a blocked peer: the server cuts it (counted)."""
        if not self._nodes or not identity.startswith(PEER_IDENTITY_PREFIX):
            return False
        if identity.removeprefix(PEER_IDENTITY_PREFIX) not in self._nodes:
            return False
        self.stats.fault_peer_refused_in += 1
        return True
