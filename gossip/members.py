"""The member list: who we know of, in which state, and in which probe order.

Owns: :class:`Member` (our mutable record of one member), :class:`MemberInfo` (the
immutable snapshot handed to the shell in events), and :class:`MemberList` — the ordered
list SWIM walks round-robin for probes (new members go to a random position and the
list is reshuffled at each wrap, so every member is probed once per round in random
order: SWIM §4.3), with the random selection helpers the core needs. Must not: decide
state transitions (that is ``swim.py``) or use any randomness but the injected rng.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from shoal import wire
from shoal.wire import MemberState


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A member as we see it at one moment."""

    name: str
    addr: str
    incarnation: int
    state: MemberState
    meta: wire.MemberMeta
    last_contact: float | None = field(default=None, compare=False)
    """When we last heard from the member itself (an ack to our probe, a push-pull);
    None if never. Not part of equality: two snapshots of one state compare equal."""


def cluster_mismatch(mine: wire.MemberMeta, theirs: wire.MemberMeta) -> str | None:
    """Why a member with metadata ``theirs`` cannot join our cluster, or None if it can.

    The cluster identity is the name and NUM_SHARDS (DESIGN §3: fixed when the cluster is
    created); the protocol version may differ between members during an upgrade.
    """
    if theirs.cluster_name != mine.cluster_name:
        return f"cluster name {theirs.cluster_name!r} differs from ours ({mine.cluster_name!r})"
    if theirs.num_shards != mine.num_shards:
        return f"NUM_SHARDS {theirs.num_shards} differs from ours ({mine.num_shards})"
    return None


@dataclass(slots=True)
class Member:
    """Our mutable record of one member."""

    name: str
    addr: str
    incarnation: int
    state: MemberState
    meta: wire.MemberMeta
    state_change: float  # when ``state`` last changed (for reaping and gossip-to-the-dead)
    last_contact: float | None = None  # when the member itself last answered us

    def info(self) -> MemberInfo:
        return MemberInfo(self.name, self.addr, self.incarnation, self.state, self.meta,
                          self.last_contact)

    @property
    def dead_or_left(self) -> bool:
        return self.state in (MemberState.DEAD, MemberState.LEFT)

    def push_state(self) -> wire.PushNodeState:
        return wire.PushNodeState(node=self.name, addr=self.addr, incarnation=self.incarnation,
                                  state=self.state, meta=self.meta)


class MemberList:
    """Members by name plus the probe order (memberlist's ``nodes`` and ``probeIndex``)."""

    __slots__ = ("_rng", "_order", "_by_name", "_probe_index")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._order: list[Member] = []
        self._by_name: dict[str, Member] = {}
        self._probe_index = 0

    def __len__(self) -> int:
        return len(self._order)

    def get(self, name: str) -> Member | None:
        return self._by_name.get(name)

    def all(self) -> list[Member]:
        """Every member, in probe order (deterministic for a given seed)."""
        return list(self._order)

    def add(self, member: Member) -> None:
        """Insert at a random position, so a burst of joins is not probed in join order."""
        assert member.name not in self._by_name
        self._by_name[member.name] = member
        self._order.append(member)
        i = self._rng.randrange(len(self._order))
        self._order[i], self._order[-1] = self._order[-1], self._order[i]

    def count(self, pred: Callable[[Member], bool]) -> int:
        return sum(1 for m in self._order if pred(m))

    def next_probe_target(self, me: str, now: float, reap_after_s: float) -> Member | None:
        """The next member to probe, round-robin, skipping us and dead/left members.

        At each wrap the list is reset: members dead for longer than ``reap_after_s`` are
        forgotten and the order is reshuffled. Returns None if nobody can be probed.
        """
        checked = 0
        # Up to two passes: the rest of this round, then a whole fresh round.
        while checked <= 2 * len(self._order):
            if self._probe_index >= len(self._order):
                self._reset(now, reap_after_s)
                self._probe_index = 0
                checked += 1
                continue
            m = self._order[self._probe_index]
            self._probe_index += 1
            if m.name != me and not m.dead_or_left:
                return m
            checked += 1
        return None

    def _reset(self, now: float, reap_after_s: float) -> None:
        keep = [m for m in self._order
                if not (m.dead_or_left and now - m.state_change > reap_after_s)]
        for m in self._order:
            if m.dead_or_left and now - m.state_change > reap_after_s:
                del self._by_name[m.name]
        self._rng.shuffle(keep)
        self._order = keep

    def k_random(self, k: int, exclude: Callable[[Member], bool]) -> list[Member]:
        """Up to ``k`` distinct random members not excluded (memberlist's kRandomNodes:
        3N random draws, so small lists are searched exhaustively enough)."""
        n = len(self._order)
        picked: list[Member] = []
        for _ in range(3 * n):
            if len(picked) >= k:
                break
            m = self._order[self._rng.randrange(n)]
            if exclude(m) or any(p is m for p in picked):
                continue
            picked.append(m)
        return picked
