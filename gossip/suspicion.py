"""Lifeguard suspicion: how long a suspected member has before it is declared dead.

Owns: the suspicion-timeout maths (free functions, tested with case tables) and
:class:`Suspicion`, the per-member record of independent confirmations. A suspicion
starts at the upper bound and shrinks logarithmically towards the lower bound as other
members independently suspect the same node (Lifeguard §IV-B; memberlist
``suspicion.go``). Must not: fire timers itself — the core arms a timer at
:attr:`Suspicion.deadline` and re-arms it when a confirmation moves the deadline.
"""

from __future__ import annotations

import math


def suspicion_timeout(suspicion_mult: int, n: int, probe_interval_s: float) -> float:
    """Lower bound of the suspicion timeout for a cluster of ``n`` members.

    ``suspicion_mult x max(1, log10(n)) x probe_interval_s``: the time a rumour needs to
    reach everyone grows with log N, so the refutation window must too.
    """
    node_scale = max(1.0, math.log10(max(1.0, float(n))))
    # memberlist keeps milliseconds of precision in the scale; we do the same so the
    # figures match its bounds exactly.
    return suspicion_mult * math.floor(node_scale * 1000.0) / 1000.0 * probe_interval_s


def expected_confirmations(suspicion_mult: int, n: int) -> int:
    """How many independent confirmations shrink a suspicion to its lower bound.

    ``suspicion_mult - 2``, aiming to reach the nominal timeout two probe intervals early;
    0 when the cluster has too few other members (n minus us and the suspect) to give them.
    """
    k = suspicion_mult - 2
    return 0 if n - 2 < k else max(0, k)


def remaining_suspicion_time(
    confirmations: int, k: int, elapsed_s: float, min_s: float, max_s: float
) -> float:
    """Time left on a suspicion after ``confirmations`` of the ``k`` expected ones.

    The total timeout falls from ``max_s`` to ``min_s`` as log(c + 1) / log(k + 1): the
    first confirmations count most. The result may be negative (already overdue).
    """
    if k < 1:
        return min_s - elapsed_s
    frac = math.log(confirmations + 1.0) / math.log(k + 1.0)
    raw = max_s - frac * (max_s - min_s)
    timeout = max(min_s, math.floor(1000.0 * raw) / 1000.0)  # millisecond steps, as memberlist
    return timeout - elapsed_s


class Suspicion:
    """One suspected member: when it started, who confirmed it, when it expires.

    Args:
        source: the member whose accusation started it (never counted as a confirmation).
        k: confirmations expected (see :func:`expected_confirmations`).
        min_s: lower bound of the timeout; max_s: upper bound.
        now: the time the suspicion starts.
    """

    __slots__ = ("k", "min_s", "max_s", "start", "deadline", "_confirmed", "_accusers")

    def __init__(self, source: str, k: int, min_s: float, max_s: float, now: float) -> None:
        assert 0 < min_s <= max_s
        self.k, self.min_s, self.max_s, self.start = k, min_s, max_s, now
        self._confirmed: dict[str, bool] = {source: True}
        # Everyone heard accusing, in the order heard, including those past k: each of
        # them runs a suspicion timer of its own (a dict, for a deterministic order).
        self._accusers: dict[str, None] = {source: None}
        # With no confirmations to wait for, use the lower bound from the start.
        self.deadline = now + (max_s if k >= 1 else min_s)

    @property
    def confirmations(self) -> int:
        """Independent confirmations received (the original accuser excluded)."""
        return len(self._confirmed) - 1

    @property
    def accusers(self) -> list[str]:
        """Every member heard suspecting it (ourselves included if we did), first accuser
        first, also those heard after ``k`` confirmations stopped counting. Each of them
        waits on a suspicion timer of its own until it hears of the death."""
        return list(self._accusers)

    def confirm(self, source: str, now: float) -> bool:
        """Record ``source``'s independent suspicion; shrink the deadline.

        Returns:
            True if this was a new confirmation (the caller re-broadcasts it so others
            can count it too); False for a repeat, or once ``k`` have been counted.
        """
        self._accusers.setdefault(source)
        if self.confirmations >= self.k or source in self._confirmed:
            return False
        self._confirmed[source] = True
        left = remaining_suspicion_time(
            self.confirmations, self.k, now - self.start, self.min_s, self.max_s)
        self.deadline = now + max(0.0, left)
        assert self.deadline <= self.start + self.max_s + 1e-9
        return True
