"""gossip/awareness.py: Lifeguard's saturating health score."""

from __future__ import annotations

from shoal.gossip.awareness import Awareness


def test_score_saturates_between_zero_and_max_minus_one() -> None:
    a = Awareness(8)
    a.apply_delta(-1)
    assert a.score == 0
    a.apply_delta(3)
    assert a.score == 3
    a.apply_delta(100)
    assert a.score == 7


def test_scale_stretches_timeouts_by_score_plus_one() -> None:
    a = Awareness(8)
    assert a.scale(1.0) == 1.0
    a.apply_delta(2)
    assert a.scale(0.5) == 1.5
    a.apply_delta(-1)
    assert a.scale(0.5) == 1.0


def test_max_multiplier_one_disables_scaling() -> None:
    a = Awareness(1)
    a.apply_delta(5)
    assert a.score == 0 and a.scale(2.0) == 2.0
