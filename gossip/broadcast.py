"""The piggyback queue: membership updates waiting to ride on outgoing packets.

Owns: :class:`BroadcastQueue` (memberlist's ``TransmitLimitedQueue``) and
:func:`retransmit_limit`. Each queued update is sent at most lambda x ceil(log10(N + 1))
times (SWIM §4.1: enough for an epidemic to reach every member with high probability);
the least-sent updates go first, so news beats old news, and a newer update about a
member replaces an older one still queued. Must not: encode messages (sizes are given
by the caller) or choose recipients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def retransmit_limit(retransmit_mult: int, n: int) -> int:
    """How many times one update is sent in a cluster of ``n`` members."""
    return retransmit_mult * int(math.ceil(math.log10(n + 1)))


@dataclass(slots=True)
class _Item:
    key: str
    msg: Any
    size: int
    transmits: int
    order: int  # insertion order: newer first among equals


class BroadcastQueue:
    """Updates keyed by member name, each with a transmit count.

    A key has at most one queued update: queueing a new one for the same member replaces
    (invalidates) the old, as a newer alive/suspect/dead message supersedes it.
    """

    __slots__ = ("_items", "_order")

    def __init__(self) -> None:
        self._items: dict[str, _Item] = {}
        self._order = 0

    def __len__(self) -> int:
        return len(self._items)

    def queue(self, key: str, msg: Any, size: int) -> None:
        """Queue ``msg`` (``size`` encoded bytes) about member ``key``, replacing any older."""
        assert size > 0
        self._order += 1
        self._items.pop(key, None)
        self._items[key] = _Item(key, msg, size, 0, self._order)

    def pending(self, key: str) -> Any | None:
        """The update queued for ``key``, if any (used by tests and leave)."""
        item = self._items.get(key)
        return None if item is None else item.msg

    def take(self, bytes_avail: int, limit: int) -> tuple[list[Any], int]:
        """Pick updates that fit in ``bytes_avail`` bytes and count one transmit for each.

        Args:
            bytes_avail: room left in the packet.
            limit: the retransmit limit (:func:`retransmit_limit`); an update sent that
                many times leaves the queue.

        Returns:
            The messages, least-transmitted first (then larger, then newer), and the
            bytes they use.
        """
        if not self._items or bytes_avail <= 0:
            return [], 0
        picked: list[Any] = []
        used = 0
        # Fewest transmits first spreads fresh news fastest; larger first packs better.
        ordered = sorted(self._items.values(), key=lambda i: (i.transmits, -i.size, -i.order))
        for item in ordered:
            if used + item.size > bytes_avail:
                continue
            used += item.size
            picked.append(item.msg)
            item.transmits += 1
            if item.transmits >= limit:
                del self._items[item.key]
        assert used <= bytes_avail
        return picked, used
