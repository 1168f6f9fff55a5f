"""Lifeguard local health awareness: slow down when we may be the problem.

Owns: :class:`Awareness`, a saturating score in [0, max_multiplier - 1] that missed acks,
missing nacks and accusations we must refute push up, and successful probes pull down
(Lifeguard §IV-A; memberlist ``awareness.go``). The core stretches its probe deadline
by ``score + 1``, so a node that is itself slow (CPU-starved, paused, losing packets)
waits longer before it suspects healthy peers. Must not: know about time or messages.
"""

from __future__ import annotations


class Awareness:
    """Saturating health score; 0 is healthy.

    Args:
        max_multiplier: the largest factor :meth:`scale` may apply (score < max_multiplier).
    """

    __slots__ = ("max_multiplier", "score")

    def __init__(self, max_multiplier: int) -> None:
        assert max_multiplier >= 1
        self.max_multiplier = max_multiplier
        self.score = 0

    def apply_delta(self, delta: int) -> None:
        """Add ``delta`` (negative for good news) and clamp to [0, max_multiplier - 1]."""
        self.score = min(self.max_multiplier - 1, max(0, self.score + delta))

    def scale(self, timeout_s: float) -> float:
        """``timeout_s`` stretched by our health: ``timeout_s x (score + 1)``."""
        return timeout_s * (self.score + 1)
